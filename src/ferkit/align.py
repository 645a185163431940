"""Old home of the aligned crop, kept so that old imports work: :mod:`ferkit.faces.align` (eye angle) and
:func:`ferkit.faces.crop.aligned_crop`."""

from .faces.align import MAX_ANGLE, eye_angle
from .faces.crop import aligned_crop

__all__ = ["MAX_ANGLE", "aligned_crop", "eye_angle"]
