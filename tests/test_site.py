"""`ferkit site OUT_DIR`: the page, its scripts, onnxruntime-web (the pinned files, checked against their manifest)
and the two model files in a folder; served by `python -m http.server` on 127.0.0.1 it passes the fake-camera test
in real headless Chromium, on-device by default, one thread (that server sends no COOP/COEP), nothing uploaded; a
model file that fails to load is named on the page; a folder holding other files is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from device_helpers import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM,
    Requests,
    camera_check,
    launch,
    page_files,
    static_server,
    wait_ready,
)
from serve_helpers import ASSETS, REPO, photo_640x480, write_y4m  # noqa: E402

from ferkit.cli import main  # noqa: E402
from ferkit.serve.site import STATIC, model_files  # noqa: E402

needs_browser = pytest.mark.skipif(
    not Path(CHROMIUM).is_file() or importlib.util.find_spec("playwright") is None,
    reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium) and Playwright (dev extra)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "out"
    assert main(["site", str(out), "-q"]) == 0
    return out


def test_site_holds_the_page_ort_and_the_models(site, tmp_path, capsys):
    html = (site / "index.html").read_text()
    assert 'data-ferkit="site"' in html and "app.js" not in html and "static/device/device.js" in html
    for name, path in model_files().items():
        assert (site / "models" / name).read_bytes() == path.read_bytes(), name
    manifest = json.loads((site / "static" / "ort" / "MANIFEST.json").read_text())
    assert manifest["package"] == "onnxruntime-web" and manifest["version"]
    for name, rec in manifest["files"].items():  # the pinned npm files, byte for byte
        assert hashlib.sha256((site / "static" / "ort" / name).read_bytes()).hexdigest() == rec["sha256"], name
        assert (STATIC / "ort" / name).read_bytes() == (site / "static" / "ort" / name).read_bytes()
    assert "MIT License" in (site / "static" / "ort" / "LICENSE").read_text()
    headers = (site / "_headers").read_text()
    assert "Cross-Origin-Opener-Policy: same-origin" in headers
    assert "Cross-Origin-Embedder-Policy: require-corp" in headers
    for f in sorted((STATIC / "device").glob("*")):
        assert (site / "static" / "device" / f.name).read_bytes() == f.read_bytes(), f.name
    # a previous site is rewritten in place; JSON summary on stdout alone
    assert main(["site", str(site), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "models/ferkit-fast.onnx" in summary["files"] and summary["bytes"] > 20e6
    # a folder with other files, or a file, is refused with its name, and left alone
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["site", str(other)]) == 2
    assert str(other) in capsys.readouterr().err and sorted(p.name for p in other.iterdir()) == ["keep.txt"]
    assert main(["site", str(other / "keep.txt")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_committed_ort_files_match_their_manifest():
    sys.path.insert(0, str(REPO / "scripts"))
    from vendor_onnxruntime_web import check

    assert check() == []


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    cam = write_y4m(tmp_path_factory.mktemp("cam") / "face.y4m", [photo_640x480("astronaut.jpg")] * 20, fps=10)
    with sync_playwright() as pw:
        b = launch(pw, cam)
        yield b
        b.close()


@needs_browser
def test_site_on_a_static_server_passes_the_camera_test(site, browser):
    with static_server(site) as url:
        ctx = browser.new_context(viewport={"width": 1000, "height": 900}, permissions=["camera"])
        page = ctx.new_page()
        rec = Requests(ctx, page)
        page.goto(url + "/", wait_until="load")
        assert page.evaluate("ferkitDevice.mode") == "device", "a static site opens in the on-device mode"
        assert page.is_disabled("input[name=mode][value=server]") and page.is_hidden("#start")
        info = wait_ready(page)
        assert info["isolated"] is False and info["info"]["threads"] == 1  # http.server sends no COOP/COEP
        assert "1 thread" in page.inner_text("#dev-model")
        camera_check(page, "happy", ARTIFACTS / "site-camera.png")
        page.set_input_files("#dev-file", str(ASSETS / "camera.jpg"))
        page.wait_for_function("ferkitDevice.photo === 'camera.jpg'", timeout=60_000)
        assert page.locator("#dev-faces li[data-label]").count() == 1
        rec.assert_nothing_uploaded(url, page_files)
        assert "/models/ferkit-fast.onnx" in rec.paths()
        assert not rec.errors, rec.errors
        ctx.close()


@needs_browser
@pytest.mark.parametrize("broken, named", [
    ("models/ferkit-fast.onnx", "ferkit-fast.onnx"),
    ("models/centerface.onnx", "centerface.onnx"),
    ("static/ort/ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.wasm"),
], ids=["classifier-truncated", "detector-missing", "wasm-missing"])
def test_a_file_that_fails_to_load_is_named(site, browser, tmp_path, broken, named):
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    target = copy / broken
    if broken.endswith("ferkit-fast.onnx"):
        target.write_bytes(target.read_bytes()[:5000])  # a download cut short
    else:
        target.unlink()
    with static_server(copy) as url:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(url + "/", wait_until="load")
        page.wait_for_selector("#dev-error:not([hidden])", timeout=60_000)
        msg = page.inner_text("#dev-error")
        assert named in msg, msg
        assert page.evaluate("ferkitDevice.ready") is False
        page.set_input_files("#dev-file", str(ASSETS / "astronaut.jpg"))  # no analysis, and it says why
        page.wait_for_function("ferkitDevice.error && ferkitDevice.error.startsWith('astronaut.jpg')")
        assert named in page.inner_text("#dev-error")
        page.screenshot(path=str(ARTIFACTS / f"site-broken-{Path(named).stem}.png"))
        ctx.close()


@needs_browser
def test_opened_from_the_disk_the_page_says_how_to_serve_it(site, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto((site / "index.html").as_uri(), wait_until="load")
    page.wait_for_selector("#dev-error:not([hidden])", timeout=10_000)
    assert "python -m http.server" in page.inner_text("#dev-error")
    ctx.close()
