"""Per-face tracking across frames (IoU + centroid association) and label smoothing (EMA + hysteresis)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..emotions import EMOTIONS

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / float(aw * ah + bw * bh - inter)


class LabelSmoother:
    """Exponential moving average of the probabilities plus hysteresis on the label.

    ``alpha`` is the weight of the newest frame (1 = no smoothing). The shown label only switches from
    the current one to the new arg-max when the new one leads it by more than ``hysteresis`` (in
    probability). ``alpha=1, hysteresis=0`` gives the raw per-frame arg-max.
    """

    def __init__(self, alpha: float = 0.3, hysteresis: float = 0.1):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"smoothing alpha must be in (0, 1], got {alpha}")
        if not 0.0 <= hysteresis < 1.0:
            raise ValueError(f"hysteresis must be in [0, 1), got {hysteresis}")
        self.alpha = alpha
        self.hysteresis = hysteresis
        self.probs: np.ndarray | None = None
        self.index: int = -1

    def update(self, probs: np.ndarray) -> tuple[np.ndarray, int]:
        p = np.asarray(probs, dtype=np.float32)
        if self.probs is None:
            self.probs = p.copy()
            self.index = int(p.argmax())
        else:
            self.probs = self.alpha * p + (1.0 - self.alpha) * self.probs
            best = int(self.probs.argmax())
            lead = self.probs[best] - self.probs[self.index]
            # hysteresis 0: an exact tie goes to the arg-max too, so alpha=1, hysteresis=0 is the raw arg-max
            if best != self.index and (lead > self.hysteresis or (self.hysteresis == 0 and lead >= 0)):
                self.index = best
        return self.probs, self.index


@dataclass
class TrackedFace:
    """One face in one frame, with its track id; attribute names match :class:`ferkit.recognizer.Face`."""

    track_id: int
    box: Box
    score: float
    raw_probs: np.ndarray  # this frame's prediction
    probs: np.ndarray  # smoothed
    label: str  # smoothed label (with hysteresis)
    raw_label: str

    @property
    def confidence(self) -> float:
        return float(self.probs[EMOTIONS.index(self.label)])


@dataclass
class _Track:
    id: int
    box: Box
    smoother: LabelSmoother
    missed: int = 0


class Tracker:
    """Keeps face ids across frames by greedy IoU association, with a centroid-distance fallback.

    A track survives ``max_missed`` processed frames without a detection (a blink of the detector) and
    keeps its smoothed state through them. A track never continues through a jump no face makes from one
    analysed frame to the next: a box more than ``max_scale_step`` times larger or smaller, or (IoU below
    ``iou_min``) a centre more than ``max_center_dist`` face sizes away; nor through a scene cut
    (``update(..., cut=True)``), where every face starts a new track.
    """

    def __init__(self, alpha: float = 0.3, hysteresis: float = 0.1, iou_min: float = 0.25,
                 max_center_dist: float = 0.6, max_missed: int = 8, max_scale_step: float = 1.5):
        LabelSmoother(alpha, hysteresis)  # validate early
        self.alpha, self.hysteresis = alpha, hysteresis
        self.iou_min = iou_min
        self.max_center_dist = max_center_dist
        self.max_scale_step = max_scale_step
        self.max_missed = max_missed
        self.tracks: list[_Track] = []
        self._next_id = 1

    def _match(self, boxes: list[Box]) -> dict[int, int]:
        """detection index -> track index."""
        pairs = []
        for ti, t in enumerate(self.tracks):
            tx, ty, tw, th = t.box
            tcx, tcy, tsize = tx + tw / 2, ty + th / 2, max(tw, th)
            for di, b in enumerate(boxes):
                scale = math.sqrt(max(1, tw * th) / max(1, b[2] * b[3]))
                if max(scale, 1 / scale) > self.max_scale_step:
                    continue  # a face does not grow or shrink that much between two analysed frames
                v = iou(t.box, b)
                if v >= self.iou_min:
                    pairs.append((0, -v, ti, di))
                    continue
                bx, by, bw, bh = b
                d = math.hypot(bx + bw / 2 - tcx, by + bh / 2 - tcy) / max(1.0, (tsize + max(bw, bh)) / 2)
                if d <= self.max_center_dist:
                    pairs.append((1, d, ti, di))
        pairs.sort()
        used_t: set[int] = set()
        out: dict[int, int] = {}
        for _, _, ti, di in pairs:
            if ti in used_t or di in out:
                continue
            used_t.add(ti)
            out[di] = ti
        return out

    def update(self, detections: list[tuple[Box, float, np.ndarray]], cut: bool = False) -> list[TrackedFace]:
        """Feed one processed frame's detections (box, score, probs); returns the faces seen in it.
        ``cut``: a scene cut precedes this frame; every track ends and each face starts a new one."""
        if cut:
            self.tracks = []
        boxes = [tuple(int(v) for v in d[0]) for d in detections]
        match = self._match(boxes)
        seen: set[int] = set()
        faces: list[TrackedFace] = []
        for di, (box, (_, score, probs)) in enumerate(zip(boxes, detections, strict=True)):
            ti = match.get(di)
            if ti is None:
                t = _Track(self._next_id, box, LabelSmoother(self.alpha, self.hysteresis))
                self._next_id += 1
                self.tracks.append(t)
                ti = len(self.tracks) - 1
            t = self.tracks[ti]
            t.box, t.missed = box, 0
            seen.add(ti)
            raw = np.asarray(probs, dtype=np.float32)
            sm, idx = t.smoother.update(raw)
            faces.append(TrackedFace(t.id, box, float(score), raw, sm.copy(), EMOTIONS[idx],
                                     EMOTIONS[int(raw.argmax())]))
        for ti, t in enumerate(self.tracks):
            if ti not in seen:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        faces.sort(key=lambda f: f.track_id)
        return faces
