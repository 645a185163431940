"""Writers: the annotated video, the per-frame CSV timeline and the other files of a run, all written beside
their final paths and renamed into place together only when every one of them was written completely.

A failed write (a full disk, a folder that cannot be created) raises :class:`ferkit.outputs.OutputError`
naming the file and the cause; the temporary files are removed and existing files are left as they were.
OpenCV's ``VideoWriter`` reports no write errors, so a finished video is read back (frame count from the
container, last frame decoded) before it may replace anything.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..emotions import EMOTIONS
from ..outputs import OutputError, atomic_write_text, safe_text

if TYPE_CHECKING:
    from .pipeline import FrameResult

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}

KEPT = "nothing was replaced (existing files are left as they were)"


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


def _shown(path: Path) -> str:
    return safe_text(os.fspath(path))


def _disk_note(path: Path) -> str:
    """', its disk is full' when the folder's file system has no space left (the usual cause), else ''."""
    try:
        return ", its disk is full" if shutil.disk_usage(path.parent).free == 0 else ""
    except OSError:
        return ""


def _failed(path: Path, e: OSError) -> OutputError:
    return OutputError(f"{_shown(path)}: cannot write ({e.strerror or e}); {KEPT}")


def _make_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{_shown(path)}: cannot create its folder {_shown(path.parent)} "
                          f"({e.strerror or e})") from e


def check_writable(outputs: Mapping[str, str | os.PathLike | None]) -> None:
    """Fail now, before any frame is read, if an output's folder cannot be created or written to.

    ``outputs`` maps an option name (``"--csv"``) to its path (None = not asked for)."""
    for opt, p in outputs.items():
        if not p:
            continue
        path = Path(p)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            probe = _tmp_path(path).with_suffix(".probe")
            probe.touch()
            probe.unlink()
        except OSError as e:
            raise OutputError(f"{opt} {_shown(path)}: cannot write in {_shown(path.parent)} "
                              f"({e.strerror or e})") from e


class _Staged:
    """One output file written to a temporary path beside ``path``: finish() checks it, commit() renames it
    into place, discard() removes it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        _make_folder(self.path)
        self.tmp = _tmp_path(self.path)

    def finish(self) -> None:
        pass

    def commit(self) -> None:
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


class StagedFile(_Staged):
    """A file the caller writes itself at ``.tmp`` (the plot, the JSON summary)."""

    def finish(self) -> None:
        if not self.tmp.is_file():
            raise OutputError(f"{_shown(self.path)}: was not written; {KEPT}")

    def write_text(self, text: str) -> None:
        try:
            self.tmp.write_text(text, encoding="utf-8")
        except OSError as e:
            self.discard()
            raise _failed(self.path, e) from e

    def save_figure(self, fig, dpi: int = 110) -> None:
        """A matplotlib figure, in the format its path's extension names."""
        try:
            fig.savefig(self.tmp, dpi=dpi, bbox_inches="tight")
        except OSError as e:
            self.discard()
            raise _failed(self.path, e) from e


class VideoOut(_Staged):
    """Annotated video written to a temporary file beside ``path``; see :meth:`close`."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        import cv2

        ext = Path(path).suffix.lower()
        if ext not in _FOURCC:
            raise ValueError(f"{path}: unsupported video extension {ext or '(none)'}; "
                             f"use one of {', '.join(sorted(_FOURCC))}")
        super().__init__(path)
        self._w = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*_FOURCC[ext]), float(fps), size)
        if not self._w.isOpened():
            self._w.release()
            self.discard()
            raise ValueError(f"{self.path}: OpenCV cannot write this video (codec {_FOURCC[ext]} unavailable, "
                             f"or its folder is not writable{_disk_note(self.path)})")
        self.size = size
        self.frames = 0
        self._open = True

    def write(self, bgr: np.ndarray) -> None:
        import cv2

        if (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size)
        self._w.write(bgr)
        self.frames += 1

    def _release(self) -> None:
        if self._open:
            self._open = False
            self._w.release()

    def finish(self) -> None:
        """Close the file and read it back: every frame written must be there, the last one decodable."""
        import cv2

        self._release()
        if not self.frames:
            raise OutputError(f"{_shown(self.path)}: no frame to write; {KEPT}")
        cap = cv2.VideoCapture(str(self.tmp))
        try:
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
            last = False
            if count == self.frames:
                cap.set(cv2.CAP_PROP_POS_FRAMES, self.frames - 1)
                ok, img = cap.read()
                last = bool(ok) and img is not None
        finally:
            cap.release()
        if count != self.frames or not last:
            found = f"{count} of {self.frames} frames readable" if count != self.frames else "last frame unreadable"
            raise OutputError(f"{_shown(self.path)}: the video could not be written completely ({found} in the "
                              f"file{_disk_note(self.path)}); {KEPT}")

    def discard(self) -> None:
        self._release()
        super().discard()

    def close(self, ok: bool = True) -> None:
        """``ok``: check the file and rename it into place (OutputError if it is incomplete, and then nothing
        is replaced); otherwise (or with no frame written) remove it."""
        if not (ok and self.frames):
            self.discard()
            return
        try:
            self.finish()
            self.commit()
        except BaseException:
            self.discard()
            raise


CSV_COLUMNS = ["frame", "time", "track", "x", "y", "w", "h", "score", *EMOTIONS, "raw_label", "label",
               "smoothed_confidence"]


class TimelineCSV(_Staged):
    """One row per face per processed frame, written to a temporary file beside ``path`` (flushed per frame:
    a crash leaves every row so far there) and renamed into place by :meth:`close`."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        try:
            self._f = open(self.tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise _failed(self.path, e) from e
        self._w = csv.writer(self._f)
        self.rows = 0
        try:
            self._guard(lambda: self._w.writerow(CSV_COLUMNS))
        except BaseException:
            self.discard()
            raise

    def _guard(self, fn) -> None:
        try:
            fn()
            self._f.flush()
        except OSError as e:
            raise _failed(self.path, e) from e

    def write(self, fr: FrameResult) -> None:
        def rows():
            for f in fr.faces:
                x, y, w, h = f.box
                self._w.writerow([fr.index, f"{fr.time:.3f}", f.track_id, x, y, w, h, f"{f.score:.3f}",
                                  *(f"{v:.4f}" for v in f.raw_probs), f.raw_label, f.label,
                                  f"{f.confidence:.4f}"])
                self.rows += 1

        self._guard(rows)

    def finish(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()
            except OSError as e:
                raise _failed(self.path, e) from e

    def discard(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass
        super().discard()

    def close(self, ok: bool = True) -> None:
        """``ok``: rename the file into place (OutputError if it could not be completed); else remove it."""
        if not ok:
            self.discard()
            return
        try:
            self.finish()
            self.commit()
        except BaseException:
            self.discard()
            raise


class RunOutputs:
    """The files of one run: each written beside its path, all renamed into place by :meth:`commit` once every
    one is complete, or all removed by :meth:`discard`. A run never leaves some outputs new and others old."""

    def __init__(self):
        self.items: list[_Staged] = []

    def add(self, item: _Staged) -> _Staged:
        self.items.append(item)
        return item

    def file(self, path: str | os.PathLike) -> StagedFile:
        """A file the caller writes at ``.tmp``."""
        return self.add(StagedFile(path))

    def commit(self) -> None:
        try:
            for it in self.items:
                it.finish()
        except BaseException:
            self.discard()
            raise
        for it in self.items:
            it.commit()
        self.items = []

    def discard(self) -> None:
        for it in self.items:
            it.discard()
        self.items = []


_atomic_write_text = atomic_write_text  # the one rule for text outputs lives in ferkit.outputs
