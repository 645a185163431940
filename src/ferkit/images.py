"""Image loading for the runtime path: any path / PIL image / numpy array -> BGR or gray uint8.

Channel order is explicit everywhere: numpy arrays given to ferkit are **BGR** (OpenCV's order) unless
the caller says ``channels="rgb"``; 2-D arrays (and H x W x 1) are grayscale; 4-channel arrays are
BGRA/RGBA and are composited on white. PIL images carry their own mode, and files are decoded with
EXIF orientation applied (a phone photo taken sideways comes out upright).

Values of other dtypes become uint8 by one rule (:func:`_as_uint8`), the same for every entry point, arrays,
PIL images and files alike (16-bit PNGs, 32-bit integer and float TIFFs): negative values are below black and
clip to 0 (an image with no value above 0 is black, never inverted); integers above 255 are scaled so the
image's maximum becomes 255; floats whose maximum is at most 1.0 are taken as 0..1 and scaled by 255, other
floats as 0..255 (clipped); booleans are 0 or 255; NaN or infinity anywhere is an error (:class:`ImageError`,
naming the file). Nothing wraps around.

Memory: files are converted to BGR in bands of rows, so a palette or grayscale image never exists as a full
RGBA or float copy (a 6 KB 7000 x 7000 palette PNG peaked at 920 MiB, 6x its BGR size). :func:`load_image`
decodes an image of more than ``DECODE_MAX_PIXELS`` at reduced size (JPEG: scaled in the decoder with
``draft``, the cheap way; other formats: reduced before conversion) and says so in its ``note``; boxes found on
it are mapped back to the file's pixels by the caller (:meth:`DecodedImage.to_original`). Pillow's own
decompression-bomb warning is never printed: ferkit checks sizes itself and says what it did.
No torch here.
"""

from __future__ import annotations

import math
import os
import re
import threading
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
# files of more pixels than this are decoded at reduced size by load_image (a 12000 x 12000 JPEG at 1/2 size);
# detection runs at 640 px by default, so no face it can find is lost
DECODE_MAX_PIXELS = 50_000_000
_BAND_PIXELS = 1 << 20  # rows converted to BGR at a time: about a million pixels
_NUMERIC_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_OPEN_LOCK = threading.Lock()  # warnings.catch_warnings is process-wide: one open at a time in ferkit

ImageInput = str | os.PathLike | Image.Image | np.ndarray


class ImageError(ValueError):
    """An image could not be read or understood; the message names the source and the problem."""


def _pil_to_bgr(img: Image.Image) -> np.ndarray:
    """A PIL image in any mode -> contiguous BGR uint8, composited on white, converted band by band."""
    img = ImageOps.exif_transpose(img)
    w, h = img.size
    if img.mode in _NUMERIC_MODES:  # 16/32-bit and float: the dtype rule needs the whole image (its maximum)
        g = _as_uint8(np.asarray(img))
        return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))
    alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        img.mode in ("P", "RGB", "L") and "transparency" in img.info)
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, _BAND_PIXELS // max(1, w))
    for y in range(0, h, step):
        band = img.crop((0, y, w, min(h, y + step))) if (y or step < h) else img
        if alpha:
            band = band.convert("RGBA")
            bg = Image.new("RGB", band.size, (255, 255, 255))
            bg.paste(band, mask=band.getchannel("A"))  # straight alpha over white
            band = bg
        elif band.mode != "RGB":
            band = band.convert("RGB")
        out[y:y + band.size[1]] = np.frombuffer(band.tobytes("raw", "BGR"), np.uint8).reshape(band.size[1], w, 3)
    return out


def _open(p: Path) -> Image.Image:
    """Image.open without Pillow's raw DecompressionBombWarning (ferkit says what it does with big images);
    Pillow's hard limit (twice its warning size) stays, as a clear ImageError."""
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(p)
    except Image.DecompressionBombError as e:
        m = re.search(r"\((\d+) pixels\).*?(\d+) pixels", str(e))
        n, limit = (f"{int(m[1]):,}", f"{int(m[2]):,}") if m else ("too many", "its limit")
        raise ImageError(f"{p}: {n} pixels is more than the {limit} Pillow decodes (a decompression-bomb guard); "
                         "shrink the image first") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to BGR uint8 (H, W, 3) at full size, EXIF orientation applied.

    Raises :class:`ImageError` naming the file on any failure (missing, truncated, not an image, NaN pixels).
    :func:`load_image` is the bounded-memory form for analysis."""
    return load_image(path, max_pixels=None).bgr


class DecodedImage(NamedTuple):
    """A decoded file: ``bgr`` (H, W, 3) uint8, ``size`` = the file's (width, height) with EXIF orientation
    applied, and ``note``: None at full size, else one sentence saying it was decoded at reduced size."""

    bgr: np.ndarray
    size: tuple[int, int]
    note: str | None = None

    @property
    def reduced(self) -> bool:
        return self.note is not None

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        """A point in ``bgr``'s pixels -> the same point in the file's pixels."""
        return x * self.size[0] / self.bgr.shape[1], y * self.size[1] / self.bgr.shape[0]


def load_image(path: str | os.PathLike, max_pixels: int | None = DECODE_MAX_PIXELS) -> DecodedImage:
    """Decode an image file for analysis: at full size up to ``max_pixels`` pixels, above that at the
    smallest reduction that fits (1/2, 1/3, ...; JPEG in the decoder itself), with a ``note`` saying so.

    Raises :class:`ImageError` naming the file on any failure (missing, truncated, not an image, NaN pixels).
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a folder, not an image")
    try:
        with _open(p) as im:
            w, h = im.size
            if _reduction(w, h, max_pixels) > 1 and im.format in ("JPEG", "MPO"):
                d = next((d for d in (2, 4, 8) if math.ceil(w / d) * math.ceil(h / d) <= max_pixels), 8)
                im.draft(im.mode if im.mode in ("RGB", "L") else None, (math.ceil(w / d), math.ceil(h / d)))
            im.load()
            dw, dh = im.size
            k2 = _reduction(dw, dh, max_pixels)
            if k2 > 1:
                im = im.reduce(k2) if im.mode not in ("P", "PA", "1", "I;16", "I;16B", "I;16L", "I;16N") \
                    else im.resize((math.ceil(dw / k2), math.ceil(dh / k2)), Image.Resampling.NEAREST)
            if _transposed(im):
                w, h = h, w
            out = _pil_to_bgr(im)
    except ImageError as e:
        raise ImageError(str(e) if str(p) in str(e) else f"{p}: {e}") from None
    except Exception as e:  # PIL raises many exception types for bad files
        raise ImageError(f"{p}: cannot decode image ({type(e).__name__}: {e})") from e
    if out.shape[0] < 1 or out.shape[1] < 1:
        raise ImageError(f"{p}: empty image")
    note = None
    if (out.shape[1], out.shape[0]) != (w, h):
        note = (f"{p}: {w}x{h} ({w * h:,} pixels) decoded at 1/{w / out.shape[1]:.3g} size ({out.shape[1]}x"
                f"{out.shape[0]}): more than the {max_pixels:,} pixels ferkit decodes at full size")
    return DecodedImage(out, (w, h), note)


def _reduction(w: int, h: int, max_pixels: int | None) -> int:
    """The smallest integer factor k with ceil(w / k) * ceil(h / k) <= max_pixels (1 when it fits)."""
    if not max_pixels or w * h <= max_pixels:
        return 1
    k = max(2, math.floor(math.sqrt(w * h / max_pixels)))
    while math.ceil(w / k) * math.ceil(h / k) > max_pixels:
        k += 1
    return k


def _transposed(im: Image.Image) -> bool:
    """True when the EXIF orientation swaps width and height (exif_transpose will turn the image)."""
    try:
        return im.getexif().get(0x0112) in (5, 6, 7, 8)
    except Exception:  # noqa: BLE001 - a broken EXIF block is ignored, as exif_transpose does
        return False


def to_bgr(image: ImageInput, channels: str = "bgr") -> np.ndarray:
    """Any supported input -> contiguous BGR uint8 (H, W, 3).

    ``channels`` says how to read a 3/4-channel numpy array: "bgr" (OpenCV, the default) or "rgb".
    Paths and PIL images ignore it (their mode is known).
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return _pil_to_bgr(image)
    if isinstance(image, np.ndarray):
        return _array_to_bgr(image, channels)
    raise ImageError(f"unsupported image type {type(image).__name__}; "
                     "give a path, a PIL image or a numpy array")


def _array_to_bgr(a: np.ndarray, channels: str) -> np.ndarray:
    channels = channels.lower()
    if channels not in ("bgr", "rgb"):
        raise ImageError(f"channels must be 'bgr' or 'rgb', not {channels!r}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"array of shape {a.shape} is not an image (expected H x W, H x W x 3 or H x W x 4)")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"empty image array of shape {a.shape}")
    a = _as_uint8(a)
    if a.ndim == 2:
        return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    if a.shape[2] == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
    if channels == "rgb":
        a = a[:, :, ::-1]
    return np.ascontiguousarray(a[:, :, :3])


def _as_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        bad = a.size - int(np.count_nonzero(np.isfinite(a)))
        if bad:
            raise ImageError(f"{bad:,} of {a.size:,} pixel values are NaN or infinite (not an image ferkit can read)")
        scale = 255.0 if a.size and float(a.max()) <= 1.0 else 1.0
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        if a.size and (int(a.min()) < 0 or int(a.max()) > 255):
            f = np.clip(a.astype(np.float64), 0.0, None)  # negative -> 0 (black), never a wrap-around
            hi = float(f.max())
            if hi > 255.0:  # 16-bit and friends: scale to 8 bits
                f *= 255.0 / hi
            return np.clip(np.rint(f), 0, 255).astype(np.uint8)
        return a.astype(np.uint8)
    raise ImageError(f"unsupported image dtype {a.dtype}")


def to_gray(image: ImageInput, channels: str = "bgr") -> np.ndarray:
    """Any supported input -> grayscale uint8 (H, W) with ITU-R 601 luma (same weights as PIL's "L")."""
    if isinstance(image, np.ndarray) and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)):
        a = image[:, :, 0] if image.ndim == 3 else image
        if a.shape[0] < 1 or a.shape[1] < 1:
            raise ImageError(f"empty image array of shape {image.shape}")
        return np.ascontiguousarray(_as_uint8(a))
    if isinstance(image, Image.Image):
        img = ImageOps.exif_transpose(image)
        if img.mode == "L":
            return np.asarray(img, dtype=np.uint8).copy()
    return bgr_to_gray(to_bgr(image, channels))


def to_array(image: ImageInput, channels: str = "bgr") -> np.ndarray:
    """Any supported input -> uint8 array: gray (H, W) stays gray, everything else becomes BGR (H, W, 3).

    The one input path of the methods that take "a BGR or gray array" (detection, cropping): any dtype
    follows the rule of the module docstring, exactly as :func:`to_bgr` and :func:`to_gray` do."""
    if isinstance(image, np.ndarray) and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)):
        return to_gray(image)
    return to_bgr(image, channels)


def bgr_to_gray(bgr: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def list_images(inputs: list[str], recursive: bool = True) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files, folders (recursively) and glob patterns to image paths, sorted within each input.

    Returns (paths, problems) where problems are (input, reason) for inputs that matched nothing.
    A file given explicitly is kept whatever its extension (it will be reported if it cannot be decoded).
    """
    import glob

    out: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(p: Path):
        if p not in seen:
            seen.add(p)
            out.append(p)

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = []
            walker = os.walk(p) if recursive else [(str(p), [], [f.name for f in p.iterdir() if f.is_file()])]
            for dirpath, dirs, names in walker:
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for n in names:
                    if Path(n).suffix.lower() in IMAGE_EXTS and not n.startswith("."):
                        found.append(Path(dirpath) / n)
            if not found:
                problems.append((item, "folder holds no images"))
            for f in sorted(found):
                add(f)
        elif p.is_file():
            add(p)
        elif any(c in item for c in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_EXTS]
            if not files:
                problems.append((item, "pattern matched no images"))
            for f in files:
                add(f)
        else:
            problems.append((item, "no such file or folder"))
    return out, problems
