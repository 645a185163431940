"""Scene cuts: a hard cut between two shots, found by comparing each analysed frame with the one before.

The score is the mean colour distance (CIE Lab, OpenCV's 8-bit scale) between small blurred thumbnails of
the two frames: about 2-6 for a moving face or camera noise; 18 or more between photos of two different
people taken in the same studio with the same framing (the closest pair among 514 pairs of the webphotos dev
set). A cut needs the score to reach ``threshold`` and to stand out from the recent scores (``ratio`` times
their median), so continuous fast motion (a pan, a shaky hand-held shot) is not a string of cuts. Across a
cut no face keeps its track (:meth:`ferkit.video.tracking.Tracker.update`): a false cut only starts a new
track for the same face, a missed one would mix two people in one track's smoothing and summary.
"""

from __future__ import annotations

from collections import deque

import numpy as np

THUMB_PX = 64  # longer side of the thumbnail compared


def _thumb(bgr: np.ndarray) -> np.ndarray:
    import cv2

    h, w = bgr.shape[:2]
    s = THUMB_PX / max(h, w)
    small = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
    small = cv2.GaussianBlur(small, (3, 3), 0)
    return cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:  # frames of another size: another shot
        return float("inf")
    return float(np.sqrt(((a - b) ** 2).sum(axis=2)).mean())


class SceneCuts:
    """``update(frame)`` -> whether a hard cut lies between the previous analysed frame and this one."""

    def __init__(self, threshold: float = 15.0, ratio: float = 3.0, history: int = 8):
        self.threshold, self.ratio = threshold, ratio
        self._prev: np.ndarray | None = None
        self._recent: deque[float] = deque(maxlen=history)
        self.last_score = 0.0

    def update(self, bgr: np.ndarray) -> bool:
        t = _thumb(bgr)
        prev, self._prev = self._prev, t
        if prev is None:
            return False
        s = _distance(t, prev)
        self.last_score = s
        usual = float(np.median(self._recent)) if self._recent else 0.0
        self._recent.append(s)
        return s >= self.threshold and s >= self.ratio * usual
