"""Emotion recognition in photos and face crops, on onnxruntime alone (never imports torch).

>>> from ferkit.recognizer import Recognizer
>>> r = Recognizer()                          # shipped default model, best installed face detector
>>> r.classify("face_crop.jpg").label          # one face crop (any size, gray or colour) -> Prediction
'happy'
>>> [f.as_dict() for f in r.detect("group.jpg")]   # every face in a photo -> list[Face]

Inputs: a path (EXIF orientation honoured), a PIL image (any mode) or a numpy uint8 array. Numpy arrays
are **BGR** (OpenCV order) unless ``channels="rgb"`` is passed; 2-D arrays are grayscale.

Interface (stable; the video/webcam code builds on it):

* ``Recognizer(model=None | "default" | "fast" | path, detector="auto", min_face=24, threshold=None,
  max_faces=None, threads=None)`` (see ``Recognizer.__init__`` for every argument)
* ``classify(face) -> Prediction``; ``classify_batch(faces) -> list[Prediction]`` (in chunks of
  ``batch_size`` faces, so memory stays flat whatever the number of faces)
* ``detect(image) -> list[Face]``; ``detect_boxes(bgr) -> list[Detection]`` (``(box, score)`` tuples);
  ``classify_boxes(bgr, boxes) -> list[Prediction]`` (crop + classify in one batch)
* ``Prediction``: ``label``, ``confidence``, ``probs`` (7,) float32 in EMOTIONS order, ``as_dict()``
* ``Face``: ``box`` (x, y, w, h) in original image pixels, ``score`` (detector units), ``label``,
  ``confidence``, ``probs``, ``landmarks`` (five (x, y) points -- eyes, nose, mouth corners -- or None when
  the detector gives none), ``detector`` (its name; ``"crop"`` when a tiny image was taken whole),
  ``as_dict()`` (the one JSON shape of a face, used by the CLI and the web API), ``prediction``
* A face the model gives NaN or infinite probabilities for has no label: :meth:`Prediction.from_probs` (and so
  ``classify*`` and ``detect``) raise :class:`NonFiniteOutput` (a ``ValueError``) naming the problem.
* ``Face`` and ``Prediction`` are immutable values: ``==`` compares every field (arrays exactly), they
  hash consistently (usable in sets and as dict keys), and ``probs`` is read-only.

Images no bigger than 96 px on their longer side are face crops already (FER2013 faces are 48 px): they are
classified whole, as one face with detector ``"crop"``, whatever the detector.

Additions beyond the brief (nothing renamed): ``channels=`` on the image-taking methods,
``predict_arrays()`` for (N, 48, 48) uint8 batches, ``crop_faces()``, ``batch_size=`` on
``classify_batch``, ``crop=`` (a :class:`ferkit.faces.CropSpec`) and ``batch_size=`` (faces per inference
call; default: about ``CHUNK_INPUTS`` network inputs, i.e. 12 faces for a 10-view model) on the constructor.
``threads=None`` means the physical cores (see :mod:`ferkit.session`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arrayvalue import ArrayValue, frozen_array
from .emotions import EMOTIONS
from .faces import LANDMARK_NAMES, Box, CropSpec, Detection, Landmarks, create_detector, crop_face, is_face_crop
from .images import DecodedImage, ImageInput, load_image, to_array, to_bgr, to_gray

INPUT_SIZE = 48
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")
# Network inputs (faces x test-time views) per inference call when no batch size is given: bounds the
# activations onnxruntime holds (about 0.5 MB per input in float32 at the first layer) whatever N is.
CHUNK_INPUTS = 128


class NonFiniteOutput(ValueError):
    """The model gave NaN or infinite probabilities for a face: no label can be read from them (the model file
    is broken; ``ferkit export`` refuses such a model). Raised per face, by :meth:`Prediction.from_probs`."""


@dataclass(frozen=True, eq=False)
class Prediction(ArrayValue):
    """The emotion of one face: ``label`` (one of :data:`ferkit.EMOTIONS`), its probability ``confidence``
    and ``probs``, all 7 probabilities (float32, read-only, in EMOTIONS order, summing to 1).

    Equality is by value: two predictions are equal when label, confidence and every probability are
    exactly equal (``np.array_equal``); predictions are hashable, consistently with that equality.
    """

    label: str
    confidence: float
    probs: np.ndarray  # (7,) float32 in EMOTIONS order

    @classmethod
    def from_probs(cls, p: np.ndarray) -> Prediction:
        """The prediction for a (7,) probability vector: the label is the most probable emotion.

        Raises :class:`NonFiniteOutput` when a probability is NaN or infinite (argmax would say "angry")."""
        p = frozen_array(np.asarray(p, dtype=np.float32).reshape(-1))
        if not np.isfinite(p).all():
            raise NonFiniteOutput("the model's output for this face is not a probability (NaN or infinity: "
                                  f"{', '.join(f'{v:g}' for v in p)}); the model file is broken")
        i = int(np.argmax(p))
        return cls(EMOTIONS[i], float(p[i]), p)

    def as_dict(self) -> dict:
        """JSON-ready: ``{"label": str, "confidence": float, "probs": {emotion: float, ...}}``, floats
        rounded to 6 decimals, emotions in EMOTIONS order."""
        return {"label": self.label, "confidence": round(self.confidence, 6),
                "probs": {e: round(float(v), 6) for e, v in zip(EMOTIONS, self.probs, strict=False)}}


@dataclass(frozen=True, eq=False)
class Face(ArrayValue):
    """One face found in a photo: where it is and what it shows.

    ``box``: (x, y, w, h) ints in the original image's pixels (EXIF orientation applied); ``score``: the
    detector's confidence in its own units (see :mod:`ferkit.faces`; 1.0 for ``detector="full"``);
    ``label``, ``confidence``, ``probs``: as in :class:`Prediction` (``face.prediction`` gives one).
    Equality is by value (every field, arrays exactly); faces are hashable.
    """

    box: Box  # x, y, w, h in original image pixels
    score: float  # detector score, in the detector's units (see ferkit.faces)
    label: str
    confidence: float
    probs: np.ndarray  # (7,) float32 in EMOTIONS order
    landmarks: Landmarks | None = None  # (x, y) in original pixels, LANDMARK_NAMES order; None if none
    detector: str | None = None  # the detector's name, "crop" for a tiny image taken whole

    @property
    def prediction(self) -> Prediction:
        """The emotion part of this face as a :class:`Prediction`."""
        return Prediction(self.label, self.confidence, self.probs)

    @classmethod
    def build(cls, det: Detection, probs: np.ndarray, detector: str | None = None) -> Face:
        p = Prediction.from_probs(probs)
        return cls(det.box, det.score, p.label, p.confidence, p.probs, det.landmarks, detector)

    def as_dict(self) -> dict:
        """JSON-ready: ``{"box": {"x", "y", "w", "h"}, "score", "label", "confidence", "probs": {...}}``
        (the ``probs`` mapping as in :meth:`Prediction.as_dict`)."""
        x, y, w, h = self.box
        head = {"box": {"x": x, "y": y, "w": w, "h": h}, "score": round(self.score, 6)}
        tail = {"landmarks": landmarks_dict(self.landmarks), "detector": self.detector}
        return head | self.prediction.as_dict() | tail


def landmarks_dict(landmarks: Landmarks | None) -> dict | None:
    """{"left_eye": [x, y], ...} (JSON form of a face's landmarks), or None."""
    if landmarks is None:
        return None
    return {n: [round(float(x), 1), round(float(y), 1)] for n, (x, y) in zip(LANDMARK_NAMES, landmarks,
                                                                              strict=False)}


def _resolve_model(model: str | os.PathLike | None) -> Path:
    from . import weights

    if model is None:
        return weights.default_model_path()
    if isinstance(model, str) and model in weights.MODELS:
        return weights.model_path(model)
    p = Path(model)
    if p.suffix.lower() in TORCH_SUFFIXES:
        raise ValueError(f"{p}: a training checkpoint, not an ONNX model; export it first: "
                         f"ferkit export {p} --out {p.with_suffix('.onnx')}  (needs torch; then --model "
                         f"{p.with_suffix('.onnx')})")
    if not p.is_file():
        raise FileNotFoundError(f"model {str(model)!r}: no such file and not a shipped model name "
                                f"(shipped: {', '.join(weights.list_shipped()) or 'none'})")
    from .keras.cache import cached_onnx, is_keras_path

    if is_keras_path(p):  # the notebook's emotiondetector.h5 & co: converted once, then from the cache
        return cached_onnx(p)
    return p


def to_face48(face: ImageInput, channels: str = "bgr") -> np.ndarray:
    """One face crop (any size or mode) -> (48, 48) uint8 gray, the model's input (a file of a huge size is
    decoded at reduced size: it becomes 48 x 48 anyway)."""
    import cv2

    g = to_gray(load_image(face).bgr if isinstance(face, (str, os.PathLike)) else face, channels)
    if g.shape == (INPUT_SIZE, INPUT_SIZE):
        return g
    interp = cv2.INTER_AREA if min(g.shape) > INPUT_SIZE else cv2.INTER_LINEAR
    return cv2.resize(g, (INPUT_SIZE, INPUT_SIZE), interpolation=interp)


class Recognizer:
    """Face detection + 7-emotion classification with a shipped (or given) ONNX model."""

    def __init__(self, model: str | os.PathLike | None = None, detector: str = "auto", min_face: int = 24,
                 threshold: float | None = None, max_faces: int | None = None, threads: int | None = None,
                 crop: CropSpec | None = None, max_side: int | None = 640, batch_size: int | None = None):
        """Load a model and a face detector (onnxruntime, CPU; no torch).

        Args:
            model: ``None`` or ``"default"`` (the accurate ensemble), ``"fast"`` (one network, for video),
                or the path of a ``.onnx`` file written by ``ferkit export``. ``ferkit models`` lists the
                shipped ones. A ``.pt`` checkpoint is refused with the export command to run. A Keras model
                (``.h5``, ``.keras``, or the ``.json`` beside its weights) is converted once to ferkit's
                ONNX contract and cached (:mod:`ferkit.keras`; needs ``pip install 'ferkit[keras]'``).
            detector: ``"auto"`` (the best installed), a detector name (``ferkit.faces.list_detectors()``
                lists them, e.g. ``"dlib"``, ``"haar"``), or ``"full"``: no detection, the whole image is
                one face (for inputs that are face crops already).
            min_face: smallest face side, in original-image pixels, that the detector reports.
            threshold: detector score threshold in the detector's units; ``None``: the detector's own.
            max_faces: keep at most this many faces per image (best first); ``None``: all.
            threads: onnxruntime intra-op threads; ``None``: the physical cores (:mod:`ferkit.session`).
            crop: how a detector box becomes the 48x48 model input (:class:`ferkit.faces.CropSpec`);
                ``None``: the detector's tuned framing.
            max_side: photos are scaled so that the longer side is at most this for detection (boxes are
                always reported in original pixels); ``None``: never scaled.
            batch_size: faces per inference call in :meth:`predict_arrays` / :meth:`classify_batch`;
                ``None``: about ``CHUNK_INPUTS`` network inputs (faces x the model's test-time views).

        Raises:
            FileNotFoundError: ``model`` is neither a shipped name nor a file.
            ValueError: the file is not a ferkit ONNX model (wrong input shape or labels), or a checkpoint.
            ferkit.faces.DetectorUnavailable: the detector's package is not installed (the message says
                what to install).
        """
        import onnxruntime as ort

        from .session import session_options

        self.model_path = _resolve_model(model)
        so = session_options(threads)
        try:
            self.session = ort.InferenceSession(str(self.model_path), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ValueError(f"{self.model_path}: cannot load ONNX model ({type(e).__name__}: {e})") from e
        self._check_contract()
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size) if batch_size else max(1, CHUNK_INPUTS // self.views_per_face)
        self.detector = create_detector(detector, min_face=min_face, threshold=threshold, max_faces=max_faces,
                                        max_side=max_side)
        self.crop = crop if crop is not None else self.detector.crop

    # ------------------------------------------------------------------ model

    def _check_contract(self) -> None:
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        if len(ins) != 1 or list(ins[0].shape[1:]) != [1, INPUT_SIZE, INPUT_SIZE]:
            got = [(i.name, i.shape) for i in ins]
            raise ValueError(f"{self.model_path}: not a ferkit model (input {got}; "
                             f"expected one N x 1 x {INPUT_SIZE} x {INPUT_SIZE} input)")
        self._input = ins[0].name
        self._output = next((o.name for o in outs if o.name == "probs"), outs[0].name)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)
        if "labels" in meta:
            labels = tuple(json.loads(meta["labels"]))
            if labels != EMOTIONS:
                raise ValueError(f"{self.model_path}: labels {labels} differ from ferkit's {EMOTIONS}")
        # network inputs per face (test-time views); files exported before the 'views' key: from the mode
        tta = meta.get("tta", "none")
        self.views_per_face = int(meta.get("views", {"none": 1, "flip": 2, "scale-rot-wide": 22}.get(tta, 10)))

    def predict_arrays(self, faces48: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """(N, 48, 48) uint8 gray crops -> (N, 7) float32 probabilities; one inference call per
        ``batch_size`` crops (default: the recognizer's ``batch_size``), so peak memory does not grow with N."""
        x = np.asarray(faces48)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"expected (N, {INPUT_SIZE}, {INPUT_SIZE}) crops, got shape {x.shape}")
        n = len(x)
        if n == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        step = int(batch_size) if batch_size else self.batch_size
        if step < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.empty((n, len(EMOTIONS)), np.float32)
        for i in range(0, n, step):
            chunk = x[i:i + step].astype(np.float32)[:, None]
            out[i:i + len(chunk)] = self.session.run([self._output], {self._input: chunk})[0]
        return out

    # ------------------------------------------------------------------ crops

    def classify(self, face: ImageInput, channels: str = "bgr") -> Prediction:
        """One face crop (path, PIL image or uint8 array; any size, gray/RGB/BGR) -> Prediction."""
        return Prediction.from_probs(self.predict_arrays(to_face48(face, channels)[None])[0])

    def classify_batch(self, faces: Sequence[ImageInput], channels: str = "bgr",
                       batch_size: int | None = None) -> list[Prediction]:
        """Many face crops -> predictions, one inference call per ``batch_size`` faces (default: the
        recognizer's ``batch_size``)."""
        if len(faces) == 0:
            return []
        x = np.stack([to_face48(f, channels) for f in faces])
        return [Prediction.from_probs(p) for p in self.predict_arrays(x, batch_size)]

    # ------------------------------------------------------------------ photos

    def detect_boxes(self, bgr: np.ndarray) -> list[Detection]:
        """Face boxes only: [(box, score), ...] best first, for a BGR (or gray) array of any dtype."""
        return self.detector.detect(to_array(bgr))

    def crop_faces(self, image: np.ndarray, boxes: Sequence) -> np.ndarray:
        """(N, 48, 48) FER2013-style crops for boxes (x, y, w, h) or (box, score) pairs in a BGR/gray array.

        The crop margin/shift is the detector's (``self.crop``). One rule for an input that is the face
        itself: a box covering the whole image (``--crop``, ``--detector full``) is resized whole, like
        :meth:`classify` (nothing is padded or cut); any other box, and any detection with landmarks (a
        close-up the CNN found on its second look), is cut as a square around it, aligned on its eyes when
        the detector's crop says so."""
        gray = to_gray(image)  # any dtype, the same rule as every other entry point (ferkit.images)
        if not len(boxes):
            return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
        whole = (0, 0, gray.shape[1], gray.shape[0])
        out = []
        for b in boxes:
            box, marks = _as_box(b), _landmarks(b)
            if box == whole and marks is None:
                out.append(to_face48(gray))
            else:
                out.append(crop_face(gray, box, self.crop, INPUT_SIZE, landmarks=marks))
        return np.stack(out)

    def classify_boxes(self, bgr: np.ndarray, boxes: Sequence) -> list[Prediction]:
        """Crop each box FER2013-style and classify them all in one batch."""
        crops = self.crop_faces(bgr, boxes)
        return [Prediction.from_probs(p) for p in self.predict_arrays(crops)]

    def locate(self, bgr: np.ndarray) -> tuple[list[Detection], np.ndarray, str]:
        """Detections, their (N, 48, 48) crops and the detector's name for a BGR/gray array.

        A tiny image (:func:`ferkit.faces.is_face_crop`) is one face taken whole, detector ``"crop"``."""
        if is_face_crop(bgr.shape):
            h, w = bgr.shape[:2]
            return [Detection((0, 0, int(w), int(h)), 1.0)], to_face48(bgr)[None], "crop"
        dets = self.detect_boxes(bgr)
        return dets, self.crop_faces(bgr, dets), self.detector.name

    def detect(self, image: ImageInput, channels: str = "bgr") -> list[Face]:
        """Every face in a photo (path, PIL image, or uint8 array: BGR unless channels="rgb", or gray).

        A file of more than :data:`ferkit.images.DECODE_MAX_PIXELS` is decoded at reduced size; boxes and
        landmarks are still in the file's pixels. Raises :class:`NonFiniteOutput` for a face the model gives
        NaN for."""
        if isinstance(image, (str, os.PathLike)):
            img = load_image(image)
            dets, crops, name = self.locate(img.bgr)
            dets = in_file_pixels(dets, img)
        else:
            dets, crops, name = self.locate(to_bgr(image, channels))
        probs = self.predict_arrays(crops)
        return [Face.build(d, p, name) for d, p in zip(dets, probs, strict=True)]

    def __repr__(self) -> str:
        return f"Recognizer(model={str(self.model_path)!r}, detector={self.detector!r})"


def in_file_pixels(dets: Sequence[Detection], img: DecodedImage) -> list[Detection]:
    """Detections found on ``img.bgr`` -> the same in the pixels of the file (``img.size``): unchanged for an
    image decoded at full size, scaled up (and clipped to the file) for one decoded at reduced size."""
    if not img.reduced:
        return list(dets)
    W, H = img.size
    out = []
    for d in dets:
        x, y, w, h = d.box
        x0, y0 = img.to_original(x, y)
        x1, y1 = img.to_original(x + w, y + h)
        x0, y0, x1, y1 = max(0, round(x0)), max(0, round(y0)), min(W, round(x1)), min(H, round(y1))
        marks = None if d.landmarks is None else tuple(
            tuple(round(v, 1) for v in img.to_original(px, py)) for px, py in d.landmarks)
        out.append(Detection((x0, y0, max(1, x1 - x0), max(1, y1 - y0)), d.score, marks))
    return out


def _landmarks(b):
    return getattr(b, "landmarks", None)


def _as_box(b) -> Box:
    if isinstance(b, Detection) or (isinstance(b, (tuple, list)) and len(b) == 2):
        b = b[0]
    if hasattr(b, "box"):
        b = b.box
    x, y, w, h = (int(round(float(v))) for v in b)
    if w < 1 or h < 1:
        raise ValueError(f"face box {(x, y, w, h)} has no area")
    return (x, y, w, h)
