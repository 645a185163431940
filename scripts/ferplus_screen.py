"""Issue 22's screen: candidates scored on the development data only (PublicTest with FER+ votes, cached
webphotos-dev crops), as ``scripts/ferplus_dev.py table`` and ``search`` print them; the FER+ helpers they share
with ferplus_dev.py. PrivateTest is never read here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ferkit.emotions import EMOTIONS
from ferkit.outputs import atomic_write_text

# FER+ vote columns, and where each of the 7 emotions sits among them
FERPLUS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
TO_FERPLUS = [FERPLUS.index(n) for n in ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")]


def majority(votes: np.ndarray) -> np.ndarray:
    """FER+ majority label in ferkit's 7 classes, -1 where there is none (or it is contempt/unknown/NF):
    ferkit.data.ferplus's rule on raw counts in FER+'s column order."""
    from ferkit.data.ferplus import COLUMN_EMOTION, majority_of

    col = majority_of(votes)
    return np.where(col >= 0, COLUMN_EMOTION[np.maximum(col, 0)], -1)


def distribution(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 7) vote distribution after the outlier rule, and a mask of images that have one (mostly a face)."""
    from ferkit.data.ferplus import drop_outliers

    v = drop_outliers(votes).astype(np.float64)
    emo = v[:, TO_FERPLUS]
    ok = (emo.sum(1) > 0) & (v[:, 8:].sum(1) * 2 < v.sum(1))
    d = emo / np.maximum(emo.sum(1, keepdims=True), 1)
    return d.astype(np.float32), ok


def largest_face_crop(rec, bgr: np.ndarray) -> np.ndarray | None:
    """The 48x48 crop of the largest face, as ``ferkit predict`` and bench_e2e cut it (None: no face)."""
    dets, cr, _ = rec.locate(bgr)
    if not dets:
        return None
    return cr[int(np.argmax([d.box[2] * d.box[3] for d in dets]))]


def stale_crops(dev, check: int = 8) -> int:
    """How many of the first ``check`` cached photo crops (that still exist) today's code cuts differently: the
    screen is only worth its gates while the cached crops are the ones ``ferkit predict`` makes (round 4 of the
    rule: crops cached in round 1 had drifted on 745 of 805 photos)."""
    from ferkit.images import read_image
    from ferkit.recognizer import Recognizer

    rec = Recognizer(model="fast", detector="centerface")
    bad = seen = 0
    for f, y, x in list(zip(dev["photo_files"], dev["photo_y"], dev["photo_x"]))[:check]:
        if not Path(str(f)).is_file():
            continue
        seen += 1
        crop = largest_face_crop(rec, read_image(str(f)))
        bad += (crop is None) != (y < 0) or (crop is not None and not np.array_equal(crop, x))
    if not seen:
        print("warning: none of the cached photos is where it was; the crops could not be checked", file=sys.stderr)
    return bad


def check_fresh(dev, a) -> None:
    bad = 0 if a.allow_stale_crops else stale_crops(dev)
    if bad:
        raise SystemExit(f"{a.dev}: {bad} of the first photo crops differ from what ferkit cuts today; the screen "
                         "would not match bench_e2e. Run `ferplus_dev.py prepare` again (or --allow-stale-crops)")


def scores(probs_pub, probs_photo, dev) -> dict:
    y, maj = dev["pub_y"], majority(dev["pub_votes"])
    pp = probs_pub.argmax(1)
    keep = maj >= 0
    dist, ok = distribution(dev["pub_votes"])
    ce = float(-(dist[ok] * np.log(np.clip(probs_pub[ok], 1e-7, 1))).sum(1).mean())
    py = dev["photo_y"]
    ph = np.where(py >= 0, probs_photo.argmax(1), -9)
    truth = np.where(py >= 0, py, -1 - py)
    rec = {EMOTIONS[c]: float((ph[truth == c] == c).mean()) for c in np.unique(truth)}
    return {"fer2013_public": float((pp == y).mean()), "ferplus_public": float((pp[keep] == maj[keep]).mean()),
            "ferplus_public_n": int(keep.sum()), "vote_ce_public": ce, "photos": float((ph == truth).mean()),
            "photos_n": int(len(truth)), "photo_recall": rec,
            **clear_by_both(pp, y, maj)}


def clear_by_both(pred: np.ndarray, y: np.ndarray, maj: np.ndarray) -> dict:
    """Recall per class on the images whose FER2013 label ``y`` is the crowd's majority ``maj`` (clear by both),
    and how many such images each class has: ``{"clear_recall": {...}, "clear_n": {...}}``."""
    clear = y == maj
    return {"clear_recall": {e: float((pred[clear & (y == c)] == c).mean()) for c, e in enumerate(EMOTIONS)},
            "clear_n": {e: int((clear & (y == c)).sum()) for c, e in enumerate(EMOTIONS)}}


def clear_gated(ref: dict, min_n: int = 100) -> list[str]:
    """The classes the clear-by-both gate checks (round 3 of the rule): at least ``min_n`` PublicTest images whose
    FER2013 label is the crowd's majority, neutral excepted."""
    return [e for e, n in ref["clear_n"].items() if n >= min_n and e != "neutral"]


def prior_grid(neutral: list[float], specs: list[str]) -> list[dict[str, float]]:
    """Every combination of the offsets to try: ``--neutral-prior B ...`` and ``--prior EMOTION=B,B,...``."""
    import itertools

    axes = {"neutral": neutral}
    for s in specs:
        e, _, bs = s.partition("=")
        if e not in EMOTIONS or not bs:
            raise SystemExit(f"--prior {s!r}: give EMOTION=B[,B...] with EMOTION one of {', '.join(EMOTIONS)}")
        axes[e] = [float(b) for b in bs.split(",")]
    return [{e: b for e, b in zip(axes, combo) if b} for combo in itertools.product(*axes.values())]


def cmd_table(a) -> int:
    dev = np.load(a.dev)
    check_fresh(dev, a)
    rows = {}
    for spec in a.candidate:
        name, members = spec.rsplit("=", 1)
        banks = [np.load(Path(a.bank) / f"{m}.npz") for m in members.split("+")]
        pub = np.mean([b["pub"] for b in banks], 0)
        photo = np.mean([b["photo"] for b in banks], 0)
        rows[name] = {"members": members.split("+"), **scores(pub, photo, dev)}
    print("| candidate | FER2013 PublicTest | FER+ PublicTest majority | vote CE | photos (cached crops) | "
          + " | ".join(f"{e} recall" for e in next(iter(rows.values()))["photo_recall"]) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(next(iter(rows.values()))["photo_recall"]))
    for n, r in rows.items():
        print(f"| {n} | {r['fer2013_public']:.2%} | {r['ferplus_public']:.2%} | {r['vote_ce_public']:.3f} | "
              f"{r['photos']:.2%} | " + " | ".join(f"{v:.1%}" for v in r["photo_recall"].values()) + " |")
    if a.json:
        old = json.loads(Path(a.json).read_text()) if Path(a.json).exists() else {}
        old.update(rows)
        atomic_write_text(a.json, json.dumps(old, indent=1) + "\n")
    return 0


def cmd_search(a) -> int:
    """Every ensemble of --size banks (uniform average, then each class prior of the grid), screened like the
    rule's gates on the cached crops (and, with --clear-gate, PublicTest's clear-by-both recall); the --keep best
    screened ones and the --top best on FER+ go to --json, tagged with --tag."""
    import itertools

    dev = np.load(a.dev)
    check_fresh(dev, a)
    banks = {m: np.load(Path(a.bank) / f"{m}.npz") for m in a.banks}
    base = Path(a.baseline) if a.baseline.endswith(".npz") else Path(a.bank) / f"{a.baseline}.npz"
    ref_bank = np.load(base)
    ref = scores(ref_bank["pub"], ref_bank["photo"], dev)
    gated = clear_gated(ref) if a.clear_gate else []
    grid = prior_grid(a.neutral_prior, a.prior)
    rows = {}
    for size in a.size:
        for combo in itertools.combinations(a.banks, size):
            pub = np.mean([banks[m]["pub"] for m in combo], 0)
            photo = np.mean([banks[m]["photo"] for m in combo], 0)
            for prior in grid:
                f = np.exp([prior.get(e, 0.0) for e in EMOTIONS])
                r = scores(pub * f / (pub * f).sum(1, keepdims=True), photo * f / (photo * f).sum(1, keepdims=True),
                           dev)
                r["screen"] = bool(r["photos"] >= ref["photos"] and all(
                    r["photo_recall"][e] >= ref["photo_recall"][e] - 0.05 for e in r["photo_recall"]
                    if e != "neutral") and all(r["clear_recall"][e] >= ref["clear_recall"][e] - 0.05 for e in gated))
                key = "+".join(combo) + ("@" + ",".join(f"{e}{b:+g}" for e, b in prior.items()) if prior else "")
                rows[key] = {"members": list(combo), "neutral_prior": prior.get("neutral", 0.0), "class_prior": prior,
                             "bank": str(a.bank), **({"tag": a.tag} if a.tag else {}), **r}
    order = sorted(rows, key=lambda k: -rows[k]["ferplus_public"])
    print(f"baseline {base}: FER+ {ref['ferplus_public']:.2%}, photos {ref['photos']:.2%}; {len(rows)} candidates, "
          f"{sum(r['screen'] for r in rows.values())} pass the screen" + (f" (clear-by-both gate: {', '.join(gated)})"
                                                                           if gated else ""))
    shown = [k for k in order if rows[k]["screen"]][:a.top] if a.screened_only else order[:a.top]
    for k in shown:
        r = rows[k]
        print(f"{k:56s} FER+ {r['ferplus_public']:.2%}  FER2013 {r['fer2013_public']:.2%}  photos {r['photos']:.2%}  "
              + " ".join(f"{e} {v:.1%}" for e, v in r["photo_recall"].items()) + ("  screen ok" if r["screen"] else ""))
    if a.json:
        keep = set([k for k in order if rows[k]["screen"]][:a.keep]) | set(order[:a.top])
        tag = f"{a.tag}:" if a.tag else ""
        old = json.loads(Path(a.json).read_text()) if Path(a.json).exists() else {}
        old.update({f"search:{tag}{k}": v for k, v in rows.items() if k in keep})
        old[f"search-summary:{tag}{a.bank}"] = {
            "baseline": str(base), "baseline_scores": ref, "dev": str(a.dev),
            "crops_checked": not a.allow_stale_crops, "sizes": a.size, "neutral_priors": a.neutral_prior,
            "priors": a.prior, "clear_gate": gated, "networks": a.banks, "candidates": len(rows),
            "screened": sum(r["screen"] for r in rows.values()), "kept_here": len(keep),
            "screened_order": [k for k in order if rows[k]["screen"]][:a.keep]}
        atomic_write_text(a.json, json.dumps(old, indent=1) + "\n")
    return 0
