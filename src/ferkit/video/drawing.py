"""Drawing on frames (boxes, labels, bars, an FPS line) and a sliding-window rate meter."""

from __future__ import annotations

import time

import numpy as np

from .tracking import TrackedFace


def annotate(image: np.ndarray, faces: list[TrackedFace], fps: float | None = None, bars: bool = True,
             status: str = "") -> np.ndarray:
    """Boxes, labels with track ids and probability bars (ferkit.render), plus an FPS / status line."""
    import cv2

    from ..render import draw_faces

    out = draw_faces(image, [(f.box, f, f.track_id) for f in faces], bars=bars)  # caption "label 83% #id"
    line = " ".join(s for s in (f"{fps:.1f} fps" if fps is not None else "", status) if s)
    if line:
        (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(out, (4, 4), (12 + tw, 12 + th), (0, 0, 0), -1)
        cv2.putText(out, line, (8, 8 + th), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class RateMeter:
    """Frames per second over a sliding window of recent timestamps."""

    def __init__(self, window: int = 30):
        self._t: list[float] = []
        self.window = window

    def tick(self) -> float | None:
        self._t.append(time.perf_counter())
        if len(self._t) > self.window:
            del self._t[0]
        if len(self._t) < 2 or self._t[-1] <= self._t[0]:
            return None
        return (len(self._t) - 1) / (self._t[-1] - self._t[0])
