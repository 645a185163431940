"""The on-device mode's JavaScript against the Python it reproduces, in real headless Chromium: OpenCV's uint8
resize (INTER_AREA, INTER_LINEAR), BGR2GRAY, copyMakeBorder and warpAffine (static/device/cvops.js) byte for byte
against cv2; the FER2013-style crop, aligned on the eyes or not (crop.js), against ferkit.faces.crop.crop_face;
CenterFace's decoding and NMS (centerface.js) against ferkit.faces.centerface.decode; Python's round(); the tracker
and label smoother (tracker.js) against ferkit.video.tracking. Inputs: random smooth images and real FER2013 faces.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from device_helpers import CHROMIUM, launch, static_server  # noqa: E402
from serve_helpers import FER  # noqa: E402

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file() or importlib.util.find_spec("playwright") is None,
    reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium) and Playwright (dev extra)")
cv2 = pytest.importorskip("cv2")

STATIC = Path(__file__).resolve().parents[1] / "src" / "ferkit" / "serve" / "static"
RUN = """async ([cases, images]) => {
  const cv = await import("/device/cvops.js"), crop = await import("/device/crop.js");
  const b64 = (s) => { const bin = atob(s), a = new Uint8Array(bin.length);
                       for (let i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i); return a; };
  const pixels = images.map(b64);
  const enc = (a) => { let s = ""; for (const v of a) s += String.fromCharCode(v); return btoa(s); };
  return cases.map((t) => {
    const src = cv.image(t.w, t.h, t.c, pixels[t.image]);
    let r;
    if (t.op === "area") r = cv.resizeArea(src, t.dw, t.dh);
    else if (t.op === "linear") r = cv.resizeLinear(src, t.dw, t.dh);
    else if (t.op === "gray") r = cv.toGray(src.data, t.w, t.h, 3);
    else if (t.op === "border") r = cv.copyMakeBorder(src, ...t.pads);
    else if (t.op === "warp") r = cv.warpAffine(src, t.m, t.dw, t.dh);
    else if (t.op === "rotation") return cv.rotationMatrix(...t.args);
    else if (t.op === "crop") r = crop.cropFace(src, t.box, crop.CENTERFACE_SPEC, t.marks);
    else if (t.op === "face48") r = crop.toFace48(src);
    return enc(r.data);
  });
}"""


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with static_server(STATIC) as url, sync_playwright() as pw:
        b = launch(pw)
        pg = b.new_page()
        pg.goto(url + "/device/device.css")  # any page of this origin: the modules are imported into it
        yield pg
        b.close()


def smooth(rng, h, w, c):
    """A random image as smooth as a photo (cubic upsampling of noise) plus some pixel noise."""
    base = cv2.resize(rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), c), dtype=np.uint8), (w, h),
                      interpolation=cv2.INTER_CUBIC).reshape(h, w, c)
    return np.clip(base.astype(int) + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


class Cases:
    """Operations for the page to run, on images sent once each."""

    def __init__(self):
        self.cases, self.images, self.want = [], [], []
        self._ids, self._keep = {}, []

    def add(self, op, a, want, **kw):
        if id(a) not in self._ids:  # the same array object: sent once (kept alive, so its id stays its own)
            self._ids[id(a)] = len(self.images)
            self._keep.append(a)
            self.images.append(base64.b64encode(np.ascontiguousarray(a).tobytes()).decode())
        h, w = a.shape[:2]
        self.cases.append(dict(op=op, w=w, h=h, c=1 if a.ndim == 2 else a.shape[2], image=self._ids[id(a)], **kw))
        self.want.append(want)

    def run(self, page):
        return page.evaluate(RUN, [self.cases, self.images])


def as_array(s, shape):
    return np.frombuffer(base64.b64decode(s), np.uint8).reshape(shape)


def test_resize_gray_border_warp_are_opencv_byte_for_byte(page):
    rng = np.random.default_rng(0)
    cs = Cases()
    for i in range(30):  # INTER_AREA shrinks: any factor, whole factors (OpenCV's fast path), 1, 3 and 4 channels
        c = [1, 3, 4][i % 3]
        w, h = int(rng.integers(20, 400)), int(rng.integers(20, 300))
        if i % 4 == 0:
            k = int(rng.integers(2, 5))
            w, h = (w // k) * k, (h // k) * k
            dw, dh = w // k, h // k
        else:
            s = float(rng.uniform(0.05, 1.0))
            dw, dh = max(1, round(w * s)), max(1, round(h * s))
        a = smooth(rng, h, w, c).squeeze()
        cs.add("area", a, cv2.resize(a, (dw, dh), interpolation=cv2.INTER_AREA), dw=dw, dh=dh)
    for _ in range(20):  # INTER_LINEAR to 48 x 48 (small faces), up or down per side
        a = smooth(rng, int(rng.integers(8, 120)), int(rng.integers(8, 120)), 1)[:, :, 0]
        cs.add("linear", a, cv2.resize(a, (48, 48), interpolation=cv2.INTER_LINEAR), dw=48, dh=48)
    for _ in range(8):  # the page reads RGB(A); cv2 converts BGR
        a = smooth(rng, int(rng.integers(5, 300)), int(rng.integers(5, 300)), 3)
        cs.add("gray", np.ascontiguousarray(a[:, :, ::-1]), cv2.cvtColor(a, cv2.COLOR_BGR2GRAY))
    for _ in range(6):
        a = smooth(rng, 20, 30, 3)
        pads = [int(v) for v in rng.integers(0, 15, 4)]
        cs.add("border", a, cv2.copyMakeBorder(a, *pads, cv2.BORDER_REPLICATE), pads=pads)
    for _ in range(30):  # rotate + scale to 48 x 48, border replicated, as aligned_crop calls it
        side = int(rng.integers(60, 110))
        a = smooth(rng, side, side, 1)[:, :, 0]
        m = cv2.getRotationMatrix2D(tuple(float(v) for v in rng.uniform(20, side - 20, 2)),
                                    float(rng.uniform(-60, 60)), float(48 / rng.uniform(60, 110)))
        m[:, 2] += rng.uniform(-30, 30, 2)
        cs.add("warp", a, cv2.warpAffine(a, m, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
               m=m.reshape(-1).tolist(), dw=48, dh=48)
    got = cs.run(page)
    bad = [(t["op"], t["w"], t["h"], t["c"]) for t, g, r in zip(cs.cases, got, cs.want)
           if not np.array_equal(as_array(g, r.shape), r)]
    assert not bad, f"{len(bad)} of {len(cs.cases)} differ from cv2: {bad[:5]}"
    # getRotationMatrix2D takes the centre as float32 (Point2f)
    args = [123.456789, 98.7654321, 17.3, 0.41]
    rot = Cases()
    rot.add("rotation", np.zeros((1, 1), np.uint8), None, args=args)
    js = rot.run(page)[0]
    assert np.array_equal(np.array(js).reshape(2, 3), cv2.getRotationMatrix2D(tuple(args[:2]), args[2], args[3]))


def test_face_crops_match_crop_face_on_real_faces(page):
    from ferkit.faces import CropSpec, crop_face
    from ferkit.faces.centerface import CenterFaceDetector
    from ferkit.recognizer import to_face48

    spec = CenterFaceDetector.crop
    assert spec == CropSpec(margin=0.05, shift=0.10, align=True)  # crop.js's CENTERFACE_SPEC
    files = sorted((FER / "test" / "happy").glob("PrivateTest_*.jpg"))[:6]
    if len(files) < 6:
        pytest.skip(f"needs FER2013 images under {FER} (set FERKIT_FER2013)")
    rng = np.random.default_rng(1)
    cs = Cases()
    for f in files:  # each real 48 x 48 face upscaled into a bigger gray picture at a random place
        face = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        k = float(rng.uniform(1.5, 5))
        big = cv2.resize(face, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
        canvas = smooth(rng, 480, 640, 1)[:, :, 0]
        x0, y0 = int(rng.integers(-big.shape[1] // 3, 640 - big.shape[1] // 2)), int(rng.integers(-40, 300))
        xs, ys = slice(max(0, x0), min(640, x0 + big.shape[1])), slice(max(0, y0), min(480, y0 + big.shape[0]))
        canvas[ys, xs] = big[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        side = big.shape[0]
        box = (x0 + round(0.15 * side), y0 + round(0.1 * side), round(0.7 * side), round(0.8 * side))
        for tilt in (0.0, 0.3, float(rng.uniform(-25, 25)), 75.0):  # level, below MIN_ANGLE, tilted, untrusted
            a = np.radians(tilt)
            cx, cy, d = box[0] + box[2] / 2, box[1] + 0.4 * box[3], 0.2 * box[2]
            eyes = [(round(cx - d * np.cos(a), 1), round(cy - d * np.sin(a), 1)),
                    (round(cx + d * np.cos(a), 1), round(cy + d * np.sin(a), 1))]
            marks = [*eyes, (cx, cy + 0.2 * box[3]), (cx - d, cy + 0.35 * box[3]), (cx + d, cy + 0.35 * box[3])]
            cs.add("crop", canvas, crop_face(canvas, box, spec, 48, landmarks=tuple(marks)), box=list(box),
                   marks=[list(p) for p in marks])
        cs.add("crop", canvas, crop_face(canvas, box, spec, 48), box=list(box), marks=None)
        for shape in ((60, 90), (40, 70), (96, 96)):  # whole small images: detector "crop"
            small = cv2.resize(canvas, shape[::-1], interpolation=cv2.INTER_AREA)
            cs.add("face48", small, to_face48(small))
    got = cs.run(page)
    diffs = [int(np.abs(as_array(g, (48, 48)).astype(int) - r).max()) for g, r in zip(got, cs.want)]
    assert max(diffs) == 0, diffs


def test_centerface_decoding_and_nms_match_python(page):
    from ferkit.faces.centerface import decode

    rng = np.random.default_rng(2)
    gh, gw = 16, 20
    for trial in range(3):
        heat = (rng.random((1, 1, gh, gw)) ** 6).astype(np.float32)  # a few peaks over 0.5, some overlapping
        heat[0, 0, 10, 10:13] = [0.9, 0.95, 0.9]
        scale = rng.uniform(1, 3, (1, 2, gh, gw)).astype(np.float32)
        offset = rng.uniform(0, 1, (1, 2, gh, gw)).astype(np.float32)
        lms = rng.uniform(0, 1, (1, 10, gh, gw)).astype(np.float32)
        boxes, scores, pts = decode(heat, scale, offset, lms, 0.5)
        js = page.evaluate("""async ([h, s, o, l, gh, gw]) => {
            const cf = await import("/device/centerface.js");
            return cf.decode(h, s, o, l, gh, gw, 0.5); }""",
                           [heat.ravel().tolist(), scale.ravel().tolist(), offset.ravel().tolist(),
                            lms.ravel().tolist(), gh, gw])
        assert len(js) == len(boxes) > 1, (trial, len(js), len(boxes))
        # the same boxes kept, in the same order; values within a float32 step (numpy's float32 exp and the
        # browser's may round the last bit differently)
        assert np.array_equal(np.array([s for _, s, _ in js], np.float32), scores)
        assert np.allclose(np.array([b for b, _, _ in js], np.float32), boxes, rtol=1e-6, atol=1e-5)
        assert np.abs(np.array([p for _, _, p in js], np.float32) - pts).max() <= 1e-4


def test_python_rounding(page):
    xs = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999999, 12.25, 12.75, -12.25, -12.75, 0.15, 0.05, 1.005, 3.35,
          263.25, 99.95, 1e-7, -0.04]
    got = page.evaluate("""async (xs) => { const cv = await import("/device/cvops.js");
        return xs.map((x) => [cv.pyRound(x), cv.pyRound1(x)]); }""", xs)
    assert got == [[round(x), round(x, 1)] for x in xs]


def test_tracker_matches_python(page):
    from ferkit.emotions import EMOTIONS
    from ferkit.video.tracking import Tracker

    rng = np.random.default_rng(3)
    frames, x = [], [100.0, 400.0]
    for i in range(40):  # two faces drifting, one missing now and then, a third appearing, a jump
        dets = []
        for k in range(2):
            x[k] += rng.uniform(-8, 8)
            if rng.random() > 0.15:
                dets.append(([int(x[k]), 120 + k * 10, 110, 130], float(rng.random()), rng.dirichlet(np.ones(7))))
        if i > 25:
            dets.append(([300, 300, 60, 70] if i != 33 else [20, 20, 200, 230], 0.9, rng.dirichlet(np.ones(7))))
        frames.append(dets)
    py = Tracker()
    want = [[(f.track_id, f.box, f.label, [round(float(v), 5) for v in f.probs]) for f in py.update(d)]
            for d in frames]
    js = page.evaluate("""async ([frames, labels]) => {
        const { Tracker } = await import("/device/tracker.js");
        const t = new Tracker();
        return frames.map((d) => t.update(d.map(([box, score, probs]) => ({ box, score, probs })), labels)
          .map((f) => [f.trackId, f.box, f.label, f.probs.map((v) => Math.round(v * 1e5) / 1e5)])); }""",
                       [[[[b, s, p.tolist()] for b, s, p in d] for d in frames], list(EMOTIONS)])
    got = [[(i, tuple(b), lab, p) for i, b, lab, p in f] for f in js]
    assert [[(i, b, lab) for i, b, lab, _ in f] for f in got] == [[(i, tuple(b), lab) for i, b, lab, _ in f]
                                                                   for f in want]
    for g, w in zip(got, want):
        for (_, _, _, pg), (_, _, _, pw) in zip(g, w):
            assert np.abs(np.array(pg) - np.array(pw)).max() <= 2e-5
    assert json.dumps(got)  # plain data
