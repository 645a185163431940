"""The original design: a Keras Sequential CNN, reproduced layer for layer.

Conv 3x3 128 -> MaxPool 2 -> Dropout 0.4 -> Conv 256 -> MaxPool -> Dropout 0.4 -> Conv 512 -> MaxPool
-> Dropout 0.4 -> Conv 512 -> MaxPool -> Dropout 0.4 -> Flatten -> Dense 512 -> Dropout 0.4 -> Dense 256
-> Dropout 0.3 -> Dense 7. ReLU after every conv and hidden dense, Keras' default "valid" padding,
inputs scaled to 0..1 as the original did (x / 255). 4,232,199 parameters.
"""

from __future__ import annotations

import torch.nn as nn

from .layers import Normalize
from .registry import register_model


class SeedCNN(nn.Sequential):
    def __init__(self, num_classes: int = 7, conv_dropout: float = 0.4, dense_dropout=(0.4, 0.3)):
        layers: list[nn.Module] = [Normalize(0.0, 255.0)]
        cin = 1
        for cout in (128, 256, 512, 512):
            layers += [nn.Conv2d(cin, cout, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(conv_dropout)]
            cin = cout
        layers += [
            nn.Flatten(),
            nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(dense_dropout[0]),
            nn.Linear(512, 256), nn.ReLU(inplace=True), nn.Dropout(dense_dropout[1]),
            nn.Linear(256, num_classes),
        ]
        super().__init__(*layers)
        # Keras defaults: glorot_uniform kernels, zero biases
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)


@register_model
def seed(num_classes: int = 7, **kw) -> nn.Module:
    """The original Sequential CNN (4 valid convs 128-256-512-512, dense 512-256), 4.23M params."""
    return SeedCNN(num_classes, **kw)
