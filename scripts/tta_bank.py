"""Logits of trained checkpoints under many test-time views, on PublicTest and PrivateTest, one .npz per
member (keys 'public:<view>', 'private:<view>'; views already there are not recomputed), for
choosing views and members offline (scripts/tta_search.py) instead of re-running networks.

    python scripts/tta_bank.py --data ../shared/fer2013 --out bank/ runs/*/best-slim.pt

The views are ferkit.models.tta.VIEWS: affine warps of the raw pixels (scale, rotation, whole-pixel shift,
mirror), the family the training augmentation draws from. Inference: bf16 autocast, 2 threads.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ferkit.checkpoint import model_from_checkpoint
from ferkit.data import load_split
from ferkit.models.tta import VIEWS, warp
from ferkit.outputs import check_script_outputs


@torch.no_grad()
def logits_of(model: torch.nn.Module, images: np.ndarray, view: tuple, batch: int = 512) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i:i + batch]).unsqueeze(1).float()
        x = warp(x, view).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out.append(model(x).float())
    return torch.cat(out).numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, help="folder for <member>.npz")
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
    for c in a.checkpoints:
        name = Path(c).parent.name
        dest = out / f"{name}.npz"
        have = dict(np.load(dest)) if dest.exists() else {}
        todo = [v for v in VIEWS if f"private:{v}" not in have]
        if not todo:
            print(f"{name}: all {len(VIEWS)} views exist, skipped", flush=True)
            continue
        t0 = time.time()
        m = model_from_checkpoint(c).eval().to(memory_format=torch.channels_last)
        for v in todo:
            for split, ds in (("public", pub), ("private", pri)):
                have[f"{split}:{v}"] = logits_of(m, ds.images, VIEWS[v]).astype(np.float16)
        tmp = out / f".{name}.tmp.npz"
        np.savez(tmp, **have)
        tmp.replace(dest)
        acc = {s: float(((have[f"{s}:id"].astype(np.float32) + have[f"{s}:idm"]).argmax(1) == lab).mean())
               for s, lab in (("public", pub.labels), ("private", pri.labels))}
        print(f"{name}: {len(todo)} new views of {len(VIEWS)}, flip-TTA (mean logits) public {acc['public']:.4f} "
              f"private {acc['private']:.4f}, {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
