"""Augmentation on whole batches with plain torch ops (no torchvision): one affine warp per batch
(rotation, scale, translation, horizontal flip), brightness/contrast jitter, random erasing, mixup.

Inputs and outputs are float tensors (B, 1, H, W) holding raw pixel values 0..255 — normalisation
happens inside the models, so the same pixels go to torch, ONNX and the runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    flip: float = 0.5  # probability of a horizontal flip
    rotate: float = 15.0  # max degrees
    scale: tuple[float, float] = (0.85, 1.15)
    translate: float = 0.1  # max shift, fraction of the side
    brightness: float = 0.3  # multiplicative jitter range: 1 +- brightness
    contrast: float = 0.3
    erase: float = 0.5  # probability of random erasing per image
    erase_area: tuple[float, float] = (0.02, 0.2)

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(flip=0, rotate=0, scale=(1, 1), translate=0, brightness=0, contrast=0, erase=0)

    @classmethod
    def flip_only(cls) -> AugmentConfig:
        return cls(flip=0.5, rotate=0, scale=(1, 1), translate=0, brightness=0, contrast=0, erase=0)


def random_affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    b = x.shape[0]
    dev = x.device

    def U(lo, hi):
        return torch.rand(b, generator=gen, device="cpu").to(dev) * (hi - lo) + lo

    ang = U(-cfg.rotate, cfg.rotate) * (math.pi / 180)
    s = U(*cfg.scale)
    tx, ty = U(-cfg.translate, cfg.translate) * 2, U(-cfg.translate, cfg.translate) * 2
    flip = torch.where(U(0, 1) < cfg.flip, -1.0, 1.0)
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    b = x.shape[0]
    r = torch.rand(b, 2, generator=gen).to(x.device, x.dtype)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    c = (1 + (r[:, 0] * 2 - 1) * cfg.contrast).view(b, 1, 1, 1)
    br = (1 + (r[:, 1] * 2 - 1) * cfg.brightness).view(b, 1, 1, 1)
    return ((x - mean) * c + mean).mul(br).clamp(0, 255)


def random_erase(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    b, _, h, w = x.shape
    r = torch.rand(b, 5, generator=gen).to(x.device)
    area = (cfg.erase_area[0] + r[:, 0] * (cfg.erase_area[1] - cfg.erase_area[0])) * h * w
    aspect = torch.exp((r[:, 1] * 2 - 1) * math.log(3))
    eh = (area * aspect).sqrt().clamp(1, h)
    ew = (area / aspect).sqrt().clamp(1, w)
    y0 = r[:, 2] * (h - eh)
    x0 = r[:, 3] * (w - ew)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    m = (ys >= y0.view(b, 1, 1)) & (ys < (y0 + eh).view(b, 1, 1)) & (xs >= x0.view(b, 1, 1)) & (
        xs < (x0 + ew).view(b, 1, 1)
    )
    m = m & (r[:, 4] < cfg.erase).view(b, 1, 1)
    noise = torch.rand(x.shape, generator=gen).to(x.device, x.dtype) * 255
    return torch.where(m.unsqueeze(1), noise, x)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """Apply the configured augmentations to a float batch (B, 1, H, W) of 0..255 pixels."""
    if cfg.rotate or cfg.translate or cfg.scale != (1, 1) or cfg.flip:
        if not (cfg.rotate or cfg.translate or cfg.scale != (1, 1)):
            flip = torch.rand(x.shape[0], generator=gen).to(x.device) < cfg.flip
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        else:
            x = random_affine(x, cfg, gen)
    if cfg.brightness or cfg.contrast:
        x = color_jitter(x, cfg, gen)
    if cfg.erase:
        x = random_erase(x, cfg, gen)
    return x


def mixup(x: torch.Tensor, target: torch.Tensor, alpha: float, gen: torch.Generator | None = None):
    """Mixup of inputs and their (B, num_classes) target distributions; alpha <= 0 returns them as they are."""
    if alpha <= 0:
        return x, target
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]
