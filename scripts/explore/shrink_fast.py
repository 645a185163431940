"""Shrink the shipped `fast` network (fernet_m) into fernet_mf, on a CPU, by fine-tuning.

    python scripts/explore/shrink_fast.py --data ../shared/fer2013 --out runs/shrink [--epochs 8] [--resume]
    # as run for the model card: --teacher teacher.onnx, the int8 default of git revision 5546f3b
    # (git show 5546f3b:src/ferkit/weights/ferkit-default.onnx > teacher.onnx)

fernet_mf is fernet_m without the second conv at full 48x48 resolution: 18% fewer multiply-adds, and the
layer it drops is the costliest one of the int8 graph (benchmarks/bench_classify.py --profile). Steps:

1. ``fast``'s network back from the float32 file it was exported as (git revision ``--source-rev``), by
   ferkit.onnx_members: batch norm comes back folded (identity layers carrying the bias).
2. Batch-norm statistics measured again on Training images, so that a layer in training mode (batch
   statistics) computes what the folded layer computes: weight = sqrt(var + eps), bias = mean + folded bias.
3. fernet_mf starts from every layer of it but the dropped conv (``init.pt``).
4. Teacher targets for distillation: the probabilities of the shipped ``default`` model on Training
   (``--teacher``, cached in ``<out>/soft-teacher.npz`` with the teacher file's sha256).
5. ``ferkit train --init init.pt --soft-labels ... --kd-alpha A`` for a few epochs at a small learning rate,
   selected on PublicTest as always. The run is ``<out>/fernet_mf``; ``--resume`` continues it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for refit_fast
from refit_fast import REPO, SOURCE_REV, restat_batchnorm, source_network, teacher_targets  # noqa: E402

# fernet_m features index -> fernet_mf features index (fernet_m's index 2, the second 48x48 conv, is dropped)
LAYER_MAP = {1: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 7, 9: 8, 10: 9, 11: 10, 12: 11}


def shrink_state(m_state: dict) -> dict:
    out = {}
    for k, v in m_state.items():
        if k.startswith("features."):
            _, idx, rest = k.split(".", 2)
            if int(idx) not in LAYER_MAP:
                continue
            k = f"features.{LAYER_MAP[int(idx)]}.{rest}"
        out[k] = v
    return out


def main() -> int:
    import torch

    from ferkit.checkpoint import FORMAT, VERSION, atomic_torch_save
    from ferkit.cli import main as ferkit
    from ferkit.data import load_split
    from ferkit.emotions import EMOTIONS
    from ferkit.models import create_model
    from ferkit.weights import model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default="runs/shrink")
    ap.add_argument("--source-rev", default=SOURCE_REV)
    ap.add_argument("--teacher", default=str(model_path("default")))
    ap.add_argument("--epochs", default="8")
    ap.add_argument("--lr", default="0.01")
    ap.add_argument("--kd-alpha", default="0.5")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    init = out / "init.pt"
    if not a.resume:
        torch.manual_seed(0)
        m = source_network(a.source_rev, out)
        train = load_split(a.data, "train")
        rng = np.random.default_rng(0)
        restat_batchnorm(m, train.images[rng.choice(len(train), 4096, replace=False)])
        mf = create_model("fernet_mf")
        mf.load_state_dict(shrink_state(m.state_dict()))
        atomic_torch_save({"format": FORMAT, "version": VERSION, "model": "fernet_mf", "model_kwargs": {},
                           "labels": list(EMOTIONS), "state_dict": mf.state_dict(), "epoch": 0}, init)
        print(f"wrote {init}", flush=True)
    soft = teacher_targets(Path(a.teacher), a.data, out / "soft-teacher.npz")
    args = ["train", "--config", str(REPO / "configs/default.yaml"), "--data", a.data, "--model", "fernet_mf",
            "--init", str(init), "--out-dir", str(out), "--name", "fernet_mf", "--epochs", a.epochs,
            "--lr", a.lr, "--warmup-epochs", "0", "--soft-labels", str(soft), "--kd-alpha", a.kd_alpha,
            "--threads", a.threads, "--no-progress"] + (["--resume"] if a.resume else [])
    print("$ ferkit " + " ".join(args), flush=True)
    return ferkit(args)


if __name__ == "__main__":
    sys.exit(main())
