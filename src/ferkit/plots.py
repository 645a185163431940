"""Matplotlib figures (Agg backend, written atomically): confusion matrix and training curves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .emotions import EMOTIONS


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def plot_confusion(cm, path: str | os.PathLike, title: str = "") -> Path:
    """Counts (left) and row-normalised recall (right)."""
    plt = _plt()
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    for ax, mat, fmt, name in ((axes[0], cm, "d", "counts"), (axes[1], norm, ".2f", "row-normalised")):
        im = ax.imshow(mat, cmap="Blues")
        ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
        ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} ({name})" if title else name)
        hi = mat.max() if mat.size else 1
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                v = mat[i, j]
                ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=8,
                        color="white" if v > hi * 0.6 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_curves(history: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Loss and accuracy per epoch from a metrics.csv-like list of dicts."""
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.plot(ep, [h["train_loss"] for h in history], label="train")
    if history and "val_loss" in history[0]:
        a1.plot(ep, [h["val_loss"] for h in history], label="val")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    a2.plot(ep, [h["train_acc"] for h in history], label="train (augmented)")
    if history and "val_acc" in history[0]:
        a2.plot(ep, [h["val_acc"] for h in history], label="val")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out
