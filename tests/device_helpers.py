"""The page's on-device mode in a real headless Chromium (Debian's, driven by Playwright): browser launch, a static
file server on 127.0.0.1, a record of every request the page makes, and the fake-camera check shared by
tests/test_device_page.py (page served by `ferkit serve`) and tests/test_site.py (page written by `ferkit site`),
and used by benchmarks/bench_browser.py. Not a pytest conftest: nothing here runs on its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from serve_helpers import REPO, free_port

CHROMIUM = os.environ.get("FERKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("FERKIT_ARTIFACTS", REPO / "test-artifacts"))
WEBPHOTOS = Path(os.environ.get("FERKIT_WEBPHOTOS", REPO.parent / "shared" / "webphotos-dev"))
COLORS = {"angry": (220, 40, 40), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (255, 200, 0),
          "neutral": (180, 180, 180), "sad": (30, 120, 200), "surprise": (255, 140, 0)}  # the page's, as RGB
BASE_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-extensions"]


def launch(pw, camera: Path | None = None, fake_ui: bool = True, js_flags: str | None = None):
    """A headless Chromium from a running Playwright ``pw``; with ``camera`` (a .y4m) as its fake camera; ``fake_ui``:
    camera permission prompts answered yes (without it, and without a context permission, the camera is refused)."""
    args = list(BASE_ARGS)
    if camera is not None:
        args += ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}"]
    if fake_ui:
        args.append("--use-fake-ui-for-media-stream")
    if js_flags:
        args.append(f"--js-flags={js_flags}")
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=60_000, args=args)


@contextlib.contextmanager
def static_server(folder: Path):
    """``python -m http.server`` serving ``folder`` on 127.0.0.1 (a plain static server: no COOP/COEP)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                             str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        t_end = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > t_end or proc.poll() is not None:
                    raise RuntimeError(f"python -m http.server did not start: {proc.stderr.read()}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Requests:
    """Every request the pages of a browser context make (workers' included): method, URL, body size, type; and
    the page's console errors."""

    def __init__(self, context, page):
        self.seen: list[dict] = []
        self.errors: list[str] = []
        context.on("request", self._on)
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _on(self, req):
        body = req.post_data_buffer
        self.seen.append({"method": req.method, "url": req.url, "body": len(body) if body else 0,
                          "type": req.resource_type})

    def paths(self) -> list[str]:
        return [urlparse(r["url"]).path for r in self.seen]

    def assert_nothing_uploaded(self, origin: str, allowed) -> None:
        """Only GETs without a body, all to ``origin``, each path one the page may load (``allowed(path)``)."""
        outside = [r["url"] for r in self.seen if not r["url"].startswith(origin + "/") and
                   not r["url"].startswith(("data:", "blob:"))]
        assert not outside, f"the page fetched from outside {origin}: {outside}"
        sent = [r for r in self.seen if r["method"] != "GET" or r["body"]]
        assert not sent, f"the page sent data: {sent}"
        odd = [p for p in self.paths() if not allowed(p)]
        assert not odd, f"unexpected requests: {odd}"


def page_files(path: str) -> bool:
    """A path the page loads in on-device mode: itself, its static files, the two model files."""
    return (path in ("/", "/index.html", "/favicon.ico") or path.startswith("/static/")
            or path in ("/models/centerface.onnx", "/models/ferkit-fast.onnx"))


def wait_ready(page, timeout_ms: int = 90_000) -> dict:
    page.wait_for_function("window.ferkitDevice && (window.ferkitDevice.ready || window.ferkitDevice.error)",
                           timeout=timeout_ms)
    st = page.evaluate("({ready: ferkitDevice.ready, error: ferkitDevice.error, info: ferkitDevice.info, "
                       "mode: ferkitDevice.mode, isolated: ferkitDevice.isolated})")
    assert st["error"] is None, st["error"]
    return st


def camera_check(page, label: str, shot: Path, frames: int = 5) -> dict:
    """Start the camera in on-device mode; labelled boxes within seconds, one frame in flight, fps and the
    per-step milliseconds shown; a screenshot. Returns the page's state."""
    from ferkit.emotions import EMOTIONS

    page.click("#dev-start")
    page.wait_for_selector("#dev-faces li[data-label]", timeout=30_000)
    page.wait_for_function(f"window.ferkitDevice.done >= {frames}", timeout=60_000)
    st = page.evaluate("({faces: ferkitDevice.faces, frame: ferkitDevice.frame, done: ferkitDevice.done, "
                       "error: ferkitDevice.error, maxInflight: ferkitDevice.maxInflight, stats: ferkitDevice.stats, "
                       "w: view.width, h: view.height})")
    assert st["error"] is None, st["error"]
    assert len(st["faces"]) == 1 and st["faces"][0]["label"] in EMOTIONS
    assert st["faces"][0]["label"] == label, st["faces"][0]
    assert st["faces"][0]["trackId"] == 1, "the one face changed track between frames"
    assert st["frame"] == {"w": 640, "h": 480} and (st["w"], st["h"]) == (640, 480)
    assert st["maxInflight"] == 1, "more than one frame in flight"
    b = st["faces"][0]["box"]  # the box drawn in the label's colour (bottom edge, middle)
    px = page.evaluate(f"Array.from(view.getContext('2d').getImageData({b['x'] + b['w'] // 2}, "
                       f"{b['y'] + b['h']}, 1, 1).data)")
    assert all(abs(a - c) <= 40 for a, c in zip(px[:3], COLORS[label])), px
    stats = page.inner_text("#dev-stats")
    for part in ("on this device", "fps", "detect", "align+crop", "classify", "1 face"):
        assert part in stats, stats
    assert st["stats"]["fps"] > 0 and st["stats"]["detect"] > 0 and st["stats"]["classify"] > 0, st["stats"]
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    page.click("#dev-stop")
    return st
