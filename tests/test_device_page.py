"""The page's "on this device" mode in a real headless Chromium against a real `ferkit serve`: the fake camera
(a .y4m built from a real face photo) gives labelled boxes within seconds with nothing uploaded (every request of
the page recorded, and the server's own access log read), the mode is remembered, COOP/COEP give it WebAssembly
threads; the same answers as Python (`Recognizer(model="fast")`) on real photos; no camera -> a clear message and
the photo still analysed on the device; a browser without WebAssembly SIMD is told so and offered the server mode.
Screenshots and the parity figures go to test-artifacts/ (or $FERKIT_ARTIFACTS).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'ferkit[serve]'")
pytest.importorskip("playwright.sync_api", reason="needs the Playwright Python package (dev extra)")

sys.path.insert(0, str(Path(__file__).parent))
from device_helpers import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM,
    WEBPHOTOS,
    Requests,
    camera_check,
    launch,
    page_files,
    wait_ready,
)
from serve_helpers import ASSETS, FER, photo_640x480, running, write_y4m  # noqa: E402

from ferkit.emotions import EMOTIONS  # noqa: E402

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                reason=f"no Chromium at {CHROMIUM}: apt-get install chromium "
                                       "(.ci/run and scripts/install-dev.sh do when run as root)")
PARITY_PHOTOS = 12  # real photos with faces from the development set, plus the repository's two
BOX_TOL, PROB_TOL = 2, 0.01


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(["--model", "fast"], tmp_path_factory.mktemp("serve") / "server.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def pw():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw, tmp_path_factory):
    cam = write_y4m(tmp_path_factory.mktemp("cam") / "face.y4m", [photo_640x480("astronaut.jpg")] * 20, fps=10)
    b = launch(pw, cam)
    yield b
    b.close()


def device_page(browser, url, **ctx_args):
    ctx = browser.new_context(viewport={"width": 1000, "height": 900}, **ctx_args)
    page = ctx.new_page()
    rec = Requests(ctx, page)
    page.goto(url + "/", wait_until="load")
    return ctx, page, rec


def test_device_mode_camera_labels_faces_and_uploads_nothing(server, browser):
    ctx, page, rec = device_page(browser, server.url, permissions=["camera"])
    assert page.evaluate("ferkitDevice.mode") == "server", "ferkit serve's page starts in server mode"
    assert page.is_visible("#start") and page.is_hidden("#dev-start")
    posts_before = server.log().count(" POST ")
    page.check("input[name=mode][value=device]")
    st = wait_ready(page)
    assert page.is_visible("#dev-start") and page.is_hidden("#start") and page.is_hidden("#stats")
    # ferkit serve sends COOP/COEP: the page is cross-origin isolated and onnxruntime-web gets threads
    assert st["isolated"] is True and st["info"]["threads"] >= 2, st
    camera_check(page, "happy", ARTIFACTS / "device-page-camera.png")  # the astronaut smiles, as in server mode
    # nothing but the page's own files and the two models, all GETs without a body, all from the server
    rec.assert_nothing_uploaded(server.url, lambda p: page_files(p) or p == "/v1/model")
    paths = rec.paths()
    assert "/models/centerface.onnx" in paths and "/models/ferkit-fast.onnx" in paths, paths  # workers' seen too
    assert not any(p.startswith("/v1/emotions") for p in paths)
    log = server.log()
    assert log.count(" POST ") == posts_before, "the server received a POST"
    assert not rec.errors, rec.errors
    # the switch is remembered
    page.reload(wait_until="load")
    assert page.evaluate("ferkitDevice.mode") == "device"
    assert page.is_checked("input[name=mode][value=device]") and page.is_visible("#dev-start")
    page.check("input[name=mode][value=server]")
    page.reload(wait_until="load")
    assert page.evaluate("ferkitDevice.mode") == "server" and page.is_visible("#start")
    ctx.close()


def test_model_route_serves_only_the_page_models(server):
    import httpx

    r = httpx.get(server.url + "/models/ferkit-fast.onnx", timeout=30)
    assert r.status_code == 200 and r.headers["cross-origin-embedder-policy"] == "require-corp"
    from ferkit.weights import model_path

    assert r.content == model_path("fast").read_bytes()
    for name in ("ferkit-default.onnx", "..%2F..%2Fserve%2Fapp.py", "headline.json"):
        assert httpx.get(f"{server.url}/models/{name}", timeout=10).status_code == 404, name


def parity_photos() -> list[Path]:
    """Real photos with faces: the repository's two and PARITY_PHOTOS from the development set (spread over its
    emotion folders, every Nth file in name order), plus one FER2013 face crop (classified whole)."""
    photos = [ASSETS / "astronaut.jpg", ASSETS / "camera.jpg"]
    dev = sorted(WEBPHOTOS.glob("*/*.jpg"))
    if dev:
        step = max(1, len(dev) // PARITY_PHOTOS)
        photos += dev[::step][:PARITY_PHOTOS]
    crops = sorted((FER / "test" / "surprise").glob("PrivateTest_*.jpg"))[:1]
    return photos + crops


def test_same_answers_as_python_on_real_photos(server, browser):
    from ferkit.recognizer import Recognizer

    photos = parity_photos()
    if len(photos) < 10:
        pytest.skip(f"fewer than 10 real photos ({WEBPHOTOS} missing; set FERKIT_WEBPHOTOS)")
    rec = Recognizer(model="fast")
    ctx, page, _ = device_page(browser, server.url)
    page.check("input[name=mode][value=device]")
    wait_ready(page)
    rows, faces_seen = [], 0
    for path in photos:
        page.evaluate("ferkitDevice.photo = null")
        page.set_input_files("#dev-file", str(path))
        page.wait_for_function(f"ferkitDevice.photo === {json.dumps(path.name)} || ferkitDevice.error !== null",
                               timeout=60_000)
        res = page.evaluate("ferkitDevice.error || ferkitDevice.result")
        assert isinstance(res, dict), f"{path.name}: {res}"
        want = rec.detect(path)
        got = res["faces"]
        assert len(got) == len(want), f"{path.name}: {len(got)} faces in the browser, {len(want)} in Python"
        for a, b in zip(want, got):
            box = (b["box"]["x"], b["box"]["y"], b["box"]["w"], b["box"]["h"])
            db = max(abs(u - v) for u, v in zip(a.box, box))
            dp = max(abs(float(a.probs[i]) - b["probs"][e]) for i, e in enumerate(EMOTIONS))
            rows.append({"photo": path.name, "box_px": db, "probs": dp, "python": a.label, "browser": b["label"],
                         "detector": b["detector"]})
            assert b["detector"] == a.detector
            assert db <= BOX_TOL and dp <= PROB_TOL, rows[-1]
            faces_seen += 1
    assert faces_seen >= 10
    summary = {"photos": len(photos), "faces": faces_seen, "max_box_px": max(r["box_px"] for r in rows),
               "max_prob_diff": max(r["probs"] for r in rows), "rows": rows}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "device-parity.json").write_text(json.dumps(summary, indent=1))
    page.screenshot(path=str(ARTIFACTS / "device-page-photo.png"))
    ctx.close()


def test_no_camera_says_so_and_the_photo_still_works_on_the_device(server, pw, tmp_path):
    cam = write_y4m(tmp_path / "face.y4m", [photo_640x480("astronaut.jpg")] * 4, fps=10)
    with contextlib.closing(launch(pw, cam, fake_ui=False)) as b:  # no permission given: the camera is refused
        ctx, page, rec = device_page(b, server.url)
        page.check("input[name=mode][value=device]")
        wait_ready(page)
        page.click("#dev-start")
        page.wait_for_selector("#dev-error:not([hidden])", timeout=15_000)
        msg = page.inner_text("#dev-error")
        assert "No camera" in msg and "denied" in msg and "Analyse a photo" in msg, msg
        page.set_input_files("#dev-file", str(ASSETS / "astronaut.jpg"))
        page.wait_for_selector("#dev-faces li[data-label]", timeout=60_000)
        assert page.get_attribute("#dev-faces li", "data-label") == "happy"
        assert page.is_hidden("#dev-error") and page.inner_text("#dev-stats").startswith("astronaut.jpg: 1 face")
        rec.assert_nothing_uploaded(server.url, lambda p: page_files(p) or p == "/v1/model")
        page.screenshot(path=str(ARTIFACTS / "device-page-no-camera.png"))
        ctx.close()


def test_without_webassembly_simd_the_page_says_so_and_offers_the_server(server, pw):
    # V8 runs WebAssembly SIMD on SSE4.1: without it (an old CPU) the browser has no SIMD, as here
    with contextlib.closing(launch(pw, None, js_flags="--no-enable-sse4-1")) as b:
        ctx, page, _ = device_page(b, server.url)
        assert page.evaluate("ferkitDevice.simd") is False
        page.check("input[name=mode][value=device]")
        page.wait_for_selector("#dev-error:not([hidden])", timeout=10_000)
        assert "no WebAssembly SIMD" in page.inner_text("#dev-error")
        page.click("#dev-to-server")
        assert page.evaluate("ferkitDevice.mode") == "server" and page.is_visible("#start")
        page.screenshot(path=str(ARTIFACTS / "device-page-no-simd.png"))
        ctx.close()
