"""Outputs of `ferkit video` and `ferkit webcam` (issue 20, items 1 and 3): a write that fails (a full disk, a
folder that cannot be made) fails the run with a message and replaces no existing file; Ctrl-C keeps what
was done in every output. The full disk is a real 150 KB tmpfs (mounting needs root; skipped otherwise)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_video import FER, fer_files, frames_in, read_gray, still, write_clip  # noqa: E402

from ferkit.cli import main  # noqa: E402

pytestmark = pytest.mark.skipif(not (FER / "test").is_dir(), reason=f"FER2013 not found at {FER}")

NOISE = 10.0  # sensor noise: the annotated copy of the 3 s clip is several times larger than the small disk


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    face = read_gray(fer_files("happy")[0])
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", [still(face)], (320, 240), 15.0, 3.0,
                      face_px=112, noise=NOISE)


@pytest.fixture
def small_disk(tmp_path):
    """A real 150 KB file system: writes past its size fail with ENOSPC."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not shutil.which("mount"):
        pytest.skip("no mount command here")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=150k", "tmpfs", str(disk)], capture_output=True,
                       text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {r.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def playable_video(path: Path, frames: int = 5) -> bytes:
    """A small good video at ``path`` (what a failed run must leave alone); returns its bytes."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (320, 240))
    for i in range(frames):
        w.write(np.full((240, 320, 3), 40 * i, np.uint8))
    w.release()
    assert frames_in(path) == frames
    return path.read_bytes()


def no_partial_files(folder: Path) -> bool:
    return not [p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".tmp")]


def test_full_disk_fails_the_video_and_keeps_the_old_file(clip, small_disk, capsys):
    """Item 1: the run used to exit 0 and replace a playable out.mp4 with a file without its moov atom."""
    out = small_disk / "out.mp4"
    before = playable_video(out)
    assert main(["video", str(clip), "--out", str(out), "--min-face", "40", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "out.mp4" in err and "could not be written completely" in err and "disk is full" in err
    assert "Traceback" not in err
    assert out.read_bytes() == before and frames_in(out) == 5
    assert no_partial_files(small_disk)


def test_full_disk_fails_the_webcam_recording_and_keeps_the_old_file(clip, small_disk):
    """Item 1, `ferkit webcam --camera clip.mp4 --no-window --out`: same defect, same rule."""
    out = small_disk / "w.mp4"
    before = playable_video(out)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    p = subprocess.run([sys.executable, "-m", "ferkit.cli", "webcam", "--camera", str(clip), "--no-window",
                        "--out", str(out), "--min-face", "40"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 2, p.stderr
    assert "w.mp4" in p.stderr and "could not be written completely" in p.stderr
    assert "Traceback" not in p.stderr
    assert out.read_bytes() == before
    assert no_partial_files(small_disk)


def test_failed_run_leaves_an_existing_csv_alone(clip, tmp_path, capsys):
    """Item 3: `--csv keep.csv --out /proc/nope/x.mp4` used to leave keep.csv header-only."""
    keep = tmp_path / "keep.csv"
    keep.write_text("frame,label\n0,happy\n")
    assert main(["video", str(clip), "--csv", str(keep), "--out", "/proc/nope/x.mp4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--out /proc/nope/x.mp4" in err and "cannot write" in err
    assert keep.read_text() == "frame,label\n0,happy\n"
    assert no_partial_files(tmp_path)


def test_full_disk_csv_is_a_message_not_a_traceback(clip, small_disk, capsys):
    """Item 3: an ENOSPC while writing the CSV ended in an OSError traceback; the old CSV is kept."""
    keep = small_disk / "keep.csv"
    keep.write_text("frame,label\n0,happy\n")
    fd = os.open(small_disk / "fill", os.O_WRONLY | os.O_CREAT)  # fill the rest of the disk
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    assert main(["video", str(clip), "--csv", str(keep), "--min-face", "40", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "keep.csv" in err and "No space left" in err and "Traceback" not in err
    assert keep.read_text() == "frame,label\n0,happy\n"
    assert no_partial_files(small_disk)


def test_one_failed_output_replaces_none_of_the_others(clip, tmp_path, small_disk, capsys):
    """CSV, plot and JSON on a good disk, the video on a full one: all or nothing, never a mix."""
    old = {name: f"old {name}\n" for name in ("t.csv", "p.png", "s.json")}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    out = small_disk / "o.mp4"
    before = playable_video(out)
    assert main(["video", str(clip), "--out", str(out), "--csv", str(tmp_path / "t.csv"), "--plot",
                 str(tmp_path / "p.png"), "--json", str(tmp_path / "s.json"), "--min-face", "40", "--quiet"]) == 2
    assert "o.mp4" in capsys.readouterr().err
    assert {name: (tmp_path / name).read_text() for name in old} == old
    assert out.read_bytes() == before
    assert no_partial_files(tmp_path) and no_partial_files(small_disk)


def test_ctrl_c_keeps_what_was_done_in_every_output(tmp_path):
    """Ctrl-C ends `ferkit video` with every output holding the frames done so far (and saying so)."""
    face = read_gray(fer_files("happy")[0])
    long_clip = write_clip(tmp_path / "long.mp4", [still(face)], (320, 240), 15.0, 20.0, face_px=112)
    out, table, js = tmp_path / "o.avi", tmp_path / "t.csv", tmp_path / "s.json"
    # a shell starts a background job (`pytest &`, as CI scripts may) with SIGINT ignored, and an exec'd child
    # inherits "ignored": give the child the default disposition, as a terminal's Ctrl-C would find it
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        p = subprocess.Popen([sys.executable, "-m", "ferkit.cli", "video", str(long_clip), "--out", str(out),
                              "--csv", str(table), "--json", str(js), "--min-face", "40", "--quiet", "--threads",
                              "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, old)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:  # wait for a few analysed frames in the CSV being written
            written = [*tmp_path.glob(".t.*.partial.csv"), table]  # the CSV being written
            if any(f.is_file() and len(f.read_text().splitlines()) > 10 for f in written):
                break
            assert p.poll() is None, p.communicate()
            time.sleep(0.1)
        else:
            pytest.fail("no CSV rows within 60 s")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert js.is_file(), f"the JSON summary was lost: {err}"
    doc = json.loads(js.read_text())
    assert "interrupted at frame" in err and "Traceback" not in err
    assert doc["interrupted"] is True and 10 <= doc["frames"] < 300
    assert frames_in(out) == doc["frames"]
    rows = table.read_text().splitlines()[1:]
    assert 10 <= len(rows) <= doc["analysed_frames"] and int(rows[-1].split(",")[0]) < doc["frames"]
    assert no_partial_files(tmp_path)
