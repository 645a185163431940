"""Upright FER2013-style crops: rotate a face on its eye landmarks, then cut the square crop.

FER2013 faces are upright (eyes level); a head tilted by 20 degrees in a photo is a different picture to the
classifier. :func:`aligned_crop` turns the line between the eyes horizontal and cuts the same square
:func:`ferkit.faces.crop_face` would cut from an upright face, same side and centre, with the vertical
``shift`` along the face's own down direction. (CenterFace's box of a face tilted by 20 degrees is about as big
as the upright face's box, not the ``cos a + sin a`` times bigger a box around the rotated outline would be.)
With level eyes it equals ``crop_face``.
No torch here.
"""

from __future__ import annotations

import math

import numpy as np

MAX_ANGLE = 60.0  # degrees; landmarks that say more than this are not trusted (the face is cropped unrotated)


def eye_angle(landmarks) -> float | None:
    """Angle in degrees of the line from the eye on the image's left to the other (positive = clockwise
    on screen, i.e. the right-hand eye is lower), or None if it cannot be trusted."""
    if landmarks is None or len(landmarks) < 2:
        return None
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    if rx - lx <= 0 and abs(ry - ly) <= abs(rx - lx):
        return None
    a = math.degrees(math.atan2(ry - ly, rx - lx))
    return a if abs(a) <= MAX_ANGLE else None


def aligned_crop(gray: np.ndarray, box, landmarks, spec, size: int = 48) -> np.ndarray:
    """(size, size) uint8 crop of the face in ``box`` turned upright on its eyes (``spec``: a CropSpec)."""
    import cv2

    from .faces import crop_face, padded_window

    angle = eye_angle(landmarks)
    if angle is None or abs(angle) < 0.5:
        return crop_face(gray, box, spec, size)
    if gray.ndim != 2:
        raise ValueError(f"aligned_crop takes a gray (H, W) image, got shape {gray.shape}")
    a = math.radians(angle)
    x, y, w, h = box
    upright = max(w, h)  # CenterFace boxes of a tilted face keep about the upright face's size (measured)
    side = max(2.0, upright * (1.0 + 2.0 * spec.margin))
    down = spec.shift * upright
    cx = x + w / 2.0 - math.sin(a) * down
    cy = y + h / 2.0 + math.cos(a) * down
    # the patch that holds the rotated square, padded by replicating the border where it leaves the image
    r = side * (abs(math.cos(a)) + abs(math.sin(a))) / 2.0 + 2.0
    x0, y0, x1, y1 = (int(math.floor(cx - r)), int(math.floor(cy - r)), int(math.ceil(cx + r)),
                      int(math.ceil(cy + r)))
    patch = padded_window(gray, x0, y0, x1, y1, box)
    f = 1.0
    if side > 2 * size:  # shrink with area averaging first; the rotation then works near the output scale
        f = 2 * size / side
        patch = cv2.resize(patch, (max(1, round(patch.shape[1] * f)), max(1, round(patch.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
    centre = ((cx - x0) * f - 0.5, (cy - y0) * f - 0.5)  # pixel-index coordinates, as warpAffine uses
    m = cv2.getRotationMatrix2D(centre, angle, size / (side * f))
    m[0, 2] += size / 2.0 - 0.5 - centre[0]
    m[1, 2] += size / 2.0 - 0.5 - centre[1]
    return cv2.warpAffine(patch, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
