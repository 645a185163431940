"""Video defects of issue 14 (7, 9, 12) on real clips and frame folders made of FER2013 faces."""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_video import FER, background, fer_files, frames_in, paste_scene, read_gray  # noqa: E402

from ferkit.cli import main  # noqa: E402

pytestmark = pytest.mark.skipif(not (FER / "test").is_dir(), reason=f"FER2013 not found at {FER}")


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- defect 12


def test_max_faces_keeps_the_largest_face(tmp_path):
    """`--max-faces 1` says "the largest"; it used to keep the best-scoring one (here the smaller face)."""
    from ferkit.commands.video import DETECT_SIZE, MIN_FACE
    from ferkit.recognizer import Recognizer

    big = cv2.resize(read_gray(fer_files("happy")[0]), (200, 200), interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(read_gray(fer_files("happy")[4]), (100, 100), interpolation=cv2.INTER_CUBIC)
    frame = background((480, 300))
    frame[40:240, 30:230] = big[:, :, None]
    frame[100:200, 330:430] = small[:, :, None]
    dets = Recognizer(model="fast", min_face=MIN_FACE, max_side=DETECT_SIZE).detect_boxes(frame)
    assert len(dets) == 2 and dets[0].box[2] < dets[1].box[2], "precondition: the smaller face scores higher"
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"f{i}.png"), frame)
    out = tmp_path / "t.csv"
    assert main(["video", str(frames), "--max-faces", "1", "--csv", str(out), "--quiet"]) == 0
    rows = _rows(out)
    assert len(rows) == 3 and all(int(r["w"]) > 150 and int(r["x"]) < 100 for r in rows)


# --------------------------------------------------------------------------- defect 9


def test_unreadable_frame_keeps_index_and_time(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    face = paste_scene(read_gray(fer_files("happy")[0]))
    for i in range(6):
        cv2.imwrite(str(frames / f"frame{i}.png"), face)
    (frames / "frame2.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out, table, js = tmp_path / "o.avi", tmp_path / "t.csv", tmp_path / "s.json"
    assert main(["video", str(frames), "--fps", "10", "--out", str(out), "--csv", str(table),
                 "--json", str(js)]) == 0
    err = capsys.readouterr().err
    assert "1 unreadable frame(s)" in err and "frame 2" in err
    rows = _rows(table)
    assert [int(r["frame"]) for r in rows] == [0, 1, 3, 4, 5]  # frame 3 is still frame 3
    assert [r["time"] for r in rows] == ["0.000", "0.100", "0.300", "0.400", "0.500"]
    assert frames_in(out) == 6  # the video keeps its length
    import json

    assert json.loads(js.read_text())["unreadable_frames"] == [2]


def test_frame_folder_starting_with_a_bad_frame(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "0.jpg").write_bytes(b"nope")
    shutil.copy(fer_files("happy")[0], frames / "1.jpg")
    table = tmp_path / "t.csv"
    assert main(["video", str(frames), "--csv", str(table), "--min-face", "24", "--quiet"]) == 0
    assert "frame 0" in capsys.readouterr().err
    (frames / "1.jpg").write_bytes(b"nope too")
    assert main(["video", str(frames), "--quiet"]) == 2
    assert "none of its 2 image(s) could be decoded" in capsys.readouterr().err


# --------------------------------------------------------------------------- defect 7


def test_recording_lasts_as_long_as_the_capture_when_analysis_is_slow(tmp_path):
    """Frames dropped while analysing used to shorten the recording (0.7 s of video for 2 s captured)."""
    from ferkit.commands.webcam import _Session
    from ferkit.recognizer import Recognizer
    from ferkit.video import Pipeline, Tracker, open_source

    fps, seconds = 240.0, 1.0  # a fast camera: analysis (detector + int8 default, 1 thread) cannot keep up
    clip = tmp_path / "cam.avi"
    scene = paste_scene(read_gray(fer_files("happy")[0]), face_px=160)
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), fps, (scene.shape[1], scene.shape[0]))
    for k in range(int(fps * seconds)):
        w.write(np.roll(scene, k % 5, axis=1))
    w.release()
    source = open_source(clip)
    engine = Recognizer(model="default", min_face=80, max_side=320, threads=1)
    # what `ferkit webcam` does with a camera: newest frame only when behind, paced like a camera
    pipe = Pipeline(source, engine, Tracker(), drop_late=True, realtime=True).start()
    args = argparse.Namespace(out=str(tmp_path / "rec.avi"), csv=None, bars=True, duration=None)
    sess = _Session(args, pipe, source)
    try:
        while sess.drain(block=True):
            pass
    finally:
        sess.close(True)
    if not (pipe.dropped > 0 and sess.frames < fps * seconds):
        pytest.skip("this machine analyses faster than the 240 fps clip: nothing was dropped")
    assert abs(frames_in(tmp_path / "rec.avi") - fps * seconds) <= 3  # 1 s captured -> 1 s of video
    assert sess.repeated > 0


# --------------------------------------------------------------------------- write-path review


def test_snapshots_never_replace_each_other(tmp_path):
    """Two sessions saving snapshot 1 in the same second used to write one file over the other."""
    from ferkit.commands.webcam import _save_png

    img = paste_scene(read_gray(fer_files("happy")[0]))
    a = _save_png(img, tmp_path, 1)
    b = _save_png(cv2.flip(img, 1), tmp_path, 1)
    assert a != b and a.is_file() and b.is_file()
    np.testing.assert_array_equal(cv2.imread(str(a)), img)


def test_wrong_output_extension_fails_before_the_work(tmp_path, capsys):
    frames = tmp_path / "f"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), paste_scene(read_gray(fer_files("happy")[0])))
    assert main(["video", str(frames), "--csv", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "p.avi")]) == 2
    assert "--plot" in capsys.readouterr().err and not (tmp_path / "t.csv").exists()


# --------------------------------------------------------------------------- issue 20, item 10


def _clip50(path: Path) -> Path:
    """50 frames at 25 fps of a face over a textured background (mp4v or MJPG by extension)."""
    from conftest_video import still, write_clip

    return write_clip(path, [still(read_gray(fer_files("happy")[0]))], (320, 240), 25.0, 2.0, face_px=112)


def test_damaged_region_is_read_past_and_reported(tmp_path, capsys):
    """20 KB zeroed in the middle of a 50-frame mp4: reading used to stop at the first bad frame ("frames": 25,
    "unreadable_frames": [], exit 0). Now every frame keeps its place, the bad ones are listed."""
    import json

    clip = _clip50(tmp_path / "c.mp4")
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 20_000] = bytes(20_000)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    stops_at = frames_in(bad)  # what OpenCV reads up to its first failure
    assert stops_at < 50, "precondition: the zeroed bytes damage some frames"
    out, table, js = tmp_path / "o.avi", tmp_path / "t.csv", tmp_path / "s.json"
    assert main(["video", str(bad), "--out", str(out), "--csv", str(table), "--json", str(js),
                 "--min-face", "40"]) == 0
    doc = json.loads(js.read_text())
    unreadable = doc["unreadable_frames"]
    assert doc["frames"] == 50 and unreadable
    assert doc["frames_declared"] == 50
    assert unreadable and unreadable == list(range(unreadable[0], unreadable[-1] + 1))  # one damaged run
    assert unreadable[0] == stops_at and unreadable[-1] < 49  # frames after the damage were analysed
    assert doc["analysed_frames"] == 50 - len(unreadable)
    rows = _rows(table)
    assert {int(r["frame"]) for r in rows} <= set(range(50)) - set(unreadable)
    assert max(int(r["frame"]) for r in rows) > unreadable[-1]
    assert all(float(r["time"]) == pytest.approx(int(r["frame"]) / 25, abs=1e-3) for r in rows)
    assert frames_in(out) == 50  # the annotated copy keeps the length (the last good frame stands in)
    err = capsys.readouterr().err
    assert f"{len(unreadable)} unreadable frame(s)" in err and f"frame {unreadable[0]}" in err


def test_truncated_file_says_how_many_frames_it_lacks(tmp_path, capsys):
    """An AVI cut at 60 %: its header declares 50 frames; the run says how many could be read."""
    import json

    clip = _clip50(tmp_path / "c.avi")
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 6 // 10])
    assert main(["video", str(cut), "--json", str(tmp_path / "s.json"), "--min-face", "40", "--quiet"]) == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    err = capsys.readouterr().err
    assert f"declares 50 frames but only {doc['frames']} could be read" in err
    assert doc["frames_declared"] == 50 and 20 <= doc["frames"] < 50


def test_frames_counts_every_frame_with_every_n(tmp_path):
    """Without --out, frames between analysed ones are skipped undecoded; "frames" still counts them."""
    import json

    clip = _clip50(tmp_path / "c.mp4")
    js = tmp_path / "s.json"
    assert main(["video", str(clip), "--every", "3", "--json", str(js), "--min-face", "40", "--quiet"]) == 0
    doc = json.loads(js.read_text())
    assert doc["frames"] == 50 and doc["analysed_frames"] == 17  # frames 0, 3, ..., 48
