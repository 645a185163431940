"""`ferkit video` end to end on real clips (FER2013 faces moving over a background), plus the tracker,
smoother and timeline on their own. Real onnxruntime, real detector, real video encoding."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_video import (  # noqa: E402
    FER,
    crossfade,
    face_positions,
    fer_files,
    paste_scene,
    pick_faces,
    read_gray,
    render_frames,
    still,
    write_clip,
)

from ferkit.cli import main  # noqa: E402
from ferkit.commands.video import DETECT_SIZE, MIN_FACE  # noqa: E402
from ferkit.emotions import EMOTIONS  # noqa: E402
from ferkit.video import LabelSmoother, Timeline, Tracker, iou, open_source  # noqa: E402

SIZE = (320, 240)
FPS = 15.0
FACE_PX = 96

pytestmark = pytest.mark.skipif(not (FER / "test").is_dir(), reason=f"FER2013 not found at {FER}")


@pytest.fixture(scope="module")
def engine():
    from ferkit.recognizer import Recognizer

    return Recognizer(min_face=MIN_FACE, max_side=DETECT_SIZE)  # what the command builds by default


@pytest.fixture(scope="module")
def clips(tmp_path_factory, engine):
    """Two clips, 3 s at 15 fps, 320x240: (a) two faces in their own lanes, one changing expression;
    (b) three faces the model finds ambiguous (top-2 probabilities within 0.1), for the smoothing test."""
    d = tmp_path_factory.mktemp("clips")
    neutral, happy = pick_faces(engine, "neutral", 1, FACE_PX), pick_faces(engine, "happy", 1, FACE_PX)
    surprise = pick_faces(engine, "surprise", 1, FACE_PX)
    faces = [crossfade(neutral[0], happy[0]), still(surprise[0])]
    two = write_clip(d / "two.mp4", faces, SIZE, FPS, 3.0, FACE_PX)
    ambiguous = []
    for emo in ("neutral", "sad", "fear"):
        for p in fer_files(emo)[:40]:
            g = read_gray(p)
            scene = paste_scene(g, FACE_PX)
            dets = engine.detect_boxes(scene)
            if len(dets) != 1:
                continue
            top2 = np.sort(engine.classify_boxes(scene, dets)[0].probs)[-2:]  # the crop the video uses
            if top2[1] - top2[0] < 0.1:
                ambiguous.append(g)
            if len(ambiguous) == 3:
                break
        if len(ambiguous) == 3:
            break
    assert len(ambiguous) == 3, "not enough ambiguous FER2013 faces for the smoothing clip"
    amb = write_clip(d / "ambiguous.mp4", [still(g) for g in ambiguous], SIZE, FPS, 3.0, FACE_PX, noise=6.0)
    return {"two": two, "ambiguous": amb, "frames": int(round(3.0 * FPS))}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n, size = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n += 1
        size = (f.shape[1], f.shape[0])
    cap.release()
    return n, size


def changes_per_second(rows: list[dict], column: str) -> float:
    """Label changes per second of track time, summed over tracks."""
    by_track: dict[str, list[dict]] = {}
    for r in rows:
        by_track.setdefault(r["track"], []).append(r)
    changes, seconds = 0, 0.0
    for rs in by_track.values():
        rs.sort(key=lambda r: int(r["frame"]))
        changes += sum(a[column] != b[column] for a, b in zip(rs, rs[1:], strict=False))
        seconds += float(rs[-1]["time"]) - float(rs[0]["time"])
    return changes / max(seconds, 1e-9)


# --------------------------------------------------------------------------- end to end

def test_video_command_end_to_end(clips, tmp_path, capsys):
    out, table, plot, js = tmp_path / "out.mp4", tmp_path / "t.csv", tmp_path / "t.png", tmp_path / "s.json"
    rc = main(["video", str(clips["two"]), "--out", str(out), "--csv", str(table), "--plot", str(plot),
               "--json", str(js)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "share of analysed frames" in text and "track" in text

    n, size = count_frames(out)
    assert n == clips["frames"] and size == SIZE  # every frame written, same size
    assert not list(tmp_path.glob(".*partial*")), "temporary video left behind"

    rows = read_csv(table)
    assert list(rows[0].keys())[:8] == ["frame", "time", "track", "x", "y", "w", "h", "score"]
    for r in rows:
        p = np.array([float(r[e]) for e in EMOTIONS])
        assert abs(p.sum() - 1) < 1e-2 and r["label"] in EMOTIONS and r["raw_label"] in EMOTIONS
        assert float(r["time"]) == pytest.approx(int(r["frame"]) / FPS, abs=1e-3)
    frames_with_faces = {int(r["frame"]) for r in rows}
    assert len(frames_with_faces) >= 0.8 * clips["frames"]  # the detector finds the faces in most frames

    # ids: every row maps to the ground-truth face it lies on, and each track id to exactly one face
    paths = face_positions(2, SIZE, FACE_PX, clips["frames"])
    owner: dict[str, set[int]] = {}
    for r in rows:
        i = int(r["frame"])
        cx, cy = int(r["x"]) + int(r["w"]) / 2, int(r["y"]) + int(r["h"]) / 2
        dist = [math.hypot(cx - (p[i][0] + FACE_PX / 2), cy - (p[i][1] + FACE_PX / 2)) for p in paths]
        k = int(np.argmin(dist))
        assert dist[k] < FACE_PX / 2, f"frame {i}: box {r['x']},{r['y']} is on no face"
        owner.setdefault(r["track"], set()).add(k)
    assert all(len(v) == 1 for v in owner.values()), f"a track jumped between faces: {owner}"
    assert {k for v in owner.values() for k in v} == {0, 1}
    assert len(owner) <= 4, f"too many id switches: {len(owner)} tracks for 2 faces"

    from PIL import Image

    with Image.open(plot) as im:
        assert im.size[0] > 400 and im.size[1] > 150
    doc = json.loads(js.read_text())
    assert doc["frames"] == clips["frames"] and {t["track"] for t in doc["tracks"]} == {int(k) for k in owner}
    assert doc["scene_cuts"] == [] and doc["unreadable_frames"] == [] and doc["frames_declared"] == clips["frames"]
    for t in doc["tracks"]:
        assert sum(t["share"].values()) == pytest.approx(1.0, abs=1e-3)
    # the face that turns from neutral to happy is summarised with both
    changing = [t for t in doc["tracks"] if t["share"]["happy"] > 0.2 and t["share"]["neutral"] > 0.2]
    assert changing, doc["tracks"]


def test_every_nth_frame_keeps_all_frames_in_video(clips, tmp_path):
    out, table = tmp_path / "every.avi", tmp_path / "every.csv"
    assert main(["video", str(clips["two"]), "--out", str(out), "--csv", str(table), "--every", "3",
                 "--quiet"]) == 0
    assert count_frames(out)[0] == clips["frames"]
    frames = {int(r["frame"]) for r in read_csv(table)}
    assert frames and all(f % 3 == 0 for f in frames)
    assert len(frames) >= 0.8 * math.ceil(clips["frames"] / 3)


def test_detect_every_k_reuses_boxes_between_detections(clips, tmp_path):
    table = tmp_path / "k.csv"
    assert main(["video", str(clips["two"]), "--csv", str(table), "--detect-every", "3", "--quiet"]) == 0
    rows = read_csv(table)
    assert len({r["frame"] for r in rows}) >= 0.8 * clips["frames"]  # classified on (almost) every frame
    assert {r["track"] for r in rows} and len({r["track"] for r in rows}) <= 4
    by_frame = {}
    for r in rows:
        by_frame.setdefault(int(r["frame"]), {})[r["track"]] = (r["x"], r["y"])
    # frames 1 and 2 after a detection on frame 0 carry frame 0's boxes
    assert by_frame.get(1) == by_frame.get(0) or by_frame.get(2) == by_frame.get(0)


def test_max_faces_keeps_the_largest(clips, tmp_path):
    table = tmp_path / "one.csv"
    assert main(["video", str(clips["two"]), "--csv", str(table), "--max-faces", "1", "--quiet"]) == 0
    rows = read_csv(table)
    per_frame: dict[str, int] = {}
    for r in rows:
        per_frame[r["frame"]] = per_frame.get(r["frame"], 0) + 1
    assert rows and max(per_frame.values()) == 1


def test_smoothing_cuts_label_flicker(clips, tmp_path, capsys):
    """Raw per-frame labels of ambiguous faces flicker; EMA + hysteresis (the defaults) cut the changes."""
    table = tmp_path / "amb.csv"
    assert main(["video", str(clips["ambiguous"]), "--csv", str(table), "--quiet"]) == 0
    rows = read_csv(table)
    raw, smooth = changes_per_second(rows, "raw_label"), changes_per_second(rows, "label")
    with capsys.disabled():
        print(f"\nlabel changes per second over {len({r['track'] for r in rows})} tracks: "
              f"raw {raw:.2f}, smoothed (alpha 0.3, hysteresis 0.1) {smooth:.2f}")
    assert raw >= 1.0, f"the ambiguous clip should flicker unsmoothed ({raw:.2f}/s)"
    assert smooth <= raw / 3

    # --smooth 1 --hysteresis 0 is the raw arg-max
    table1 = tmp_path / "raw.csv"
    assert main(["video", str(clips["ambiguous"]), "--csv", str(table1), "--smooth", "1", "--hysteresis", "0",
                 "--quiet"]) == 0
    assert all(r["label"] == r["raw_label"] for r in read_csv(table1))


def test_folder_of_frames_source(tmp_path, engine):
    import cv2

    face = pick_faces(engine, "happy", 1, FACE_PX)[0]
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(render_frames([still(face)], SIZE, 30, FACE_PX)):
        cv2.imwrite(str(folder / f"frame{i}.png"), f)  # frame10 must come after frame9
    src = open_source(folder, fps=12)
    assert [p.name for p in src.files][9:11] == ["frame9.png", "frame10.png"]
    table = tmp_path / "f.csv"
    assert main(["video", str(folder), "--fps", "12", "--csv", str(table), "--quiet"]) == 0
    rows = read_csv(table)
    assert len(rows) >= 24 and {r["track"] for r in rows} == {"1"}
    assert float(rows[-1]["time"]) == pytest.approx(int(rows[-1]["frame"]) / 12, abs=1e-3)


# --------------------------------------------------------------------------- bad input

def test_bad_inputs_name_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.mp4"
    assert main(["video", str(missing), "--quiet"]) == 2
    assert "nope.mp4" in capsys.readouterr().err

    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    assert main(["video", str(fake), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fake.mp4" in err and "video" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["video", str(empty), "--quiet"]) == 2
    assert "holds no images" in capsys.readouterr().err


def test_unsupported_output_extension(clips, tmp_path, capsys):
    assert main(["video", str(clips["two"]), "--out", str(tmp_path / "x.gif"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "x.gif" in err and ".mp4" in err
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- parts

def test_tracker_keeps_ids_through_motion_and_a_missed_frame():
    t = Tracker(alpha=1.0, hysteresis=0.0, max_missed=2)
    p = np.eye(7, dtype=np.float32)
    a, b = (10, 10, 50, 50), (200, 20, 60, 60)
    f1 = t.update([(a, 1.0, p[3]), (b, 1.0, p[4])])
    ids = {f.box: f.track_id for f in f1}
    f2 = t.update([((218, 24, 60, 60), 1.0, p[4]), ((16, 12, 50, 50), 1.0, p[3])])  # order swapped, moved
    assert {f.track_id for f in f2 if f.box[0] > 100} == {ids[b]}
    assert {f.track_id for f in f2 if f.box[0] < 100} == {ids[a]}
    t.update([((20, 14, 50, 50), 1.0, p[3])])  # b missed once
    f4 = t.update([((24, 14, 50, 50), 1.0, p[3]), ((230, 26, 60, 60), 1.0, p[4])])
    assert sorted(f.track_id for f in f4) == sorted(ids.values())
    for _ in range(3):
        t.update([])
    assert t.update([(a, 1.0, p[3])])[0].track_id not in ids.values()  # gone too long: a new id


def test_smoother_hysteresis():
    s = LabelSmoother(alpha=0.5, hysteresis=0.2)
    happy, sad = np.eye(7, dtype=np.float32)[3], np.eye(7, dtype=np.float32)[5]
    assert EMOTIONS[s.update(happy)[1]] == "happy"
    probs, idx = s.update(sad)  # 0.5 / 0.5: no lead, keeps happy
    assert EMOTIONS[idx] == "happy" and probs.sum() == pytest.approx(1)
    assert EMOTIONS[s.update(sad)[1]] == "sad"  # 0.75 vs 0.25: leads by 0.5 > 0.2
    with pytest.raises(ValueError, match="alpha"):
        LabelSmoother(alpha=0)


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_timeline_memory_is_bounded():
    """An hour at 30 fps of one face: the plot series stays within max_points, shares stay exact."""
    tl = Timeline(max_points=200)
    from ferkit.video import FrameResult, TrackedFace

    p = np.full(7, 1 / 7, np.float32)
    img = np.zeros((1, 1, 3), np.uint8)
    n = 3600 * 30
    for i in range(n):
        label = "happy" if i < n // 4 else "neutral"
        f = TrackedFace(1, (0, 0, 1, 1), 1.0, p, p, label, label)
        tl.add(FrameResult(i, i / 30, img, [f], True))
    s = tl.series[1]
    assert len(s.start) <= 200
    t, probs = s.arrays()
    assert t[0] < 60 and t[-1] > 3500 and np.allclose(probs.sum(1), 1, atol=1e-4)
    share = tl.summary()[0]["share"]
    assert share["happy"] == pytest.approx(0.25) and share["neutral"] == pytest.approx(0.75)


@pytest.mark.parametrize("n_tracks", [1, 3])
def test_timeline_plot_title_and_legend_do_not_overlap(tmp_path, n_tracks):
    """Issue 20, item 20: the title (suptitle at y=1.02) was drawn over the legend (upper center)."""
    import matplotlib.pyplot as plt

    from ferkit.video import FrameResult, TrackedFace

    tl = Timeline()
    rng = np.random.default_rng(0)
    img = np.zeros((1, 1, 3), np.uint8)
    for i in range(60):
        faces = []
        for k in range(n_tracks):
            p = rng.dirichlet(np.ones(7)).astype(np.float32)
            faces.append(TrackedFace(k + 1, (0, 0, 1, 1), 1.0, p, p, EMOTIONS[int(p.argmax())], "happy"))
        tl.add(FrameResult(i, i / 15, img, faces, True))
    fig = tl.figure(title="a_rather_long_name_of_a_video_file_2024-05-01_meeting-room.mp4")
    try:
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        title, legend = fig._suptitle.get_window_extent(r), fig.legends[0].get_window_extent(r)
        axes = [ax.get_tightbbox(r) for ax in fig.axes]  # with tick labels and axis labels
        assert not title.overlaps(legend)
        assert not any(title.overlaps(a) or legend.overlaps(a) for a in axes)
        page = fig.bbox
        for box in (title, legend):
            assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    finally:
        plt.close(fig)
    out = tl.plot(tmp_path / f"tl{n_tracks}.png", title="clip.mp4")  # the file the command writes
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] > 800 and im.size[1] > 200 * n_tracks
