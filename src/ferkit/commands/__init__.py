"""Runtime commands (no torch): each module adds its sub-parsers; BUILDERS lists them for ferkit.cli."""

from .predict import add_parser as _add_predict

BUILDERS: list = [_add_predict]
from .video import add_video_parser  # noqa: E402
from .webcam import add_webcam_parser  # noqa: E402

BUILDERS += [add_video_parser, add_webcam_parser]
from .serve import add_parser as _add_serve  # noqa: E402

BUILDERS += [_add_serve]
from .models import add_parser as _add_models  # noqa: E402

BUILDERS += [_add_models]
