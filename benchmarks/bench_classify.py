"""Crop classification throughput (crops/s): shipped ONNX models in onnxruntime vs the same network in torch
vs the `seed` CNN, at batch 1 and 64 with 1 and 2 threads. Prints a markdown table.

    .venv/bin/python benchmarks/bench_classify.py [--seconds 2]

Inputs are real FER2013 test crops (../shared/fer2013) when present, else random pixels (same cost).
The torch rows need torch (`pip install 'ferkit[train]'`); they are skipped without it. The torch
fernet_m has random weights: its cost is the same as the trained network's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

FER = Path(__file__).resolve().parents[1].parent / "shared" / "fer2013"


def crops(n=256):
    files = sorted((FER / "test").glob("*/PrivateTest_*.jpg"))[:n]
    if len(files) == n:
        from PIL import Image

        return np.stack([np.asarray(Image.open(f).convert("L")) for f in files]).astype(np.float32)
    return (np.random.default_rng(0).random((n, 48, 48)) * 255).astype(np.float32)


def rate(fn, batch, x, seconds):
    xb = x[:batch]
    fn(xb)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(xb)
        n += batch
    return n / (time.perf_counter() - t0)


def onnx_runner(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda xb: s.run(None, {"pixels": xb[:, None]})


def torch_runner(name, threads):
    import torch

    from ferkit.models import create_model

    torch.set_num_threads(threads)
    m = create_model(name).eval()

    def run(xb):
        with torch.inference_mode():
            return m(torch.from_numpy(xb[:, None]))

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    from ferkit.weights import list_shipped

    x = crops()
    rows = []
    for name, path in list_shipped().items():
        meta = __import__("onnxruntime").InferenceSession(str(path)).get_modelmeta().custom_metadata_map
        members = ", ".join(json.loads(meta.get("members", "[]")))
        label = f"onnxruntime {name} ({members}, tta {meta.get('tta')})"
        rows.append((label, lambda t, p=path: onnx_runner(p, t)))
    try:
        import torch  # noqa: F401

        rows.append(("torch fernet_m (same network, eager)", lambda t: torch_runner("fernet_m", t)))
        rows.append(("torch seed CNN (baseline)", lambda t: torch_runner("seed", t)))
    except ImportError:
        print("(torch not installed: torch rows skipped)")
    cols = [(1, 1), (1, 2), (64, 1), (64, 2)]
    print("| model | " + " | ".join(f"batch {b}, {t} thr" for b, t in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for label, make in rows:
        vals = []
        for b, t in cols:
            vals.append(rate(make(t), b, x, args.seconds))
        print(f"| {label} | " + " | ".join(f"{v:,.0f}" for v in vals) + " |", flush=True)


if __name__ == "__main__":
    main()
