"""`ferkit predict` end to end on real photos and real FER2013 crops."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from ferkit.cli import main
from ferkit.emotions import EMOTIONS
from ferkit.recognizer import Recognizer

ASSETS = Path(__file__).parent / "assets"
FER = Path(__file__).parents[1].parent / "shared" / "fer2013"


def _folder(tmp_path):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    shutil.copy(ASSETS / "astronaut.jpg", d / "astronaut.jpg")
    shutil.copy(ASSETS / "coffee.jpg", d / "sub" / "coffee.jpg")
    (d / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (d / "notes.txt").write_text("not an image, not picked up from a folder")
    return d


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folder_csv_annotate_and_bad_file(tmp_path, capsys):
    d = _folder(tmp_path)
    out_csv, ann = tmp_path / "res.csv", tmp_path / "ann"
    rc = main(["predict", str(d), "--csv", str(out_csv), "--annotate", str(ann), "--detector", "haar",
               "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1  # one unreadable file: reported, skipped, signalled in the exit code
    assert "broken.png" in cap.err and "cannot decode" in cap.err
    assert "photos/astronaut.jpg" in cap.out and "happy" in cap.out  # the table
    rows = {r["file"]: r for r in _rows(out_csv)}
    assert set(rows) == {"photos/astronaut.jpg", "photos/sub/coffee.jpg", "photos/sub/broken.png"}
    a = rows["photos/astronaut.jpg"]
    assert a["status"] == "ok" and a["face"] == "0" and a["label"] == "happy"
    probs = np.array([float(a[e]) for e in EMOTIONS])
    assert abs(probs.sum() - 1) < 1e-3 and EMOTIONS[int(probs.argmax())] == a["label"]
    # the CSV agrees with the Python API
    (face,) = Recognizer(detector="haar").detect(ASSETS / "astronaut.jpg")
    assert (int(a["x"]), int(a["y"]), int(a["w"]), int(a["h"])) == face.box
    np.testing.assert_allclose(probs, face.probs, atol=1e-5)
    assert rows["photos/sub/coffee.jpg"]["status"] == "no face"
    assert rows["photos/sub/broken.png"]["status"].startswith("error:")
    # annotated copies: same size as the input, and actually drawn on
    src = cv2.imread(str(d / "astronaut.jpg"))
    drawn = cv2.imread(str(ann / "photos" / "astronaut.jpg"))
    assert drawn is not None and drawn.shape == src.shape
    assert np.abs(drawn.astype(int) - src.astype(int)).max() > 100
    assert (ann / "photos" / "sub" / "coffee.jpg").is_file()
    assert not list(ann.rglob("*.tmp"))


def test_json_lines_and_glob_of_crops(tmp_path, capsys):
    pattern = str(FER / "test" / "fear" / "PublicTest_1*.jpg")
    files = sorted(Path(p) for p in __import__("glob").glob(pattern))[:40]
    crops = tmp_path / "crops"
    crops.mkdir()
    for f in files:
        shutil.copy(f, crops / f.name)
    rc = main(["predict", str(crops / "*.jpg"), "--crop", "--json", "--batch-size", "16", "--model", "fast",
               "--no-progress"])
    assert rc == 0
    images = [json.loads(s) for s in capsys.readouterr().out.splitlines()]  # one object per image
    assert len(images) == len(files)
    assert all(r["schema"] == "ferkit.predict/1" and r["error"] is None and len(r["faces"]) == 1 for r in images)
    lines = [r["faces"][0] for r in images]
    assert all(r["face"] == 0 and r["box"] == {"x": 0, "y": 0, "w": 48, "h": 48} for r in lines)
    expected = Recognizer(model="fast", detector="full").classify_batch(sorted(crops.glob("*.jpg")))
    for r, p in zip(lines, expected, strict=True):
        assert r["label"] == p.label
        np.testing.assert_allclose([r["probs"][e] for e in EMOTIONS], p.probs, atol=1e-5)


def test_batch_size_does_not_change_results(tmp_path):
    crops = tmp_path / "c"
    crops.mkdir()
    for emo in EMOTIONS:
        for f in sorted((FER / "test" / emo).glob("PrivateTest_*.jpg"))[:5]:
            shutil.copy(f, crops / f"{emo}_{f.name}")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["predict", str(crops), "--crop", "-q", "--csv", str(a), "--batch-size", "3",
                 "--workers", "3", "--no-progress"]) == 0
    assert main(["predict", str(crops), "--crop", "-q", "--csv", str(b), "--batch-size", "64",
                 "--no-progress"]) == 0
    ra, rb = _rows(a), _rows(b)
    assert len(ra) == 35 and [r["file"] for r in ra] == [r["file"] for r in rb]
    for x, y in zip(ra, rb, strict=True):
        px, py = [float(x[e]) for e in EMOTIONS], [float(y[e]) for e in EMOTIONS]
        np.testing.assert_allclose(px, py, atol=1e-5)


def test_missing_inputs(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nothing-here.jpg"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "nothing-here.jpg" in err and "no such file" in err
    assert main(["predict", str(ASSETS / "astronaut.jpg"), "--detector", "bogus", "--no-progress"]) == 2
    assert "unknown detector 'bogus'" in capsys.readouterr().err
