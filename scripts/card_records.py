"""Facts the model card is made of: the shipped ONNX files run and counted, and the training records
(results/*/<run>/config.json, metrics.csv, eval-*/report.json written by scripts/explore/gpu_session.sh)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from ferkit.models.tta import TTA_VIEW_COUNT

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
GPU_DIRS = [RESULTS / "gpu-h100-2026-11-25", RESULTS / "gpu-h100-2026-11-25-s2"]


def run_onnx(path: Path, images: np.ndarray, threads: int = 2,
             batch: int = 256) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(probabilities, uncalibrated probabilities or None, seconds) of an exported file on raw 48x48 images."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    t0 = time.perf_counter()
    outs = [sess.run(names, {"pixels": images[i:i + batch, None].astype(np.float32)})
            for i in range(0, len(images), batch)]
    dt = time.perf_counter() - t0
    probs = np.concatenate([o[0] for o in outs])
    raw = np.concatenate([o[1] for o in outs]) if len(names) > 1 else None
    return probs, raw, dt


def onnx_stats(path: Path) -> dict:
    """Parameters and multiply-accumulates per image counted from the graph (Conv and Gemm nodes)."""
    from onnx import numpy_helper, shape_inference

    m = onnx.load(str(path))
    # parameters: weights (a per-channel int8 scale is storage, not a parameter)
    # (QDQ int8 files: activation and weight scales/zero points are storage too)
    params = int(sum(np.prod(i.dims) for i in m.graph.initializer
                     if not i.name.endswith(("_scale", "_zero_point")) and np.prod(i.dims) > 1))
    inferred = shape_inference.infer_shapes(m)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        shapes[vi.name] = [d.dim_value if d.dim_value else 1 for d in vi.type.tensor_type.shape.dim]
    inits = {i.name: numpy_helper.to_array(i).shape for i in m.graph.initializer}
    # weights may be stored as float16 + Cast, int8 + Cast + Mul(scale) or int8 + DequantizeLinear (QDQ):
    # follow them to the float weight
    for n in m.graph.node:
        if n.op_type in ("Cast", "Mul", "DequantizeLinear") and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
    macs = 0
    for n in m.graph.node:
        if n.op_type == "Conv" and n.input[1] in inits:
            w = inits[n.input[1]]
            out = shapes.get(n.output[0])
            if out and len(out) == 4:
                macs += int(np.prod(w)) * out[2] * out[3] * out[0]
        elif n.op_type in ("Gemm", "MatMul") and n.input[1] in inits:
            out = shapes.get(n.output[0])
            macs += int(np.prod(inits[n.input[1]])) * (out[0] if out else 1)
    meta = {p.key: p.value for p in m.metadata_props}
    # the traced batch is symbolic (dim 1 here): macs is per view; TTA runs every member on every view
    macs *= TTA_VIEW_COUNT.get(meta.get("tta", "none"), 1)
    return {"params": params, "macs": macs, "size_mb": path.stat().st_size / 1e6, "meta": meta}


def _run_record(d: Path) -> dict:
    cfg = json.loads((d / "config.json").read_text())
    hist = list(csv.DictReader(open(d / "metrics.csv")))
    kind = "plain"
    if cfg.get("folds", 0) > 1:
        kind = f"fold {cfg['fold']}/{cfg['folds']} (OOF teacher)"
    elif cfg.get("kd_alpha", 0) > 0:
        soft = cfg.get("soft_labels", "")
        src = ("out-of-fold teacher" if "oof" in soft else "in-sample 8-model teacher" if "in8" in soft
               else "teacher: the default of 5546f3b")
        kind = f"KD {cfg['kd_alpha']:g}, {src}"
    if cfg.get("init"):
        kind += f", fine-tuned from `{Path(cfg['init']).name}` at lr {cfg['lr']:g}"
    if cfg.get("model_kwargs"):
        kind += ", " + ", ".join(f"{k}={v}" for k, v in cfg["model_kwargs"].items())
    model = cfg["model"]
    if cfg.get("model_kwargs", {}).get("inner"):  # a thinned fernet_m: its registered name, when it has one
        from thin_fast import model_spec

        model = model_spec(cfg["model_kwargs"]["inner"])[0]
    r = {"model": model, "seed": cfg["seed"], "epochs": len(hist), "planned": cfg["epochs"],
         "kind": kind, "dir": d,
         "train_seconds": sum(float(h["train_seconds"]) for h in hist),
         "wall_seconds": sum(float(h["train_seconds"]) + float(h["val_seconds"]) for h in hist),
         "train_ips": float(np.mean([float(h["train_images_per_s"]) for h in hist])),
         "median_epoch": float(np.median([float(h["train_seconds"]) + float(h["val_seconds"]) for h in hist])),
         "max_epoch": max(float(h["train_seconds"]) + float(h["val_seconds"]) for h in hist),
         "best_public": max(float(h["val_acc"]) for h in hist)}
    for rep in d.glob("eval-*/report.json"):
        r[rep.parent.name[5:]] = json.loads(rep.read_text())["accuracy"]
    return r


def gpu_runs(dirs=None) -> dict:
    rows = {}
    for g in dirs or GPU_DIRS:
        for d in sorted(p for p in g.iterdir() if p.is_dir()):
            rows[d.name] = _run_record(d)
    return rows


def _kd_recipe(names: list[str], runs: dict) -> str:
    """How the distilled members among the shipped ones were made, as commands."""
    if not names:
        return ""
    cfgs = {n: json.loads((runs[n]["dir"] / "config.json").read_text()) for n in names}
    return (f"{', '.join(f'`{n}`' for n in names)} {'is a distilled member' if len(names) == 1 else 'are distilled'}"
            " (teacher: the averaged flip-view probabilities of 8 trained networks on Training, "
            "`python scripts/soft_labels.py --data ../shared/fer2013 --out soft-in8.npz "
            "runs/{fm0..fm5,fl0,fl1}/best.pt`), then " + "; ".join(
                f"`ferkit train --config configs/default.yaml --data ../shared/fer2013 --soft-labels soft-in8.npz "
                f"--kd-alpha {c['kd_alpha']:g} --seed {c['seed']} --epochs {c['epochs']} --name {n}`"
                for n, c in cfgs.items()) + ". ")


def fmt_pct(x: float) -> str:
    return f"{100 * x:.2f}%"
