"""Where the upright face is: the eye angle from landmarks, and the square an upright crop of a tilted face takes.

FER2013 faces are upright (eyes level); a head tilted by 20 degrees in a photo is a different picture to the
classifier. :func:`upright_square` gives the centre, side and angle of the square that
:func:`ferkit.faces.crop.aligned_crop` rotates upright and cuts: the same side and centre :func:`crop_face
<ferkit.faces.crop.crop_face>` would use for an upright face, with the vertical ``shift`` along the face's own
down direction. (CenterFace's box of a face tilted by 20 degrees is about as big as the upright face's box, not
the ``cos a + sin a`` times bigger a box around the rotated outline would be.) Geometry only: no pixels, no
imports from the rest of ferkit.
"""

from __future__ import annotations

import math

MAX_ANGLE = 60.0  # degrees; landmarks that say more than this are not trusted (the face is cropped unrotated)
MIN_ANGLE = 0.5  # degrees; a smaller tilt is cut as an upright face (no rotation)


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


def upright_square(box, landmarks, spec) -> tuple[float, float, float, float] | None:
    """(cx, cy, side, angle) of the crop square of the face in ``box`` turned upright on its eyes
    (``spec``: a CropSpec), or None when the eyes give no angle worth a rotation."""
    angle = eye_angle(landmarks)
    if angle is None or abs(angle) < MIN_ANGLE:
        return None
    a = math.radians(angle)
    x, y, w, h = box
    upright = max(w, h)  # CenterFace boxes of a tilted face keep about the upright face's size (measured)
    side = max(2.0, upright * (1.0 + 2.0 * spec.margin))
    down = spec.shift * upright
    return x + w / 2.0 - math.sin(a) * down, y + h / 2.0 + math.cos(a) * down, side, angle
