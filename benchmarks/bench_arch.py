"""int8 and float32 speed of every fernet architecture, as one network without views (the `fast` shape), side
by side with fernet_m (the network `fast` shipped before fernet_mt) in the same run. Prints a markdown table;
not a test.

    .venv/bin/python benchmarks/bench_arch.py [--models fernet_xxs fernet_xs ...] [--seconds 2] [--repeats 3]
        [--json results/arch-speed.json]

Each network is built with random weights (its cost does not depend on them), exported by ferkit.export's
Predictor exactly as `ferkit export` does, and quantised by ferkit.quantize.quantize_int8 on 256 real Training
images (ranges only; accuracy is not measured here). faces/s at batch 64 and ms at batch 1 on 2 threads,
rows interleaved and repeated, best of the repeats (a shared machine's noise). MACs counted from the graph.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FER = REPO.parent / "shared" / "fer2013"
sys.path.insert(0, str(REPO / "scripts"))
from bench_classify import rate, session_fn  # noqa: E402  (this folder is on sys.path when run as a script)


def images(n: int = 256) -> np.ndarray:
    files = sorted((FER / "train").glob("*/*.jpg"))[::97][:n]
    if len(files) == n:
        from PIL import Image

        return np.stack([np.asarray(Image.open(f).convert("L")) for f in files]).astype(np.float32)
    return (np.random.default_rng(0).random((n, 48, 48)) * 255).astype(np.float32)


def export_pair(name: str, out: Path, calib: np.ndarray) -> tuple[Path, Path]:
    import torch

    from ferkit.export import Predictor
    from ferkit.models import create_model
    from ferkit.quantize import quantize_int8

    torch.manual_seed(0)
    pred = Predictor([create_model(name).eval()], "none", 1.0, with_uncalibrated=True).eval()
    f32, q8 = out / f"{name}.onnx", out / f"{name}-int8.onnx"
    torch.onnx.export(pred, (torch.full((2, 1, 48, 48), 128.0),), str(f32), input_names=["pixels"],
                      output_names=["probs", "probs_uncalibrated"], opset_version=17, dynamo=False,
                      dynamic_axes={k: {0: "batch"} for k in ("pixels", "probs", "probs_uncalibrated")})
    quantize_int8(f32, q8, calib)
    return f32, q8


def main() -> None:
    import onnxruntime as ort
    from card_records import onnx_stats

    from ferkit.models import describe_model
    from ferkit.session import session_options

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+",
                    default=["fernet_m", "fernet_mt", "fernet_mf", "fernet_mp", "fernet_mff", "fernet_s", "fernet_xs",
                             "fernet_xxs"])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the table as JSON")
    a = ap.parse_args()
    if "fernet_m" not in a.models:
        a.models.insert(0, "fernet_m")  # the baseline
    x = images()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in a.models:
            f32, q8 = export_pair(m, Path(tmp), x)
            rows[m] = {"macs": onnx_stats(f32)["macs"], "describe": describe_model(m),
                       "sessions": {k: ort.InferenceSession(str(p), session_options(2),
                                                            providers=["CPUExecutionProvider"])
                                    for k, p in (("float32", f32), ("int8", q8))}}
        best = {(m, k, b): 0.0 for m in rows for k in ("float32", "int8") for b in (1, 64)}
        for _ in range(a.repeats):
            for m, r in rows.items():
                for k, s in r["sessions"].items():
                    for b in (64, 1):
                        best[m, k, b] = max(best[m, k, b], rate(session_fn(s), b, x, a.seconds / (2 if b == 1 else 1)))
    base = best["fernet_m", "int8", 64]
    print("| network | MACs / face | int8 faces/s, batch 64 | int8 ms, batch 1 | float32 faces/s, batch 64 "
          "| float32 ms, batch 1 | int8 speed vs fernet_m |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    out = {}
    for m, r in rows.items():
        d = {"macs": r["macs"], "describe": r["describe"]}
        for k in ("float32", "int8"):
            d[k] = {"faces_per_s_b64": best[m, k, 64], "ms_b1": 1000 / best[m, k, 1]}
        out[m] = d
        print(f"| {m} | {r['macs'] / 1e9:.3f} G | {d['int8']['faces_per_s_b64']:,.0f} | {d['int8']['ms_b1']:.2f} "
              f"| {d['float32']['faces_per_s_b64']:,.0f} | {d['float32']['ms_b1']:.2f} "
              f"| {d['int8']['faces_per_s_b64'] / base:.2f}x |", flush=True)
    if a.json:
        tmp = Path(a.json).with_name(f".{Path(a.json).name}.tmp")
        tmp.write_text(json.dumps({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"),
                                   "threads": 2, "networks": out}, indent=1))
        tmp.replace(a.json)


if __name__ == "__main__":
    main()
