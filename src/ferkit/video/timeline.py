"""Per-track summary of a whole run and a bounded time series for the plot."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..emotions import EMOTIONS, NUM_CLASSES
from .writers import _atomic_write_text

if TYPE_CHECKING:
    from .pipeline import FrameResult


class _Series:
    """Smoothed probabilities of one track over time in at most ``cap`` bins (bins double when full)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.width = 0.0
        self.start: list[float] = []
        self.tsum: list[float] = []
        self.psum: list[np.ndarray] = []
        self.n: list[int] = []

    def add(self, t: float, probs: np.ndarray) -> None:
        if self.start and t - self.start[-1] < self.width:
            self.tsum[-1] += t
            self.psum[-1] = self.psum[-1] + probs
            self.n[-1] += 1
        else:
            self.start.append(t)
            self.tsum.append(t)
            self.psum.append(np.asarray(probs, dtype=np.float64).copy())
            self.n.append(1)
        if len(self.start) > self.cap:
            self._halve()

    def _halve(self) -> None:
        span = self.start[-1] - self.start[0]
        self.width = max(self.width * 2, 2 * span / self.cap)
        st, ts, ps, ns = [], [], [], []
        for i, s in enumerate(self.start):
            if st and s - st[-1] < self.width:
                ts[-1] += self.tsum[i]
                ps[-1] = ps[-1] + self.psum[i]
                ns[-1] += self.n[i]
            else:
                st.append(s)
                ts.append(self.tsum[i])
                ps.append(self.psum[i])
                ns.append(self.n[i])
        self.start, self.tsum, self.psum, self.n = st, ts, ps, ns

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        n = np.asarray(self.n, dtype=np.float64)
        return np.asarray(self.tsum) / n, np.stack(self.psum) / n[:, None]


@dataclass
class TrackSummary:
    track: int
    first: float
    last: float
    frames: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, dtype=np.int64))
    label_changes: int = 0
    raw_label_changes: int = 0
    _label: str = ""
    _raw: str = ""

    def as_dict(self) -> dict:
        share = self.counts / max(1, self.frames)
        return {"track": self.track, "first_seen": round(self.first, 3), "last_seen": round(self.last, 3),
                "frames": self.frames, "label_changes": self.label_changes,
                "raw_label_changes": self.raw_label_changes,
                "dominant": EMOTIONS[int(self.counts.argmax())],
                "share": {e: round(float(s), 4) for e, s in zip(EMOTIONS, share, strict=True)}}


class Timeline:
    """Per-track summary (share of processed frames in each smoothed label) and a bounded plot series."""

    def __init__(self, max_points: int = 600):
        self.max_points = max_points
        self.tracks: dict[int, TrackSummary] = {}
        self.series: dict[int, _Series] = {}
        self.duration = 0.0

    def add(self, fr: FrameResult) -> None:
        self.duration = max(self.duration, fr.time)
        for f in fr.faces:
            s = self.tracks.get(f.track_id)
            if s is None:
                s = self.tracks[f.track_id] = TrackSummary(f.track_id, fr.time, fr.time)
                self.series[f.track_id] = _Series(self.max_points)
            s.last = fr.time
            s.frames += 1
            s.counts[EMOTIONS.index(f.label)] += 1
            s.label_changes += bool(s._label) and f.label != s._label
            s.raw_label_changes += bool(s._raw) and f.raw_label != s._raw
            s._label, s._raw = f.label, f.raw_label
            self.series[f.track_id].add(fr.time, f.probs)

    def summary(self) -> list[dict]:
        return [s.as_dict() for s in sorted(self.tracks.values(), key=lambda s: s.track)]

    def format_summary(self) -> str:
        head = f"{'track':>5} {'seen (s)':>15} {'frames':>7} {'dominant':>9} " + " ".join(
            f"{e[:8]:>8}" for e in EMOTIONS)
        lines = [head]
        for d in self.summary():
            span = f"{d['first_seen']:.1f}-{d['last_seen']:.1f}"
            lines.append(f"{d['track']:>5} {span:>15} {d['frames']:>7} {d['dominant']:>9} "
                         + " ".join(f"{d['share'][e]:>8.1%}" for e in EMOTIONS))
        if len(lines) == 1:
            lines.append("  (no faces found)")
        return "\n".join(lines)

    def figure(self, title: str = "", max_tracks: int = 8):
        """Stacked smoothed probabilities per track (the longest ``max_tracks`` tracks): title on top, the
        emotion legend below the time axis (constrained layout keeps them apart). The caller closes it."""
        from ..emotions import hex_color
        from ..plots import _plt

        plt = _plt()
        order = sorted(self.tracks.values(), key=lambda s: -s.frames)[:max_tracks]
        order.sort(key=lambda s: s.track)
        n = max(1, len(order))
        fig, axes = plt.subplots(n, 1, figsize=(11, 1.9 * n + 1.1), sharex=True, squeeze=False,
                                 layout="constrained")
        colors = [hex_color(e) for e in EMOTIONS]
        for ax, s in zip(axes[:, 0], order, strict=False):
            t, p = self.series[s.track].arrays()
            if len(t) == 1:  # one sample: draw it as a short segment
                t, p = np.array([t[0], t[0] + 1e-3]), np.repeat(p, 2, axis=0)
            ax.stackplot(t, p.T, colors=colors, labels=EMOTIONS, step="post" if len(t) < 3 else None)
            ax.set_ylim(0, 1)
            ax.set_xlim(0, max(self.duration, 1e-3))
            ax.set_ylabel(f"track {s.track}")
        if not order:
            ax0 = axes[0, 0]
            ax0.text(0.5, 0.5, "no faces found", ha="center", va="center", transform=ax0.transAxes)
        axes[-1, 0].set_xlabel("time (s)")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors]
        fig.legend(handles, EMOTIONS, loc="outside lower center", ncol=7, frameon=False)
        if title:
            fig.suptitle(title)
        return fig

    def plot(self, path: str | os.PathLike, title: str = "", max_tracks: int = 8) -> Path:
        """:meth:`figure` written to ``path`` (Agg backend, atomically)."""
        from ..plots import _plt, _save

        fig = self.figure(title, max_tracks)
        try:
            return _save(fig, path)
        finally:
            _plt().close(fig)

    def to_json(self, extra: dict | None = None) -> str:
        doc = dict(extra or {}) | {"duration": round(self.duration, 3), "tracks": self.summary()}
        return json.dumps(doc, indent=2)

    def write_json(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        return _atomic_write_text(Path(path), self.to_json(extra))
