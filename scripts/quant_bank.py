"""Logits bank in float32 AND int8 arithmetic, for the cost/accuracy table (scripts/quant_pareto.py):
per member, per test-time view, on PublicTest and PrivateTest, computed by onnxruntime on one-network
graphs exactly like the ones `ferkit export` writes (float32; int8 = ferkit.quantize, calibrated on the
same stratified, seeded Training sample as `ferkit export --quantize int8`, seen through every view).

    python scripts/quant_bank.py --data ../shared/fer2013 --out qbank/ members/*/best.pt

One ``<out>/<member>.npz`` per checkpoint (keys ``<float32|int8>:<public|private>:<view>``: log-probabilities
at T=1, which average like logits under any temperature); members already there are skipped. Views: the
`scale-rot` set (``--views`` to change), warped in float32 by ferkit.models.tta.warp as in the graphs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ferkit.data import load_split
from ferkit.export import export_onnx
from ferkit.models.tta import TTA_SETS, VIEWS, warp
from ferkit.outputs import check_script_outputs
from ferkit.quantize import quantize_int8, stratified_sample
from ferkit.session import session_options


def warped(images: np.ndarray, view: str) -> np.ndarray:
    return warp(torch.from_numpy(images).unsqueeze(1).float(), VIEWS[view]).contiguous().numpy()


def log_probs(path: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    p = np.concatenate([s.run(["probs_uncalibrated"], {"pixels": x[i:i + batch]})[0] for i in range(0, len(x), batch)])
    return np.log(np.clip(p, 1e-30, 1)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--views", nargs="+", default=TTA_SETS["scale-rot"])
    ap.add_argument("--calib-n", type=int, default=512)
    ap.add_argument("--calib-seed", type=int, default=0)
    a = ap.parse_args()
    out = Path(a.out)
    names = [Path(c).parent.name for c in a.checkpoints]  # ferkit.outputs' rules: no file of the bank is an input
    check_script_outputs(ap, {f"--out ({n})": out / n for n in ["labels.npz", *(f"{m}.npz" for m in names)]},
                  {**{c: "CHECKPOINT" for c in a.checkpoints}, a.data: "--data"})
    out.mkdir(parents=True, exist_ok=True)
    pub, pri = load_split(a.data, "public"), load_split(a.data, "private")
    tmp = out / ".labels.tmp.npz"
    np.savez(tmp, public=pub.labels, private=pri.labels)
    tmp.replace(out / "labels.npz")
    train = load_split(a.data, "train")
    calib = train.images[stratified_sample(train.labels, a.calib_n, a.calib_seed)]
    calib_views = np.concatenate([warped(calib, v) for v in a.views])[:, 0]
    inputs = {(s, v): warped(ds.images, v) for s, ds in (("public", pub), ("private", pri)) for v in a.views}
    for c in a.checkpoints:
        name = Path(c).parent.name
        dest = out / f"{name}.npz"
        if dest.exists():
            print(f"{name}: exists, skipped", flush=True)
            continue
        t0 = time.time()
        bank = {}
        with tempfile.TemporaryDirectory() as tmp:
            f32, q8 = Path(tmp) / "f32.onnx", Path(tmp) / "int8.onnx"
            export_onnx([c], f32, tta="none", temperature=1.0, log=lambda *_: None)
            quantize_int8(f32, q8, calib_views)
            tq = time.time() - t0
            for prec, path in (("float32", f32), ("int8", q8)):
                t1 = time.time()
                for (s, v), x in inputs.items():
                    bank[f"{prec}:{s}:{v}"] = log_probs(path, x)
                n = sum(len(x) for x in inputs.values())
                print(f"  {name} {prec}: {n} inputs in {time.time() - t1:.0f} s", flush=True)
        tmpf = out / f".{name}.tmp.npz"
        np.savez(tmpf, **bank)
        tmpf.replace(dest)
        acc = {f"{p}:{s}": float((np.mean([bank[f"{p}:{s}:{v}"] for v in a.views], 0).argmax(1) == lab).mean())
               for p in ("float32", "int8") for s, lab in (("public", pub.labels), ("private", pri.labels))}
        print(f"{name}: {len(a.views)} views (mean log-probs) " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items())
              + f"; quantised in {tq:.0f} s, total {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
