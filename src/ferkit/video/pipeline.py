"""The threaded pipeline: read -> detect -> classify + track, joined by small bounded queues."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .cuts import SceneCuts
from .sources import FrameSource
from .tracking import TrackedFace, Tracker


@dataclass
class FrameResult:
    index: int  # frame number in the source (0-based)
    time: float  # seconds from the start (source clock for files, wall clock for live sources)
    image: np.ndarray
    faces: list[TrackedFace]  # for frames not processed: the faces of the last processed frame
    processed: bool
    boxes: list | None = field(default=None, repr=False)  # internal: detector output
    cut: bool = False  # a scene cut lies between the previous analysed frame and this one: tracks restart


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
    are classified again at their last boxes (faster; boxes lag moving faces by up to K-1 frames); a scene
    cut always brings a fresh detection.
    ``cuts``: find scene cuts (True: :class:`ferkit.video.cuts.SceneCuts` with its defaults, or one given);
    False: tracks may run across cuts.
    """

    def __init__(self, source: FrameSource, engine, tracker: Tracker, every: int = 1, keep_all: bool = True,
                 max_faces: int | None = None, drop_late: bool = False, realtime: bool = False,
                 queue_size: int = 4, detect_every: int = 1, cuts: SceneCuts | bool = True):
        if every < 1:
            raise ValueError(f"--every must be at least 1, got {every}")
        if detect_every < 1:
            raise ValueError(f"--detect-every must be at least 1, got {detect_every}")
        self.detect_every = detect_every
        self._since_detect = 0  # analysed frames since the last detection
        self.cuts = SceneCuts() if cuts is True else (cuts or None)
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
                if getattr(src, "last_bad", False):  # an unreadable frame keeps its place, not analysed
                    process = False
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
            fr.cut = self.cuts is not None and self.cuts.update(fr.image)
            if self._since_detect % self.detect_every and not fr.cut:
                self._since_detect += 1
                return fr  # boxes None: the classify stage reuses the current tracks' boxes
            self._since_detect = 1
            found = list(self.engine.detect_boxes(fr.image))
            if self.max_faces is not None and len(found) > self.max_faces:
                found.sort(key=lambda bs: -(bs[0][2] * bs[0][3]))
                found = found[: self.max_faces]
            fr.boxes = found
        return fr

    def _classify(self, fr: FrameResult) -> FrameResult:
        if fr.processed:
            if fr.boxes is None:  # tracked boxes between detections carry no landmarks: cropped unaligned
                fr.boxes = [(f.box, f.score) for f in self._last_faces]
            # detector output is passed on whole (a Detection's landmarks give the aligned crop)
            preds = self.engine.classify_boxes(fr.image, fr.boxes) if fr.boxes else []
            dets = [(tuple(int(v) for v in d[0]), float(d[1]), p.probs) for d, p in zip(fr.boxes, preds, strict=True)]
            self._last_faces = self.tracker.update(dets, cut=fr.cut)
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
