"""Load benchmark of `ferkit serve` on loopback: N requests of 640x480 one-face JPEG photos at C concurrent
connections, for 1 and 2 server worker processes side by side. Prints a markdown table; not a test.

    python benchmarks/bench_serve.py [--requests 2000] [--concurrency 16] [--workers 1,2] [--model fast]
                                     [--min-face 80] [--detector auto] [--write FILE]

The photos are tests/assets/astronaut.jpg (one face) cropped 4 ways and placed on 640x480 canvases at 8 positions.
Each request is `POST /v1/emotions` with the JPEG as a raw body (image/jpeg), sent by an httpx async client
with C connections; the first 2 x C requests warm the server up and are not counted. An error is any answer
other than 200 with exactly one face, or a failed connection. Run it under the shared CPU lock:
`flock /tmp/ferkit-cpu.lock python benchmarks/bench_serve.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from serve_helpers import ASSETS, jpeg_bytes, running  # noqa: E402


def photos(n: int = 8) -> list[bytes]:
    """The one-face photo at n crops / positions on a 640x480 canvas (the same face 100-145 px wide)."""
    import cv2

    photo = cv2.imread(str(ASSETS / "astronaut.jpg"), cv2.IMREAD_COLOR)  # 384x384, face near (165, 95)
    out = []
    for i in range(n):
        c = 200 + 30 * (i % 4)  # square crop around the face ...
        x, y = min(max(0, 165 - c // 2), 384 - c), min(max(0, 95 - c // 2), 384 - c)
        img = cv2.resize(photo[y:y + c, x:x + c], (440, 440), interpolation=cv2.INTER_AREA)  # ... to 440 px
        canvas = np.full((480, 640, 3), 40 + 10 * i, np.uint8)
        x0 = int(200 * i / max(1, n - 1))
        canvas[20:460, x0:x0 + 440] = img
        out.append(jpeg_bytes(canvas, 90))
    return out


async def load(url: str, bodies: list[bytes], n: int, conc: int, params: dict, warmup: int) -> dict:
    import httpx

    headers = {"content-type": "image/jpeg"}

    async def run(client, todo, lat: list, errors: list):
        for i in todo:  # the iterator is shared by the C workers: each request is sent once
            t = time.perf_counter()
            try:
                r = await client.post("/v1/emotions", content=bodies[i % len(bodies)], params=params, headers=headers)
                why = "" if r.status_code == 200 and len(r.json()["faces"]) == 1 else \
                    f"HTTP {r.status_code}: {r.text[:120]}"
            except httpx.HTTPError as e:
                why = f"{type(e).__name__}: {e}"
            lat.append(time.perf_counter() - t)
            if why:
                errors.append(why)

    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        warm = iter(range(warmup))
        await asyncio.gather(*(run(client, warm, [], []) for _ in range(conc)))
        todo, lat, errors = iter(range(n)), [], []
        t0 = time.perf_counter()
        await asyncio.gather(*(run(client, todo, lat, errors) for _ in range(conc)))
        wall = time.perf_counter() - t0
    a = np.array(lat) * 1e3
    return {"requests": len(lat), "errors": len(errors), "first_error": errors[0] if errors else "",
            "wall_s": wall, "rps": len(lat) / wall, "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def _impl() -> str:
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"http {http}, loop {loop}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", default="1,2", help="comma list of server worker counts (default 1,2)")
    ap.add_argument("--model", default="fast")
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--min-face", type=int, default=80,
                    help="smallest face, sent as ?min_face= (default 80: the page's camera default)")
    ap.add_argument("--write", help="also write the table (markdown) to this file")
    a = ap.parse_args()

    bodies = photos()
    params = {"min_face": a.min_face}
    rows = []
    load1 = os.getloadavg()[0]
    for w in [int(x) for x in a.workers.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            args = ["--model", a.model, "--detector", a.detector, "--workers", str(w), "--no-access-log",
                    "--max-queue", str(4 * a.concurrency)]
            with running(args, Path(tmp) / "server.log") as srv:
                res = asyncio.run(load(srv.url, bodies, a.requests, a.concurrency, params, 2 * a.concurrency))
                detector = __import__("httpx").get(srv.url + "/v1/model").json()["detector"]
        rows.append((w, res))
        print(f"workers {w}: {res['rps']:.1f} req/s, p50 {res['p50']:.0f} ms, p99 {res['p99']:.0f} ms, "
              f"{res['errors']} errors {res['first_error']}", file=sys.stderr, flush=True)

    lines = [f"ferkit serve load benchmark, {datetime.now():%Y-%m-%d %H:%M}",
             f"command: `python benchmarks/bench_serve.py --requests {a.requests} --concurrency {a.concurrency} "
             f"--workers {a.workers} --model {a.model} --detector {a.detector} --min-face {a.min_face}`",
             f"machine: {platform.machine()}, {os.cpu_count()} cores, load average before start {load1:.2f}; "
             f"client and server on the same cores (loopback); uvicorn {_impl()}",
             f"requests: POST /v1/emotions?min_face={a.min_face}, 640x480 one-face JPEGs "
             f"({min(map(len, bodies)) // 1000}-{max(map(len, bodies)) // 1000} KB), model {a.model}, "
             f"detector {detector}, {a.concurrency} connections, {2 * a.concurrency} warm-up requests not counted",
             "",
             "| workers | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms |",
             "|---|---|---|---|---|---|---|---|"]
    for w, r in rows:
        lines.append(f"| {w} | {r['requests']} | {r['errors']} | {r['rps']:.1f} | {r['p50']:.0f} | {r['p90']:.0f} | "
                     f"{r['p99']:.0f} | {r['max']:.0f} |")
    text = "\n".join(lines)
    print(text)
    if a.write:
        p = Path(a.write)
        old = p.read_text() if p.exists() else "# Serve load benchmark\n"
        p.write_text(old.rstrip("\n") + "\n\n" + text + "\n")
    return 1 if any(r["errors"] for _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
