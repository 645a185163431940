"""Small files that decode to big or oddly shaped images (issue 20, items 5 and 8): the work and the memory per
image stay bounded, whatever the shape, and big images are decoded at reduced size and said so cleanly.

Peak memory is measured in a fresh subprocess (VmHWM of /proc/self/status, Linux), so nothing else the test
session did counts."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferkit.faces import CropSpec, create_detector, crop_face

ASSETS = Path(__file__).parent / "assets"
SRC = Path(__file__).resolve().parents[1] / "src"

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak memory is read from /proc")

_PEAK = """
import json, sys
def _kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
base = _kb("VmRSS")
{body}
print(json.dumps({{"base_mib": base / 1024, "peak_mib": _kb("VmHWM") / 1024}}))
"""


def _peak(body: str, timeout: float = 120) -> tuple[dict, subprocess.CompletedProcess]:
    """Run ``body`` (after ferkit is imported by it) in a fresh Python; -> ({base_mib, peak_mib}, the process).
    ``base_mib`` is the resident size before ``body`` ran (the interpreter alone)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(SRC)])))
    res = subprocess.run([sys.executable, "-c", _PEAK.format(body=body)], capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1]), res


# --------------------------------------------------------------------------- item 5: thin strips


@pytest.fixture(scope="module")
def strips(tmp_path_factory) -> dict[str, Path]:
    """A 40000 x 97 PNG (4 KB: it took 24 s and 3.6 GB) and a 1,000,000 x 1 PNG (a 2.25 TB allocation)."""
    d = tmp_path_factory.mktemp("strips")
    rng = np.random.default_rng(0)
    wide = np.tile(rng.integers(60, 200, (97, 200), dtype=np.uint8), (1, 200))
    out = {"wide": d / "wide.png", "line": d / "line.png"}
    Image.fromarray(wide).save(out["wide"], optimize=True)
    Image.fromarray(np.full((1, 1_000_000), 128, np.uint8)).save(out["line"], optimize=True)
    return out


def test_a_thin_strip_costs_little_and_is_no_error(strips, tmp_path):
    """Both strips through `ferkit predict` (CenterFace, the default): 'no face' rows, in bounded memory."""
    rows = tmp_path / "rows.csv"
    peak, res = _peak(f"""
from ferkit.cli import main
rc = main(["predict", {str(strips["wide"])!r}, {str(strips["line"])!r}, "--model", "fast", "-q",
           "--no-progress", "--csv", {str(rows)!r}])
assert rc == 0, rc
""")
    got = {Path(r["file"]).name: r["status"] for r in csv.DictReader(rows.open())}
    assert got == {"wide.png": "no face", "line.png": "no face"}, got  # the line was a cv2 allocation error
    # the padded second look of the 40000 x 97 strip held 20097 x 60000 x 3 bytes (3.6 GB); now it is
    # shrunk first: the whole run (onnxruntime, two models) stays far below that
    assert peak["peak_mib"] - peak["base_mib"] < 700, peak


@pytest.mark.parametrize("name", ["centerface", "haar", "dlib", "full"])
def test_every_detector_is_bounded_on_a_thin_strip(name, strips):
    pytest.importorskip("dlib") if name == "dlib" else None
    peak, _res = _peak(f"""
from ferkit.faces import create_detector
from ferkit.images import read_image
det = create_detector({name!r})
for p in ({str(strips["wide"])!r}, {str(strips["line"])!r}):
    img = read_image(p)
    found = det.detect(img)
    assert all(0 <= d.box[0] and d.box[0] + d.box[2] <= img.shape[1] for d in found), found
""")
    assert peak["peak_mib"] - peak["base_mib"] < 400, peak


def test_a_crop_window_that_leaves_the_image_is_shrunk_before_it_is_padded():
    """The square around a strip-wide box is 22000 x 22000 at full size (484 MB for one 48 x 48 crop);
    it is built at the crop's scale instead, and gives the same crop."""
    g = np.tile(np.linspace(0, 255, 2000, dtype=np.float32).astype(np.uint8), (97, 1))
    box = (1, 0, 1998, 97)
    for spec in (CropSpec(), CropSpec(margin=0.05, shift=0.1, align=True)):
        marks = ((500.0, 40.0), (1500.0, 60.0), (1000.0, 50.0), (700.0, 80.0), (1300.0, 80.0))
        got = crop_face(g, box, spec, landmarks=marks)
        assert got.shape == (48, 48)
        # the reference: the padded window at full size, as before (affordable at 2000 px)
        from ferkit.faces.crop import padded_window, square_box

        if not spec.align:
            import cv2

            x0, y0, side = square_box(box, spec)
            ref = cv2.resize(padded_window(g, x0, y0, x0 + side, y0 + side, box), (48, 48),
                             interpolation=cv2.INTER_AREA)
            assert np.abs(got.astype(int) - ref).max() <= 3
    peak, _res = _peak("""
import numpy as np
from ferkit.faces import CropSpec, crop_face
g = np.full((97, 40000), 120, np.uint8)
for spec in (CropSpec(), CropSpec(align=True)):
    c = crop_face(g, (1, 0, 39998, 97), spec, landmarks=((9000., 40.), (31000., 60.), (0., 0.), (0., 0.), (0., 0.)))
    assert c.shape == (48, 48) and int(c.mean()) == 120
""")
    assert peak["peak_mib"] - peak["base_mib"] < 150, peak  # was 1.9 GB (44000 x 44000 gray)


def test_the_second_look_still_finds_a_face_that_fills_the_photo():
    """Shrinking before padding keeps the close-up case working: a face cut at forehead and chin, 708 x 600
    (its padded second look is shrunk to 640 px first)."""
    import cv2

    img = cv2.imread(str(ASSETS / "astronaut.jpg"))
    det = create_detector("centerface")
    (ref,) = det.detect(img)
    x, y, w, h = ref.box
    tight = img[y + h // 6:y + h - h // 8, x + w // 10:x + w - w // 10]
    tight = cv2.resize(tight, None, fx=12, fy=12, interpolation=cv2.INTER_CUBIC)
    assert det._run(cv2.cvtColor(tight, cv2.COLOR_BGR2RGB), 0) == []  # the first look sees no face
    (d,) = det.detect(tight)
    H, W = tight.shape[:2]
    assert d.box[2] * d.box[3] > 0.9 * H * W and d.score > 0.9
    (le, re, *_rest) = d.landmarks
    assert 0 < le[0] < W / 2 < re[0] < W and 0 < le[1] < H / 2 and 0 < re[1] < H / 2
