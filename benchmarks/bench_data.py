"""Batch augmentation (normscale.data.augment) against a per-sample Python loop, side by side.

Prints images per second for both and their ratio, for the CIFAR ``crop_flip``
and the MNIST ``affine`` augmentations, on CPU (one batch of 128 at a time,
as in training). The per-sample reference does what a torchvision-style
``Dataset.__getitem__`` does: one image at a time, same operations.

    .venv/bin/python benchmarks/bench_data.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from normscale.data import augment
from normscale.data.augmentation import affine


def per_sample_crop_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    out = []
    for img in x:  # (C, H, W)
        pad = img.shape[1] // 8
        p = F.pad(img, (pad, pad, pad, pad))
        dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=g))
        c = p[:, dy:dy + img.shape[1], dx:dx + img.shape[2]]
        out.append(c.flip(2) if torch.rand(1, generator=g) < 0.5 else c)
    return torch.stack(out)


def per_sample_affine(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    out = []
    for img in x:
        angle = (torch.rand(1, generator=g) * 2 - 1) * 10
        shift = torch.round((torch.rand(1, 2, generator=g) * 2 - 1) * 0.1 * img.shape[-1])
        out.append(affine(img[None], angle_deg=angle, shift=shift)[0])
    return torch.stack(out)


def rate(fn, x, repeats=30) -> float:
    """Images per second of the fastest of ``repeats`` calls (robust on a shared machine)."""
    fn(x)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    cases = [
        ("crop_flip", torch.rand(128, 3, 32, 32), per_sample_crop_flip),
        ("affine", torch.rand(128, 1, 28, 28), per_sample_affine),
    ]
    for kind, x, ref in cases:
        fast = rate(lambda b, k=kind: augment(b, k, generator=g), x)
        slow = rate(lambda b, r=ref: r(b, g), x)
        print(f"{kind:10s} batch {fast:10.0f} img/s   per-sample {slow:9.0f} img/s   "
              f"ratio {fast / slow:5.1f}x")


if __name__ == "__main__":
    main()
