"""The live page in headless Chromium on this machine: frames per second and milliseconds per step with one and
five faces in a 640x480 camera, the "on this device" mode beside the server mode. Prints a markdown table; not a
test.

    python benchmarks/bench_browser.py [--frames 40] [--write FILE] [--json FILE]

Camera: Chromium's fake camera fed a .y4m of one 640x480 picture (tests/assets/astronaut.jpg letterboxed; five
faces: five photos of ../shared/webphotos-dev, or $FERKIT_WEBPHOTOS, cut around their face and tiled, read here,
never written anywhere but a temporary folder; without the folder the astronaut five times).
Runs, each after 6 frames of warm-up, over --frames analysed frames:
* device, static site: `ferkit site` served by `python -m http.server` (no COOP/COEP: one WebAssembly thread),
  the page's camera defaults (detector sees 224 px, finds faces every 2nd frame) and Python's settings
  (640 px, every frame);
* device, ferkit serve: the same page from `ferkit serve` (COOP/COEP: WebAssembly threads), both settings;
* server mode: frames POSTed to `ferkit serve --model fast` (min_face 80, detector sees 640 px), one in flight.
Device steps: detect (grey + CenterFace, over the frames it ran on), align+crop, classify (one batch), whole frame
(grab to result). Server steps: decode and inference (detect + crop + classify) as the server times them, round trip
as the page sees it. Run it under the shared CPU lock: `flock /tmp/ferkit-cpu.lock python benchmarks/bench_browser.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from device_helpers import WEBPHOTOS, launch, static_server  # noqa: E402
from serve_helpers import ASSETS, photo_640x480, running, write_y4m  # noqa: E402

SETTINGS = {"page defaults (224 px, every 2nd frame)": ("224", "2"), "as Python (640 px, every frame)": ("640", "1")}


def five_faces() -> tuple[np.ndarray, str]:
    """A 640x480 picture of five real faces (about 150 px each) and where they came from."""
    import cv2

    from ferkit.recognizer import Recognizer

    rec = Recognizer(model="fast")
    photos = sorted(WEBPHOTOS.glob("*/*.jpg"))[::97]
    tiles = []
    for p in photos:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        faces = rec.detect(p) if img is not None else []
        if len(faces) != 1:
            continue
        x, y, w, h = faces[0].box
        s = max(w, h) * 1.3
        cx, cy = x + w / 2, y + h / 2
        x0, y0 = int(max(0, cx - s / 2)), int(max(0, cy - s / 2))
        tiles.append(cv2.resize(img[y0:int(y0 + s), x0:int(x0 + s)], (200, 200), interpolation=cv2.INTER_AREA))
        if len(tiles) == 5:
            break
    source = f"{WEBPHOTOS} (5 photos)"
    if len(tiles) < 5:
        face = cv2.imread(str(ASSETS / "astronaut.jpg"), cv2.IMREAD_COLOR)[20:220, 70:270]
        tiles, source = [face] * 5, "tests/assets/astronaut.jpg x 5"
    canvas = np.full((480, 640, 3), 40, np.uint8)
    for i, t in enumerate(tiles):  # 3 on top, 2 below
        x0, y0 = (10 + 210 * i, 20) if i < 3 else (115 + 210 * (i - 3), 260)
        canvas[y0:y0 + 200, x0:x0 + 200] = t
    return canvas, source


def device_run(browser, url: str, size: str, every: str, frames: int, faces: int) -> dict:
    ctx = browser.new_context(permissions=["camera"])
    page = ctx.new_page()
    page.goto(url + "/", wait_until="load")
    if page.evaluate("ferkitDevice.mode") != "device":
        page.check("input[name=mode][value=device]")
    page.wait_for_function("ferkitDevice.ready || ferkitDevice.error", timeout=120_000)
    page.select_option("#dev-size", size)
    page.select_option("#dev-every", every)
    page.click("#dev-start")
    page.wait_for_function("ferkitDevice.done >= 6", timeout=300_000)
    start = page.evaluate("[ferkitDevice.done, performance.now()]")
    page.wait_for_function(f"ferkitDevice.done >= {start[0] + frames}", timeout=900_000)
    end = page.evaluate("[ferkitDevice.done, performance.now()]")
    steps = page.evaluate(f"ferkitDevice.steps.slice(-{frames})")
    info = page.evaluate("({threads: ferkitDevice.info.threads, found: ferkitDevice.faces.length})")
    page.click("#dev-stop")
    ctx.close()
    det = [s["detect"] for s in steps if s["detected"]]
    return {"fps": (end[0] - start[0]) / ((end[1] - start[1]) / 1000), "detect_ms": float(np.mean(det)),
            "crop_ms": float(np.mean([s["crop"] for s in steps])),
            "classify_ms": float(np.mean([s["classify"] for s in steps])),
            "frame_ms": float(np.mean([s["round"] for s in steps])), "threads": info["threads"],
            "faces_found": info["found"], "faces": faces}


def server_run(browser, url: str, frames: int, faces: int) -> dict:
    ctx = browser.new_context(permissions=["camera"])
    page = ctx.new_page()
    timings = []

    def on_response(r):
        if "/v1/emotions" in r.url and r.status == 200:
            with contextlib.suppress(Exception):
                timings.append(r.json()["timing_ms"])

    page.on("response", on_response)
    page.goto(url + "/", wait_until="load")
    if page.evaluate("ferkitDevice.mode") != "server":
        page.check("input[name=mode][value=server]")
    page.wait_for_function("document.querySelector('#detector').options.length > 0", timeout=30_000)
    page.click("#start")
    page.wait_for_function("window.ferkit.done >= 6", timeout=300_000)
    start = page.evaluate("[window.ferkit.done, performance.now()]")
    page.wait_for_function(f"window.ferkit.done >= {start[0] + frames}", timeout=900_000)
    end = page.evaluate("[window.ferkit.done, performance.now()]")
    lat = page.evaluate(f"window.ferkit.latencies.slice(-{frames})")
    found = page.evaluate("window.ferkit.faces.length")
    page.click("#stop")
    ctx.close()
    t = timings[-frames:]
    return {"fps": (end[0] - start[0]) / ((end[1] - start[1]) / 1000),
            "decode_ms": float(np.mean([x["decode"] for x in t])),
            "inference_ms": float(np.mean([x["inference"] for x in t])), "round_trip_ms": float(np.mean(lat)),
            "faces_found": found, "faces": faces}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=40, help="analysed frames measured per run (default 40)")
    ap.add_argument("--write", help="append the markdown report to this file")
    ap.add_argument("--json", help="write the figures as JSON to this file")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from ferkit.serve.site import write_site

    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, running(["--model", "fast", "--no-access-log"],
                                                       Path(tmp) / "server.log") as srv:
        write_site(Path(tmp) / "site")
        five, source = five_faces()
        scenes = {1: photo_640x480("astronaut.jpg"), 5: five}
        with static_server(Path(tmp) / "site") as site_url, sync_playwright() as pw:
            for n, picture in scenes.items():
                cam = write_y4m(Path(tmp) / f"faces{n}.y4m", [picture] * 10, fps=30)
                browser = launch(pw, cam)
                try:
                    for where, url in (("device, static site (http.server)", site_url),
                                       ("device, ferkit serve page", srv.url)):
                        for setting, (size, every) in SETTINGS.items():
                            r = device_run(browser, url, size, every, args.frames, n)
                            rows.append({"mode": where, "setting": setting, **r})
                            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                    rows.append({"mode": "server (frames POSTed)", "setting": "min_face 80, 640 px, every frame",
                                 **server_run(browser, srv.url, args.frames, n)})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                finally:
                    browser.close()
    load1 = os.getloadavg()
    report = render(rows, args, source, load0, load1)
    print(report)
    if args.write:
        with open(args.write, "a") as f:
            f.write(report + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "load_before": load0, "load_after": load1}, indent=1))
    return 0


def render(rows, args, source, load0, load1) -> str:
    f = lambda v: f"{v:.1f}" if isinstance(v, float) else ("-" if v is None else str(v))  # noqa: E731
    out = [f"ferkit live page in headless Chromium, {datetime.now():%Y-%m-%d %H:%M}",
           f"command: `python benchmarks/bench_browser.py --frames {args.frames}`",
           f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load0[0]:.2f} before, "
           f"{load1[0]:.2f} after; browser, server and page on the same cores",
           f"camera: 640x480 fake camera; one face: tests/assets/astronaut.jpg; five faces: {source}", "",
           "| faces | mode | setting | threads | fps | detect ms | align+crop ms | classify ms | frame ms "
           "| server decode ms | server inference ms | round trip ms |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['faces']} ({r['faces_found']} found) | {r['mode']} | {r['setting']} | "
                   f"{r.get('threads', '-')} | {f(r['fps'])} | {f(r.get('detect_ms'))} | {f(r.get('crop_ms'))} | "
                   f"{f(r.get('classify_ms'))} | {f(r.get('frame_ms'))} | {f(r.get('decode_ms'))} | "
                   f"{f(r.get('inference_ms'))} | {f(r.get('round_trip_ms'))} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
