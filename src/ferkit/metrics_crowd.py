"""Metrics against FER+ crowd votes (torch-free), beside :mod:`ferkit.metrics` which scores one label per image.

Here the reference is ten crowd workers' votes per image (:mod:`ferkit.data.ferplus`), which give three
measures that a single label cannot:

* **majority protocol** (FER+'s test protocol, 7 classes): accuracy, macro-F1, per-class, confusion matrix,
  NLL and ECE of the model against the majority label, on the images the protocol keeps; the report says how
  many images were kept and why the others were dropped;
* **vote cross-entropy**: mean over images with a vote target of ``-sum_c t_c log p_c``, ``t`` the vote
  distribution over the 7 classes (after the outlier rule), ``p`` the model's probabilities; with the
  targets' own entropy (the floor) and the difference (KL, 0 for a model that reproduces the crowd);
* **human reference** (:func:`human_agreement`): how often one crowd worker agrees with the majority of the
  other nine, and, on exactly the same (image, worker) pairs, how often the model does.
"""

from __future__ import annotations

import numpy as np

from .data.ferplus import (
    COLUMN_EMOTION,
    FERPLUS_COLUMNS,
    MAJORITY_REASONS,
    TARGET_REASONS,
    Votes,
    majority,
    majority_of,
    original_agreement,
    vote_targets,
)
from .metrics import classification_report

PROTOCOL = "FER+ majority, 7 classes (votes of 1 dropped; unknown, NF and contempt majorities removed)"


def vote_cross_entropy(probs: np.ndarray, targets: np.ndarray) -> dict:
    """Mean cross-entropy of ``probs`` (N, 7) against vote distributions ``targets`` (N, 7), with the targets'
    mean entropy (the lowest cross-entropy any model can reach) and their difference (mean KL)."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    t = np.asarray(targets, np.float64)
    if not len(t):
        return {"value": float("nan"), "target_entropy": float("nan"), "kl": float("nan"), "n": 0}
    ce = -(t * np.log(p)).sum(1).mean()
    ent = -(t * np.log(np.where(t > 0, t, 1.0))).sum(1).mean()
    return {"value": float(ce), "target_entropy": float(ent), "kl": float(ce - ent), "n": int(len(t))}


def human_agreement(counts: np.ndarray, pred: np.ndarray | None = None) -> dict:
    """Leave-one-out agreement of one crowd worker with the others, from vote counts (N, 10) in FER+ order.

    Definition: for every image and every one of its workers (a worker who voted class c is one of the
    ``counts[c]`` such workers; they are interchangeable), take the other workers' votes (``counts`` with one
    vote of c removed: nine votes for a ten-vote image), apply the outlier rule to them (counts <= 1 set to 0)
    and FER+'s majority rule (one class holds more than half of what remains, unknown and NF counting in the
    total). The pair counts when that majority exists and is one of ferkit's 7 classes; the worker agrees when
    their own vote is that class (a vote for contempt, unknown or NF, or a lone vote, never agrees).
    ``value`` = agreeing pairs / counted pairs. With ``pred`` (N,) model labels in EMOTIONS order,
    ``model_value`` is the model's agreement with the same leave-one-out majorities, weighted the same way,
    so the two numbers compare a person and the model on identical references.

    Callers pass the images the majority protocol keeps (as :func:`crowd_report` does), so the figure
    sits beside the model's majority accuracy on the same images."""
    c = np.asarray(counts, np.int64)
    pairs = agree = model_agree = 0
    images = np.zeros(len(c), bool)
    for j in range(len(FERPLUS_COLUMNS)):
        has = np.flatnonzero(c[:, j] > 0)
        if not len(has):
            continue
        others = c[has].copy()
        others[:, j] -= 1
        m = majority_of(others)
        emo = np.where(m >= 0, COLUMN_EMOTION[np.maximum(m, 0)], -1)
        valid = emo >= 0
        w = c[has, j] * valid
        pairs += int(w.sum())
        agree += int((w * (m == j)).sum())
        images[has[valid]] = True
        if pred is not None:
            model_agree += int((w * (np.asarray(pred)[has] == emo)).sum())
    out = {"value": agree / pairs if pairs else float("nan"), "pairs": pairs, "images": int(images.sum()),
           "workers_seen": int(c.sum())}
    if pred is not None:
        out["model_value"] = model_agree / pairs if pairs else float("nan")
    return out


def crowd_report(probs: np.ndarray, votes: Votes, original_labels: np.ndarray | None = None) -> dict:
    """Every crowd measure of a model's ``probs`` (N, 7) on images with ``votes`` (same order). Keys:
    ``protocol``, ``votes`` (the file), ``images``, ``majority`` (a :func:`ferkit.metrics.classification_report`
    dict on the kept images plus ``kept``/``dropped``), ``original_label_agreement`` (when the dataset's labels
    are given), ``vote_cross_entropy`` (plus ``dropped``), ``human_agreement``."""
    probs = np.asarray(probs)
    maj = majority(votes)
    keep = maj.keep
    pred = probs.argmax(1)
    rep = classification_report(maj.labels[keep], pred[keep], probs[keep])
    rep.update(maj.summary())
    vt = vote_targets(votes)
    ce = vote_cross_entropy(probs[vt.keep], vt.probs[vt.keep])
    ce["dropped"] = vt.dropped()
    out = {"protocol": PROTOCOL, "votes": votes.path, "images": len(votes), "majority": rep,
           "vote_cross_entropy": ce, "human_agreement": human_agreement(votes.counts[keep], pred[keep])}
    if original_labels is not None:
        out["original_label_agreement"] = original_agreement(original_labels, maj)
    return out


def format_crowd_report(rep: dict) -> str:
    """The terminal summary of :func:`crowd_report`."""
    m, ce, h = rep["majority"], rep["vote_cross_entropy"], rep["human_agreement"]
    dropped = ", ".join(f"{n} {MAJORITY_REASONS[r].split(' (')[0]}" for r, n in m["dropped"].items() if n)
    lines = [f"FER+ majority (7 classes): {m['kept']} of {rep['images']} images kept" + (f"; dropped: {dropped}"
                                                                                          if dropped else "")]
    if m["n"]:
        lines.append(f"  accuracy {m['accuracy']:.4f}   macro-F1 {m['macro_f1']:.4f}   NLL {m['nll']:.4f}   "
                     f"ECE {m['ece']:.4f}")
        lines.append("  recall " + "  ".join(f"{e} {r['recall']:.3f}" for e, r in m["per_class"].items()))
    if "original_label_agreement" in rep:
        lines.append(f"  dataset label = FER+ majority on {rep['original_label_agreement']:.1%} of them")
    skipped = sum(ce["dropped"].values())
    lines.append(f"vote cross-entropy {ce['value']:.4f} (floor {ce['target_entropy']:.4f}, KL {ce['kl']:.4f}) "
                 f"on {ce['n']} images" + (f" ({skipped} without a vote target)" if skipped else ""))
    if h["pairs"]:
        lines.append(f"human reference: one worker agrees with the other nine's majority {h['value']:.1%} of "
                     f"{h['pairs']} times; the model {h.get('model_value', float('nan')):.1%} on the same pairs")
    return "\n".join(lines)


__all__ = ["PROTOCOL", "TARGET_REASONS", "crowd_report", "format_crowd_report", "human_agreement",
           "vote_cross_entropy"]
