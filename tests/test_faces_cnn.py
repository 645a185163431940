"""The shipped CNN face detector (CenterFace on onnxruntime), landmarks, alignment and tiny inputs, on real
photos (tests/assets, ../shared/webphotos-dev) and real FER2013 faces."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferkit.align import eye_angle
from ferkit.emotions import EMOTIONS
from ferkit.faces import CROP_MAX_SIDE, CropSpec, create_detector, crop_face
from ferkit.images import read_image

ASSETS = Path(__file__).parent / "assets"
SHARED = Path(__file__).parents[1].parent / "shared"
FER = SHARED / "fer2013"
WEB = SHARED / "webphotos-dev"


@pytest.fixture(scope="module")
def det():
    return create_detector("centerface")


def _inside(pt, box, slack=0.0):
    x, y, w, h = box
    return x - slack * w <= pt[0] <= x + w * (1 + slack) and y - slack * h <= pt[1] <= y + h * (1 + slack)


@pytest.mark.parametrize("name", ["astronaut.jpg", "camera.jpg"])
def test_finds_the_faces_in_the_assets_with_landmarks_in_the_box(det, name):
    img = read_image(ASSETS / name)
    (d,) = det.detect(img)
    assert 0.5 <= d.score <= 1.0
    assert len(d.landmarks) == 5
    assert all(_inside(p, d.box) for p in d.landmarks), d
    (le, re, nose, ml, mr) = d.landmarks
    # a frontal face: eyes above the nose above the mouth, left-hand points left of right-hand points
    assert le[0] < re[0] and ml[0] < mr[0]
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])
    assert det.detect(read_image(ASSETS / "coffee.jpg")) == []


def test_auto_is_the_cnn_and_faces_carry_landmarks():
    from ferkit.recognizer import Recognizer

    rec = Recognizer(model="fast")
    assert rec.detector.name == "centerface" and rec.crop.align
    (face,) = rec.detect(ASSETS / "astronaut.jpg")
    assert face.detector == "centerface" and len(face.landmarks) == 5
    d = face.as_dict()
    assert set(d["landmarks"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    assert d["detector"] == "centerface" and json.loads(json.dumps(d)) == d
    # a detector without landmarks gives None, and the JSON says null
    (haar,) = Recognizer(model="fast", detector="haar").detect(ASSETS / "astronaut.jpg")
    assert haar.landmarks is None and haar.as_dict()["landmarks"] is None


@pytest.mark.skipif(not WEB.is_dir(), reason=f"{WEB} (the development web photos) is not on this machine")
def test_finds_faces_in_real_web_photos(det):
    files = [f for e in ("angry", "happy", "neutral", "sad") for f in sorted((WEB / e).iterdir())[:5]]
    found = 0
    for f in files:
        img = read_image(f)
        if max(img.shape[:2]) <= CROP_MAX_SIDE:  # taken whole anyway; not a detection test
            continue
        dets = det.detect(img)
        found += bool(dets)
        for d in dets:
            assert all(_inside(p, d.box, slack=0.1) for p in d.landmarks), (f, d)
    assert found >= 18, f"faces found in {found} of {len(files)} photos"


@pytest.mark.parametrize("angle", [-20, 20])
def test_a_tilted_face_is_found_and_its_aligned_crop_is_upright(det, angle):
    img = read_image(ASSETS / "astronaut.jpg")
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    (ref,) = det.detect(img)
    spec = CropSpec(0.0, 0.0, align=True)
    upright = crop_face(gray, ref.box, spec, landmarks=ref.landmarks)
    m = cv2.getRotationMatrix2D((192, 192), angle, 1.0)
    tilted = cv2.warpAffine(img, m, (384, 384), borderMode=cv2.BORDER_REFLECT)
    (d,) = det.detect(tilted)
    tg = cv2.cvtColor(tilted, cv2.COLOR_BGR2GRAY)
    aligned = crop_face(tg, d.box, spec, landmarks=d.landmarks)
    plain = crop_face(tg, d.box, CropSpec(0.0, 0.0, align=False), landmarks=d.landmarks)

    def corr(a, b):
        return np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1]

    assert corr(aligned, upright) > corr(plain, upright) + 0.15
    # the detector itself sees the face in the aligned crop (enlarged, with context) nearly level
    big = crop_face(tg, d.box, CropSpec(0.25, 0.0, align=True), 192, landmarks=d.landmarks)
    (again,) = det.detect(cv2.copyMakeBorder(big, 48, 48, 48, 48, cv2.BORDER_REPLICATE))
    assert abs(eye_angle(again.landmarks)) < 10, again


def _group(size=120, pad=60):
    """One real FER2013 PublicTest face per emotion, upscaled to ``size`` px, on a gray canvas (2 rows)."""
    faces = [sorted((FER / "test" / e).glob("PublicTest_*.jpg"))[1] for e in EMOTIONS]
    canvas = np.full((2 * (size + pad), 4 * (size + pad)), 128, np.uint8)
    tiles = []
    for k, f in enumerate(faces):
        g = cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (size, size), interpolation=cv2.INTER_CUBIC)
        x, y = pad // 2 + (k % 4) * (size + pad), pad // 2 + (k // 4) * (size + pad)
        canvas[y:y + size, x:x + size] = g
        tiles.append((x, y, size, size))
    return canvas, tiles


def test_a_group_of_different_real_faces_gives_one_box_per_face(det):
    canvas, tiles = _group()
    dets = det.detect(canvas)
    assert len(dets) == len(tiles), dets
    owners = []
    for d in dets:
        cx, cy = d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2
        (k,) = [i for i, t in enumerate(tiles) if _inside((cx, cy), t)]
        owners.append(k)
    assert sorted(owners) == list(range(len(tiles)))


def test_a_48px_fer_image_is_one_face_without_crop_flag(tmp_path, capsys):
    from ferkit.cli import main

    src = sorted((FER / "test" / "happy").glob("PublicTest_*.jpg"))[0]
    rc = main(["predict", str(src), "--json", "--model", "fast", "--no-progress"])
    assert rc == 0
    (img,) = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    (row,) = img["faces"]  # one JSON object per image, its faces in Face.as_dict() form
    assert row["detector"] == "crop" and row["box"] == {"x": 0, "y": 0, "w": 48, "h": 48}
    assert row["landmarks"] is None and row["label"] in EMOTIONS
    # the same as classifying it as a crop
    rc = main(["predict", str(src), "--json", "--model", "fast", "--crop", "--no-progress"])
    ((crop_row,),) = [json.loads(s)["faces"] for s in capsys.readouterr().out.splitlines()]
    assert crop_row["probs"] == row["probs"]
    # just above the limit, the detector runs again (and says so)
    big = tmp_path / "big.png"
    g = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(big), cv2.copyMakeBorder(g, 0, 0, 0, CROP_MAX_SIDE + 1 - 48, cv2.BORDER_CONSTANT, value=0))
    rc = main(["predict", str(big), "--json", "--model", "fast", "--no-progress"])
    out = [f for s in capsys.readouterr().out.splitlines() for f in json.loads(s)["faces"]]
    assert all(r["detector"] == "centerface" for r in out)


def test_csv_and_annotated_image_show_landmarks(tmp_path):
    import csv

    from ferkit.cli import main

    rc = main(["predict", str(ASSETS / "astronaut.jpg"), "--csv", str(tmp_path / "f.csv"), "--annotate",
               str(tmp_path / "out"), "--model", "fast", "-q", "--no-bars"])
    assert rc == 0
    (row,) = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert row["detector"] == "centerface" and row["status"] == "ok"
    marks = [tuple(map(float, p.split(","))) for p in row["landmarks"].split()]
    assert len(marks) == 5
    box = tuple(int(row[k]) for k in "xywh")
    assert all(_inside(p, box) for p in marks)
    (annotated,) = (tmp_path / "out").rglob("astronaut.jpg")
    drawn = read_image(annotated).astype(int)
    orig = read_image(ASSETS / "astronaut.jpg").astype(int)
    for x, y in marks:  # a dot on every landmark
        assert np.abs(drawn[round(y), round(x)] - orig[round(y), round(x)]).sum() > 60


@pytest.mark.skipif(not WEB.is_dir(), reason=f"{WEB} (the development web photos) is not on this machine")
@pytest.mark.parametrize("name", ["neutral/train_istock1_175.jpg", "sad/valid_jif3923.jpg"])
def test_a_close_up_that_fills_the_photo_is_found_on_the_second_look(det, name):
    img = read_image(WEB / name)
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    assert det._run(rgb, 0) == []  # the first look (the photo as it is) sees no face: the face overflows it
    (d,) = det.detect(img)
    h, w = img.shape[:2]
    assert d.box[2] * d.box[3] > 0.6 * h * w  # the face is most of the photo
    (le, re, *_rest) = d.landmarks
    assert le[0] < re[0] and all(0 <= v < max(h, w) for v in (*le, *re))
