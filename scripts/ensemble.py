"""Greedy ensemble selection on PublicTest (the FER2013 selection split); PrivateTest is only reported.

    python scripts/ensemble.py --data ../shared/fer2013 --tta flip --max-members 4 runs/*/best-slim.pt

Prints each member's accuracy, then the greedy path: at each step the member whose addition gives the
highest PublicTest accuracy of the averaged probabilities (ties: lower NLL). Inference here uses bf16
autocast for speed; the exported ONNX (fp32) is what the model card measures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tta_search import greedy, score  # scripts/ is on sys.path when a script runs

from ferkit.checkpoint import model_from_checkpoint
from ferkit.data import load_split
from ferkit.models.tta import Predictor


@torch.no_grad()
def probs_of(path: str, images: np.ndarray, tta: str, device: str = "cpu") -> np.ndarray:
    m = model_from_checkpoint(path).to(device, memory_format=torch.channels_last)
    pred = Predictor(m, tta).eval()
    out = []
    for i in range(0, len(images), 256):
        x = torch.from_numpy(images[i:i + 256]).unsqueeze(1).float().to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            out.append(pred(x).float().cpu())
    return torch.cat(out).numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--tta", default="flip")
    ap.add_argument("--max-members", type=int, default=4)
    ap.add_argument("--json", help="write the result here")
    a = ap.parse_args()
    t0 = time.time()
    pub, pri = load_split(a.data, "public"), load_split(a.data, "private")
    names = [Path(c).parent.name for c in a.checkpoints]
    P = {}
    print(f"{'member':<8}{'public':>9}{'private':>9}")
    for n, c in zip(names, a.checkpoints):
        P[n] = (probs_of(c, pub.images, a.tta), probs_of(c, pri.images, a.tta))
        print(f"{n:<8}{score(P[n][0], pub.labels)[0]:>9.4f}{score(P[n][1], pri.labels)[0]:>9.4f}", flush=True)
    path = greedy(P, pub.labels, pri.labels, a.max_members)
    for step in path:
        print(f"+ {step['members'][-1]:<6} -> {len(step['members'])} members: public {step['public']:.4f} "
              f"(NLL {step['public_nll']:.4f}), private {step['private']:.4f}", flush=True)
    print(f"tta {a.tta}; {time.time() - t0:.0f}s")
    if a.json:
        Path(a.json).write_text(json.dumps({"tta": a.tta, "path": path, "members": {
            n: {"public": score(P[n][0], pub.labels)[0], "private": score(P[n][1], pri.labels)[0]}
            for n in names}}, indent=2))


if __name__ == "__main__":
    main()
