"""Recognizer on the real shipped ONNX models, real FER2013 crops and real photos (no mocks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ferkit.emotions import EMOTIONS
from ferkit.images import ImageError
from ferkit.recognizer import Face, Prediction, Recognizer

ASSETS = Path(__file__).parent / "assets"
FER = Path(__file__).parents[1].parent / "shared" / "fer2013"


@pytest.fixture(scope="module")
def rec():
    return Recognizer(detector="haar")


def _fer_public(n_per_class=25):
    out = []
    for i, emo in enumerate(EMOTIONS):
        files = sorted((FER / "test" / emo).glob("PublicTest_*.jpg"))[:n_per_class]
        out += [(f, i) for f in files]
    return out


def test_runtime_never_imports_torch():
    code = (
        "import sys, ferkit, ferkit.recognizer, ferkit.faces, ferkit.render, ferkit.images, ferkit.cli\n"
        "from ferkit.recognizer import Recognizer\n"
        f"faces = Recognizer().detect({str(ASSETS / 'astronaut.jpg')!r})\n"
        "assert len(faces) == 1\n"
        "from ferkit import cli\n"
        f"rc = cli.main(['predict', {str(ASSETS)!r}, '-q', '--no-progress'])\n"
        "assert rc == 0, rc\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("ok")


def test_accuracy_on_fer2013_crops_by_path(rec):
    items = _fer_public()
    preds = rec.classify_batch([f for f, _ in items])
    acc = np.mean([p.label == EMOTIONS[y] for p, (_, y) in zip(preds, items, strict=True)])
    assert acc > 0.5, acc  # chance is 1/7; the shipped model scores about 0.7 on the official test sets


def test_prediction_contract(rec):
    f = sorted((FER / "test" / "happy").glob("PublicTest_*.jpg"))[0]
    p = rec.classify(f)
    assert isinstance(p, Prediction)
    assert p.probs.shape == (7,) and p.probs.dtype == np.float32
    assert abs(float(p.probs.sum()) - 1) < 1e-4 and (p.probs >= 0).all()
    assert p.label == EMOTIONS[int(np.argmax(p.probs))]
    assert p.confidence == pytest.approx(float(p.probs.max()))
    d = p.as_dict()
    assert list(d["probs"]) == list(EMOTIONS) and d["label"] == p.label


def test_same_face_in_every_input_form(rec):
    f = sorted((FER / "test" / "surprise").glob("PublicTest_*.jpg"))[3]
    ref = rec.classify(f)
    gray = np.asarray(Image.open(f).convert("L"))
    forms = {
        "pil": Image.open(f),
        "pil-rgb": Image.open(f).convert("RGB"),
        "gray": gray,
        "gray-hw1": gray[:, :, None],
        "bgr": np.repeat(gray[:, :, None], 3, axis=2),
        "float01": gray.astype(np.float32) / 255.0,
    }
    for name, x in forms.items():
        np.testing.assert_allclose(rec.classify(x).probs, ref.probs, atol=2e-3, err_msg=name)
    # any size: an upscaled copy gives (nearly) the same answer
    big = cv2.resize(gray, (192, 192), interpolation=cv2.INTER_CUBIC)
    assert rec.classify(big).label == ref.label


def test_channel_order_is_explicit(rec):
    rgb = np.asarray(Image.open(ASSETS / "astronaut.jpg").convert("RGB"))
    crop = rgb[45:135, 125:210]
    a = rec.classify(crop, channels="rgb")
    b = rec.classify(np.ascontiguousarray(crop[:, :, ::-1]))  # BGR is the default
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)
    with pytest.raises(ImageError, match="channels"):
        rec.classify(crop, channels="xyz")


def test_batch_is_one_inference_call_and_matches_singles(rec):
    items = _fer_public(3)
    files = [f for f, _ in items]
    singles = [rec.classify(f) for f in files]

    class Counting:  # wraps the real session to count run() calls
        def __init__(self, s):
            self.s, self.calls, self.sizes = s, 0, []

        def run(self, out, feed):
            self.calls += 1
            self.sizes.append(len(next(iter(feed.values()))))
            return self.s.run(out, feed)

    real = rec.session
    rec.session = Counting(real)
    try:
        batch = rec.classify_batch(files)
        assert rec.session.calls == 1 and rec.session.sizes == [len(files)]
    finally:
        rec.session = real
    for s, b in zip(singles, batch, strict=True):
        np.testing.assert_allclose(s.probs, b.probs, atol=1e-5)
    assert rec.classify_batch([]) == []


def test_detect_real_photo(rec):
    faces = rec.detect(ASSETS / "astronaut.jpg")
    assert len(faces) == 1
    f = faces[0]
    assert isinstance(f, Face)
    x, y, w, h = f.box
    assert 110 < x + w / 2 < 220 and 40 < y + h / 2 < 140
    assert f.label == "happy"  # a broad smile
    d = f.as_dict()
    assert set(d) == {"box", "score", "label", "confidence", "probs", "landmarks", "detector"}
    assert rec.detect(ASSETS / "coffee.jpg") == []
    # detect_boxes + classify_boxes is what detect does
    bgr = cv2.imread(str(ASSETS / "astronaut.jpg"))
    boxes = rec.detect_boxes(bgr)
    (p,) = rec.classify_boxes(bgr, boxes)
    np.testing.assert_allclose(p.probs, f.probs, atol=1e-5)
    # the same photo given as RGB numpy and as PIL
    rgb = bgr[:, :, ::-1].copy()
    assert rec.detect(rgb, channels="rgb")[0].box == f.box
    assert rec.detect(Image.open(ASSETS / "astronaut.jpg"))[0].box == f.box


def test_exif_orientation_is_honoured(rec, tmp_path):
    img = Image.open(ASSETS / "astronaut.jpg")
    upright = rec.detect(img)[0]
    # store the pixels rotated, with an EXIF tag saying how to turn them upright (as phones do)
    rotated = img.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "sideways.jpg"
    rotated.save(p, exif=exif, quality=95)
    faces = rec.detect(p)
    assert len(faces) == 1
    for a, b in zip(faces[0].box, upright.box, strict=True):
        assert abs(a - b) <= 6
    assert faces[0].label == upright.label


def test_models_and_errors(tmp_path):
    fast = Recognizer(model="fast", detector="haar")
    assert fast.model_path.name == "ferkit-fast.onnx"
    assert Recognizer(model=str(fast.model_path), detector="full").detector.name == "full"
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        Recognizer(model=tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx"):
        Recognizer(model=junk)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff truncated")
    with pytest.raises(ImageError, match="bad.jpg"):
        fast.classify(bad)
    with pytest.raises(ImageError, match="shape"):
        fast.classify(np.zeros((4, 4, 5), np.uint8))


def test_chunked_prediction_equals_one_call():
    """predict_arrays / classify_batch run in chunks (bounded memory): same answers as one call."""
    from ferkit.recognizer import CHUNK_INPUTS

    r = Recognizer("fast", detector="haar", threads=1)
    assert r.batch_size == CHUNK_INPUTS // r.views_per_face and r.views_per_face == 1
    d = Recognizer(detector="haar", threads=1)  # the default model: several views per face
    assert d.views_per_face > 1 and d.batch_size == max(1, CHUNK_INPUTS // d.views_per_face)
    items = _fer_public(6)
    x = np.stack([np.asarray(Image.open(f).convert("L")) for f, _ in items])
    whole = r.predict_arrays(x, batch_size=len(x))
    sizes = []
    real = r.session

    class Counting:
        def run(self, out, feed):
            sizes.append(len(next(iter(feed.values()))))
            return real.run(out, feed)

    r.session = Counting()
    try:
        chunked = r.predict_arrays(x, batch_size=10)
        assert sizes == [10, 10, 10, 10, 2]
        sizes.clear()
        r.batch_size = 16  # the recognizer's own default chunk, overridable
        preds = r.classify_batch([f for f, _ in items])
        assert sizes == [16, 16, 10]
    finally:
        r.session = real
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    np.testing.assert_allclose(np.stack([p.probs for p in preds]), whole, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        Recognizer("fast", detector="haar", batch_size=0)


def test_threads_default_to_physical_cores():
    import os

    from ferkit.session import physical_cores, session_options

    n = physical_cores()
    assert 1 <= n <= len(os.sched_getaffinity(0))
    assert session_options().intra_op_num_threads == n and session_options(3).intra_op_num_threads == 3
