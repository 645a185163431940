"""Frame sources: cameras, video files, stream URLs and folders of frames behind one interface."""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class SourceLost(RuntimeError):
    """A live source (camera, stream) stopped delivering frames."""


class FrameSource:
    """One interface over cameras, video files, stream URLs and folders of frames.

    ``read()`` returns the next BGR frame or None at the end; ``skip()`` advances without decoding where
    the backend can. Live sources (cameras, URLs) raise :class:`SourceLost` when they stop delivering.
    """

    name: str = ""
    fps: float = 25.0
    live: bool = False
    frame_count: int | None = None  # frames the file or folder declares (None: unknown, or a live source)
    position: int = 0  # frames consumed so far (read, skipped or standing in for an unreadable one)

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def skip(self) -> bool:
        return self.read() is not None

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _quiet_opencv(cv2) -> None:
    """OpenCV logs only errors (not its warnings), unless the user set OPENCV_LOG_LEVEL; FFmpeg's decoder
    messages ("header damaged" per packet) are silenced unless the user set OPENCV_FFMPEG_LOGLEVEL: damaged
    frames are reported once, by frame number (:class:`CaptureSource`)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when a capture opens
    if "OPENCV_LOG_LEVEL" not in os.environ:
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        except AttributeError:  # an OpenCV build without the logging module
            pass


class CaptureSource(FrameSource):
    """cv2.VideoCapture over a camera index, a video file or a stream URL.

    A file's frame that cannot be decoded (a damaged region) does not end the file: reading goes on past up
    to ``MAX_GAP_SECONDS`` of consecutive bad frames (never past the count the container declares). As in a
    folder of frames, each bad frame keeps its place and time, shows the last good frame, is listed in
    ``bad`` and flagged by ``last_bad``. A live source that stops delivering raises :class:`SourceLost`."""

    MAX_GAP_SECONDS = 10.0

    def __init__(self, target: int | str, name: str, live: bool):
        import cv2

        self.name = name
        self.live = live
        _quiet_opencv(cv2)  # its "[ WARN:0@...] can't open camera" lines: our error below says it better
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            if isinstance(target, int):
                raise ValueError(f"camera {target} could not be opened (no such device, no permission, "
                                 f"or in use by another program); on Linux see `ls /dev/video*`")
            raise ValueError(f"{name}: OpenCV cannot open it as a video "
                             f"({'unreachable stream' if live else 'not a video or unsupported codec'})")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            what = f"camera {target}" if isinstance(target, int) else name
            raise ValueError(f"{what}: opened but no frame could be decoded")
        self._pending: np.ndarray | None = first
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (math.isfinite(fps) and 1.0 <= fps <= 1000.0):
            if not live:
                log.warning("%s: frame rate unknown, assuming 25 fps", name)
            fps = 25.0 if not live else 30.0
        self.fps = fps
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = n if (n > 0 and not live) else None
        self.size = (first.shape[1], first.shape[0])
        self.position = 0
        self.bad: list[tuple[int, str]] = []  # (frame index, problem)
        self.last_bad = False
        self._last = first
        self._standins = 0  # bad frames to hand out (stand-ins) before the pending good one

    def _next(self, decode: bool) -> np.ndarray | bool | None:
        """The next frame (an image when ``decode``, else True); None at the end of a file."""
        self.last_bad = False
        if self._standins:
            self._standins -= 1
            self.position += 1
            self.last_bad = True
            return self._last.copy() if decode else True
        if self._pending is not None:
            f, self._pending = self._pending, None
            self.position += 1
            self._last = f
            return f if decode else True
        if decode:
            ok, f = self._cap.read()
            ok = ok and f is not None
        else:
            ok, f = self._cap.grab(), None
        if ok:
            self.position += 1
            if decode:
                self._last = f
            return f if decode else True
        if self.live:
            return self._end()
        return self._past_damage(decode)

    def _past_damage(self, decode: bool) -> np.ndarray | bool | None:
        """After a failed read of a file: read on until a frame decodes (the failed ones were damaged) or
        until the gap limit or the declared frame count says the file has ended."""
        limit = max(25, int(self.fps * self.MAX_GAP_SECONDS))
        misses = 1
        while misses <= limit and (self.frame_count is None or self.position + misses < self.frame_count):
            ok, f = self._cap.read()
            if ok and f is not None:
                first = self.position
                self.bad.extend((k, "could not be decoded (damaged data)") for k in range(first, first + misses))
                log.warning("%s: frame(s) %d-%d could not be decoded (damaged data); the last good frame "
                            "stands in", self.name, first, first + misses - 1)
                self._standins, self._pending = misses, f
                return self._next(decode)
            misses += 1
        return None

    def read(self) -> np.ndarray | None:
        return self._next(decode=True)

    def skip(self) -> bool:
        return self._next(decode=False) is not None

    def _end(self):
        raise SourceLost(f"{self.name} stopped delivering frames after {self.position} frame(s) "
                         f"(disconnected, or taken by another program)")

    def close(self) -> None:
        self._cap.release()


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


class FolderSource(FrameSource):
    """A folder of still frames in natural order (frame2 before frame10), played at ``fps``.

    Frame i is file i, always: an unreadable file keeps its place (index and time) and shows the previous
    frame (black before the first good one); it is reported in ``bad`` and flagged by ``last_bad`` so the
    pipeline does not analyse it again."""

    def __init__(self, folder: Path, fps: float = 25.0):
        from ..images import IMAGE_EXTS, ImageError, read_image

        self.name = str(folder)
        self.fps = float(fps)
        files = (p for p in folder.iterdir()
                 if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
        self.files = sorted(files, key=_natural_key)
        if not self.files:
            raise ValueError(f"{folder}: folder holds no images ({', '.join(sorted(IMAGE_EXTS))})")
        self.frame_count = len(self.files)
        self._i = 0
        self.bad: list[tuple[int, str]] = []  # (frame index, problem)
        self.last_bad = False
        self._last: np.ndarray | None = None
        self._first: tuple[int, np.ndarray] | None = None
        for k, p in enumerate(self.files):  # the first readable frame fixes the size
            try:
                self._first = (k, read_image(p))
                break
            except ImageError as e:
                log.debug("%s", e)
        if self._first is None:
            raise ValueError(f"{folder}: none of its {len(self.files)} image(s) could be decoded")
        img = self._first[1]
        self.size: tuple[int, int] = (img.shape[1], img.shape[0])

    @property
    def position(self) -> int:
        return self._i

    def read(self) -> np.ndarray | None:
        import cv2

        from ..images import ImageError, read_image

        if self._i >= len(self.files):
            return None
        k, p = self._i, self.files[self._i]
        self._i += 1
        self.last_bad = False
        try:
            img = self._first[1] if self._first and self._first[0] == k else read_image(p)
        except ImageError as e:
            log.warning("frame %d unreadable, the previous frame stands in: %s", k, e)
            self.bad.append((k, str(e)))
            self.last_bad = True
            w, h = self.size
            return self._last.copy() if self._last is not None else np.zeros((h, w, 3), np.uint8)
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        self._last = img
        return img.copy()

    def skip(self) -> bool:
        if self._i >= len(self.files):
            return False
        self._i += 1
        return True


def open_source(spec: str | int | os.PathLike, fps: float | None = None) -> FrameSource:
    """Camera index (``0`` or ``"0"``), video file, stream URL (rtsp://, http://...) or folder of frames."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        idx = int(spec)
        return CaptureSource(idx, f"camera {idx}", live=True)
    s = os.fspath(spec)
    if URL_RE.match(s) and not s.startswith("file://"):
        return CaptureSource(s, s, live=True)
    p = Path(s[7:] if s.startswith("file://") else s)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.is_dir():
        return FolderSource(p, fps=fps or 25.0)
    src = CaptureSource(str(p), str(p), live=False)
    if fps:
        src.fps = float(fps)
    return src


def source_files(source: FrameSource) -> list[Path]:
    """The files a source reads (a video file, the frames of a folder; none for cameras and streams)."""
    if isinstance(source, FolderSource):
        return list(source.files)
    if isinstance(source, CaptureSource) and not source.live:
        return [Path(source.name)]
    return []
