"""Face detection: one interface, several offline backends chosen by name, and FER2013-style cropping.

Backends (``create_detector(name)``, CLI ``--detector``):

* ``centerface`` -- a CNN (CenterFace, MIT) shipped inside the package and run on onnxruntime
  (:mod:`ferkit.faces_cnn`): finds faces of any size, many per photo, with five landmarks (eyes,
  nose, mouth corners). Score: heatmap peak, 0..1. The default.
* ``haar`` -- OpenCV's Haar cascade ``haarcascade_frontalface_default.xml`` from ``cv2.data.haarcascades``
  (opencv-python-headless 4.x, a core dependency). Zero extra dependencies; the weakest (misses many
  tilted, dark or expressive faces). Score: the cascade's level weight (about 0..10, higher = surer).
* ``dlib`` -- dlib's HOG + linear SVM frontal face detector (``dlib.get_frontal_face_detector()``; its
  weights are compiled into the dlib library, nothing is downloaded). Install with
  ``pip install 'ferkit[dlib]'`` (the ``dlib-bin`` wheel, 4 MB, no further dependencies). Score: the SVM
  margin (0 is dlib's own decision boundary; higher = surer).
* ``full`` -- no detection: the whole image is one face (for inputs that are already face crops).
* ``auto`` -- the strongest installed one: ``centerface`` (always there), else ``dlib``, else ``haar``.

All detectors take a BGR (H, W, 3) or gray (H, W) uint8 array and return :class:`Detection` tuples
``(box, score, landmarks)`` with ``box = (x, y, w, h)`` in the pixels of the array given, clipped to the image,
sorted by score (best first). Big images are scaled down to ``max_side`` pixels (longer side) for
detection, boxes are scaled back. ``min_face`` is in original pixels; ``threshold`` is in the detector's
own score units; ``max_faces`` keeps the best N.

:func:`crop_face` cuts a face the way FER2013 faces were cut (tight, square, centred, 48x48 gray); each
detector carries the margin/shift that made its boxes look most like FER2013 crops (tuned by end-to-end
accuracy, see ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

Box = tuple[int, int, int, int]


Landmarks = tuple[tuple[float, float], ...]
# names of the five landmarks the CNN detector gives, in its order ("left" = the image's left side)
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# an image no bigger than this (longer side, pixels) is a face crop already: classified whole, detector "crop"
CROP_MAX_SIDE = 96


def is_face_crop(shape) -> bool:
    """True for images small enough to be a face crop already (longer side <= CROP_MAX_SIDE)."""
    return max(shape[0], shape[1]) <= CROP_MAX_SIDE


class Detection(NamedTuple):
    box: Box  # x, y, w, h in input pixels
    score: float
    landmarks: Landmarks | None = None  # (x, y) points in input pixels, detector's order; None if it has none


class DetectorUnavailable(ValueError):
    """A detector was asked for by name but its package is not installed (message says what to install)."""


@dataclass(frozen=True)
class CropSpec:
    """How to turn a detector box into a FER2013-like crop.

    ``margin``: fraction of the box side added on each side (negative shrinks); ``shift``: vertical
    move of the centre as a fraction of the side (positive = down); the crop is always square.
    ``align``: rotate the face upright on its eye landmarks first (when the detector gives landmarks;
    see :mod:`ferkit.align`).
    """

    margin: float = 0.0
    shift: float = 0.0
    align: bool = False


# --------------------------------------------------------------------------- helpers


def _gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("detectors take a uint8 numpy array (BGR H x W x 3 or gray H x W); "
                         "use ferkit.images.to_bgr() to convert other inputs")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"array of shape {image.shape} is not an image")


def _resize_for_detection(gray: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    import cv2

    h, w = gray.shape
    s = 1.0
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        gray = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return gray, s


def _clip_box(x: float, y: float, w: float, h: float, W: int, H: int) -> Box | None:
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(W, int(round(x + w))), min(H, int(round(y + h)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def _finish(raw: list[tuple[float, float, float, float, float]], scale: float, shape: tuple[int, int],
            min_face: int, threshold: float | None, max_faces: int | None) -> list[Detection]:
    H, W = shape[:2]
    out = []
    for x, y, w, h, score in raw:
        if threshold is not None and score < threshold:
            continue
        b = _clip_box(x / scale, y / scale, w / scale, h / scale, W, H)
        if b is None or max(b[2], b[3]) < min_face:
            continue
        out.append(Detection(b, float(score)))
    out.sort(key=lambda d: -d.score)
    if max_faces is not None and max_faces > 0:
        out = out[:max_faces]
    return out


# --------------------------------------------------------------------------- base class


class FaceDetector:
    """Base class: subclasses implement ``_raw(gray, min_face_scaled) -> [(x, y, w, h, score)]``."""

    name = "base"
    default_threshold: float | None = None
    crop = CropSpec()

    def __init__(self, min_face: int = 24, threshold: float | None = None, max_faces: int | None = None,
                 max_side: int | None = 640):
        if min_face < 1:
            raise ValueError(f"min_face must be >= 1 pixel, not {min_face}")
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"max_faces must be >= 1 (or None for no limit), not {max_faces}")
        self.min_face = int(min_face)
        self.threshold = self.default_threshold if threshold is None else float(threshold)
        self.max_faces = max_faces
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR or gray uint8 array, best first (see module docstring for units)."""
        gray = _gray(image)
        small, s = _resize_for_detection(gray, self.max_side)
        raw = self._raw(small, self.min_face * s)
        return _finish(raw, s, gray.shape, self.min_face, self.threshold, self.max_faces)

    __call__ = detect

    def _raw(self, gray: np.ndarray, min_face: float) -> list[tuple[float, float, float, float, float]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(min_face={self.min_face}, threshold={self.threshold}, "
                f"max_faces={self.max_faces}, max_side={self.max_side})")


class HaarDetector(FaceDetector):
    name = "haar"
    default_threshold = None
    crop = CropSpec(margin=0.20, shift=0.10)  # Haar boxes are small (brows to lips): end to end, RESULTS.md

    def __init__(self, *args, scale_factor: float = 1.1, min_neighbors: int = 5,
                 cascade: str = "haarcascade_frontalface_default.xml", **kw):
        import cv2

        super().__init__(*args, **kw)
        self._path = cv2.data.haarcascades + cascade
        self._local = threading.local()  # cascades are not safe to share between threads
        self._get()  # fail early if missing
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def _get(self):
        import cv2

        c = getattr(self._local, "cascade", None)
        if c is None:
            c = cv2.CascadeClassifier(self._path)
            if c.empty():
                raise DetectorUnavailable(f"cannot load the OpenCV Haar cascade {self._path} "
                                          "(needs opencv-python-headless 4.x: OpenCV 5 has no cascades)")
            self._local.cascade = c
        return c

    def _raw(self, gray, min_face):
        import cv2

        eq = cv2.equalizeHist(gray)
        m = max(24, int(min_face))
        if min(gray.shape) < m:
            return []
        rects, _levels, weights = self._get().detectMultiScale3(
            eq, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(m, m),
            outputRejectLevels=True)
        if len(rects) == 0:
            return []
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        return [(float(x), float(y), float(bw), float(bh), float(s))
                for (x, y, bw, bh), s in zip(rects, w, strict=False)]


class DlibHogDetector(FaceDetector):
    name = "dlib"
    default_threshold = 0.0
    crop = CropSpec(margin=0.10, shift=0.05)  # HOG boxes are tight and cut the chin (RESULTS.md, end to end)

    def __init__(self, *args, **kw):
        try:
            import dlib
        except ImportError as e:
            raise DetectorUnavailable("detector 'dlib' needs the dlib package: pip install 'ferkit[dlib]' "
                                      "(installs the dlib-bin wheel)") from e
        super().__init__(*args, **kw)
        self._dlib = dlib
        self._local = threading.local()  # one dlib detector per thread: sharing one gives wrong boxes

    def _get(self):
        d = getattr(self._local, "det", None)
        if d is None:
            d = self._local.det = self._dlib.get_frontal_face_detector()
        return d

    def _raw(self, gray, min_face):
        # the HOG window is 80 px: each upsampling halves the smallest face found
        longer = max(gray.shape)
        if min_face >= 80:
            up = 0
        elif min_face >= 40 or longer > 400:
            up = 1
        else:
            up = 2
        adjust = min(self.threshold or 0.0, 0.0)  # let dlib return weak ones; _finish applies threshold
        rects, scores, _ = self._get().run(np.ascontiguousarray(gray), up, adjust)
        return [(float(r.left()), float(r.top()), float(r.width()), float(r.height()), float(s))
                for r, s in zip(rects, scores, strict=False)]


class FullImageDetector(FaceDetector):
    """The whole image is the face (inputs that are already face crops)."""

    name = "full"
    default_threshold = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = _gray(image).shape
        return [Detection((0, 0, int(w), int(h)), 1.0)]

    def _raw(self, gray, min_face):  # pragma: no cover - detect() is overridden
        return []


# --------------------------------------------------------------------------- registry

_DETECTORS: dict[str, tuple[type[FaceDetector] | str, str | None, str]] = {
    "centerface": ("ferkit.faces_cnn:CenterFaceDetector", "onnxruntime",
                   "CenterFace CNN on onnxruntime, shipped (strongest; 5 landmarks)"),
    "dlib": (DlibHogDetector, "dlib", "dlib HOG frontal face detector (pip install 'ferkit[dlib]')"),
    "haar": (HaarDetector, None, "OpenCV Haar cascade (always available, weakest)"),
    "full": (FullImageDetector, None, "no detection: the whole image is one face crop"),
}
AUTO_ORDER = ("centerface", "dlib", "haar")


def _available(module: str | None) -> bool:
    return module is None or importlib.util.find_spec(module) is not None


def list_detectors() -> dict[str, dict]:
    """{name: {"available": bool, "description": str}} for every backend, plus what "auto" picks."""
    out = {n: {"available": _available(m), "description": d} for n, (_c, m, d) in _DETECTORS.items()}
    out["auto"] = {"available": True, "description": f"best installed: {resolve_name('auto')}"}
    return out


def resolve_name(name: str) -> str:
    name = (name or "auto").lower()
    if name == "auto":
        for n in AUTO_ORDER:
            if _available(_DETECTORS[n][1]):
                return n
        return "haar"
    if name not in _DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of auto, {', '.join(_DETECTORS)}")
    return name


def create_detector(name: str = "auto", min_face: int = 24, threshold: float | None = None,
                    max_faces: int | None = None, max_side: int | None = 640, **kw) -> FaceDetector:
    """A detector by name ("auto", "centerface", "dlib", "haar", "full").

    Raises DetectorUnavailable (with an install hint) when its package is missing."""
    cls = _DETECTORS[resolve_name(name)][0]
    if isinstance(cls, str):  # imported on first use (the module imports this one)
        import importlib

        mod, _, attr = cls.partition(":")
        cls = getattr(importlib.import_module(mod), attr)
    return cls(min_face=min_face, threshold=threshold, max_faces=max_faces, max_side=max_side, **kw)


# --------------------------------------------------------------------------- cropping


def square_box(box: Box, spec: CropSpec = CropSpec()) -> tuple[int, int, int]:
    """(x0, y0, side) of the square crop for a detector box (may extend outside the image)."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * spec.margin)
    side = max(2, int(round(side)))
    cx = x + w / 2.0
    cy = y + h / 2.0 + spec.shift * max(w, h)
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def crop_face(gray: np.ndarray, box: Box, spec: CropSpec = CropSpec(), size: int = 48,
              landmarks: Landmarks | None = None) -> np.ndarray:
    """Cut the FER2013-style square crop around ``box`` from a gray image: (size, size) uint8.

    Parts of the square outside the image are filled by replicating the border. With ``spec.align`` and
    eye ``landmarks`` the face is first turned upright (:func:`ferkit.align.aligned_crop`).
    """
    import cv2

    if spec.align and landmarks is not None:
        from .align import aligned_crop

        return aligned_crop(gray, box, landmarks, spec, size)

    if gray.ndim != 2:
        raise ValueError(f"crop_face takes a gray (H, W) image, got shape {gray.shape}")
    x0, y0, side = square_box(box, spec)
    patch = padded_window(gray, x0, y0, x0 + side, y0 + side, box)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def padded_window(gray: np.ndarray, x0: int, y0: int, x1: int, y1: int, box) -> np.ndarray:
    """gray[y0:y1, x0:x1], with the image border replicated where the window leaves the image."""
    import cv2

    H, W = gray.shape
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f"face box {box} lies outside the {W}x{H} image")
    patch = gray[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, borderType=cv2.BORDER_REPLICATE)
    return patch
