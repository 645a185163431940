"""Classification metrics in plain numpy (no torch, no sklearn): accuracy, per-class
precision/recall/F1/support, macro-F1, confusion matrix, expected calibration error."""

from __future__ import annotations

import numpy as np

from .emotions import EMOTIONS


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int = len(EMOTIONS)) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    conf = probs.max(1)
    correct = probs.argmax(1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def classification_report(y_true, y_pred, probs: np.ndarray | None = None) -> dict:
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    cm = confusion_matrix(y_true, y_pred)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    predicted = cm.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    present = support > 0
    report = {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            e: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i])}
            for i, e in enumerate(EMOTIONS)
        },
        "confusion_matrix": cm.tolist(),
        "labels": list(EMOTIONS),
    }
    if probs is not None:
        p = np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, 1)
        report["nll"] = float(-np.log(p).mean())
        report["ece"] = expected_calibration_error(probs, y_true)
    return report


def format_report(rep: dict) -> str:
    lines = [f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for e, r in rep["per_class"].items():
        lines.append(f"{e:<10}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}{r['support']:>10d}")
    lines.append("")
    lines.append(f"accuracy  {rep['accuracy']:.4f}   macro-F1 {rep['macro_f1']:.4f}   n={rep['n']}")
    if "ece" in rep:
        lines.append(f"NLL {rep['nll']:.4f}   ECE {rep['ece']:.4f}")
    return "\n".join(lines)
