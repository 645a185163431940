"""ferkit's own models: VGG-style and residual CNNs with batch norm, sized for CPU.

Design notes: FER2013 faces are small (48x48) and centred, so the network keeps full resolution
for one cheap stem stage, then halves the resolution while doubling the width (48 -> 24 -> 12 -> 6 -> 3),
and ends in global average pooling (translation-tolerant, few parameters). Batch norm + ReLU after
every conv; fused into the convs at ONNX export, so inference costs only the convs.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import Normalize, conv_bn
from .registry import register_model


class Upsample(nn.Module):
    """Bilinear resize of the 48x48 input to size x size inside the network . More pixels per
    feature map: the same weights see finer detail, at (size/48)^2 the compute; the input contract stays 48x48."""

    def __init__(self, size: int = 0):
        super().__init__()
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class VGGNet(nn.Module):
    """VGG-BN: per stage, ``depth`` 3x3 conv-BN-ReLU then 2x2 max pooling; global average pooling, dropout,
    linear. ``widths``: each stage's output channels; ``inner`` (optional): the channels of every conv of a
    stage but its last (a thinned stage, as scripts/thin_fast.py prunes it), by default the stage's width."""

    def __init__(self, widths=(32, 64, 128, 256), depth: int | tuple[int, ...] = 2, num_classes: int = 7,
                 dropout: float = 0.3, upsample: int = 0, inner: tuple[int, ...] | None = None):
        super().__init__()
        layers: list[nn.Module] = [Normalize()] + ([Upsample(upsample)] if upsample else [])
        cin = 1
        depths = (depth,) * len(widths) if isinstance(depth, int) else tuple(depth)
        inner = tuple(widths) if inner is None else tuple(int(i) for i in inner)
        for w, d, wi in zip(widths, depths, inner, strict=True):
            for j in range(d):
                width = w if j == d - 1 else wi
                layers.append(conv_bn(cin, width))
                cin = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, act=False))
        self.short = (
            nn.Identity() if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=False)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.short(x))


class ResNet(nn.Module):
    def __init__(self, widths=(32, 64, 128, 256), blocks=(1, 2, 2, 1), stem: int = 32, num_classes: int = 7,
                 dropout: float = 0.2, upsample: int = 0):
        super().__init__()
        layers: list[nn.Module] = [Normalize()] + ([Upsample(upsample)] if upsample else []) + [conv_bn(1, stem)]
        cin = stem
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model
def fernet_xxs(num_classes: int = 7, **kw) -> nn.Module:
    """VGG-BN, widths 16-32-64-128, 2 convs per stage (for many faces per frame on small CPUs)."""
    return VGGNet((16, 32, 64, 128), 2, num_classes, **kw)


@register_model
def fernet_xs(num_classes: int = 7, **kw) -> nn.Module:
    """VGG-BN, widths 24-48-96-192, 2 convs per stage."""
    return VGGNet((24, 48, 96, 192), 2, num_classes, **kw)


@register_model
def fernet_s(num_classes: int = 7, **kw) -> nn.Module:
    """VGG-BN, widths 32-64-128-256, 2 convs per stage (fast CPU model)."""
    return VGGNet((32, 64, 128, 256), 2, num_classes, **kw)


@register_model
def fernet_m(num_classes: int = 7, **kw) -> nn.Module:
    """VGG-BN, widths 48-96-192-384, 2 convs per stage."""
    return VGGNet((48, 96, 192, 384), 2, num_classes, **kw)


@register_model
def fernet_mf(num_classes: int = 7, **kw) -> nn.Module:
    """fernet_m with one conv (not two) at full 48x48 resolution: 18% fewer MACs, the costliest int8 layer gone."""
    return VGGNet((48, 96, 192, 384), (1, 2, 2, 2), num_classes, **kw)


@register_model
def fernet_mp(num_classes: int = 7, **kw) -> nn.Module:
    """fernet_m with 32 channels (not 48) at full 48x48 resolution: `fast` pruned (scripts/explore/prune_fast.py)."""
    return VGGNet((32, 96, 192, 384), 2, num_classes, **kw)


@register_model
def fernet_mt(num_classes: int = 7, **kw) -> nn.Module:
    """fernet_m thinned to 32-64-192-256 channels in the first conv of each stage (`fast`; scripts/thin_fast.py).

    Every stage still outputs 48-96-192-384 channels; 24% fewer multiply-adds than fernet_m."""
    return VGGNet((48, 96, 192, 384), 2, num_classes, inner=(32, 64, 192, 256), **kw)


@register_model
def fernet_mff(num_classes: int = 7, **kw) -> nn.Module:
    """fernet_m with one conv in each of the first two stages (48x48 and 24x24): 36% fewer MACs."""
    return VGGNet((48, 96, 192, 384), (1, 1, 2, 2), num_classes, **kw)


@register_model
def fernet_l(num_classes: int = 7, **kw) -> nn.Module:
    """VGG-BN, widths 64-128-256-512, 2 convs per stage (the VGG of the FER2013 records)."""
    return VGGNet((64, 128, 256, 512), 2, num_classes, **kw)


@register_model
def ferres_s(num_classes: int = 7, **kw) -> nn.Module:
    """Residual net, widths 32-64-128-256, blocks 1-2-2-1, stride-2 downsampling."""
    return ResNet((32, 64, 128, 256), (1, 2, 2, 1), 32, num_classes, **kw)


@register_model
def ferres_m(num_classes: int = 7, **kw) -> nn.Module:
    """Residual net, widths 64-128-256-512, blocks 1-2-2-1."""
    return ResNet((64, 128, 256, 512), (1, 2, 2, 1), 32, num_classes, **kw)
