"""Evaluation: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix, calibration."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .data import load_split
from .data.ferplus import Votes, load_votes
from .metrics import classification_report
from .metrics_crowd import crowd_report
from .models.tta import Predictor
from .report import save_report


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    images: np.ndarray,
    *,
    batch_size: int = 512,
    tta: str = "none",
    device: str | torch.device = "cpu",
    amp: bool = False,
    temperature: float = 1.0,
) -> np.ndarray:
    """Probabilities (N, 7) for uint8 images (N, 48, 48)."""
    pred = model if isinstance(model, Predictor) else Predictor(model, tta, temperature)
    pred = pred.to(device).eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).to(device)
        x = x.unsqueeze(1).float()
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            out.append(pred(x).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 7), np.float32)


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, votes: Votes | None = None, **kw) -> dict:
    """Report dict (see ferkit.metrics.classification_report) for a model on uint8 images; with FER+ ``votes``
    for the same images, their measures under ``"ferplus"`` (:func:`ferkit.metrics_crowd.crowd_report`)."""
    t0 = time.perf_counter()
    probs = predict_probs(model, images, **kw)
    dt = time.perf_counter() - t0
    rep = classification_report(labels, probs.argmax(1), probs)
    if votes is not None:
        rep["ferplus"] = crowd_report(probs, votes, labels)
    rep["seconds"] = dt
    rep["images_per_second"] = len(images) / dt if dt > 0 else 0.0
    return rep


def run_evaluation(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    split: str = "private",
    *,
    out_dir: str | os.PathLike | None = None,
    tta: str = "none",
    batch_size: int = 512,
    amp: bool = False,
    use_ema: bool = True,
    skip_unknown: bool = False,
    device: str = "cpu",
    votes: str | os.PathLike | None = None,
) -> dict:
    """Evaluate a checkpoint on a dataset split; write report.json and confusion.png in out_dir. FER+ votes
    (``votes``: a file, ``"none"``, or None to look for them, :func:`ferkit.data.ferplus.load_votes`) add
    the crowd measures and confusion-ferplus.png."""
    from .checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, use_ema=use_ema)
    ds = load_split(data, split, skip_unknown=skip_unknown)
    temperature = float(ckpt.get("temperature", 1.0))
    rep = evaluate(model, ds.images, ds.labels, load_votes(ds, data, votes), tta=tta, batch_size=batch_size,
                   amp=amp, temperature=temperature, device=device)
    rep.update(checkpoint=str(checkpoint), model=ckpt["model"], data=str(data), split=split, tta=tta,
               epoch=ckpt.get("epoch"), skipped=len(ds.skipped))
    # named after the checkpoint too: evaluating best.pt and last.pt of one run never share a report
    out = Path(out_dir) if out_dir else Path(checkpoint).parent / f"eval-{Path(checkpoint).stem}-{split}-{tta}"
    return save_report(rep, out, title=f"{ckpt['model']} on {split} (acc {rep['accuracy']:.4f})")
