"""The page at `/` in a real headless Chromium (Debian's /usr/bin/chromium driven by the Playwright Python
package, no browser download) against a real `ferkit serve`: a fake camera fed from a .y4m video built from a
real face photo, labelled boxes drawn within seconds, one frame in flight, the photo-upload fallback on a
phone-sized screen. Screenshots are written to test-artifacts/ (or $FERKIT_ARTIFACTS).

CI installs the Debian package `chromium` (.ci/run, scripts/install-dev.sh); without it this module is skipped.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'ferkit[serve]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the Playwright Python package (dev extra)")

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import ASSETS, REPO, photo_640x480, running, write_y4m  # noqa: E402

from ferkit.emotions import EMOTIONS  # noqa: E402

CHROMIUM = os.environ.get("FERKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                reason=f"no Chromium at {CHROMIUM}: apt-get install chromium "
                                       "(.ci/run and scripts/install-dev.sh do when run as root)")
ARTIFACTS = Path(os.environ.get("FERKIT_ARTIFACTS", REPO / "test-artifacts"))
COLORS = {"angry": (220, 40, 40), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (255, 200, 0),
          "neutral": (180, 180, 180), "sad": (30, 120, 200), "surprise": (255, 140, 0)}  # the page's, as RGB


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(["--model", "fast"], tmp_path_factory.mktemp("serve") / "server.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory) -> Path:
    # 2 s of a real face photo at 10 fps (Chromium loops it)
    return write_y4m(tmp_path_factory.mktemp("cam") / "face.y4m", [photo_640x480("astronaut.jpg")] * 20, fps=10)


@pytest.fixture(scope="module")
def browser(camera_file):
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, timeout=60_000,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-extensions",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={camera_file}"])
        try:
            yield b
        finally:
            b.close()


def _watch(page):
    """Record console errors, requests that leave 127.0.0.1, and how many /v1/emotions calls overlap."""
    seen = {"errors": [], "outside": [], "inflight": 0, "max_inflight": 0, "posts": 0}

    def on_request(req):
        if not req.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            seen["outside"].append(req.url)
        if "/v1/emotions" in req.url:
            seen["inflight"] += 1
            seen["posts"] += 1
            seen["max_inflight"] = max(seen["max_inflight"], seen["inflight"])

    def on_done(req):
        if "/v1/emotions" in req.url:
            seen["inflight"] -= 1

    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", on_request)
    page.on("requestfinished", on_done)
    page.on("requestfailed", on_done)
    return seen


def test_camera_page_draws_labelled_boxes(server, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1000, "height": 900}, permissions=["camera"])
    page = ctx.new_page()
    seen = _watch(page)
    page.goto(server.url + "/", wait_until="load")
    page.wait_for_function("document.querySelector('#detector').options.length > 0", timeout=10_000)
    page.click("#start")
    # a labelled face in the list within seconds, from a real round trip with the fake camera's frames
    page.wait_for_selector("#faces li[data-label]", timeout=20_000)
    page.wait_for_function("window.ferkit.done >= 5", timeout=30_000)
    st = page.evaluate("({faces: window.ferkit.faces, frame: window.ferkit.frame, done: window.ferkit.done,"
                       " error: window.ferkit.error, w: view.width, h: view.height})")
    assert st["error"] is None
    assert len(st["faces"]) == 1 and st["faces"][0]["label"] in EMOTIONS
    assert st["faces"][0]["label"] == "happy"  # the astronaut smiles; the API test checks the same photo
    assert st["frame"] == {"w": 640, "h": 480} and (st["w"], st["h"]) == (640, 480)
    # the box is drawn on the canvas in the label's colour (bottom edge, middle)
    b = st["faces"][0]["box"]
    px = page.evaluate(f"Array.from(view.getContext('2d').getImageData({b['x'] + b['w'] // 2}, "
                       f"{b['y'] + b['h']}, 1, 1).data)")
    assert all(abs(a - c) <= 40 for a, c in zip(px[:3], COLORS[st["faces"][0]["label"]])), px
    stats = page.inner_text("#stats")
    assert "fps" in stats and "ms round trip" in stats and "1 face" in stats
    _assert_labels_whole(page)
    page.screenshot(path=str(ARTIFACTS / "serve-page-camera.png"))
    page.click("#stop")
    assert seen["max_inflight"] == 1, "more than one frame in flight"
    assert seen["posts"] >= 5
    assert not seen["errors"], seen["errors"]
    assert not seen["outside"], f"the page fetched from outside: {seen['outside']}"
    ctx.close()


def test_photo_upload_on_a_phone_sized_screen(server, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    page = ctx.new_page()
    seen = _watch(page)
    page.goto(server.url + "/", wait_until="load")
    page.set_input_files("#file", str(ASSETS / "astronaut.jpg"))
    page.wait_for_selector("#faces li[data-label]", timeout=15_000)
    assert page.get_attribute("#faces li", "data-label") == "happy"
    assert page.inner_text("#stats").startswith("astronaut.jpg: 1 face")
    # nothing wider than the phone: no sideways scrolling, the canvas fits the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("view.getBoundingClientRect().width") <= 390
    _assert_labels_whole(page)
    page.screenshot(path=str(ARTIFACTS / "serve-page-phone-upload.png"), full_page=True)
    # a file the server refuses: its reason is shown, and the previous photo and its faces are gone (shown
    # under the error they would pass for this file's result)
    bad = ARTIFACTS / "not-a-photo.jpg"
    bad.write_text("not an image")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "not an image" in page.inner_text("#error")
    bad.unlink()
    assert page.is_hidden("#view"), "the previous photo is still shown under the error"
    assert page.locator("#faces li").count() == 0 and page.evaluate("window.ferkit.faces.length") == 0
    assert page.inner_text("#stats") == "not-a-photo.jpg: no result"
    page.screenshot(path=str(ARTIFACTS / "serve-page-phone-refused.png"), full_page=True)
    # and the next good photo is shown again
    page.set_input_files("#file", str(ASSETS / "astronaut.jpg"))
    page.wait_for_selector("#faces li[data-label]", timeout=15_000)
    assert page.is_visible("#view") and page.is_hidden("#error")
    assert not seen["outside"]
    ctx.close()


def _assert_labels_whole(page):
    """Every emotion name shows whole: on the canvas, the bar panel's label column fits the widest name in its
    font (the panel used to cut "surprise" to "surpris"); in the list, no label cell overflows."""
    bars = page.evaluate("window.ferkit.bars")
    assert bars is not None, "the page drew no probability bars"
    assert bars["labels"] == list(EMOTIONS) and bars["widest"] <= bars["room"], bars
    cells = page.evaluate("Array.from(document.querySelectorAll('#faces .bars > span:nth-child(3n+1)'))"
                          ".map((s) => [s.textContent, s.scrollWidth, s.clientWidth])")
    assert [c[0] for c in cells] == list(EMOTIONS)
    assert all(sw <= cw for _, sw, cw in cells), cells
