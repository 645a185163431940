"""Runtime commands (no torch): each module adds its sub-parsers; BUILDERS lists them for ferkit.cli."""

from .predict import add_parser as _add_predict

BUILDERS: list = [_add_predict]
