"""One input path for every image-taking method (issue 14, defects 8, 10, 11), on real FER2013 faces and a real
photo, plus hypothesis properties of to_bgr / to_gray / to_array / cropping over dtypes, shapes and sizes."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ferkit.cli import main
from ferkit.emotions import EMOTIONS
from ferkit.faces import crop_face
from ferkit.images import ImageError, to_array, to_bgr, to_gray
from ferkit.recognizer import Recognizer, to_face48

ASSETS = Path(__file__).parent / "assets"
FER = Path(__file__).parents[1].parent / "shared" / "fer2013"


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    return Recognizer(model="fast", detector="haar")


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return cv2.imread(str(sorted((FER / "test" / "happy").glob("PrivateTest_*.jpg"))[0]), cv2.IMREAD_GRAYSCALE)


# --------------------------------------------------------------------------- defect 8


def test_crop_and_full_detector_agree_on_non_square_faces(tmp_path, face):
    """A 200x100 face crop: --crop squashed it, --detector full padded it (happy 0.93 vs 0.31)."""
    wide = cv2.resize(face, (200, 100), interpolation=cv2.INTER_CUBIC)
    tall = cv2.resize(face, (90, 180), interpolation=cv2.INTER_CUBIC)
    d = tmp_path / "crops"
    d.mkdir()
    cv2.imwrite(str(d / "wide.png"), wide)
    cv2.imwrite(str(d / "tall.png"), tall)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    common = ["--model", "fast", "--no-progress", "-q"]
    assert main(["predict", str(d), "--crop", "--csv", str(a), *common]) == 0
    assert main(["predict", str(d), "--detector", "full", "--csv", str(b), *common]) == 0
    ra, rb = list(csv.DictReader(a.open())), list(csv.DictReader(b.open()))
    for x, y in zip(ra, rb, strict=True):
        np.testing.assert_allclose([float(x[e]) for e in EMOTIONS], [float(y[e]) for e in EMOTIONS], atol=1e-5)
    full = Recognizer(model="fast", detector="full")
    (f,) = full.detect(wide)
    np.testing.assert_allclose(f.probs, full.classify(wide).probs, atol=1e-5)  # the API: same rule


# --------------------------------------------------------------------------- defect 10


def test_every_method_normalises_float_and_gray_input(rec):
    bgr = cv2.imread(str(ASSETS / "astronaut.jpg"))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    as_float = gray.astype(np.float32) / 255.0  # a 0..1 float image: angry 0.63 before, happy 0.93 as uint8
    boxes = rec.detect_boxes(gray)
    assert boxes and rec.detect_boxes(as_float) == boxes
    ref = rec.classify_boxes(gray, boxes)
    for img in (as_float, as_float.astype(np.float64), gray.astype(np.uint16) * 257, gray[:, :, None]):
        got = rec.classify_boxes(img, boxes)
        assert [p.label for p in got] == [p.label for p in ref]
        np.testing.assert_allclose(got[0].probs, ref[0].probs, atol=0.02)
        np.testing.assert_array_equal(rec.crop_faces(img, boxes).shape, (len(boxes), 48, 48))
    np.testing.assert_allclose(rec.detect(as_float)[0].probs, ref[0].probs, atol=0.02)


# --------------------------------------------------------------------------- defect 11


def test_signed_integers_clip_at_zero_never_wrap():
    a = np.array([[-100, 0, 500, 1000]], np.int16)
    np.testing.assert_array_equal(to_gray(a), [[0, 0, 128, 255]])  # was [230, 0, 128, 255]
    np.testing.assert_array_equal(to_bgr(a)[..., 0], [[0, 0, 128, 255]])
    np.testing.assert_array_equal(to_gray(np.array([[-5, 7, 255]], np.int32)), [[0, 7, 255]])


def test_signed_image_of_a_real_face_keeps_its_order(face):
    centred = face.astype(np.int16) - 128  # a signed image: dark pixels are negative
    g = to_gray(centred)
    assert g[face < 128].max() == 0  # clipped to black, not wrapped to bright
    bright = face >= 128
    np.testing.assert_array_equal(np.argsort(g[bright], kind="stable"), np.argsort(face[bright], kind="stable"))


# --------------------------------------------------------------------------- properties

_SIDES = st.sampled_from([1, 2, 3, 47, 48, 49, 300])
_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int16, np.int32, np.int64, np.float32, np.float64, np.bool_])


@st.composite
def images(draw):
    dtype = draw(_DTYPES)
    if draw(st.booleans()):  # a long thin strip up to 10,000 px
        h, w = (draw(st.integers(1, 3)), 10_000) if draw(st.booleans()) else (10_000, draw(st.integers(1, 3)))
    else:
        h, w = draw(_SIDES), draw(_SIDES)
    shape = draw(st.sampled_from([(h, w), (h, w, 1), (h, w, 3), (h, w, 4)]))
    if np.dtype(dtype).kind == "f":
        elems = st.floats(-2.0, 300.0, width=32)
    elif dtype is np.bool_:
        elems = st.booleans()
    else:
        info = np.iinfo(dtype)
        elems = st.integers(max(info.min, -70_000), min(info.max, 70_000))
    fill = draw(elems)
    a = np.full(shape, fill, dtype=dtype)
    # a few random values over the constant fill (cheap for 10,000-px images, still mixed)
    for _ in range(draw(st.integers(0, 4))):
        idx = tuple(draw(st.integers(0, n - 1)) for n in shape)
        a[idx] = draw(elems)
    return a


@settings(max_examples=50, deadline=None)
@given(a=images(), rgb=st.booleans())
def test_image_input_path_properties(a, rgb):
    ch = "rgb" if rgb else "bgr"
    h, w = a.shape[:2]
    bgr, gray, arr = to_bgr(a, ch), to_gray(a, ch), to_array(a, ch)
    assert bgr.dtype == gray.dtype == arr.dtype == np.uint8
    assert bgr.shape == (h, w, 3) and gray.shape == (h, w) and bgr.flags.c_contiguous and gray.flags.c_contiguous
    assert arr.shape == ((h, w) if a.ndim == 2 or a.shape[2] == 1 else (h, w, 3))
    if a.ndim == 3 and a.shape[2] == 3 and a.dtype != np.bool_:
        np.testing.assert_array_equal(to_bgr(a, "rgb"), to_bgr(a, "bgr")[:, :, ::-1])
    if a.ndim == 2 or a.shape[2] == 1:  # gray: the mapping is monotone (nothing wraps around)
        src = (a[:, :, 0] if a.ndim == 3 else a).astype(np.float64).ravel()
        out = gray.astype(np.int32).ravel()
        order = np.argsort(src, kind="stable")
        assert (np.diff(out[order]) >= 0).all()
        np.testing.assert_array_equal(bgr[:, :, 0], gray)
    f48 = to_face48(a, ch)
    assert f48.shape == (48, 48) and f48.dtype == np.uint8
    box = (w // 4, h // 4, max(1, w // 2), max(1, h // 2))
    assert crop_face(gray, box).shape == (48, 48)


@settings(max_examples=20, deadline=None)
@given(a=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=3, min_side=0, max_side=4),
                    elements=st.sampled_from([np.nan, np.inf, 0.5])))
def test_bad_arrays_raise_image_error(a):
    bad_shape = a.size == 0 or (a.ndim == 3 and a.shape[2] not in (1, 3, 4))
    if not bad_shape and np.isfinite(a).all():
        return
    with pytest.raises(ImageError):
        to_bgr(a)
    with pytest.raises(ImageError):
        to_gray(a)


def test_recognizer_methods_share_the_input_path(rec, face, tmp_path):
    """classify / classify_boxes / crop_faces / detect give one answer for one face in any dtype."""
    shutil.copy(sorted((FER / "test" / "happy").glob("PrivateTest_*.jpg"))[0], tmp_path / "f.jpg")
    ref = rec.classify(tmp_path / "f.jpg").probs
    whole = [(0, 0, 48, 48)]
    for img in (face, face / 255.0, face.astype(np.int32) * 4, face[:, :, None], np.repeat(face[:, :, None], 3, 2)):
        np.testing.assert_allclose(rec.classify(img).probs, ref, atol=0.02)
        np.testing.assert_allclose(rec.classify_boxes(img, whole)[0].probs, ref, atol=0.02)


# --------------------------------------------------------------------------- issue 20, item 12: values in files


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_float_tiff_with_one_non_finite_pixel_is_an_error_naming_the_file(bad, face, tmp_path):
    """It decoded to an all-black image (a NaN maximum scaled everything to NaN, cast to 0): "no face", 200."""
    from PIL import Image

    from ferkit.images import read_image

    a = face.astype(np.float32) / 255.0
    a[10, 10] = bad
    path = tmp_path / "bad.tif"
    Image.fromarray(a, "F").save(path)
    with pytest.raises(ImageError, match=r"bad\.tif: 1 of 2,304 pixel values are NaN or infinite"):
        read_image(path)
    rows = tmp_path / "rows.csv"
    assert main(["predict", str(path), "--csv", str(rows), "--model", "fast", "-q", "--no-progress"]) == 1
    (row,) = list(csv.DictReader(rows.open()))
    assert row["status"].startswith("error: ") and "NaN or infinite" in row["status"], row


def test_files_in_16_and_32_bit_modes_follow_the_array_rule(face, tmp_path):
    """One rule for files and arrays: negative values are black, so an all-negative float image is black (it
    came out inverted: scaled by a negative maximum), and a 32-bit file is not stretched to its maximum."""
    from PIL import Image

    from ferkit.images import read_image

    cases = {
        "neg.tif": -(face.astype(np.float32) + 1.0),  # every value below 0
        "signed.tif": face.astype(np.float32) / 127.5 - 1.0,  # -1..1: the dark half is black, the rest 0..1
        "int32.tif": face.astype(np.int32) - 128,  # mode I, max 127: was stretched to 255
        "u16.png": face.astype(np.uint16) * 257,  # mode I;16: scaled to its maximum, as arrays are
    }
    for name, arr in cases.items():
        Image.fromarray(arr).save(tmp_path / name)
        got = read_image(tmp_path / name)
        np.testing.assert_array_equal(got[:, :, 0], to_gray(arr), err_msg=name)
        np.testing.assert_array_equal(to_bgr(Image.open(tmp_path / name)), got, err_msg=name)
    assert read_image(tmp_path / "neg.tif").max() == 0
