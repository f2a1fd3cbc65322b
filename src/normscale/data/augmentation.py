"""Normalisation and augmentation on whole batches of tensors (no per-sample Python).

Augmentations act on raw pixels in [0, 1] before :func:`normalize`, like the
paper's torchvision pipelines (docs/science.md 2.2): padding and areas moved in by
an affine map are black (0), as in torchvision's defaults.

- ``"crop_flip"``: random crop of the original size from the image padded by
  ``size // 8`` pixels (4 for 32x32: ``RandomCrop(32, padding=4)``), then a
  horizontal flip with probability 1/2.
- ``"affine"``: rotation by an angle uniform in [-10, 10] degrees and a
  translation by up to 10% of the size in each direction, whole pixels
  (``RandomAffine(10, translate=(0.1, 0.1))``), nearest-neighbour sampling.
- ``"none"``: the batch unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from normscale._validation import Options, check_param
from normscale.data.base import AUGMENTATIONS, DatasetInfo

MAX_DEGREES = 10.0  # the paper's RandomAffine(10, ...)
MAX_TRANSLATE = 0.1  # fraction of the image size, translate=(0.1, 0.1)


def normalize(images: torch.Tensor, info: DatasetInfo) -> torch.Tensor:
    """``(images - mean) / std`` per channel, with the constants of ``info``.

    images : (B, C, H, W) raw pixels in [0, 1]; returns a new tensor.
    """
    mean = torch.tensor(info.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(info.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images - mean) / std


def _uniform(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def crop(images: torch.Tensor, *, dy: torch.Tensor, dx: torch.Tensor, pad: int) -> torch.Tensor:
    """Per-image crop of the original size from the zero-padded batch.

    ``dy``, ``dx`` : (B,) int offsets in ``[0, 2 * pad]`` (``pad`` = no shift).
    """
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # view (B, C, 2p + 1, 2p + 1, H, W)
    return windows[torch.arange(b, device=images.device), :, dy, dx]  # (B, C, H, W)


def affine(images: torch.Tensor, *, angle_deg: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate each image by ``angle_deg`` (B,) counter-clockwise about its centre, then move it
    by ``shift``.

    ``shift`` : (B, 2) pixels (x to the right, y down). Nearest-neighbour
    sampling, zeros outside; a rotation by 90 degrees or an integer shift is
    exact.
    """
    b, _, h, w = images.shape
    # y points down in image coordinates: negate to turn counter-clockwise on screen
    a = -angle_deg.to(images.dtype) * (math.pi / 180.0)
    cos, sin = torch.cos(a), torch.sin(a)
    # theta maps output coordinates (normalised to [-1, 1]) to input coordinates:
    # in = R(-a) (out - t), R the rotation, t the shift in normalised units.
    tx = 2.0 * shift[:, 0].to(images.dtype) / w
    ty = 2.0 * shift[:, 1].to(images.dtype) / h
    theta = torch.stack([
        torch.stack([cos, sin, -(cos * tx + sin * ty)], dim=1),
        torch.stack([-sin, cos, sin * tx - cos * ty], dim=1),
    ], dim=1)  # (B, 2, 3)
    if h != w:  # keep rotations isotropic in pixel units
        theta[:, 0, 1] *= h / w
        theta[:, 1, 0] *= w / h
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def augment(images: torch.Tensor, kind: str, *, generator: torch.Generator) -> torch.Tensor:
    """A random augmentation of a batch, drawn from ``generator``.

    Parameters
    ----------
    images : torch.Tensor of shape (B, C, H, W)
        Raw pixels in [0, 1] (augment, then :func:`normalize`).
    kind : {"none", "crop_flip", "affine"}
        See the module docstring; :class:`DatasetInfo` names the paper's choice.
    generator : torch.Generator
        Source of randomness (same seed, same batch: same result).

    Returns
    -------
    torch.Tensor of the same shape, dtype and device.
    """
    check_param("augment", "kind", kind, Options(AUGMENTATIONS))
    b, _, h, w = images.shape
    dev = images.device
    if kind == "none" or b == 0:
        return images
    if kind == "crop_flip":
        pad = max(1, h // 8)
        dy = (_uniform(b, generator, dev) * (2 * pad + 1)).long().clamp_(max=2 * pad)
        dx = (_uniform(b, generator, dev) * (2 * pad + 1)).long().clamp_(max=2 * pad)
        out = crop(images, dy=dy, dx=dx, pad=pad)
        flip = _uniform(b, generator, dev) < 0.5
        return torch.where(flip.view(b, 1, 1, 1), out.flip(3), out)
    angle = (2 * _uniform(b, generator, dev) - 1) * MAX_DEGREES
    max_shift = torch.tensor([MAX_TRANSLATE * w, MAX_TRANSLATE * h], device=dev)
    shift = torch.round((2 * _uniform(2 * b, generator, dev).view(b, 2) - 1) * max_shift)
    return affine(images, angle_deg=angle, shift=shift)
