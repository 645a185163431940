"""Image loading for the runtime path: any path / PIL image / numpy array -> BGR or gray uint8.

Channel order is explicit everywhere: numpy arrays given to ferkit are **BGR** (OpenCV's order) unless
the caller says ``channels="rgb"``; 2-D arrays (and H x W x 1) are grayscale; 4-channel arrays are
BGRA/RGBA and are composited on white. PIL images carry their own mode, and files are decoded with
EXIF orientation applied (a phone photo taken sideways comes out upright).

Values of other dtypes become uint8 by one rule (:func:`_as_uint8`), the same for every entry point:
negative values clip to 0 (black); integers above 255 are scaled so the array's maximum becomes 255;
floats whose maximum is at most 1.0 are taken as 0..1 and scaled by 255, other floats as 0..255 (clipped);
booleans are 0 or 255; NaN or infinity is an error. Nothing wraps around.
No torch here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}

ImageInput = str | os.PathLike | Image.Image | np.ndarray


class ImageError(ValueError):
    """An image could not be read or understood; the message names the source and the problem."""


def _pil_to_bgr(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "P", "PA") or (img.mode == "RGB" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float32)
        hi = float(a.max()) or 1.0
        a = np.clip(a * (255.0 / hi), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to BGR uint8 (H, W, 3), EXIF orientation applied.

    Raises :class:`ImageError` naming the file on any failure (missing, truncated, not an image).
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a folder, not an image")
    try:
        with Image.open(p) as im:
            im.load()
            out = _pil_to_bgr(im)
    except ImageError:
        raise
    except Exception as e:  # PIL raises many exception types for bad files
        raise ImageError(f"{p}: cannot decode image ({type(e).__name__}: {e})") from e
    if out.shape[0] < 1 or out.shape[1] < 1:
        raise ImageError(f"{p}: empty image")
    return out


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
        if not np.isfinite(a).all():
            raise ImageError("image array contains NaN or infinite values")
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
