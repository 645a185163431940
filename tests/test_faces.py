"""Face detectors and FER2013-style cropping on real photos (tests/assets) and real FER2013 crops."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferkit.faces import CropSpec, DetectorUnavailable, create_detector, crop_face, list_detectors, square_box
from ferkit.images import read_image

ASSETS = Path(__file__).parent / "assets"
FER = Path(__file__).parents[1].parent / "shared" / "fer2013"
HAS_DLIB = importlib.util.find_spec("dlib") is not None
DETECTORS = ["haar", "centerface"] + (["dlib"] if HAS_DLIB else [])
# the astronaut's face in tests/assets/astronaut.jpg (384x384), checked by eye: x 125..210, y 45..135
FACE_REGION = (125, 45, 210, 135)


def _iou(a, b):
    ax0, ay0, ax1, ay1 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx0, by0, bx1, by1 = b
    iw, ih = max(0, min(ax1, bx1) - max(ax0, bx0)), max(0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter)


def _montage():
    """The coffee photo enlarged, with the astronaut's face pasted three times at three sizes."""
    astro = read_image(ASSETS / "astronaut.jpg")
    x0, y0, x1, y1 = 110, 30, 225, 150
    face = astro[y0:y1, x0:x1]
    canvas = cv2.resize(read_image(ASSETS / "coffee.jpg"), (900, 600))
    spots = [(40, 60, 1.0), (330, 220, 1.6), (680, 80, 1.3)]
    for x, y, s in spots:
        f = cv2.resize(face, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
        canvas[y:y + f.shape[0], x:x + f.shape[1]] = f
    return canvas, spots, face.shape


def test_list_and_unknown_names():
    d = list_detectors()
    assert {"haar", "full", "auto", "dlib", "centerface"} <= set(d)
    assert d["haar"]["available"] and d["full"]["available"]
    assert d["dlib"]["available"] == HAS_DLIB
    with pytest.raises(ValueError, match="unknown detector 'nope'.*haar"):
        create_detector("nope")
    auto = create_detector("auto")
    assert auto.name == "centerface"  # shipped, so always the default


@pytest.mark.skipif(HAS_DLIB, reason="dlib is installed")
def test_dlib_missing_gives_install_hint():
    with pytest.raises(DetectorUnavailable, match=r"ferkit\[dlib\]"):
        create_detector("dlib")


@pytest.mark.parametrize("name", DETECTORS)
def test_finds_the_face_in_a_real_photo(name):
    img = read_image(ASSETS / "astronaut.jpg")
    dets = create_detector(name).detect(img)
    assert len(dets) == 1, dets
    assert _iou(dets[0].box, FACE_REGION) > 0.4, dets[0]
    # gray input gives the same answer as BGR (the CNN sees colour: nearly the same box)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    (g,) = create_detector(name).detect(gray)
    if name == "centerface":
        x, y, w, h = dets[0].box
        assert _iou(g.box, (x, y, x + w, y + h)) > 0.9, (g, dets[0])
    else:
        assert g.box == dets[0].box


@pytest.mark.parametrize("name", DETECTORS)
def test_no_face_in_a_photo_without_one(name):
    assert create_detector(name).detect(read_image(ASSETS / "coffee.jpg")) == []


@pytest.mark.parametrize("name", DETECTORS)
def test_several_faces_min_face_and_max_faces(name):
    canvas, spots, (fh, fw, _) = _montage()
    dets = create_detector(name).detect(canvas)
    assert len(dets) == 3, dets
    centres = sorted((d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2) for d in dets)
    expected = sorted((x + fw * s / 2, y + fh * s / 2) for x, y, s in spots)
    for (cx, cy), (ex, ey) in zip(centres, expected, strict=True):
        assert abs(cx - ex) < 40 and abs(cy - ey) < 40
    scores = [d.score for d in dets]
    assert scores == sorted(scores, reverse=True)
    # max_faces keeps the best-scored ones
    top = create_detector(name, max_faces=2).detect(canvas)
    assert [d.box for d in top] == [d.box for d in dets[:2]]
    # min_face removes faces smaller than it (sizes are in original pixels)
    largest = max(max(d.box[2], d.box[3]) for d in dets)
    for m in (largest // 2, 2 * largest):
        kept = create_detector(name, min_face=m).detect(canvas)
        assert all(max(d.box[2], d.box[3]) >= m for d in kept)
    assert create_detector(name, min_face=2 * largest).detect(canvas) == []
    # threshold above every score drops everything
    assert create_detector(name, threshold=max(scores) + 1).detect(canvas) == []


@pytest.mark.parametrize("name", DETECTORS)
def test_boxes_in_original_pixels_for_big_images(name):
    img = read_image(ASSETS / "astronaut.jpg")
    small = create_detector(name).detect(img)[0].box
    big_img = cv2.resize(img, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 1536 px, detected at 640
    big = create_detector(name).detect(big_img)[0].box
    for s, b in zip(small, big, strict=True):
        assert abs(b - 4 * s) <= 4 * 6, (small, big)


@pytest.mark.parametrize("name", DETECTORS)
def test_detectors_are_thread_safe(name):
    det = create_detector(name)
    canvas, _, _ = _montage()
    imgs = [read_image(ASSETS / "astronaut.jpg"), canvas, read_image(ASSETS / "coffee.jpg")] * 4
    expected = [det.detect(im) for im in imgs]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(det.detect, imgs))
    assert got == expected


def test_full_detector_and_bad_input():
    img = read_image(ASSETS / "coffee.jpg")
    (d,) = create_detector("full").detect(img)
    assert d.box == (0, 0, img.shape[1], img.shape[0])
    with pytest.raises(ValueError, match="uint8"):
        create_detector("haar").detect(img.astype(np.float32))
    with pytest.raises(ValueError, match="min_face"):
        create_detector("haar", min_face=0)


def test_square_box_and_crop_geometry():
    assert square_box((10, 20, 40, 60)) == (0, 20, 60)  # square on the longer side, same centre
    x0, y0, side = square_box((100, 100, 50, 50), CropSpec(margin=0.1, shift=0.1))
    assert side == 60 and x0 == 95 and y0 == 100
    fer = cv2.imread(str(next((FER / "test" / "happy").glob("PublicTest_*.jpg"))), cv2.IMREAD_GRAYSCALE)
    assert fer is not None and fer.shape == (48, 48)
    # the full box of a 48x48 FER crop gives back the crop itself
    np.testing.assert_array_equal(crop_face(fer, (0, 0, 48, 48)), fer)
    # a box sticking out of the image: padded by replicating the border, still 48x48
    out = crop_face(fer, (-24, -24, 48, 48))
    assert out.shape == (48, 48)
    np.testing.assert_array_equal(out[24:, 24:], cv2.resize(fer[:24, :24], (24, 24)))
    assert (out[:24, :24] == fer[0, 0]).all()
    with pytest.raises(ValueError, match="outside"):
        crop_face(fer, (100, 100, 10, 10))
