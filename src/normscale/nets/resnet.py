"""The paper's ResNet (docs/science.md 2.2): BasicBlocks, a 3x3 stem at stride 1, no max-pool."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ResNetConfig:
    """Architecture of :class:`ResNet` (ResNet-18 layout by default, CIFAR widths)."""

    in_channels: int = 3  # 1 grey, 3 colour
    num_classes: int = 10  # outputs of the final Linear (logits, one per class)
    blocks: tuple[int, ...] = (2, 2, 2, 2)  # BasicBlocks per stage ((3, 4, 6, 3) = ResNet-34)
    widths: tuple[int, ...] = (64, 128, 256, 512)  # channels per stage (MNIST: 16..128)
    strides: tuple[int, ...] = (1, 2, 2, 2)  # stride of each stage's first block


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the input (1x1 conv + BN when the shape changes), ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))  # (B, c_out, H / stride, W / stride)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """stem (conv3x3 + BN + ReLU) -> stages of BasicBlocks -> global average pool -> Linear."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        w0 = config.widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, w0, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(w0), nn.ReLU())
        stages = []
        c_in = w0
        for n, c_out, stride in zip(config.blocks, config.widths, config.strides, strict=True):
            stage = [BasicBlock(c_in, c_out, stride)]
            stage += [BasicBlock(c_out, c_out, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(c_in, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, widths[0], H, W)
        x = self.stages(x)  # (B, widths[-1], H / 8, W / 8) with strides 1, 2, 2, 2
        x = x.mean(dim=(2, 3))  # (B, widths[-1]) global average pool
        return self.fc(x)  # (B, num_classes)
