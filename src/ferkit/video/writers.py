"""Writers: the annotated video and the per-frame CSV timeline, each written so a failure leaves no half file."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..emotions import EMOTIONS
from ..outputs import atomic_write_text

if TYPE_CHECKING:
    from .pipeline import FrameResult

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


class VideoOut:
    """Annotated video written to a temporary file beside ``path`` and renamed on ``close(ok=True)``."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        import cv2

        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in _FOURCC:
            raise ValueError(f"{self.path}: unsupported video extension {ext or '(none)'}; "
                             f"use one of {', '.join(sorted(_FOURCC))}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _tmp_path(self.path)
        self._w = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*_FOURCC[ext]), float(fps), size)
        if not self._w.isOpened():
            raise ValueError(f"{self.path}: OpenCV cannot write this video "
                             f"(codec {_FOURCC[ext]} unavailable?)")
        self.size = size
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        import cv2

        if (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size)
        self._w.write(bgr)
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        self._w.release()
        if ok and self.frames:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


CSV_COLUMNS = ["frame", "time", "track", "x", "y", "w", "h", "score", *EMOTIONS, "raw_label", "label",
               "smoothed_confidence"]


class TimelineCSV:
    """One row per face per processed frame, flushed per frame (a crash leaves every row so far)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._w = csv.writer(self._f)
        self._w.writerow(CSV_COLUMNS)
        self.rows = 0

    def write(self, fr: FrameResult) -> None:
        for f in fr.faces:
            x, y, w, h = f.box
            self._w.writerow([fr.index, f"{fr.time:.3f}", f.track_id, x, y, w, h, f"{f.score:.3f}",
                              *(f"{v:.4f}" for v in f.raw_probs), f.raw_label, f.label,
                              f"{f.confidence:.4f}"])
            self.rows += 1
        self._f.flush()

    def close(self) -> None:
        self._f.close()


_atomic_write_text = atomic_write_text  # the one rule for text outputs lives in ferkit.outputs
