"""The paper's plain CNN (docs/science.md 2.2): 3x3 convolutions, ReLU, max-pools, an MLP head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CNNConfig:
    """Architecture of :class:`CNN`.

    The MNIST / CIFAR-10 preset is ``channels=(32, 64, 128)``,
    ``pool_after=(2,)``, ``hidden=(512,)``; CIFAR-100 adds width and depth.
    """

    in_channels: int = 1  # 1 grey, 3 colour
    image_size: int = 28  # square inputs (H = W)
    num_classes: int = 10  # outputs of the last Linear (logits, one per class)
    channels: tuple[int, ...] = (32, 64, 128)  # output channels of the 3x3 convs (padding 1)
    pool_after: tuple[int, ...] = (2,)  # 2x2 max-pool after these convs (1-based)
    hidden: tuple[int, ...] = (512,)  # hidden Linear widths before the classes
    dropout: float = 0.0  # after each hidden Linear + ReLU (0.1 for CIFAR-100)


class CNN(nn.Module):
    """convs (ReLU, some max-pooled) -> flatten -> Linear+ReLU(+Dropout) ... -> Linear."""

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in, size = config.in_channels, config.image_size
        for i, c_out in enumerate(config.channels, start=1):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU()]
            if i in config.pool_after:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            c_in = c_out
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        width = c_in * size * size
        for h in config.hidden:
            head += [nn.Linear(width, h), nn.ReLU()]
            if config.dropout > 0:
                head.append(nn.Dropout(config.dropout))
            width = h
        head.append(nn.Linear(width, config.num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, channels[-1], H / 2^pools, W / 2^pools)
        return self.classifier(x)  # (B, num_classes)
