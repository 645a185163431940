"""FER2013-style crops: a detector box (and, for aligned crops, eye landmarks) -> a 48x48 gray face.

:func:`crop_face` cuts a face the way FER2013 faces were cut (tight, square, centred, 48x48 gray), turned
upright on its eyes first when the :class:`~ferkit.faces.base.CropSpec` asks for it (:func:`aligned_crop`,
geometry in :mod:`ferkit.faces.align`). Parts of the square outside the image replicate the border.
"""

from __future__ import annotations

import math

import numpy as np

from .align import upright_square
from .base import Box, CropSpec, Landmarks

# an image no bigger than this (longer side, pixels) is a face crop already: classified whole, detector "crop"
CROP_MAX_SIDE = 96


def is_face_crop(shape) -> bool:
    """True for images small enough to be a face crop already (longer side <= CROP_MAX_SIDE)."""
    return max(shape[0], shape[1]) <= CROP_MAX_SIDE



def square_box(box: Box, spec: CropSpec = CropSpec()) -> tuple[int, int, int]:
    """(x0, y0, side) of the square crop for a detector box (may extend outside the image)."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * spec.margin)
    side = max(2, int(round(side)))
    cx = x + w / 2.0
    cy = y + h / 2.0 + spec.shift * max(w, h)
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def crop_face(gray: np.ndarray, box: Box, spec: CropSpec = CropSpec(), size: int = 48,
              landmarks: Landmarks | None = None) -> np.ndarray:
    """Cut the FER2013-style square crop around ``box`` from a gray image: (size, size) uint8.

    Parts of the square outside the image are filled by replicating the border. With ``spec.align`` and
    eye ``landmarks`` the face is first turned upright (:func:`aligned_crop`).
    """
    import cv2

    if spec.align and landmarks is not None:
        return aligned_crop(gray, box, landmarks, spec, size)

    if gray.ndim != 2:
        raise ValueError(f"crop_face takes a gray (H, W) image, got shape {gray.shape}")
    x0, y0, side = square_box(box, spec)
    inside = x0 >= 0 and y0 >= 0 and x0 + side <= gray.shape[1] and y0 + side <= gray.shape[0]
    patch = padded_window(gray, x0, y0, x0 + side, y0 + side, box, 1.0 if inside else min(1.0, 2 * size / side))
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def padded_window(gray: np.ndarray, x0: int, y0: int, x1: int, y1: int, box, scale: float = 1.0) -> np.ndarray:
    """gray[y0:y1, x0:x1], with the image border replicated where the window leaves the image, resized by
    ``scale`` (<= 1; about ``round((x1 - x0) * scale)`` pixels wide).

    A window that leaves the image is shrunk first and padded after: its size at full resolution can be far
    more than the image's (the square around a 40000 x 97 box is 44000 x 44000 pixels)."""
    import cv2

    H, W = gray.shape
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f"face box {box} lies outside the {W}x{H} image")
    patch = gray[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)
    if scale < 1.0:  # each edge of the inside part lands within half a pixel of its scaled place
        top, bottom = round((cy0 - y0) * scale), round((cy1 - y0) * scale)
        left, right = round((cx0 - x0) * scale), round((cx1 - x0) * scale)
        inner = (max(1, right - left), max(1, bottom - top))
        if inner != (patch.shape[1], patch.shape[0]):
            patch = cv2.resize(patch, inner, interpolation=cv2.INTER_AREA)
        pads = (top, max(0, round((y1 - y0) * scale) - top - inner[1]),
                left, max(0, round((x1 - x0) * scale) - left - inner[0]))
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, borderType=cv2.BORDER_REPLICATE)
    return patch


def aligned_crop(gray: np.ndarray, box, landmarks, spec: CropSpec, size: int = 48) -> np.ndarray:
    """(size, size) uint8 crop of the face in ``box`` turned upright on its eyes (with level eyes, or eyes
    that cannot be trusted, the same as the unaligned :func:`crop_face`)."""
    import cv2

    square = upright_square(box, landmarks, spec)
    if square is None:
        return crop_face(gray, box, spec, size)
    if gray.ndim != 2:
        raise ValueError(f"aligned_crop takes a gray (H, W) image, got shape {gray.shape}")
    cx, cy, side, angle = square
    a = math.radians(angle)
    # the patch that holds the rotated square, padded by replicating the border where it leaves the image
    r = side * (abs(math.cos(a)) + abs(math.sin(a))) / 2.0 + 2.0
    x0, y0, x1, y1 = (int(math.floor(cx - r)), int(math.floor(cy - r)), int(math.ceil(cx + r)),
                      int(math.ceil(cy + r)))
    f = min(1.0, 2 * size / side)  # shrink with area averaging first; the rotation then works near the output scale
    patch = padded_window(gray, x0, y0, x1, y1, box, f)
    centre = ((cx - x0) * f - 0.5, (cy - y0) * f - 0.5)  # pixel-index coordinates, as warpAffine uses
    m = cv2.getRotationMatrix2D(centre, angle, size / (side * f))
    m[0, 2] += size / 2.0 - 0.5 - centre[0]
    m[1, 2] += size / 2.0 - 0.5 - centre[1]
    return cv2.warpAffine(patch, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
