"""`ferkit webcam`: the Tk window under a real Xvfb server (a video file stands in for the camera, keys sent
with xdotool, screenshot taken from the X server), headless recording, no-display message, lost stream.

CI installs the Debian packages `xvfb` and `xdotool`; without them the window test is skipped.
"""

from __future__ import annotations

import functools
import http.server
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_video import FER, frames_in, pick_faces, still, write_clip  # noqa: E402

from ferkit.emotions import COLORS_BGR, EMOTIONS  # noqa: E402

pytestmark = pytest.mark.skipif(not (FER / "test").is_dir(), reason=f"FER2013 not found at {FER}")

SIZE = (320, 240)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from ferkit.commands.video import DETECT_SIZE, MIN_FACE
    from ferkit.recognizer import Recognizer

    face = pick_faces(Recognizer(min_face=MIN_FACE, max_side=DETECT_SIZE), "happy", 1, 112)[0]
    return write_clip(tmp_path_factory.mktemp("cam") / "cam.avi", [still(face)], SIZE, 15.0, 4.0, face_px=112)


def ferkit(*args, env=None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ferkit.cli", "webcam", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def env_without_display() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


# --------------------------------------------------------------------------- without a display

def test_no_display_says_so_and_offers_out(clip):
    p = ferkit("--camera", str(clip), env=env_without_display())
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert "no display" in err and "--out FILE" in err and "Traceback" not in err


def test_headless_recording(clip, tmp_path):
    rec, table = tmp_path / "rec.mp4", tmp_path / "rec.csv"
    p = ferkit("--camera", str(clip), "--out", str(rec), "--csv", str(table), env=env_without_display())
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "recording without a window" in err and "end of" in out
    assert frames_in(rec) == 60  # 4 s at 15 fps: every frame recorded
    assert len(table.read_text().splitlines()) > 40


def test_missing_camera_is_a_clear_error():
    p = ferkit("--camera", "57", "--no-window", "--out", "x.mp4", env=env_without_display())
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "camera 57 could not be opened" in err and "Traceback" not in err


def test_lost_stream_ends_with_a_message(clip, tmp_path):
    """A live source (a local HTTP stream) that stops delivering frames: message, exit 1, recording kept."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    handler = functools.partial(Quiet, directory=str(clip.parent))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        rec = tmp_path / "lost.avi"
        url = f"http://127.0.0.1:{srv.server_address[1]}/{clip.name}"
        p = ferkit("--camera", url, "--no-window", "--out", str(rec), env=env_without_display())
        out, err = p.communicate(timeout=60)
    finally:
        srv.shutdown()
    assert p.returncode == 1, err
    assert "stopped delivering frames" in err and "Traceback" not in err
    assert rec.exists() and frames_in(rec) >= 1


# --------------------------------------------------------------------------- the window, under Xvfb

@pytest.fixture
def xdisplay():
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb not installed (Debian/Ubuntu: apt-get install -y xvfb); CI installs it")
    if not shutil.which("xdotool"):
        pytest.skip("xdotool not installed (Debian/Ubuntu: apt-get install -y xdotool); CI installs it")
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "800x600x24", "-nolisten", "tcp",
                             "-br"], pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        num = f.readline().strip()
    if not num:
        proc.kill()
        pytest.fail("Xvfb started but reported no display number")
    yield f":{num}"
    proc.terminate()
    proc.wait(timeout=10)


def _reader(stream, q):
    for line in stream:
        q.put(line.rstrip("\n"))


def _wait_for(q, pattern: str, timeout: float = 30.0) -> re.Match:
    end = time.monotonic() + timeout
    seen = []
    while time.monotonic() < end:
        try:
            line = q.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; got {seen}")


def test_window_shows_boxes_and_labels_and_obeys_keys(clip, tmp_path, xdisplay):
    import cv2
    from PIL import ImageGrab

    env = os.environ | {"DISPLAY": xdisplay}
    p = ferkit("--camera", str(clip), "--snapshot-dir", str(tmp_path), env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(p.stdout, lines), daemon=True).start()

    def xdo(*args):
        return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=20,
                              check=True)

    try:
        _wait_for(lines, r"^window open")
        time.sleep(1.0)  # let the tracker settle on the face
        wid = xdo("search", "--sync", "--name", "ferkit webcam").stdout.split()[0]
        xdo("windowfocus", "--sync", wid)
        xdo("key", "space")
        _wait_for(lines, r"^paused")
        time.sleep(0.3)
        shot = cv2.cvtColor(np.asarray(ImageGrab.grab(xdisplay=xdisplay)), cv2.COLOR_RGB2BGR)
        xdo("key", "s")
        m = _wait_for(lines, r"^snapshot (\S+) frame (\d+): #(\d+) (\w+) ([\d.]+) at (\d+),(\d+),(\d+),(\d+)")
        xdo("key", "q")
        p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    err = p.stderr.read()
    assert p.returncode == 0, err
    assert "Traceback" not in err

    snap = cv2.imread(m.group(1))
    assert snap is not None and (snap.shape[1], snap.shape[0]) == SIZE
    label = m.group(4)
    x, y, w, h = (int(v) for v in m.groups()[5:9])
    assert label in EMOTIONS and w >= 80

    # 1. what the window shows is exactly the annotated frame (the snapshot, taken while paused)
    res = cv2.matchTemplate(shot, snap, cv2.TM_SQDIFF_NORMED)
    assert res.min() < 1e-3, f"the annotated frame is not on screen (best match {res.min():.4f})"

    # 2. a box: its outline is drawn in the label's colour (anti-aliased: look one pixel either side)
    colour = np.array(COLORS_BGR[label], np.int16)
    dist = np.abs(snap.astype(np.int16) - colour).max(2)
    top, bottom = dist[y - 1:y + 2, x:x + w].min(0), dist[y + h - 1:y + h + 2, x:x + w].min(0)
    left, right = dist[y:y + h, x - 1:x + 2].min(1), dist[y:y + h, x + w - 1:x + w + 2].min(1)
    on_edge = (np.concatenate([top, bottom, left, right]) <= 40).mean()
    assert on_edge > 0.9, f"box outline not in the {label} colour ({on_edge:.0%} of edge pixels)"

    # 3. a label: a caption patch in the label's colour with dark text, right above the box
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
    cap_dist = dist[max(0, y - th - 6):y - 2, x + 1:x + tw]
    cap_px = snap[max(0, y - th - 6):y - 2, x + 1:x + tw].astype(np.int16)
    assert (cap_dist <= 40).mean() > 0.3, "no caption patch in the label colour above the box"
    assert (cap_px.max(2) < 80).mean() > 0.05, "no text in the caption patch"
