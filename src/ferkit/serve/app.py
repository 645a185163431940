"""The FastAPI application: routes, JSON errors, one log line per request, the page and offline docs.

Middleware, outermost first: :class:`AccessLog` (one line per request, control characters escaped),
:class:`~.limits.BodyLimit` (413 by declared size, before reading), :class:`~.admission.Admission` (a slot
on arrival or 503, a deadline for the body).
"""

import contextlib
import enum
import logging
import time
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..emotions import EMOTIONS
from .admission import CLIENT_GONE, Admission, ClientGone
from .config import ServeConfig
from .inference import InferenceService
from .limits import MEDIA_TYPES, ApiError, BodyLimit, check_media_type
from .schemas import BatchOut, EmotionsOut, ErrorOut, Health, ModelOut
from .site import CrossOriginIsolation, model_file

log = logging.getLogger("ferkit.serve")
STATIC = Path(__file__).resolve().parent / "static"

ERRORS = {s: {"model": ErrorOut} for s in (400, 408, 413, 415, 422, 503)}
_BINARY = {"type": "string", "format": "binary"}
ONE_IMAGE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": _BINARY}}},
    **{t: {"schema": _BINARY} for t in MEDIA_TYPES}}}}
BATCH_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["files"],
                                       "properties": {"files": {"type": "array", "items": _BINARY}}}}}}}


def create_app(cfg: ServeConfig | None = None) -> FastAPI:
    from fastapi_offline import FastAPIOffline

    from ..faces import list_detectors

    cfg = cfg or ServeConfig()
    svc = InferenceService(cfg)
    # detector names come from the registry in ferkit.faces (plus "auto"), never from a list kept here
    Detector = enum.Enum("Detector", {n: n for n in list_detectors()}, type=str)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        svc.close()

    app = FastAPIOffline(
        lifespan=lifespan, title="ferkit", version=__version__, static_url="/static-docs", redoc_url=None,
        description="Facial emotion recognition (" + ", ".join(EMOTIONS) + ") on photos and face crops. "
                    "Send an image as the multipart field `file` or as a raw body with an image content type. "
                    f"Limits: {cfg.max_upload_bytes / 2**20:g} MiB and {cfg.max_pixels:,} pixels per image, "
                    f"{cfg.max_batch} images per batch.")
    app.state.service = svc
    app.add_middleware(Admission, service=svc, body_timeout=cfg.body_timeout,
                       body_idle_timeout=cfg.body_idle_timeout)
    app.add_middleware(BodyLimit, limit=cfg.max_request_bytes, raw_limit=cfg.max_upload_bytes)
    app.add_middleware(CrossOriginIsolation)  # COOP/COEP: the page's on-device mode gets WebAssembly threads
    if cfg.access_log:
        app.add_middleware(AccessLog)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def options(detector, max_faces, min_face, crop) -> dict:
        return {"detector": detector.value if detector is not None else None, "max_faces": max_faces,
                "min_face": min_face, "crop": crop}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/models/{name}", include_in_schema=False)
    async def model_for_page(name: str):
        """The two model files the page's on-device mode runs (ferkit.serve.site.model_files), nothing else."""
        path = model_file(name)
        if path is None:
            raise ApiError(404, "not_found", f"no model file {name!r} for the page")
        return FileResponse(path, media_type="application/octet-stream")

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz():
        """Answers at once, also while images are being analysed."""
        return {"status": "ok", "pending": svc.pending, "receiving": svc.receiving, "capacity": svc.capacity,
                "concurrency": cfg.concurrency, "done": svc.done, "dropped": svc.dropped,
                "timed_out": svc.timed_out, "refused": svc.refused, "uptime_s": round(time.time() - svc.started, 1)}

    @app.get("/v1/model", response_model=ModelOut, tags=["service"])
    async def model():
        """The model file, its labels and members, the model card's headline numbers, the limits."""
        limits = {k: getattr(cfg, k) for k in ("max_upload_bytes", "max_request_bytes", "max_pixels", "max_batch",
                                               "max_queue", "body_timeout")} | {"concurrency": cfg.concurrency,
                                                                                "media_types": list(MEDIA_TYPES)}
        return svc.model_info() | {"detectors": list_detectors(), "limits": limits}

    @app.post("/v1/emotions", response_model=EmotionsOut, responses=ERRORS, openapi_extra=ONE_IMAGE_BODY,
              tags=["emotions"])
    async def emotions(
        request: Request,
        detector: Detector | None = Query(None, description="face detector (default: the server's)"),
        max_faces: int | None = Query(None, ge=1, le=1000, description="keep at most N faces, best first"),
        min_face: int | None = Query(None, ge=1, le=10000, description="smallest face side in pixels"),
        crop: bool = Query(False, description="the image is already a face crop: no detection"),
    ):
        """Every face in one image: box, detector score, landmarks where known, label, confidence and the
        7 probabilities; the image size and the model used."""
        name, data = await _one_image(request, cfg)
        opts = options(detector, max_faces, min_face, crop)
        return JSONResponse(await svc.submit(svc.analyse, data, name, opts, receive=request.receive))

    @app.post("/v1/emotions/batch", response_model=BatchOut, responses=ERRORS, openapi_extra=BATCH_BODY,
              tags=["emotions"])
    async def emotions_batch(
        request: Request,
        detector: Detector | None = Query(None, description="face detector (default: the server's)"),
        max_faces: int | None = Query(None, ge=1, le=1000, description="keep at most N faces per image"),
        min_face: int | None = Query(None, ge=1, le=10000, description="smallest face side in pixels"),
        crop: bool = Query(False, description="the images are already face crops: no detection"),
    ):
        """Several images (multipart fields `files`, up to the batch limit): one result or one error per
        image, in the order sent. A bad image fails alone."""
        items = await _many_images(request, cfg)
        results = await svc.submit(svc.analyse_many, items, options(detector, max_faces, min_face, crop),
                                   receive=request.receive)
        return JSONResponse({"results": results, "images": len(results),
                             "failed": sum(r["status"] != 200 for r in results)})

    return app


def _upload(f, cfg: ServeConfig) -> tuple[str, object]:
    """(name, the upload's file), or (name, ApiError) for a file over the per-image limit. Files are not read
    here: the job reads each (spooled to disk beyond 1 MiB) when it comes to it, one at a time."""
    name = f.filename or "file"
    if f.size is not None and f.size > cfg.max_upload_bytes:
        return name, ApiError(413, "file_too_large", f"{name}: {f.size / 2**20:.1f} MiB is more than the "
                              f"{cfg.max_upload_bytes / 2**20:.1f} MiB allowed per image")
    return name, f.file


async def _one_image(request: Request, cfg: ServeConfig) -> tuple[str, object]:
    ct = request.headers.get("content-type", "")
    if ct.lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=8)
        f = form.get("file")
        if not isinstance(f, UploadFile):
            raise ApiError(400, "missing_file", "multipart body has no file in the field 'file'")
        name, data = _upload(f, cfg)
        if isinstance(data, ApiError):
            raise data
        return name, data
    check_media_type(ct)
    return "body", await request.body()


async def _many_images(request: Request, cfg: ServeConfig) -> list[tuple[str, object]]:
    ct = request.headers.get("content-type", "")
    if not ct.lower().startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type",
                       "a batch is a multipart/form-data body with one field 'files' per image")
    form = await request.form(max_files=cfg.max_batch, max_fields=cfg.max_batch + 8)
    files = [v for k, v in form.multi_items() if k in ("files", "file")]
    if not files:
        raise ApiError(400, "missing_file", "multipart body has no images in the field 'files'")
    texts = [i for i, f in enumerate(files) if not isinstance(f, UploadFile)]
    if texts:
        raise ApiError(400, "missing_file", f"multipart field 'files' number {texts[0] + 1} is text, not a file "
                       "upload (curl: -F files=@photo.jpg)")
    return [_upload(f, cfg) for f in files]


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(ClientGone)
    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, e: Exception):
        return Response(status_code=CLIENT_GONE)  # nobody reads it: the access log records the 499

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):
        parts = []
        for err in e.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "body"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse({"error": "invalid_request", "detail": "; ".join(parts)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return JSONResponse({"error": code, "detail": str(e.detail)}, status_code=e.status_code,
                            headers=getattr(e, "headers", None))


class AccessLog:
    """One line per request: client, method, path, status, milliseconds (logger ``ferkit.serve``).

    The path is logged as the client sent it (``raw_path``: ``%0a`` stays ``%0a``, never a line break), and
    any control or non-ASCII character left is escaped (:func:`printable`): a URL cannot add a fake line."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def send_(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_)
        finally:
            client = scope.get("client") or ("-", 0)
            path = scope.get("raw_path") or scope["path"].encode("utf-8")
            q = scope.get("query_string", b"")
            target = printable(path + (b"?" + q if q else b""))
            log.info("%s %s %s %d %.1f ms", printable(str(client[0]).encode()), scope["method"], target, status[0],
                     (time.perf_counter() - t0) * 1e3)


def printable(raw: bytes) -> str:
    """Bytes from a request as one log-safe word: printable ASCII as is, every other byte as ``\\xNN``."""
    return "".join(chr(b) if 0x21 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: the config comes from $FERKIT_SERVE_CONFIG."""
    cfg = ServeConfig.from_env()
    setup_logging(cfg)
    return create_app(cfg)


def setup_logging(cfg: ServeConfig) -> None:
    if cfg.access_log and not log.handlers:
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("%(asctime)s ferkit.serve %(message)s"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False
