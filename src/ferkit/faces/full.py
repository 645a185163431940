"""``full``: no detection, the whole image is one face (for inputs that are already face crops)."""

from __future__ import annotations

import numpy as np

from .base import Detection, FaceDetector, _gray


class FullImageDetector(FaceDetector):
    """The whole image is the face (inputs that are already face crops)."""

    name = "full"
    default_threshold = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        # the usual checks on one pixel: the whole image is never converted just to read its size
        _gray(image[:1, :1] if isinstance(image, np.ndarray) and image.ndim >= 2 else image)
        h, w = image.shape[:2]
        return [Detection((0, 0, int(w), int(h)), 1.0)]

    def _raw(self, gray, min_face):  # pragma: no cover - detect() is overridden
        return []
