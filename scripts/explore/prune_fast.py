"""Prune the shipped `fast` network (fernet_m) into fernet_mp: 32 channels instead of 48 at full resolution.

    python scripts/explore/prune_fast.py --data ../shared/fer2013 --out runs/prune/init.pt [--keep 32]
    # as run for the model card (teacher: the int8 default shipped before the calibration fix)
    git show 5546f3b:src/ferkit/weights/ferkit-default.onnx > teacher.onnx
    python scripts/explore/prune_fast.py --data ../shared/fer2013 --out runs/prune/init.pt --finetune-epochs 3 \
        --teacher teacher.onnx

The two convolutions at 48x48 are the costliest of the int8 graph (benchmarks/bench_classify.py --profile);
with 32 channels there they cost about half. Channels are chosen and the layers after them refitted by least
squares on Training images (ThiNet-style reconstruction), then optionally fine-tuned:

1. ``fast``'s network back from the float32 file it was exported as (git revision ``--source-rev``; batch norm
   comes back folded into the convs, ferkit.onnx_members).
2. Keep the ``--keep`` outputs of conv 1 that matter most to conv 2 (weight norm x activation RMS); refit conv 2
   on them to reproduce its original pre-activation outputs.
3. Keep the ``--keep`` outputs of conv 2 that matter most to the first 24x24 conv; refit that conv, from the
   pruned and pooled features, to reproduce its original pre-activation outputs.
4. Every later layer is copied. The result is a ferkit checkpoint of fernet_mp (``--out``), ready for
   `ferkit export`. PublicTest accuracy before and after is printed (float32, torch).
5. With ``--finetune-epochs N``: batch norm unfolded (scripts/refit_fast.py), then N epochs of
   `ferkit train --init` at a small learning rate, distilled from the shipped `default` (as shrink_fast.py),
   selected on PublicTest; the run is ``<out folder>/fernet_mp``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for refit_fast
import refit_fast as rf  # noqa: E402


def prune(m, images: np.ndarray, keep: int):
    import torch
    import torch.nn.functional as F

    from ferkit.models import create_model

    f = m.features  # 0 Normalize, 1 conv1, 2 conv2, 3 pool, 4 conv3 (24x24), ...
    (w1, s1, b1), (w2, s2, b2), (w3, s3, b3) = rf.affine(f[1]), rf.affine(f[2]), rf.affine(f[4])
    x = torch.from_numpy(images[:, None].astype(np.float32))
    with torch.inference_mode():
        n0 = f[0](x)
        a1 = torch.relu(s1[:, None, None] * F.conv2d(n0, w1, padding=1) + b1[:, None, None])
        z2 = s2[:, None, None] * F.conv2d(a1, w2, padding=1) + b2[:, None, None]
        p2 = F.max_pool2d(torch.relu(z2), 2)
        z3 = s3[:, None, None] * F.conv2d(p2, w3, padding=1) + b3[:, None, None]
        k1 = rf.top_channels(a1, s2, w2, keep)  # conv 1's outputs that conv 2 relies on most
        k2 = rf.top_channels(p2, s3, w3, keep)  # conv 2's (pooled) outputs that the 24x24 conv relies on most
    w2n, b2n = rf.fit_conv(a1[:, k1], z2[:, k2])
    with torch.inference_mode():
        p2n = F.max_pool2d(torch.relu(F.conv2d(a1[:, k1], w2n, padding=1) + b2n[:, None, None]), 2)
    w3n, b3n = rf.fit_conv(p2n, z3)
    mp = create_model("fernet_mp")
    state = {k: v.clone() for k, v in mp.state_dict().items()}
    src = m.state_dict()
    for k, v in src.items():  # stages 2-4 and the head: same shapes, copied
        if k in state and state[k].shape == v.shape and not k.startswith(("features.1.", "features.2.", "features.4.")):
            state[k] = v.clone()

    eps = mp.features[1][1].eps
    rf.put_folded(state, 1, (s1[:, None, None, None] * w1)[k1], b1[k1], eps)
    rf.put_folded(state, 2, w2n, b2n, eps)
    rf.put_folded(state, 4, w3n, b3n, eps)
    mp.load_state_dict(state)
    return mp.eval()


def main() -> int:
    import tempfile

    import torch

    from ferkit.checkpoint import FORMAT, VERSION, atomic_torch_save
    from ferkit.data import load_split
    from ferkit.emotions import EMOTIONS

    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", type=int, default=32)
    rf.add_refit_args(ap, out="runs/prune/init.pt", images=1500)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        m = rf.source_network(a.source_rev, Path(tmp)).eval()
    train = load_split(a.data, "train")
    idx = np.random.default_rng(0).choice(len(train), a.images, replace=False)
    print(f"fernet_m (fast, float32): PublicTest {rf.public_accuracy(m, a.data):.4f}", flush=True)
    mp = prune(m, train.images[idx], a.keep)
    print(f"fernet_mp (pruned to {a.keep}, refitted): PublicTest {rf.public_accuracy(mp, a.data):.4f}", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"format": FORMAT, "version": VERSION, "model": "fernet_mp", "model_kwargs": {},
                       "labels": list(EMOTIONS), "state_dict": mp.state_dict(), "epoch": 0,
                       "config": {"seed": 0, "source": f"fast @ {a.source_rev}, prune_fast.py --keep {a.keep}"}}, out)
    print(f"wrote {out}")
    if not a.finetune_epochs:
        return 0
    from ferkit.cli import main as ferkit
    from ferkit.weights import model_path

    rf.restat_batchnorm(mp, train.images[np.random.default_rng(1).choice(len(train), 4096, replace=False)])
    ft = out.with_name(out.stem + "-unfolded.pt")
    atomic_torch_save({"format": FORMAT, "version": VERSION, "model": "fernet_mp", "model_kwargs": {},
                       "labels": list(EMOTIONS), "state_dict": mp.state_dict(), "epoch": 0}, ft)
    soft = rf.teacher_targets(Path(a.teacher or model_path("default")), a.data, out.parent / "soft-teacher.npz")
    torch.set_grad_enabled(True)
    args = ["train", "--config", str(rf.REPO / "configs/default.yaml"), "--data", a.data, "--model", "fernet_mp",
            "--init", str(ft), "--out-dir", str(out.parent), "--name", "fernet_mp", "--epochs",
            str(a.finetune_epochs), "--lr", a.lr, "--warmup-epochs", "0", "--soft-labels", str(soft),
            "--kd-alpha", a.kd_alpha, "--threads", "2", "--no-progress"]
    print("$ ferkit " + " ".join(args), flush=True)
    return ferkit(args)


if __name__ == "__main__":
    sys.exit(main())
