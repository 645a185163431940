"""Detection + classification latency on one 640x480 photo with one face, per detector. Markdown table.

    .venv/bin/python benchmarks/bench_detect.py [--runs 30]

The photo is tests/assets/astronaut.jpg (one face) scaled to 480 px high and padded to 640x480.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2

from ferkit.faces import list_detectors
from ferkit.recognizer import Recognizer

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "astronaut.jpg"


def photo():
    im = cv2.imread(str(ASSET))
    im = cv2.resize(im, (480, 480), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(im, 0, 0, 80, 80, cv2.BORDER_REFLECT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
    img = photo()
    print(f"photo {img.shape[1]}x{img.shape[0]}, model {args.model}, median of {args.runs} runs")
    print("| detector | faces | detect ms | detect + classify ms |")
    print("|---|---:|---:|---:|")
    for name, info in list_detectors().items():
        if name in ("auto", "full") or not info["available"]:
            continue
        r = Recognizer(model=args.model, detector=name)
        r.detect(img)
        td, tf = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            boxes = r.detect_boxes(img)
            t1 = time.perf_counter()
            r.classify_boxes(img, boxes)
            t2 = time.perf_counter()
            td.append(t1 - t0)
            tf.append(t2 - t0)
        md, mf = statistics.median(td) * 1e3, statistics.median(tf) * 1e3
        print(f"| {name} | {len(boxes)} | {md:.1f} | {mf:.1f} |", flush=True)


if __name__ == "__main__":
    main()
