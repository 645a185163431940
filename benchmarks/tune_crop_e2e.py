"""Crop settings per detector, chosen by end-to-end accuracy on real photos (a coarse grid, no detection).

    python benchmarks/bench_e2e.py --data DIR --model fast --cache dev.npz     # detect once, cache
    python benchmarks/tune_crop_e2e.py --cache dev.npz [--model fast] [--detectors centerface]

For every detector in the cache and every (margin, shift, alignment) on a coarse grid of round values, the
largest face of each photo is cropped from its cached patch and classified; accuracy is printed as one grid
per detector and alignment setting (rows: margin, columns: shift), so the chosen cell can be read together
with its neighbours. A photo without a face counts as wrong (it is wrong whatever the crop). Photos that
were small enough to be taken whole (detector ``crop``) do not depend on the crop settings.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ferkit.faces import CropSpec, crop_face
from ferkit.recognizer import Recognizer

MARGINS = (-0.10, -0.05, 0.0, 0.05, 0.10, 0.15, 0.20)
SHIFTS = (-0.05, 0.0, 0.05, 0.10, 0.15)


def load(path: str) -> dict:
    z = np.load(path, allow_pickle=True)
    out = {"y": z["y"], "files": z["files"], "det": {}}
    for key in z.files:
        if "/" in key:
            name, field = key.split("/", 1)
            out["det"].setdefault(name, {})[field] = z[key]
    return out


def faces(c: dict) -> list[tuple[int, np.ndarray, tuple, tuple | None, bool]]:
    """Per photo with a face: (index, patch, box and landmarks in patch pixels, taken whole) of the largest."""
    out = []
    for i, boxes in enumerate(c["boxes"]):
        if boxes is None or len(boxes) == 0:
            continue
        k = int(np.argmax(boxes[:, 2] * boxes[:, 3]))
        o, s = c["origin"][i], float(c["scale"][i])
        x, y, w, h = boxes[k, :4]
        box = ((x - o[0]) * s, (y - o[1]) * s, w * s, h * s)
        lm = boxes[k, 5:15].reshape(5, 2)
        marks = None if np.isnan(lm).any() else tuple(map(tuple, (lm - o) * s))
        out.append((i, c["patch"][i], box, marks, bool(c["crop"][i])))
    return out


def accuracy_grid(rec: Recognizer, items, y: np.ndarray, align: bool) -> np.ndarray:
    grid = np.zeros((len(MARGINS), len(SHIFTS)))
    idx = np.array([it[0] for it in items])
    for a, m in enumerate(MARGINS):
        for b, sh in enumerate(SHIFTS):
            spec = CropSpec(m, sh, align)
            crops = np.stack([crop_face(p, box_int(box), CropSpec()) if tiny
                              else crop_face(p, box_int(box), spec, 48, landmarks=marks)
                              for _, p, box, marks, tiny in items])
            pred = rec.predict_arrays(crops, 256).argmax(1)
            grid[a, b] = np.sum(pred == y[idx]) / len(y)
    return grid


def box_int(box):
    return tuple(int(round(v)) for v in box)


def show(grid: np.ndarray, title: str) -> str:
    best = np.unravel_index(np.argmax(grid), grid.shape)
    lines = [f"{title}: best {grid[best]:.1%} at margin {MARGINS[best[0]]:+.2f}, shift {SHIFTS[best[1]]:+.2f}", "",
             "| margin \\ shift | " + " | ".join(f"{s:+.2f}" for s in SHIFTS) + " |",
             "|---:|" + "---:|" * len(SHIFTS)]
    for a, m in enumerate(MARGINS):
        cells = [(f"**{v:.1%}**" if (a, b) == best else f"{v:.1%}") for b, v in enumerate(grid[a])]
        lines.append(f"| {m:+.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--model", default="fast")
    ap.add_argument("--detectors", nargs="*", default=None)
    ap.add_argument("--margins", nargs="*", type=float, default=None, help="default -0.10 .. 0.20 by 0.05")
    ap.add_argument("--shifts", nargs="*", type=float, default=None, help="default -0.05 .. 0.15 by 0.05")
    args = ap.parse_args()
    global MARGINS, SHIFTS
    MARGINS = tuple(args.margins or MARGINS)
    SHIFTS = tuple(args.shifts or SHIFTS)
    data = load(args.cache)
    y = data["y"]
    rec = Recognizer(model=args.model, detector="full")
    print(f"{len(y)} photos, model `{args.model}`; accuracy of the largest face's label (no face = wrong)\n")
    for name, c in data["det"].items():
        if args.detectors and name not in args.detectors:
            continue
        items = faces(c)
        has_marks = any(it[3] is not None for it in items)
        for align in ((True, False) if has_marks else (False,)):
            title = f"{name}, {len(items)} photos with a face, alignment {'on' if align else 'off'}"
            print(show(accuracy_grid(rec, items, y, align), title) + "\n", flush=True)
    print("done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
