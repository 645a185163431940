"""Optimizer, learning-rate schedules, class weights and the EMA of weights."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn as nn

from ..emotions import NUM_CLASSES
from .config import TrainConfig


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "adam":
        # Keras' Adam has no weight decay; keep cfg.weight_decay as L2 only if asked for
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose sgd, adam or adamw")


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate for step-wise schedules (cosine with linear warm-up, one-cycle, constant)."""
    total = cfg.epochs * steps_per_epoch
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule in ("none", "plateau"):
        return cfg.lr
    if cfg.schedule == "cosine":
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    if cfg.schedule == "onecycle":
        peak = int(0.3 * total)
        if step < peak:
            return cfg.lr * (0.04 + 0.96 * step / max(1, peak))
        t = (step - peak) / max(1, total - peak)
        return cfg.lr * (0.5 * (1 + math.cos(math.pi * min(1.0, t)))) + cfg.lr * 1e-4
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose cosine, onecycle, plateau or none")


def class_weight_tensor(labels: np.ndarray, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    w = counts.sum() / np.maximum(counts, 1) / NUM_CLASSES
    if mode == "sqrt":
        w = np.sqrt(w)
    elif mode != "balanced":
        raise ValueError(f"unknown class weights {mode!r}; choose none, balanced or sqrt")
    return torch.tensor(w / (w * counts).sum() * counts.sum(), dtype=torch.float32)


class EMA:
    """Exponential moving average of parameters and buffers (BN statistics included)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm-up, as in timm's ModelEmaV2 variants
        ema_f, cur_f = [], []
        for e, m in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                ema_f.append(e)
                cur_f.append(m.detach())
            else:
                e.copy_(m)
        torch._foreach_lerp_(ema_f, cur_f, 1 - d)
