"""Detection + classification latency on one 640x480 photo with one face, per detector. Markdown table.

    .venv/bin/python benchmarks/bench_detect.py [--runs 30]
    .venv/bin/python benchmarks/bench_detect.py --tune-crop 600 [--detectors haar dlib]   # crop tuning

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


def tune_crop(n, detectors):
    """FER2013 PublicTest faces pasted (upscaled) into bigger images, detected, cropped with each
    (margin, shift) and classified: accuracy on the faces found, per setting (see RESULTS.md)."""
    import random

    import numpy as np

    from ferkit.emotions import EMOTIONS
    from ferkit.faces import CropSpec, crop_face

    root = Path(__file__).resolve().parents[1].parent / "shared" / "fer2013" / "test"
    files = sorted((p, EMOTIONS.index(p.parent.name)) for p in root.glob("*/PublicTest_*.jpg"))
    random.seed(0)
    random.shuffle(files)
    files = files[:n]
    faces = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in files])
    y = np.array([lab for _, lab in files])
    r = Recognizer(detector="full")
    direct = r.predict_arrays(faces, 256).argmax(1)
    print(f"direct 48x48 accuracy {np.mean(direct == y):.4f} on {len(y)} faces")
    rng = np.random.default_rng(0)
    photos = []
    for f in faces:
        s = int(rng.integers(120, 200))
        big = cv2.resize(f, (s, s), interpolation=cv2.INTER_CUBIC)
        bg = np.full((360, 480), int(np.median(np.r_[f[0], f[-1], f[:, 0], f[:, -1]])), np.uint8)
        bg = cv2.add(bg, rng.integers(0, 12, bg.shape).astype(np.uint8))
        x, yy = int(rng.integers(0, 480 - s)), int(rng.integers(0, 360 - s))
        bg[yy:yy + s, x:x + s] = big
        photos.append(bg)
    for det in detectors:
        r = Recognizer(detector=det, max_faces=1)
        dets = [r.detect_boxes(p) for p in photos]
        found = np.array([len(d) > 0 for d in dets])
        acc_direct = np.mean(direct[found] == y[found])
        print(f"{det}: found {found.mean():.3f}; direct accuracy on those {acc_direct:.4f}")
        res = []
        for m in (-0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.3):
            for sh in (-0.1, -0.05, 0.0, 0.05, 0.1):
                spec = CropSpec(m, sh)
                pairs = zip(photos, dets, strict=True)
                crops = np.stack([crop_face(p, d[0].box, spec) for p, d in pairs if d])
                res.append((float(np.mean(r.predict_arrays(crops, 256).argmax(1) == y[found])), m, sh))
        for acc, m, sh in sorted(res, reverse=True)[:6]:
            print(f"  margin {m:+.2f} shift {sh:+.2f}: accuracy {acc:.4f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--model", default="default")
    ap.add_argument("--tune-crop", type=int, default=0, metavar="N", help="run the crop tuning on N faces")
    ap.add_argument("--detectors", nargs="+", default=["haar", "dlib"])
    args = ap.parse_args()
    if args.tune_crop:
        return tune_crop(args.tune_crop, args.detectors)
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
