"""Rebuild torch checkpoints of the networks inside a shipped ONNX file (its weights, as stored), so that
`ferkit export` can re-export them with other views, members or int8 arithmetic, and the logits bank
(scripts/quant_bank.py) can score them. The training checkpoints live elsewhere; this is the way back.

    python scripts/onnx_members.py src/ferkit/weights/ferkit-fer2013.onnx --out members/ [--check ../shared/fer2013]

One checkpoint per member, ``<out>/<run>/best.pt`` (run = the name in the file's ``checkpoints`` metadata,
else ``<file stem>-<i>``); how: ferkit.onnx_members. ``--check`` runs the rebuilt members with the file's own
views and temperature in torch and compares them with the file on real PrivateTest images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def save_member(path: Path, name: str, state_dict: dict, source: str) -> None:
    """A training-format checkpoint (``ferkit train --init``, ``ferkit export``) of one rebuilt member."""
    from ferkit.checkpoint import FORMAT, VERSION, atomic_torch_save
    from ferkit.emotions import EMOTIONS

    atomic_torch_save({"format": FORMAT, "version": VERSION, "model": name, "model_kwargs": {},
                       "labels": list(EMOTIONS), "state_dict": state_dict, "source": source}, path)


def main() -> int:
    import torch

    from ferkit.onnx_members import load_members

    ap = argparse.ArgumentParser()
    ap.add_argument("onnx")
    ap.add_argument("--out", required=True)
    ap.add_argument("--check", help="dataset: compare the re-exported members with the file on PrivateTest")
    ap.add_argument("--check-n", type=int, default=256)
    ap.add_argument("--names", nargs="+", help="run names for the members (default: from the file's metadata)")
    a = ap.parse_args()
    members, meta = load_members(a.onnx)
    names = json.loads(meta.get("members", "[]"))
    runs = [Path(c).parent.name for c in json.loads(meta.get("checkpoints", "[]"))]
    if len(set(runs)) != len(members) or "" in runs:
        runs = [f"{Path(a.onnx).stem}-{i}" for i in range(len(members))]
    if a.names:
        if len(a.names) != len(members):
            ap.error(f"--names: {len(a.names)} names for {len(members)} members")
        runs = a.names
    for i, model in enumerate(members):
        p = Path(a.out) / runs[i] / "best.pt"
        save_member(p, names[i], model.state_dict(),
                    f"rebuilt from {Path(a.onnx).name} member {i} by scripts/onnx_members.py")
        print(f"{p}: {names[i]} member {i} of {a.onnx}")
    if a.check:
        import onnxruntime as ort

        from ferkit.data import load_split
        from ferkit.models.tta import Predictor

        pred = Predictor(members, meta.get("tta", "none"), float(meta.get("temperature", 1.0))).eval()
        x = load_split(a.check, "private").images[:a.check_n][:, None].astype(np.float32)
        with torch.no_grad():
            ref = pred(torch.from_numpy(x)).numpy()
        got = ort.InferenceSession(a.onnx, providers=["CPUExecutionProvider"]).run(["probs"], {"pixels": x})[0]
        diff = float(np.abs(ref - got).max())
        agree = float((ref.argmax(1) == got.argmax(1)).mean())
        print(f"check on {len(x)} PrivateTest images: max |torch - onnx| = {diff:.2e}, argmax agreement {agree:.4f}")
        if diff > 1e-4:
            print("rebuilt members differ from the file", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
