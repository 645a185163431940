"""Test-time augmentation and temperature as torch modules, so that an exported ONNX graph contains
exactly what a published number used: raw pixels in, averaged calibrated probabilities out."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

TTA_MODES = ("none", "flip", "shift")


def tta_views(x: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """Views of a (N,1,H,W) batch: none -> [x]; flip -> [x, mirror]; shift -> those two plus four
    diagonal 2-px shifts and their mirrors (10 views, a ten-crop without shrinking the face)."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {mode!r}; choose one of {', '.join(TTA_MODES)}")
    views = [x]
    if mode in ("flip", "shift"):
        views.append(torch.flip(x, dims=[3]))
    if mode == "shift":
        pad = F.pad(x, (2, 2, 2, 2), mode="replicate")
        h, w = x.shape[2], x.shape[3]
        for dy, dx in ((0, 0), (0, 4), (4, 0), (4, 4)):
            v = pad[:, :, dy:dy + h, dx:dx + w]
            views += [v, torch.flip(v, dims=[3])]
    return views


class Predictor(nn.Module):
    """Raw 0..255 pixels (N,1,48,48) -> probabilities (N,7): members x TTA views, softmax(logits / T), mean."""

    def __init__(self, members: list[nn.Module] | nn.Module, tta: str = "none", temperature: float = 1.0,
                 with_uncalibrated: bool = False):
        super().__init__()
        self.with_uncalibrated = with_uncalibrated  # also return the T=1 probabilities (for the model card)
        if isinstance(members, nn.Module):
            members = [members]
        self.members = nn.ModuleList(members)
        self.tta = tta
        tta_views(torch.zeros(1, 1, 4, 4), tta)  # validate the mode early
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, x: torch.Tensor):
        views = tta_views(x, self.tta)
        n = x.shape[0]
        batch = torch.cat(views, 0) if len(views) > 1 else x
        probs, raw = None, None
        for m in self.members:
            logits = m(batch)
            p = F.softmax(logits / self.temperature, dim=1).reshape(len(views), n, -1).mean(0)
            probs = p if probs is None else probs + p
            if self.with_uncalibrated:
                r = F.softmax(logits, dim=1).reshape(len(views), n, -1).mean(0)
                raw = r if raw is None else raw + r
        if self.with_uncalibrated:
            return probs / len(self.members), raw / len(self.members)
        return probs / len(self.members)
