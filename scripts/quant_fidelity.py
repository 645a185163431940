"""How close each int8 setting stays to its float32 graph, for both shipped models: the label-free rule that
chose `--float-first-conv` for `default` and kept every conv in int8 for `fast`.

    python scripts/quant_fidelity.py --data ../shared/fer2013 --members DIR --fast CKPT \
        --json results/quant-fidelity.json
    # as run: DIR = the members scripts/quantize_shipped.py rebuilds (--work W: W/members),
    #         CKPT = fast's checkpoint (scripts/thin_fast.py: runs/thin/fernet_mt/best.pt)

For each model, the float32 graph is exported as the shipped one is (members and views of
results/quant-pareto.json for `default`, none for `fast`; temperature fitted on PublicTest), then quantised
with each candidate setting (calibration: stratified Training images, seed 0, min/max) and both run on all
of PublicTest. Reported per setting: label agreement with float32, mean and largest |probability
difference|, and PublicTest accuracy. No PrivateTest figure is computed here.

The rule (written before the figures; MODEL_CARD.md): the highest agreement wins, ties go to the lower mean
|difference|, and the setting in use before (all convs int8, 512 images) wins any remaining tie. Candidates:
`default` {all int8 with 512 or 2048 calibration images, first conv float32}; `fast` {all int8, first conv
float32}. (Percentile calibration was dropped before any figure: onnxruntime's histogram calibrater keeps
every activation of every calibration batch in memory, about 14 GB for the default's 18 passes.)
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
sys.path.insert(0, str(REPO / "scripts"))
from card_records import run_onnx  # noqa: E402

CANDIDATES = {"default": [("all int8, 512 images", 512, False), ("all int8, 2048 images", 2048, False),
                          ("first conv float32, 512 images", 512, True)],
              "fast": [("all int8, 512 images", 512, False), ("first conv float32, 512 images", 512, True)]}


def probs(path: Path, images: np.ndarray) -> np.ndarray:
    return run_onnx(path, images, threads=2, batch=64)[0]


def pick(rows: dict) -> str:
    """The rule: highest agreement, then lower mean |difference|, then the earlier (older) setting."""
    order = list(rows)
    return min(order, key=lambda k: (-rows[k]["agreement"], rows[k]["mean_abs_diff"], order.index(k)))


def main() -> int:
    from ferkit.data import load_split
    from ferkit.export import export_onnx
    from ferkit.quantize import first_convs, quantize_int8, stratified_sample

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--members", required=True, help="folder of the default's members (<name>/best.pt)")
    ap.add_argument("--fast", required=True, help="fast's checkpoint")
    ap.add_argument("--pareto", default=str(REPO / "results/quant-pareto.json"))
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    from ferkit.outputs import atomic_write_text, check_script_outputs

    check_script_outputs(ap, {"--json": a.json}, {a.pareto: "--pareto", a.fast: "--fast", a.data: "--data"})
    choice = json.loads(Path(a.pareto).read_text())["choice"]
    models = {"default": ([str(Path(a.members) / m / "best.pt") for m in choice["members"]], choice["views"]),
              "fast": ([a.fast], "none")}
    pub, train = load_split(a.data, "public"), load_split(a.data, "train")
    x = pub.images
    out = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "split": "public",
           "n": len(pub), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ckpts, views) in models.items():
            f32 = Path(tmp) / f"{name}-float32.onnx"
            export_onnx(ckpts, f32, tta=views, temperature="auto", calib_data=a.data, log=lambda *_: None)
            pf = probs(f32, x)
            rows = {}
            for label, n, float_first in CANDIDATES[name]:
                q = Path(tmp) / f"{name}-int8.onnx"
                quantize_int8(f32, q, train.images[stratified_sample(train.labels, n, 0)],
                              float_nodes=first_convs(f32) if float_first else [])
                pq = probs(q, x)
                rows[label] = {"agreement": float((pq.argmax(1) == pf.argmax(1)).mean()),
                               "mean_abs_diff": float(np.abs(pq - pf).mean()),
                               "max_abs_diff": float(np.abs(pq - pf).max()),
                               "public_int8": float((pq.argmax(1) == pub.labels).mean())}
                print(name, label, json.dumps(rows[label]), flush=True)
            out["models"][name] = {"members": [Path(c).parent.name for c in ckpts], "views": views,
                                   "public_float32": float((pf.argmax(1) == pub.labels).mean()),
                                   "settings": rows, "pick": pick(rows)}
            print(f"{name}: float32 PublicTest {out['models'][name]['public_float32']:.4f}; the rule picks "
                  f"{out['models'][name]['pick']}", flush=True)
    atomic_write_text(a.json, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
