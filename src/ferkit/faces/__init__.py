"""Face detection: the detector interface, the registry of backends, and FER2013-style crops (runtime, no torch).
May import numpy, cv2, onnxruntime (and dlib when installed) and ferkit.weights; never torch or a higher room.

Backends (``create_detector(name)``, CLI ``--detector``), one module each:

* ``centerface`` (:mod:`.centerface`) -- a CNN (CenterFace, MIT) shipped inside the package and run on
  onnxruntime: finds faces of any size, many per photo, with five landmarks (eyes, nose, mouth corners).
  Score: heatmap peak, 0..1. The default.
* ``haar`` (:mod:`.haar`) -- OpenCV's Haar cascade: zero extra dependencies, the weakest.
* ``dlib`` (:mod:`.dlib`) -- dlib's HOG + linear SVM (``pip install 'ferkit[dlib]'``).
* ``full`` (:mod:`.full`) -- no detection: the whole image is one face (inputs that are face crops already).
* ``auto`` -- the strongest installed one: ``centerface`` (always there), else ``dlib``, else ``haar``.

The interface and its units (boxes, scores, landmarks, ``min_face``, ``threshold``, ``max_faces``) are in
:mod:`.base`; :func:`crop_face` (:mod:`.crop`) cuts a face the way FER2013 faces were cut, upright on its eyes
(:mod:`.align`) when the detector's :class:`CropSpec` says so. Modules import only :mod:`.base` and the ones
below them (align < crop; base < backends < this registry): no import circle.
"""

from __future__ import annotations

import importlib.util

from .align import eye_angle
from .base import LANDMARK_NAMES, Box, CropSpec, Detection, DetectorUnavailable, FaceDetector, Landmarks
from .centerface import CenterFaceDetector
from .crop import CROP_MAX_SIDE, aligned_crop, crop_face, is_face_crop, padded_window, square_box
from .dlib import DlibHogDetector
from .full import FullImageDetector
from .haar import HaarDetector

__all__ = ["AUTO_ORDER", "CROP_MAX_SIDE", "LANDMARK_NAMES", "Box", "CenterFaceDetector", "CropSpec", "Detection",
           "DetectorUnavailable", "DlibHogDetector", "FaceDetector", "FullImageDetector", "HaarDetector",
           "Landmarks", "aligned_crop", "create_detector", "crop_face", "eye_angle", "is_face_crop",
           "list_detectors", "padded_window", "resolve_name", "square_box"]

# name -> (class, the package it needs (None: always there), description)
_DETECTORS: dict[str, tuple[type[FaceDetector], str | None, str]] = {
    "centerface": (CenterFaceDetector, "onnxruntime",
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
    return cls(min_face=min_face, threshold=threshold, max_faces=max_faces, max_side=max_side, **kw)
