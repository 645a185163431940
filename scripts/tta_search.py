"""Choose test-time views and ensemble members on PublicTest from the logits bank of scripts/tta_bank.py;
PrivateTest is only reported, never used to choose.

    python scripts/tta_search.py --bank bank/ --json results/tta-search.json

For every view set (the `--tta` modes none, flip, shift, scale-rot, and wider sets for comparison) it
prints the members' mean single-model accuracy and the greedy ensemble path (at each step the member that
most raises PublicTest accuracy of the averaged probabilities; ties: NLL), then the choice: the `--tta` mode
with the best mean single-member PublicTest accuracy (the one with fewest views among those within 0.1 point
of the best), and its greedy path cut at its best PublicTest step.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ferkit.models.tta import TTA_SETS, VIEWS, mirrored
from ferkit.outputs import atomic_write_text, check_script_outputs

SETS = dict(TTA_SETS)  # the modes `ferkit export --tta` offers, plus wider sets to compare against
# the modes the rule chooses among (fixed when the rule was run: `scale` and `rot` became modes later)
RULE_MODES = ("none", "flip", "shift", "scale-rot", "scale-rot-wide")
SETS["scale4"] = mirrored("id", "sc0.9", "sc0.95", "sc1.05", "sc1.1")
SETS["scale6"] = mirrored("id", "sc0.85", "sc0.9", "sc0.95", "sc1.05", "sc1.1", "sc1.15")
SETS["rot4"] = mirrored("id", "rot-10", "rot-5", "rot+5", "rot+10")
SETS["scale4-rot4"] = mirrored("id", "sc0.9", "sc0.95", "sc1.05", "sc1.1", "rot-10", "rot-5", "rot+5", "rot+10")
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
    ap.add_argument("--max-members", type=int, default=7, help="7 int8 fernet_m members fit the 20 MB limit")
    ap.add_argument("--json")
    a = ap.parse_args()
    check_script_outputs(ap, {"--json": a.json}, {a.bank: "--bank"})  # ferkit.outputs' rules
    t0 = time.time()
    bank = Path(a.bank)
    lab = np.load(bank / "labels.npz")
    ypub, ypri = lab["public"], lab["private"]
    names = a.members or sorted(p.stem for p in bank.glob("*.npz") if p.stem != "labels")
    raw = {n: np.load(bank / f"{n}.npz") for n in names}
    views = [v for v in VIEWS if all(f"private:{v}" in raw[n] for n in names)]
    L = {n: tuple(np.stack([d[f"{s}:{v}"] for v in views]).astype(np.float32) for s in ("public", "private"))
         for n, d in raw.items()}

    print("per-view PublicTest / PrivateTest accuracy, mean over members:")
    for i, v in enumerate(views):
        pub = np.mean([score(softmax(L[n][0][i]), ypub)[0] for n in names])
        pri = np.mean([score(softmax(L[n][1][i]), ypri)[0] for n in names])
        print(f"  {v:<10} {pub:.4f} {pri:.4f}")
    out = {"members": names, "views": views, "sets": {}}
    for sname, vs in SETS.items():
        if not set(vs) <= set(views):
            continue
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
    # The rule, PublicTest only: the view set (among the `--tta` modes) with the best mean single-member accuracy
    # -- an average over members, steadier than one ensemble's score -- then greedy members up to the first step
    # with the path's best PublicTest accuracy (a tie does not earn another member).
    modes = [k for k in out["sets"] if k in RULE_MODES]
    mean_pub = {k: float(np.mean([v[0] for v in out["sets"][k]["single"].values()])) for k in modes}
    top = max(mean_pub.values())
    # within 0.1 point (about 4 PublicTest images) of the best, the mode with the fewest views wins
    best_set = min((k for k in modes if mean_pub[k] >= top - 0.001), key=lambda k: len(TTA_SETS[k]))
    path = out["sets"][best_set]["greedy"]
    k = int(np.argmax([st["public"] for st in path]))
    out["choice"] = {"tta": best_set, **path[k]}
    print(f"\nchoice: --tta {best_set}, members {' '.join(path[k]['members'])}: public {path[k]['public']:.4f}, "
          f"private {path[k]['private']:.4f}")
    print(f"{time.time() - t0:.0f}s")
    if a.json:
        atomic_write_text(a.json, json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
