"""Inference off the event loop: one ONNX session per process, detectors per request options, and a
bounded thread pool (``concurrency`` jobs at once, ``max_queue`` waiting, more -> 503 busy).

Decoding runs in the pool too, so the event loop only moves bytes and ``/healthz`` answers while a batch is
being classified. Faces are reported with :meth:`ferkit.recognizer.Face.as_dict` (the one JSON form of a face).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .config import ServeConfig
from .limits import ApiError, decode_image

_CACHE_SIZE = 16  # detector variants (name, min_face, max_faces) kept per process


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
        self.pending = 0  # jobs running or waiting (touched on the event loop only)
        self.done = 0
        self._variants: OrderedDict[tuple, object] = OrderedDict()
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
            self.base.detect(img)
            barrier.wait(timeout=30)

        for f in [self.pool.submit(job) for _ in range(n)]:
            f.result()

    # ------------------------------------------------------------------ recognizers

    def recognizer(self, detector: str | None, min_face: int | None, max_faces: int | None):
        """The base recognizer, or a copy sharing its ONNX session with another detector setting."""
        from ..faces import DetectorUnavailable, create_detector, resolve_name

        name = resolve_name(detector or self.cfg.detector)
        mf = int(min_face or self.cfg.min_face)
        mx = max_faces if max_faces is not None else self.cfg.max_faces
        key = (name, mf, mx)
        if key == (self.default_detector, self.cfg.min_face, self.cfg.max_faces):
            return self.base
        with self._lock:
            rec = self._variants.get(key)
            if rec is not None:
                self._variants.move_to_end(key)
                return rec
            try:
                det = create_detector(name, min_face=mf, max_faces=mx)
            except DetectorUnavailable as e:
                raise ApiError(400, "detector_unavailable", str(e)) from None
            rec = copy.copy(self.base)
            rec.detector, rec.crop = det, det.crop
            self._variants[key] = rec
            while len(self._variants) > _CACHE_SIZE:
                self._variants.popitem(last=False)
            return rec

    # ------------------------------------------------------------------ jobs (run in the pool)

    def analyse(self, data: bytes, name: str, opts: dict) -> dict:
        """Bytes of one image -> the response dict (raises ApiError for the client's mistakes)."""
        t0 = time.perf_counter()
        bgr = decode_image(data, name, self.cfg)
        t1 = time.perf_counter()
        rec = self.recognizer("full" if opts.get("crop") else opts.get("detector"), opts.get("min_face"),
                              opts.get("max_faces"))
        faces = rec.detect(bgr)
        t2 = time.perf_counter()
        h, w = bgr.shape[:2]
        return {"faces": [f.as_dict() for f in faces], "image": {"width": int(w), "height": int(h)},
                "model": self.model_name, "detector": rec.detector.name,
                "timing_ms": {"decode": round((t1 - t0) * 1e3, 2), "inference": round((t2 - t1) * 1e3, 2)}}

    def analyse_many(self, items: list[tuple[str, bytes | ApiError]], opts: dict) -> list[dict]:
        """Several images: one result or one error per image, in order; one bad image never fails the rest."""
        out = []
        for i, (name, data) in enumerate(items):
            try:
                if isinstance(data, ApiError):
                    raise data
                out.append({"index": i, "filename": name, "status": 200} | self.analyse(data, name, opts))
            except ApiError as e:
                out.append({"index": i, "filename": name, "status": e.status} | e.body())
        return out

    # ------------------------------------------------------------------ async side

    async def submit(self, fn, *args):
        """Run ``fn(*args)`` in the pool; 503 when ``concurrency + max_queue`` jobs are already there."""
        if self.pending >= self.cfg.concurrency + self.cfg.max_queue:
            raise ApiError(503, "busy", f"server busy: {self.pending} images are being analysed or waiting; "
                           "retry shortly", headers={"Retry-After": "1"})
        self.pending += 1
        try:
            return await asyncio.wrap_future(self.pool.submit(fn, *args))
        finally:
            self.pending -= 1
            self.done += 1

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
                "input": "N x 1 x 48 x 48 float32 raw grayscale 0..255",
                "detector": self.default_detector, "headline": _headline(sha),
            }
        return self._info


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
