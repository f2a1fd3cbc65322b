"""The paper's Vision Transformer (docs/science.md 2.2): pre-LayerNorm, class token, positions.

Attention is built from four ``nn.Linear`` (query, key, value, output) so
every weight matrix the norms need (docs/science.md 2.1) is its own module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ViTConfig:
    """Architecture of :class:`ViT` (defaults: the paper's MNIST ViT)."""

    in_channels: int = 1  # 1 grey, 3 colour
    image_size: int = 28  # square; must be a multiple of patch_size
    num_classes: int = 10  # outputs of the head on the class token (logits)
    patch_size: int = 7  # 28 / 7 = 4x4 = 16 patches
    dim: int = 128  # embedding width, a multiple of heads
    depth: int = 4  # transformer blocks
    heads: int = 4  # attention heads per block, each of width dim / heads
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * dim (GELU)
    dropout: float = 0.0  # on the attention weights and after each block's MLP


class Attention(nn.Module):
    """Multi-head self-attention with separate Q, K, V and output projections."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape  # (B, T, dim)

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # (B, heads, T, hd)

        y = F.scaled_dot_product_attention(
            split(self.q(x)), split(self.k(x)), split(self.v(x)),
            dropout_p=self.dropout if self.training else 0.0)  # (B, heads, T, hd)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))  # (B, T, dim)


class Block(nn.Module):
    """x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        d = config.dim
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, config.heads, config.dropout)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(
            nn.Linear(d, config.mlp_ratio * d), nn.GELU(),
            nn.Linear(config.mlp_ratio * d, d), nn.Dropout(config.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))  # (B, T, dim)
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    """patches (Conv2d, kernel = stride = patch) + positions, [CLS] token, blocks, LN, Linear."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        if config.image_size % config.patch_size:
            raise ValueError(f"patch_size {config.patch_size} must divide image_size "
                             f"{config.image_size}")
        if config.dim % config.heads:
            raise ValueError(f"dim {config.dim} must be a multiple of heads {config.heads}")
        self.config = config
        n_patches = (config.image_size // config.patch_size) ** 2
        self.patch = nn.Conv2d(config.in_channels, config.dim, config.patch_size,
                               stride=config.patch_size)
        # learned, ViT-style small normal start (std 0.02), as in the paper's code
        self.cls = nn.Parameter(torch.randn(1, 1, config.dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, 1 + n_patches, config.dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.depth)])
        self.ln = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)  # (B, n_patches, dim)
        cls = self.cls.expand(x.shape[0], -1, -1)  # (B, 1, dim)
        x = torch.cat([cls, x], dim=1) + self.pos  # (B, 1 + n_patches, dim)
        x = self.ln(self.blocks(x))
        return self.head(x[:, 0])  # (B, num_classes), from the class token
