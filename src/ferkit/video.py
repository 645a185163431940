"""Video and webcam runtime: frame sources, per-face tracking, smoothing, a threaded pipeline and writers.

Everything streams: a frame is read, analysed, drawn, written and dropped; nothing grows with the length
of the video except a per-track summary (a few numbers) and a timeline whose resolution halves whenever
it would exceed a fixed number of points. Reading, face detection, classification and writing run in
their own threads joined by small bounded queues, so the slowest stage sets the pace and memory is flat.

The analysis engine is anything with ``detect_boxes(bgr) -> [(box, score)]`` and
``classify_boxes(bgr, boxes) -> [Prediction]`` (:class:`ferkit.recognizer.Recognizer`). No torch here.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .emotions import EMOTIONS, NUM_CLASSES

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x, y, w, h in pixels

URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class SourceLost(RuntimeError):
    """A live source (camera, stream) stopped delivering frames."""


# =========================================================================== sources

class FrameSource:
    """One interface over cameras, video files, stream URLs and folders of frames.

    ``read()`` returns the next BGR frame or None at the end; ``skip()`` advances without decoding where
    the backend can. Live sources (cameras, URLs) raise :class:`SourceLost` when they stop delivering.
    """

    name: str = ""
    fps: float = 25.0
    live: bool = False
    frame_count: int | None = None

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


class CaptureSource(FrameSource):
    """cv2.VideoCapture over a camera index, a video file or a stream URL."""

    def __init__(self, target: int | str, name: str, live: bool):
        import cv2

        self.name = name
        self.live = live
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
        self._frames = 0

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            f, self._pending = self._pending, None
            self._frames += 1
            return f
        ok, f = self._cap.read()
        if not ok or f is None:
            return self._end()
        self._frames += 1
        return f

    def skip(self) -> bool:
        if self._pending is not None:
            self._pending = None
            self._frames += 1
            return True
        if not self._cap.grab():
            self._end()
            return False
        self._frames += 1
        return True

    def _end(self):
        if self.live:
            raise SourceLost(f"{self.name} stopped delivering frames after {self._frames} frame(s) "
                             f"(disconnected, or taken by another program)")
        return None

    def close(self) -> None:
        self._cap.release()


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


class FolderSource(FrameSource):
    """A folder of still frames in natural order (frame2 before frame10), played at ``fps``."""

    def __init__(self, folder: Path, fps: float = 25.0):
        from .images import IMAGE_EXTS

        self.name = str(folder)
        self.fps = float(fps)
        files = (p for p in folder.iterdir()
                 if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
        self.files = sorted(files, key=_natural_key)
        if not self.files:
            raise ValueError(f"{folder}: folder holds no images ({', '.join(sorted(IMAGE_EXTS))})")
        self.frame_count = len(self.files)
        self._i = 0
        self.size: tuple[int, int] | None = None

    def read(self) -> np.ndarray | None:
        import cv2

        from .images import ImageError, read_image

        while self._i < len(self.files):
            p = self.files[self._i]
            self._i += 1
            try:
                img = read_image(p)
            except ImageError as e:
                if self.size is None:
                    raise ValueError(f"first frame unreadable: {e}") from e
                log.warning("skipping frame: %s", e)
                continue
            if self.size is None:
                self.size = (img.shape[1], img.shape[0])
            elif (img.shape[1], img.shape[0]) != self.size:
                img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
            return img
        return None

    def skip(self) -> bool:
        if self.size is None:  # the first frame fixes the size: decode it
            return self.read() is not None
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


# =========================================================================== tracking + smoothing

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
            if best != self.index and self.probs[best] - self.probs[self.index] > self.hysteresis:
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
    keeps its smoothed state through them.
    """

    def __init__(self, alpha: float = 0.3, hysteresis: float = 0.1, iou_min: float = 0.25,
                 max_center_dist: float = 0.6, max_missed: int = 8):
        LabelSmoother(alpha, hysteresis)  # validate early
        self.alpha, self.hysteresis = alpha, hysteresis
        self.iou_min = iou_min
        self.max_center_dist = max_center_dist
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

    def update(self, detections: list[tuple[Box, float, np.ndarray]]) -> list[TrackedFace]:
        """Feed one processed frame's detections (box, score, probs); returns the faces seen in it."""
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


# =========================================================================== pipeline

@dataclass
class FrameResult:
    index: int  # frame number in the source (0-based)
    time: float  # seconds from the start (source clock for files, wall clock for live sources)
    image: np.ndarray
    faces: list[TrackedFace]  # for frames not processed: the faces of the last processed frame
    processed: bool
    boxes: list | None = field(default=None, repr=False)  # internal: detector output


_END = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Pipeline:
    """Threads: read -> detect -> classify + track -> ``results`` (a bounded queue), consumed by the caller.

    ``every``: analyse every Nth frame; the others pass through with the last faces when ``keep_all``
    (they are needed for an output video) or are skipped without decoding otherwise.
    ``drop_late``: for live sources, keep only the newest frame when analysis falls behind.
    ``realtime``: pace a file source at its frame rate (a file standing in for a camera).
    ``detect_every``: run the detector on every Kth analysed frame only; in between, the faces found last
    are classified again at their last boxes (faster; boxes lag moving faces by up to K-1 frames).
    """

    def __init__(self, source: FrameSource, engine, tracker: Tracker, every: int = 1, keep_all: bool = True,
                 max_faces: int | None = None, drop_late: bool = False, realtime: bool = False,
                 queue_size: int = 4, detect_every: int = 1):
        if every < 1:
            raise ValueError(f"--every must be at least 1, got {every}")
        if detect_every < 1:
            raise ValueError(f"--detect-every must be at least 1, got {detect_every}")
        self.detect_every = detect_every
        self._analysed = 0
        self.source, self.engine, self.tracker = source, engine, tracker
        self.every, self.keep_all, self.max_faces = every, keep_all, max_faces
        self.drop_late, self.realtime = drop_late, realtime
        self._q_read: queue.Queue = queue.Queue(maxsize=1 if drop_late else queue_size)
        self._q_det: queue.Queue = queue.Queue(maxsize=queue_size)
        self.results: queue.Queue = queue.Queue(maxsize=queue_size)
        self.stop_event = threading.Event()
        self.pause_event = threading.Event()  # set = reading paused (file sources only)
        self.dropped = 0
        self._threads: list[threading.Thread] = []
        self._last_faces: list[TrackedFace] = []

    # ---- helpers
    def _put(self, q: queue.Queue, item) -> bool:
        while not self.stop_event.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue):
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self.stop_event.is_set():
                    return _END

    def _run_stage(self, qin, qout, fn):
        try:
            while True:
                item = self._get(qin)
                if item is _END or isinstance(item, _Failure):
                    self._put(qout, item)
                    if isinstance(item, _Failure):
                        self._put(qout, _END)
                    return
                self._put(qout, fn(item))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._put(qout, _Failure(e))
            self._put(qout, _END)

    # ---- stages
    def _reader(self):
        src, q = self.source, self._q_read
        t0 = time.monotonic()
        i = 0
        try:
            while not self.stop_event.is_set():
                while self.pause_event.is_set() and not self.stop_event.is_set():
                    time.sleep(0.02)
                process = i % self.every == 0
                if not process and not self.keep_all:
                    if not src.skip():
                        break
                    i += 1
                    continue
                img = src.read()
                if img is None:
                    break
                now = time.monotonic() - t0
                t = now if src.live else i / src.fps
                if self.realtime and not src.live and t > now:
                    time.sleep(t - now)
                item = FrameResult(i, t, img, [], process)
                i += 1
                if self.drop_late:
                    try:
                        q.put_nowait(item)
                    except queue.Full:
                        try:
                            q.get_nowait()
                            self.dropped += 1
                        except queue.Empty:
                            pass
                        q.put_nowait(item)
                elif not self._put(q, item):
                    break
        except BaseException as e:  # noqa: BLE001
            self._put(q, _Failure(e))
        self._put(q, _END)

    def _detect(self, fr: FrameResult) -> FrameResult:
        if fr.processed:
            self._analysed += 1
            if (self._analysed - 1) % self.detect_every:
                return fr  # boxes None: the classify stage reuses the current tracks' boxes
            found = list(self.engine.detect_boxes(fr.image))
            if self.max_faces is not None and len(found) > self.max_faces:
                found.sort(key=lambda bs: -(bs[0][2] * bs[0][3]))
                found = found[: self.max_faces]
            fr.boxes = found
        return fr

    def _classify(self, fr: FrameResult) -> FrameResult:
        if fr.processed:
            if fr.boxes is None:
                fr.boxes = [(f.box, f.score) for f in self._last_faces]
            boxes = [tuple(int(v) for v in b) for b, _ in fr.boxes]
            preds = self.engine.classify_boxes(fr.image, boxes) if boxes else []
            dets = [(b, float(s), p.probs) for (b, s), p in zip(fr.boxes, preds, strict=True)]
            self._last_faces = self.tracker.update(dets)
        fr.boxes = None
        fr.faces = self._last_faces
        return fr

    def start(self) -> Pipeline:
        specs = [(self._reader, ()),
                 (self._run_stage, (self._q_read, self._q_det, self._detect)),
                 (self._run_stage, (self._q_det, self.results, self._classify))]
        for fn, args in specs:
            th = threading.Thread(target=fn, args=args, daemon=True, name=f"ferkit-{fn.__name__}")
            th.start()
            self._threads.append(th)
        return self

    def get(self, timeout: float | None = None):
        """Next FrameResult, None at the end; raises the error of any stage. queue.Empty on timeout."""
        item = self.results.get(timeout=timeout)
        if item is _END:
            return None
        if isinstance(item, _Failure):
            self.stop()
            raise item.exc
        return item

    def __iter__(self) -> Iterator[FrameResult]:
        if not self._threads:
            self.start()
        try:
            while True:
                fr = self.get()
                if fr is None:
                    return
                yield fr
        finally:
            self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        for th in self._threads:
            th.join(timeout=5)
        self.source.close()


# =========================================================================== drawing

def annotate(image: np.ndarray, faces: list[TrackedFace], fps: float | None = None, bars: bool = True,
             status: str = "") -> np.ndarray:
    """Boxes, labels with track ids and probability bars (ferkit.render), plus an FPS / status line."""
    import cv2

    from .render import draw_faces

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


# =========================================================================== writers

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


def _atomic_write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


# =========================================================================== timeline + summary

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

    def plot(self, path: str | os.PathLike, title: str = "", max_tracks: int = 8) -> Path:
        """Stacked smoothed probabilities per track (the longest ``max_tracks`` tracks), Agg backend."""
        from .emotions import hex_color
        from .plots import _plt, _save

        plt = _plt()
        order = sorted(self.tracks.values(), key=lambda s: -s.frames)[:max_tracks]
        order.sort(key=lambda s: s.track)
        n = max(1, len(order))
        fig, axes = plt.subplots(n, 1, figsize=(11, 1.9 * n + 0.8), sharex=True, squeeze=False)
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
        fig.legend(handles, EMOTIONS, loc="upper center", ncol=7, frameon=False)
        if title:
            fig.suptitle(title, y=1.02)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        out = _save(fig, path)
        plt.close(fig)
        return out

    def write_json(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        doc = dict(extra or {}) | {"duration": round(self.duration, 3), "tracks": self.summary()}
        return _atomic_write_text(Path(path), json.dumps(doc, indent=2))


# =========================================================================== one call for files

@dataclass
class VideoReport:
    frames: int = 0
    processed: int = 0
    rows: int = 0
    seconds: float = 0.0
    timeline: Timeline = field(default_factory=Timeline)
    lost: str = ""  # why a live source stopped early, if it did

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def process_video(source: FrameSource, engine, tracker: Tracker, out: str | os.PathLike | None = None,
                  csv_path: str | os.PathLike | None = None, every: int = 1, max_faces: int | None = None,
                  bars: bool = True, on_frame: Callable[[FrameResult], None] | None = None,
                  max_frames: int | None = None, detect_every: int = 1) -> VideoReport:
    """Run the pipeline over a whole source, writing the annotated video and/or CSV as it goes."""
    rep = VideoReport()
    writer = None
    table = TimelineCSV(csv_path) if csv_path else None
    pipe = Pipeline(source, engine, tracker, every=every, keep_all=out is not None, max_faces=max_faces,
                    detect_every=detect_every)
    ok = False
    t0 = time.perf_counter()
    try:
        for fr in pipe:
            if out is not None:
                if writer is None:
                    writer = VideoOut(out, source.fps, (fr.image.shape[1], fr.image.shape[0]))
                writer.write(annotate(fr.image, fr.faces, bars=bars))
            rep.frames += 1
            if fr.processed:
                rep.processed += 1
                rep.timeline.add(fr)
                if table:
                    table.write(fr)
            if on_frame:
                on_frame(fr)
            if max_frames and rep.frames >= max_frames:
                break
        ok = True
    except SourceLost as e:  # a stream that ends is the end of the input here, not an error
        log.warning("%s", e)
        rep.lost = str(e)
        ok = True
    finally:
        rep.seconds = time.perf_counter() - t0
        if writer is not None:
            writer.close(ok)
        if table:
            table.close()
            rep.rows = table.rows
    if rep.frames == 0:
        raise ValueError(f"{source.name}: no frames could be read")
    return rep
