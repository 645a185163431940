"""Old name of :mod:`ferkit.export.quantize` (int8 quantisation), kept so that old imports work."""

import sys

from .export import quantize

sys.modules[__name__] = quantize
