"""Runtime commands (no torch): each module adds its sub-parsers; BUILDERS lists them for ferkit.cli."""

BUILDERS: list = []

from .video import add_video_parser, add_webcam_parser  # noqa: E402

BUILDERS += [add_video_parser, add_webcam_parser]
