"""Shrink the shipped `fast` network (fernet_m) into fernet_mf, on a CPU, by fine-tuning.

    python scripts/shrink_fast.py --data ../shared/fer2013 --out runs/shrink [--epochs 8] [--resume]
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
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE_REV = "5117c1d"  # last commit whose shipped files compute in float32

# fernet_m features index -> fernet_mf features index (fernet_m's index 2, the second 48x48 conv, is dropped)
LAYER_MAP = {1: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 7, 9: 8, 10: 9, 11: 10, 12: 11}


def source_network(rev: str, work: Path):
    from ferkit.onnx_members import load_members

    src = work / "float-fast.onnx"
    src.write_bytes(subprocess.run(["git", "show", f"{rev}:src/ferkit/weights/ferkit-fast.onnx"], cwd=REPO,
                                   check=True, capture_output=True).stdout)
    members, _ = load_members(src)
    return members[0]


def restat_batchnorm(model, images: np.ndarray, batch: int = 256) -> None:
    """Unfold batch norm: measure each BN input's per-channel mean/var over ``images`` (eval mode, so the
    function is the folded one) and set the layer so that train mode (batch statistics) and eval mode
    (running statistics) both compute what it computed before."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    sums = {id(m): [0.0, 0.0, 0] for m in bns}

    def hook(m, inp, _out):
        x = inp[0].double()
        s = sums[id(m)]
        s[0] = s[0] + x.sum((0, 2, 3))
        s[1] = s[1] + (x * x).sum((0, 2, 3))
        s[2] += x.numel() // x.shape[1]

    handles = [m.register_forward_hook(hook) for m in bns]
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            model(torch.from_numpy(images[i:i + batch, None].astype(np.float32)))
    for h in handles:
        h.remove()
    with torch.no_grad():
        for m in bns:
            s0, s1, n = sums[id(m)]
            mean = s0 / n
            var = (s1 / n - mean * mean).clamp_min(0)
            scale = m.weight.double() / (m.running_var.double() + m.eps).sqrt()  # y = scale * x + shift
            shift = m.bias.double() - scale * m.running_mean.double()
            m.running_mean.copy_(mean.float())
            m.running_var.copy_(var.float())
            m.weight.copy_((scale * (var + m.eps).sqrt()).float())
            m.bias.copy_((shift + scale * mean).float())


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


def teacher_targets(teacher: Path, data: str, out: Path) -> Path:
    import onnxruntime as ort

    from ferkit.data import load_split
    from ferkit.data.softlabels import image_keys, save_soft_labels
    from ferkit.session import session_options

    sha = hashlib.sha256(teacher.read_bytes()).hexdigest()
    if out.exists():
        with np.load(out) as z:
            if sha in str(z["meta"]):
                return out
    train = load_split(data, "train")
    s = ort.InferenceSession(str(teacher), session_options(), providers=["CPUExecutionProvider"])
    probs = np.concatenate([s.run(["probs"], {"pixels": train.images[i:i + 256, None].astype(np.float32)})[0]
                            for i in range(0, len(train), 256)])
    print(f"teacher {teacher.name}: Training accuracy {(probs.argmax(1) == train.labels).mean():.4f}, "
          f"mean top probability {probs.max(1).mean():.3f}", flush=True)
    save_soft_labels(out, image_keys(train.images), probs, teacher=f"{teacher.name} sha256 {sha}")
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
