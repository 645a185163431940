"""Trainable torch checkpoints of the networks inside a shipped ferkit ONNX file (issue 22's starting point).

    python scripts/ferplus_members.py src/ferkit/weights/ferkit-fer2013.onnx --data ../shared/fer2013 \
        --out runs/ferplus/init [--names m0 m1 m2] [--n 4096]

ferkit.onnx_members gives back each member with its batch norm folded into the convolutions (each BatchNorm2d
the identity plus a bias). That is exact for inference but not for training, where batch norm normalises with
batch statistics. Here each BatchNorm2d is set from the statistics of its input on N Training images
(``refit_fast.restat_batchnorm``), which leaves the eval-mode function unchanged (checked below) and makes
train mode start close to it. The checkpoints feed
``ferkit train --init``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    import torch
    from onnx_members import save_member
    from refit_fast import restat_batchnorm  # the same unfolding thin_fast.py uses

    from ferkit.data import load_split
    from ferkit.onnx_members import load_members

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("onnx")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--names", nargs="+")
    ap.add_argument("--n", type=int, default=4096)
    a = ap.parse_args()
    torch.set_num_threads(2)
    members, meta = load_members(a.onnx)
    names = json.loads(meta.get("members", "[]"))
    runs = a.names or [f"{Path(a.onnx).stem}-{i}" for i in range(len(members))]
    x = load_split(a.data, "train").images
    x = torch.from_numpy(x[np.random.default_rng(0).permutation(len(x))[:a.n], None].astype(np.float32))
    for i, model in enumerate(members):
        with torch.no_grad():
            ref = torch.cat([model(x[j:j + 512]) for j in range(0, len(x), 512)])
        restat_batchnorm(model, x[:, 0].numpy())
        with torch.no_grad():
            got = torch.cat([model(x[j:j + 512]) for j in range(0, len(x), 512)])
        diff = float((got - ref).abs().max())
        p = Path(a.out) / runs[i] / "best.pt"
        save_member(p, names[i], model.state_dict(), f"{Path(a.onnx).name} member {i}, batch norm re-fitted on "
                    f"{a.n} Training images by scripts/ferplus_members.py")
        print(f"{p}: {names[i]} member {i}; max |logit change| after the batch-norm re-fit {diff:.2e}")
        if diff > 1e-3:
            print("the re-fit changed the function", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
