"""Annotated copies (issue 20, item 18): a face crop's copy is scaled up and its label and bars are drawn beside
the face, not over it; video frames keep their size. Real FER2013 crops and a real photo."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferkit.cli import main
from ferkit.emotions import COLORS_BGR
from ferkit.recognizer import Recognizer
from ferkit.render import MIN_SIDE, annotate_image, draw_faces

ASSETS = Path(__file__).parent / "assets"
FER = Path(__file__).parents[1].parent / "shared" / "fer2013"


@pytest.fixture(scope="module")
def crop_path() -> Path:
    files = sorted((FER / "test" / "surprise").glob("PrivateTest_*.jpg"))
    if not files:
        pytest.skip(f"no FER2013 faces under {FER}")
    return files[0]


def test_the_annotated_copy_of_a_face_crop_shows_the_face_and_its_label(crop_path, tmp_path):
    """The 48 x 48 copy was covered by the 7-row bar panel and its label was never drawn."""
    out_dir, rows = tmp_path / "out", tmp_path / "rows.csv"
    assert main(["predict", str(crop_path), "--model", "fast", "--out", str(out_dir), "--csv", str(rows),
                 "-q", "--no-progress"]) == 0
    (row,) = list(csv.DictReader(rows.open()))
    (copy,) = out_dir.rglob("*.jpg")
    got = cv2.imread(str(copy))
    src = cv2.imread(str(crop_path))
    S = MIN_SIDE  # the face, scaled up, at the top left; the rest is the strips that hold label and bars
    assert got.shape[0] > S and got.shape[1] > S, got.shape
    face = cv2.resize(src, (S, S), interpolation=cv2.INTER_CUBIC).astype(int)
    inner = (slice(8, S - 8), slice(8, S - 8))  # inside the box outline
    assert np.abs(got[inner].astype(int) - face[inner]).mean() < 3  # only JPEG noise: nothing drawn on the face
    colour = np.array(COLORS_BGR[row["label"]])
    below = got[S:, :].astype(int)
    caption = (np.abs(below - colour).sum(2) < 60)
    assert caption.sum() > 200, "no caption in the label's colour below the face"
    ys, xs = np.nonzero(caption)
    inside = below[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert (inside.sum(2) < 150).sum() > 30, "no dark text on the caption"
    right = got[:S, S:].astype(int)
    assert (right.max(2) > 150).sum() > 100, "no bars beside the face"


def test_video_frames_keep_their_size_and_photos_are_unchanged():
    rec = Recognizer(model="fast")
    photo = cv2.imread(str(ASSETS / "astronaut.jpg"))
    faces = rec.detect(photo)
    assert faces
    np.testing.assert_array_equal(annotate_image(photo, faces), draw_faces(photo, faces))  # room beside the face
    crop = cv2.cvtColor(cv2.resize(photo[40:140, 130:210], (48, 48)), cv2.COLOR_BGR2GRAY)
    faces = rec.detect(crop)
    assert draw_faces(crop, faces).shape == (48, 48, 3)  # a frame stays a frame
    assert annotate_image(crop, faces).shape[0] > MIN_SIDE


def test_boxes_in_file_pixels_are_drawn_on_a_reduced_image():
    """predict draws on an image decoded at reduced size: ``scale`` = its pixels per pixel of the file."""
    from ferkit.faces import Detection

    rec = Recognizer(model="fast")
    photo = cv2.imread(str(ASSETS / "astronaut.jpg"))
    big = cv2.resize(photo, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    (f,) = rec.detect(big)  # in the pixels of the 2x "file"
    half = Detection(tuple(round(v / 2) for v in f.box), f.score, tuple((x / 2, y / 2) for x, y in f.landmarks))
    np.testing.assert_array_equal(annotate_image(photo, [f], scale=0.5), draw_faces(photo, [(half, f.prediction)]))
