"""The detector interface every backend implements: :class:`FaceDetector`, :class:`Detection`, :class:`CropSpec`.

All detectors take a BGR (H, W, 3) or gray (H, W) uint8 array and return :class:`Detection` tuples
``(box, score, landmarks)`` with ``box = (x, y, w, h)`` in the pixels of the array given, clipped to the image,
sorted by score (best first). Big images are scaled down to ``max_side`` pixels (longer side) for
detection, boxes are scaled back. ``min_face`` is in original pixels; ``threshold`` is in the detector's
own score units; ``max_faces`` keeps the best N. Each detector carries the :class:`CropSpec` (margin, shift,
alignment) that made its boxes look most like FER2013 crops (tuned end to end, see ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

Box = tuple[int, int, int, int]
Landmarks = tuple[tuple[float, float], ...]
# names of the five landmarks the CNN detector gives, in its order ("left" = the image's left side)
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class Detection(NamedTuple):
    box: Box  # x, y, w, h in input pixels
    score: float
    landmarks: Landmarks | None = None  # (x, y) points in input pixels, detector's order; None if it has none


class DetectorUnavailable(ValueError):
    """A detector was asked for by name but its package is not installed (message says what to install)."""


@dataclass(frozen=True)
class CropSpec:
    """How to turn a detector box into a FER2013-like crop.

    ``margin``: fraction of the box side added on each side (negative shrinks); ``shift``: vertical
    move of the centre as a fraction of the side (positive = down); the crop is always square.
    ``align``: rotate the face upright on its eye landmarks first (when the detector gives landmarks;
    see :mod:`ferkit.faces.align`).
    """

    margin: float = 0.0
    shift: float = 0.0
    align: bool = False


# --------------------------------------------------------------------------- helpers


def _gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("detectors take a uint8 numpy array (BGR H x W x 3 or gray H x W); "
                         "use ferkit.images.to_bgr() to convert other inputs")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"array of shape {image.shape} is not an image")


def _resize_for_detection(gray: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    import cv2

    h, w = gray.shape
    s = 1.0
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        gray = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return gray, s


def _clip_box(x: float, y: float, w: float, h: float, W: int, H: int) -> Box | None:
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(W, int(round(x + w))), min(H, int(round(y + h)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def _finish(raw: list[tuple[float, float, float, float, float]], scale: float, shape: tuple[int, int],
            min_face: int, threshold: float | None, max_faces: int | None) -> list[Detection]:
    H, W = shape[:2]
    out = []
    for x, y, w, h, score in raw:
        if threshold is not None and score < threshold:
            continue
        b = _clip_box(x / scale, y / scale, w / scale, h / scale, W, H)
        if b is None or max(b[2], b[3]) < min_face:
            continue
        out.append(Detection(b, float(score)))
    out.sort(key=lambda d: -d.score)
    if max_faces is not None and max_faces > 0:
        out = out[:max_faces]
    return out


# --------------------------------------------------------------------------- base class


class FaceDetector:
    """Base class: subclasses implement ``_raw(gray, min_face_scaled) -> [(x, y, w, h, score)]``."""

    name = "base"
    default_threshold: float | None = None
    crop = CropSpec()

    def __init__(self, min_face: int = 24, threshold: float | None = None, max_faces: int | None = None,
                 max_side: int | None = 640):
        if min_face < 1:
            raise ValueError(f"min_face must be >= 1 pixel, not {min_face}")
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"max_faces must be >= 1 (or None for no limit), not {max_faces}")
        self.min_face = int(min_face)
        self.threshold = self.default_threshold if threshold is None else float(threshold)
        self.max_faces = max_faces
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR or gray uint8 array, best first (see module docstring for units)."""
        gray = _gray(image)
        small, s = _resize_for_detection(gray, self.max_side)
        raw = self._raw(small, self.min_face * s)
        return _finish(raw, s, gray.shape, self.min_face, self.threshold, self.max_faces)

    __call__ = detect

    def _raw(self, gray: np.ndarray, min_face: float) -> list[tuple[float, float, float, float, float]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(min_face={self.min_face}, threshold={self.threshold}, "
                f"max_faces={self.max_faces}, max_side={self.max_side})")
