"""Inference off the event loop: one ONNX session per process, one detector per detector name, and a thread
pool of ``concurrency`` jobs at once (how many requests may wait is decided on arrival, see :mod:`.admission`).

A request's ``min_face`` and ``max_faces`` only filter the detector's output: they get a shallow copy of the
detector for that name, sharing its loaded model (CenterFace's ONNX session, the per-thread cascades), never
a new one. Decoding (and reading uploads spooled to disk) runs in the pool too, so the event loop only moves
bytes and ``/healthz`` answers while a batch is being classified. A job is told when its client has gone
(``gone``) and stops before its next image. Faces are reported with :meth:`ferkit.recognizer.Face.as_dict`
(the one JSON form of a face).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .admission import ClientGone, wait_for_disconnect
from .config import ServeConfig
from .limits import ApiError, decode_image


class InferenceService:
    def __init__(self, cfg: ServeConfig):
        from ..faces import resolve_name
        from ..recognizer import Recognizer

        self.cfg = cfg
        self.base = Recognizer(model=cfg.model, detector=cfg.detector, min_face=cfg.min_face,
                               max_faces=cfg.max_faces, threads=cfg.ort_threads)
        self.default_detector = resolve_name(cfg.detector)
        self.model_name = _model_name(cfg.model, self.base.model_path)
        self.pool = ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="ferkit-infer")
        # counters, touched on the event loop only (by admission.Admission and submit)
        self.pending = 0  # analysis requests admitted: body arriving, waiting or being analysed
        self.receiving = 0  # of which the body is still arriving
        self.done = 0  # jobs finished
        self.dropped = 0  # jobs dropped because the client disconnected
        self.timed_out = 0  # bodies that did not arrive in time (408)
        self.refused = 0  # requests answered 503 on arrival
        self._detectors: dict[str, object] = {self.default_detector: self.base.detector}
        self._lock = threading.Lock()
        self.started = time.time()
        self._info: dict | None = None
        self._warm_up()

    def _warm_up(self) -> None:
        """One detection + classification in every pool thread, so that the first requests do not pay for
        session initialisation and the per-thread detectors (dlib builds one per thread in ~0.3 s)."""
        n = self.cfg.concurrency
        barrier = threading.Barrier(n)
        img = np.full((96, 96, 3), 128, np.uint8)

        def job():
            _dets, crops, _name = self.base.locate(img)
            self.base.predict_arrays(crops)  # the arrays only: a model's NaN is each request's error, not startup's
            barrier.wait(timeout=30)

        for f in [self.pool.submit(job) for _ in range(n)]:
            f.result()

    # ------------------------------------------------------------------ recognizers

    @property
    def capacity(self) -> int:
        """Requests admitted at once: ``concurrency`` analysed and ``max_queue`` waiting or arriving."""
        return self.cfg.concurrency + self.cfg.max_queue

    def recognizer(self, detector: str | None, min_face: int | None, max_faces: int | None):
        """The base recognizer, or a shallow copy of it (same ONNX session) with another detector setting."""
        from ..faces import resolve_name

        name = resolve_name(detector or self.cfg.detector)
        mf = int(min_face or self.cfg.min_face)
        mx = max_faces if max_faces is not None else self.cfg.max_faces
        det = self._detector(name)
        if det is self.base.detector and (mf, mx) == (det.min_face, det.max_faces):
            return self.base
        if (mf, mx) != (det.min_face, det.max_faces):
            det = copy.copy(det)  # post-processing limits only: the copy shares the loaded model
            det.min_face, det.max_faces = mf, mx
        rec = copy.copy(self.base)
        rec.detector, rec.crop = det, det.crop
        return rec

    def _detector(self, name: str):
        """The one detector of this name in this process (created on first use)."""
        from ..faces import DetectorUnavailable, create_detector

        det = self._detectors.get(name)
        if det is not None:
            return det
        with self._lock:
            det = self._detectors.get(name)
            if det is None:
                try:
                    det = create_detector(name, min_face=self.cfg.min_face, max_faces=self.cfg.max_faces)
                except DetectorUnavailable as e:
                    raise ApiError(400, "detector_unavailable", str(e)) from None
                self._detectors[name] = det
            return det

    # ------------------------------------------------------------------ jobs (run in the pool)

    def analyse(self, data, name: str, opts: dict, gone: threading.Event | None = None) -> dict:
        """One image (bytes, or an upload's file) -> the response dict (raises ClientGone when ``gone`` is set
        before the work is done, ApiError for the client's mistakes, and a 500
        ``model_output_not_finite`` when the model gives NaN for a face: the server's model is broken, not the
        image, and a face without a label has no place in the response's shape)."""
        from ..recognizer import NonFiniteOutput

        _check(gone)
        t0 = time.perf_counter()
        bgr = decode_image(_bytes(data, self.cfg.max_upload_bytes), name, self.cfg)
        t1 = time.perf_counter()
        _check(gone)
        rec = self.recognizer("full" if opts.get("crop") else opts.get("detector"), opts.get("min_face"),
                              opts.get("max_faces"))
        try:
            faces = rec.detect(bgr)
        except NonFiniteOutput as e:
            raise ApiError(500, "model_output_not_finite", f"{name}: {e} ({self.model_name}); no result for this "
                           "image (report it to the server's operator)") from None
        t2 = time.perf_counter()
        h, w = bgr.shape[:2]
        return {"faces": [f.as_dict() for f in faces], "image": {"width": int(w), "height": int(h)},
                "model": self.model_name, "detector": rec.detector.name,
                "timing_ms": {"decode": round((t1 - t0) * 1e3, 2), "inference": round((t2 - t1) * 1e3, 2)}}

    def analyse_many(self, items: list[tuple[str, object]], opts: dict, gone: threading.Event | None = None
                     ) -> list[dict]:
        """Several images (bytes, upload files or ApiErrors): one result or one error per image, in order; one
        bad image never fails the rest; stops before the next image once ``gone`` is set (ClientGone)."""
        out = []
        for i, (name, data) in enumerate(items):
            try:
                if isinstance(data, ApiError):
                    raise data
                out.append({"index": i, "filename": name, "status": 200} | self.analyse(data, name, opts, gone))
            except ApiError as e:
                out.append({"index": i, "filename": name, "status": e.status} | e.body())
        return out

    # ------------------------------------------------------------------ async side

    async def submit(self, fn, *args, receive=None):
        """Run ``fn(*args, gone=event)`` in the pool. With ``receive`` (the request's, its body already read),
        a client that disconnects first has its job dropped: taken off the queue if it has not started, told
        to stop (``gone`` set) if it has, and waited for, so that the request's slot stays taken until the
        thread is free again; then ClientGone."""
        gone = threading.Event()
        fut = self.pool.submit(fn, *args, gone=gone)
        job = asyncio.wrap_future(fut)
        watch = asyncio.ensure_future(wait_for_disconnect(receive)) if receive is not None else None
        try:
            if watch is not None:
                await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
                if not job.done() and watch.done() and watch.exception() is None:
                    gone.set()
                    fut.cancel()
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await job
                    self.dropped += 1
                    raise ClientGone
            try:
                return await job
            finally:
                self.done += 1
        finally:
            if watch is not None:
                watch.cancel()
            fut.cancel()  # this request was cancelled itself (the server is stopping): its job never starts

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ model description

    def model_info(self) -> dict:
        if self._info is None:
            from ..emotions import EMOTIONS

            path = Path(self.base.model_path)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            meta = self.base.metadata
            self._info = {
                "name": self.model_name, "file": path.name, "sha256": sha, "bytes": path.stat().st_size,
                "labels": list(EMOTIONS), "members": _json_list(meta.get("members")),
                "tta": meta.get("tta"), "temperature": _float(meta.get("temperature")),
                "trained_labels": meta.get("trained_labels", "fer2013"),
                "class_prior": json.loads(meta.get("class_prior", "{}")),
                "input": "N x 1 x 48 x 48 float32 raw grayscale 0..255",
                "detector": self.default_detector, "headline": _headline(sha),
            }
        return self._info


def _check(gone: threading.Event | None) -> None:
    if gone is not None and gone.is_set():
        raise ClientGone


def _bytes(data, limit: int) -> bytes:
    """Bytes as given, or read from an upload's (spooled) file: at most ``limit + 1`` bytes."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    data.seek(0)
    return data.read(limit + 1)


def _model_name(model, path: Path) -> str:
    from .. import weights

    for k, p in weights.list_shipped().items():
        if Path(path).resolve() == p.resolve():
            return k
    return Path(path).name if model is None else str(model)


def _json_list(s) -> list:
    try:
        v = json.loads(s) if s else []
        return [str(x) for x in v] if isinstance(v, list) else []
    except ValueError:
        return []


def _float(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def _headline(sha: str) -> dict | None:
    """The model card's headline numbers for this exact file (weights/headline.json, keyed by sha256)."""
    from .. import weights

    p = Path(weights.__file__).parent / "headline.json"
    try:
        table = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    for entry in table.get("models", {}).values():
        if entry.get("sha256") == sha:
            return {k: v for k, v in entry.items() if k != "sha256"} | {"source": table.get("source")}
    return None
