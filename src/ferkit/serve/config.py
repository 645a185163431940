"""What a server was started with; serialisable so uvicorn worker processes rebuild the same app."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

ENV_VAR = "FERKIT_SERVE_CONFIG"

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServeConfig:
    model: str | None = None  # "default", "fast" or a path; None = the shipped default
    detector: str = "auto"  # default detector (a request may name another)
    min_face: int = 24  # default smallest face side in pixels (a request may change it)
    max_faces: int | None = None  # default cap on faces per image
    threads: int | None = None  # onnxruntime threads per inference call (None: cores / concurrency)
    max_concurrent: int | None = None  # inference jobs at once in this process (None: one per core)
    max_queue: int = 64  # requests waiting (or still arriving) beyond that; more -> 503 at once (retry)
    workers: int = 1  # uvicorn worker processes (used to share the cores out)
    max_upload_bytes: int = 10 * MiB  # one image
    max_request_bytes: int = 40 * MiB  # one request body (a batch)
    max_pixels: int = 50_000_000  # width x height of one image (decompression bombs)
    max_batch: int = 16  # images in one batch request
    body_timeout: float = 60.0  # seconds a client has to send a request body (else 408)
    body_idle_timeout: float = 15.0  # ... with no pause longer than this
    access_log: bool = True

    def __post_init__(self):
        for name in ("min_face", "max_queue", "workers", "max_upload_bytes", "max_request_bytes", "max_pixels",
                     "max_batch"):
            if int(getattr(self, name)) < (0 if name == "max_queue" else 1):
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("body_timeout", "body_idle_timeout"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0 seconds, not {getattr(self, name)}")
        for name in ("max_faces", "threads", "max_concurrent"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ValueError(f"{name} must be >= 1 (or unset), not {v}")

    @property
    def concurrency(self) -> int:
        """Inference jobs run at once by one worker process: one per core, whatever the number of workers.

        Connections are spread over worker processes when they are opened, not per request, so one worker
        can hold most of the busy keep-alive connections; with cores / workers threads each it then left
        cores idle (2 workers: 37 req/s vs 58 with 1, benchmarks/RESULTS-serve.md)."""
        if self.max_concurrent:
            return int(self.max_concurrent)
        return max(1, os.cpu_count() or 1)

    @property
    def ort_threads(self) -> int:
        if self.threads:
            return int(self.threads)
        return max(1, (os.cpu_count() or 1) // (max(1, self.workers) * self.concurrency))

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ=os.environ) -> ServeConfig:
        raw = environ.get(ENV_VAR)
        if not raw:
            return cls()
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
