from __future__ import annotations

import torch
import torch.nn as nn

# Pixel statistics of the FER2013 Training set (0..255 scale), measured by scripts/dataset_stats.py.
FER_MEAN = 129.4
FER_STD = 65.0


class Normalize(nn.Module):
    """(x - mean) / std on raw 0..255 pixels, so every exported graph takes raw pixels."""

    def __init__(self, mean: float = FER_MEAN, std: float = FER_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)), persistent=False)
        self.register_buffer("std", torch.tensor(float(std)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
