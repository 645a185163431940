"""Choose test-time views and ensemble members on PublicTest from the logits bank of scripts/tta_bank.py;
PrivateTest is only reported, never used to choose.

    python scripts/tta_search.py --bank bank/ --json results/tta-search.json

For every view set (the `--tta` modes none, flip, shift, scale-rot, and wider sets for comparison) it
prints the members' mean single-model accuracy and the greedy ensemble path
(at each step the member that most raises PublicTest accuracy of the averaged probabilities; ties: NLL).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ferkit.models.tta import TTA_SETS, VIEWS

SETS = dict(TTA_SETS)  # the modes `ferkit export --tta` offers, plus wider sets to compare against
SETS["scale"] = ["id", "idm", "sc0.9", "sc0.9m", "sc1.1", "sc1.1m"]
SETS["rot"] = ["id", "idm", "rot-10", "rot-10m", "rot+10", "rot+10m"]
SETS["all"] = list(VIEWS)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def score(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float((p.argmax(1) == y).mean()), float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1)).mean())


def greedy(P: dict[str, tuple[np.ndarray, np.ndarray]], ypub, ypri, max_members: int) -> list[dict]:
    chosen: list[str] = []
    path = []
    while len(chosen) < min(max_members, len(P)):
        best = None
        for n in P:
            if n in chosen:
                continue
            acc, nll = score(np.mean([P[m][0] for m in chosen + [n]], 0), ypub)
            if best is None or (acc, -nll) > (best[1], -best[2]):
                best = (n, acc, nll)
        chosen.append(best[0])
        pri = score(np.mean([P[m][1] for m in chosen], 0), ypri)[0]
        path.append({"members": list(chosen), "public": best[1], "public_nll": best[2], "private": pri})
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bank", required=True)
    ap.add_argument("--members", nargs="*", help="member names (default: every .npz in the bank)")
    ap.add_argument("--max-members", type=int, default=8)
    ap.add_argument("--json")
    a = ap.parse_args()
    t0 = time.time()
    bank = Path(a.bank)
    lab = np.load(bank / "labels.npz")
    views = [str(v) for v in lab["views"]]
    ypub, ypri = lab["public"], lab["private"]
    names = a.members or sorted(p.stem for p in bank.glob("*.npz") if p.stem != "labels")
    L = {n: np.load(bank / f"{n}.npz") for n in names}
    L = {n: (d["public"].astype(np.float32), d["private"].astype(np.float32)) for n, d in L.items()}

    print("per-view PublicTest / PrivateTest accuracy, mean over members:")
    for i, v in enumerate(views):
        pub = np.mean([score(softmax(L[n][0][i]), ypub)[0] for n in names])
        pri = np.mean([score(softmax(L[n][1][i]), ypri)[0] for n in names])
        print(f"  {v:<10} {pub:.4f} {pri:.4f}")
    out = {"members": names, "sets": {}}
    for sname, vs in SETS.items():
        idx = [views.index(v) for v in vs]
        P = {n: (softmax(L[n][0][idx]).mean(0), softmax(L[n][1][idx]).mean(0)) for n in names}
        single = {n: (score(P[n][0], ypub)[0], score(P[n][1], ypri)[0]) for n in names}
        path = greedy(P, ypub, ypri, a.max_members)
        allp = (score(np.mean([p[0] for p in P.values()], 0), ypub)[0],
                score(np.mean([p[1] for p in P.values()], 0), ypri)[0])
        sp = np.array(list(single.values()))
        print(f"\n[{sname}] {len(vs)} views; single mean public {sp[:, 0].mean():.4f} private "
              f"{sp[:, 1].mean():.4f} +- {sp[:, 1].std(ddof=1) if len(sp) > 1 else 0:.4f}; "
              f"all {len(names)} members: public {allp[0]:.4f} private {allp[1]:.4f}")
        for step in path:
            print(f"  {len(step['members'])}: +{step['members'][-1]:<6} public {step['public']:.4f} "
                  f"(NLL {step['public_nll']:.4f}) private {step['private']:.4f}")
        out["sets"][sname] = {"views": vs, "single": single, "greedy": path, "all_members": allp}
    print(f"\n{time.time() - t0:.0f}s")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
