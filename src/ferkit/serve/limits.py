"""Limits on what a client may send, and the one place where uploaded bytes become an image.

Every refusal is an :class:`ApiError` with an HTTP status, a short machine-readable ``code`` and a message
that names the file and the problem; ``app`` turns it into a JSON 4xx. Nothing a client sends may cause a
500: decoding catches whatever Pillow raises.
"""

from __future__ import annotations

import io
import json
import warnings

import numpy as np

from .config import ServeConfig

# Pillow format names accepted (MPO = the JPEG variant many phones write)
FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF")
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif", "image/tiff")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def body(self) -> dict:
        return {"error": self.code, "detail": self.message}


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def check_media_type(content_type: str | None) -> None:
    """A raw (non-multipart) body must say it is an image."""
    ct = (content_type or "").split(";")[0].strip().lower()
    if not ct.startswith("image/") and ct != "application/octet-stream":
        raise ApiError(415, "unsupported_media_type",
                       f"content type {ct or '(none)'!r} is not accepted: send the image as the multipart field "
                       f"'file' or as a raw body with an image content type ({', '.join(MEDIA_TYPES)})")


def decode_image(data: bytes, name: str, cfg: ServeConfig) -> np.ndarray:
    """Uploaded bytes -> BGR uint8 (H, W, 3), EXIF orientation applied; ApiError (4xx) on anything wrong."""
    from PIL import Image, UnidentifiedImageError

    from ..images import to_bgr

    if len(data) == 0:
        raise ApiError(400, "empty_file", f"{name}: the file is empty (0 bytes)")
    if len(data) > cfg.max_upload_bytes:
        raise ApiError(413, "file_too_large",
                       f"{name}: {_mb(len(data))} is more than the {_mb(cfg.max_upload_bytes)} allowed per image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ApiError(415, "not_an_image", f"{name}: not an image this server reads "
                       f"(accepted: {', '.join(f for f in FORMATS if f != 'MPO')})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(413, "too_many_pixels", f"{name}: image has too many pixels "
                       f"(limit {cfg.max_pixels:,}); looks like a decompression bomb") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for broken headers
        raise ApiError(400, "corrupt_image",
                       f"{name}: cannot read the image header ({type(e).__name__}: {e})") from None
    with im:
        if im.format not in FORMATS:
            raise ApiError(415, "unsupported_image_format",
                           f"{name}: {im.format} images are not accepted (accepted: "
                           f"{', '.join(f for f in FORMATS if f != 'MPO')})")
        w, h = im.size
        if w < 1 or h < 1:
            raise ApiError(400, "corrupt_image", f"{name}: image has no pixels ({w}x{h})")
        if w * h > cfg.max_pixels:
            raise ApiError(413, "too_many_pixels",
                           f"{name}: {w}x{h} = {w * h:,} pixels is more than the {cfg.max_pixels:,} allowed "
                           "(large images are refused before decoding: decompression bombs)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im.load()
                return to_bgr(im)
        except Exception as e:  # noqa: BLE001 - truncated or corrupt data, in any of Pillow's forms
            raise ApiError(400, "corrupt_image",
                           f"{name}: cannot decode the {im.format} data ({type(e).__name__}: {e})") from None


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes (``raw_limit`` for a body that is not
    multipart: it is one image) with 413, by Content-Length when given, before reading a byte, and by counting
    the bytes received otherwise (chunked uploads), without reading the rest."""

    def __init__(self, app, limit: int, raw_limit: int | None = None):
        self.app, self.limit = app, int(limit)
        self.raw_limit = min(self.limit, int(raw_limit or limit))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/")
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                n = -1
            if n < 0:
                return await send_error(send, ApiError(400, "bad_content_length", "invalid Content-Length header"))
            if n > self.limit:
                return await send_error(send, _too_big(n, self.limit))
            if not multipart and n > self.raw_limit:
                return await send_error(send, _raw_too_big(n, self.raw_limit))
        seen = 0

        async def counted():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _too_big(seen, self.limit)
                if not multipart and seen > self.raw_limit:
                    raise _raw_too_big(seen, self.raw_limit)
            return msg

        return await self.app(scope, counted, send)


def _too_big(n: int, limit: int) -> ApiError:
    return ApiError(413, "request_too_large",
                    f"request body of {_mb(n)}{'+' if n > limit else ''} is more than the {_mb(limit)} allowed",
                    headers={"Connection": "close"})


def _raw_too_big(n: int, limit: int) -> ApiError:
    return ApiError(413, "file_too_large", f"body: {_mb(n)} is more than the {_mb(limit)} allowed per image "
                    "(a raw body is one image)", headers={"Connection": "close"})


async def send_error(send, err: ApiError) -> None:
    """Answer with ``err`` as JSON and close the connection (for middleware that answers before reading)."""
    body = json.dumps(err.body()).encode()
    extra = [(k.lower().encode(), str(v).encode()) for k, v in (err.headers or {}).items()
             if k.lower() != "connection"]
    await send({"type": "http.response.start", "status": err.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *extra]})
    await send({"type": "http.response.body", "body": body})
