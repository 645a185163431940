"""Old name of :mod:`ferkit.export.onnx_members` (torch members back from an ONNX file), kept for old imports."""

import sys

from .export import onnx_members

sys.modules[__name__] = onnx_members
