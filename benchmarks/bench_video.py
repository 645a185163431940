"""Video pipeline benchmark: frames per second per detector (1 and 5 faces, 640x480) and peak RSS over
a short vs a long clip (memory must stay flat). Prints markdown tables; not a test.

    .venv/bin/python benchmarks/bench_video.py [--cores 2] [--seconds 6] [--long-minutes 10] [--write FILE]

Clips are FER2013 test faces (upscaled) moving over a background with sensor noise, like the tests' clips.
fps = frames through the whole `ferkit video --out` pipeline (decode, detect, classify, track, draw,
encode) divided by wall time; the per-stage columns are the same stages timed one after another.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest_video import pick_faces, render_frames, still, write_clip  # noqa: E402

from ferkit.commands.video import DETECT_SIZE, MIN_FACE  # noqa: E402
from ferkit.faces import list_detectors, resolve_name  # noqa: E402
from ferkit.recognizer import Recognizer  # noqa: E402
from ferkit.video import FrameSource, Tracker, open_source, process_video  # noqa: E402

SIZE = (640, 480)
FPS = 30.0


MODEL = "fast"  # what `ferkit video` / `ferkit webcam` use by default; --model changes it


def engine(detector: str, model: str | None = None) -> Recognizer:
    return Recognizer(model=model or MODEL, detector=detector, min_face=MIN_FACE, max_side=DETECT_SIZE)


def faces_for(n: int) -> list:
    r = engine("haar")  # pick faces both detectors find: haar is the pickier one
    emos = ["happy", "neutral", "surprise", "sad", "angry"]
    return [still(pick_faces(r, emos[k % 5], 1, 160, start=k // 5)[0]) for k in range(n)]


def fps_row(clip: Path, detector: str, n_faces: int, detect_every: int = 1) -> dict:
    r = engine(detector)
    # stages one after another on the first 30 frames
    src = open_source(clip)
    det_t, cls_t, found = [], [], []
    for _ in range(30):
        img = src.read()
        t0 = time.perf_counter()
        boxes = r.detect_boxes(img)
        t1 = time.perf_counter()
        r.classify_boxes(img, boxes)
        t2 = time.perf_counter()
        det_t.append(t1 - t0)
        cls_t.append(t2 - t1)
        found.append(len(boxes))
    src.close()
    with tempfile.TemporaryDirectory() as d:
        rep = process_video(open_source(clip), r, Tracker(), out=Path(d) / "out.mp4",
                            detect_every=detect_every)
    return {"detector": detector, "faces": n_faces, "found": float(np.mean(found)),
            "detect_ms": 1000 * float(np.median(det_t)), "classify_ms": 1000 * float(np.median(cls_t)),
            "frames": rep.frames, "fps": rep.fps}


class LoopSource(FrameSource):
    """A long synthetic clip: a few rendered frames played in a loop for ``seconds`` (no file to store)."""

    def __init__(self, frames: list[np.ndarray], fps: float, seconds: float):
        self.name, self.fps, self.frames_ = "loop", fps, frames
        self.frame_count = int(seconds * fps)
        self._i = 0

    def read(self):
        if self._i >= self.frame_count:
            return None
        f = self.frames_[self._i % len(self.frames_)]
        self._i += 1
        return f.copy()


def rss_child(minutes: float, fps: float, every: int) -> None:
    """Run in a subprocess: one long clip through the full pipeline; prints JSON with peak/current RSS."""
    frames = list(render_frames(faces_for(1), (320, 240), 64, 96, noise=4.0))
    r = engine("auto")
    samples = []

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def on_frame(fr):
        if fr.index % int(fps * 30) == 0:
            samples.append(round(rss_mb(), 1))

    with tempfile.TemporaryDirectory() as d:
        rep = process_video(LoopSource(frames, fps, minutes * 60), r, Tracker(), out=Path(d) / "o.mp4",
                            csv_path=Path(d) / "o.csv", every=every, on_frame=on_frame)
        rep.timeline.plot(Path(d) / "o.png")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"minutes": minutes, "frames": rep.frames, "processed": rep.processed, "fps": rep.fps,
                      "peak_mb": peak, "first_mb": samples[1] if len(samples) > 1 else samples[0],
                      "last_mb": samples[-1], "samples": len(samples)}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2, help="pin to this many CPU cores (default 2)")
    ap.add_argument("--seconds", type=float, default=6.0, help="length of the fps clips")
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--short-minutes", type=float, default=1.0)
    ap.add_argument("--rss-fps", type=float, default=10.0, help="frame rate of the RSS clips (320x240)")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--model", default="fast", help="shipped model name or .onnx (default fast, as ferkit video)")
    ap.add_argument("--detectors", nargs="*", default=None, help="detectors to compare (default: every installed one)")
    ap.add_argument("--write", help="also save the tables (with command and date) to this markdown file")
    ap.add_argument("--rss-child", nargs=3, type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    global MODEL
    MODEL = a.model
    if a.rss_child:
        rss_child(a.rss_child[0], a.rss_child[1], int(a.rss_child[2]))
        return 0
    if a.cores and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[: a.cores]
        os.sched_setaffinity(0, cpus)
    lines = [f"ferkit video benchmark, {datetime.now():%Y-%m-%d %H:%M}",
             f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
             f"machine: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} core(s) "
             f"used of {os.cpu_count()}, load average before start {os.getloadavg()[0]:.2f} "
             f"(other jobs share these cores)",
             f"video settings (the command's defaults): model {MODEL}, detect on frames scaled to "
             f"{DETECT_SIZE} px, min face {MIN_FACE} px, smoothing 0.3 / hysteresis 0.1", ""]
    print("\n".join(lines), flush=True)

    table = ["| detector | detect every | faces | found / frame | detect ms | classify ms | frames | "
             "fps (full pipeline) |", "|---|---|---|---|---|---|---|---|"]
    print("\n".join(table), flush=True)
    dets = [n for n, v in list_detectors().items() if v["available"] and n not in ("auto", "full")]
    dets = [n for n in dets if not a.detectors or n in a.detectors]
    with tempfile.TemporaryDirectory() as d:
        for n_faces in (1, 5):
            clip = write_clip(Path(d) / f"c{n_faces}.mp4", faces_for(n_faces), SIZE, FPS, a.seconds,
                              face_px=160 if n_faces == 1 else 120)
            for det, k in [(det, 1) for det in dets] + [(resolve_name("auto"), 3)]:
                r = fps_row(clip, det, n_faces, k)
                row = (f"| {det} | {k} | {n_faces} | {r['found']:.1f} | {r['detect_ms']:.1f} | "
                       f"{r['classify_ms']:.1f} | {r['frames']} | {r['fps']:.1f} |")
                table.append(row)
                print(row, flush=True)
    lines += table

    if not a.skip_rss:
        rss = [f"\nMemory over a long clip (320x240 at {a.rss_fps:g} fps, 1 face, detector auto, annotated "
               f"video + CSV + timeline written; RSS sampled every 30 s of video):", "",
               "| clip | frames | fps | RSS at 30 s (MB) | RSS at end (MB) | peak RSS (MB) |",
               "|---|---|---|---|---|---|"]
        print("\n".join(rss), flush=True)
        for minutes in (a.short_minutes, a.long_minutes):
            out = subprocess.run([sys.executable, __file__, "--model", a.model, "--rss-child", str(minutes),
                                  str(a.rss_fps), "1"],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            row = (f"| {minutes:g} min | {r['frames']} | {r['fps']:.1f} | {r['first_mb']:.0f} | "
                   f"{r['last_mb']:.0f} | {r['peak_mb']:.0f} |")
            rss.append(row)
            print(row, flush=True)
        lines += rss
    if a.write:
        p = Path(a.write)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text("# Video benchmark\n\n" + "\n".join(lines) + "\n")
        os.replace(tmp, p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
