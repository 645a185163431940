"""Peak memory (max RSS) of `ferkit predict` on folders of 1,000 and 10,000 images: it must stay flat.

    .venv/bin/python benchmarks/bench_predict_memory.py [--sizes 1000 10000] [--mode crop|detect|api]
        [--model default] [--batch-size N]

Mode "api": ``Recognizer(model).classify_batch(crops)`` on N FER2013 crops (decoded arrays) in one call,
the library's own chunking (default, or ``--batch-size``) bounding memory.

The folders hold symlinks to FER2013 training images (../shared/fer2013), made in a temp dir.
Mode "crop" (--crop, no detection) measures the pipeline itself; "detect" runs the haar detector too.
Each run is a separate process; its peak RSS comes from getrusage(RUSAGE_CHILDREN) via a wrapper.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FER = Path(__file__).resolve().parents[1].parent / "shared" / "fer2013"

WRAP = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


API = (
    "import numpy as np\n"
    "from PIL import Image\n"
    "from ferkit.recognizer import Recognizer\n"
    "files = open({files!r}).read().split(chr(10))\n"
    "crops = [np.asarray(Image.open(f).convert('L')) for f in files]\n"
    "preds = Recognizer({model!r}, detector='haar', batch_size={bs!r}).classify_batch(crops)\n"
    "assert len(preds) == len(crops)\n"
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--mode", choices=["crop", "detect", "api"], default="crop")
    ap.add_argument("--model", default="default", help="shipped name or .onnx path (mode api)")
    ap.add_argument("--batch-size", type=int, help="faces per inference call (mode api; default: the library's)")
    args = ap.parse_args()
    files = sorted((FER / "train").glob("*/*.jpg"))
    ferkit = str(Path(sys.executable).with_name("ferkit"))
    print("| images | mode | wall s | images/s | peak RSS MiB | exit |")
    print("|---:|---|---:|---:|---:|---:|")
    if args.mode == "api":
        for n in args.sizes:
            listing = Path(tempfile.mkdtemp()) / "files.txt"
            listing.write_text("\n".join(str(f) for f in files[:n]))
            code = API.format(files=str(listing), model=args.model, bs=args.batch_size)
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", WRAP, sys.executable, "-c", code], capture_output=True,
                                 text=True)
            dt = time.perf_counter() - t0
            rc, kb = out.stdout.split()[-2:]
            print(f"| {n:,} | api classify_batch, {args.model}, batch_size {args.batch_size or 'default'} "
                  f"| {dt:.1f} | {n / dt:,.0f} | {int(kb) / 1024:.0f} | {rc} |", flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            d = Path(tmp) / f"n{n}"
            d.mkdir()
            for i, f in enumerate(files[:n]):
                os.symlink(f, d / f"{i:05d}.jpg")
            cmd = [ferkit, "predict", str(d), "-q", "--no-progress", "--csv", str(Path(tmp) / f"{n}.csv")]
            cmd += ["--crop"] if args.mode == "crop" else ["--detector", "haar"]
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", WRAP, *cmd], capture_output=True, text=True)
            dt = time.perf_counter() - t0
            rc, kb = out.stdout.split()
            rows = sum(1 for _ in open(Path(tmp) / f"{n}.csv")) - 1
            mib = int(kb) / 1024
            print(f"| {n:,} | {args.mode} | {dt:.1f} | {rows / dt:,.0f} | {mib:.0f} | {rc} |", flush=True)


if __name__ == "__main__":
    main()
