"""Runtime commands (no torch): each module adds its sub-parsers; BUILDERS lists them for ferkit.cli."""

BUILDERS: list = []
