"""Teacher soft labels for knowledge distillation, keyed by a hash of each image's pixels.

In-sample (the teachers trained on all of Training; their averaged flip-TTA probabilities):
    python scripts/soft_labels.py --data ../shared/fer2013 --out soft.npz runs/fm*/best-slim.pt
Out-of-fold (each checkpoint was trained with --folds K --fold k and labels only the images of fold k,
which it never saw; together they must cover every training image):
    python scripts/soft_labels.py --oof --data ../shared/fer2013 --out soft-oof.npz runs/fold*/best-slim.pt

Keying by pixel content (not by file name or order) lets any reader of the same images (folders, the
packed .npz, the CSV) find its targets; exact duplicates get the same target, as they must. Only the
Training split is used: the teachers were selected on PublicTest and never saw PrivateTest, so training on
these targets keeps the official protocol. `ferkit train --soft-labels FILE --kd-alpha A` consumes the file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ferkit.checkpoint import load_checkpoint
from ferkit.data import load_split
from ferkit.data.softlabels import fold_of, image_keys, save_soft_labels
from ferkit.outputs import check_script_outputs

sys.path.insert(0, str(Path(__file__).parent))
from ensemble import probs_of  # noqa: E402  (same bf16 inference as the ensemble selection)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--tta", default="flip")
    ap.add_argument("--oof", action="store_true", help="out-of-fold: each checkpoint labels its held-out fold")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    # the output rules of `ferkit` (ferkit.outputs): the targets never replace a checkpoint or the dataset
    check_script_outputs(ap, {"--out": a.out}, {**{c: "CHECKPOINT" for c in a.checkpoints}, a.data: "--data"})

    t0 = time.time()
    ds = load_split(a.data, a.split)
    keys = image_keys(ds.images)
    total = np.zeros((len(ds), 7), np.float64)
    count = np.zeros(len(ds), np.int64)
    for c in a.checkpoints:
        sel = np.arange(len(ds))
        if a.oof:
            cfg = load_checkpoint(c)["config"]
            if cfg.get("folds", 0) < 2:
                raise SystemExit(f"{c}: not a fold model (trained without --folds)")
            sel = np.flatnonzero(fold_of(keys, cfg["folds"]) == cfg["fold"])
        p = probs_of(c, ds.images[sel], a.tta, a.device)
        total[sel] += p
        count[sel] += 1
        acc = (p.argmax(1) == ds.labels[sel]).mean()
        print(f"{c}: {len(sel)} images, accuracy {acc:.4f} ({time.time() - t0:.0f}s)", flush=True)
    if (count == 0).any():
        raise SystemExit(f"{(count == 0).sum()} training images have no teacher (missing folds?)")
    mean = total / count[:, None]
    print(f"{'out-of-fold' if a.oof else 'in-sample'} teacher: accuracy {(mean.argmax(1) == ds.labels).mean():.4f} "
          f"on {len(ds)} training images; mean max-prob {mean.max(1).mean():.3f}")
    save_soft_labels(a.out, keys, mean, teachers=[str(c) for c in a.checkpoints], tta=a.tta, oof=a.oof)
    print(f"wrote {a.out} ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
