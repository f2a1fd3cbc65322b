"""Building the paper's networks: :func:`build` (preset, width and depth multipliers, init
factor), :func:`config_for`, :func:`scale_init` and :func:`parameter_count`."""

from __future__ import annotations

from numbers import Integral

import torch
from torch import nn

from normscale._validation import POSITIVE, Interval, Options, check_param
from normscale.nets.cnn import CNN, CNNConfig
from normscale.nets.presets import MODELS, family_of, paper_preset
from normscale.nets.resnet import ResNet, ResNetConfig
from normscale.nets.vit import ViT, ViTConfig

PRESETS = ("paper",)
_PAPER_IMAGE_SIZE = {"mnist": 28, "cifar10": 32, "cifar100": 32}


def _scaled(n: int, factor: float) -> int:
    return max(1, round(n * factor))


def _patch_for(image_size: int, family: str, paper_patch: int) -> int:
    """The paper's patch size, or for other image sizes the largest divisor of
    ``image_size`` that keeps at least the paper's number of patches per side."""
    if image_size % paper_patch == 0 and image_size == _PAPER_IMAGE_SIZE[family]:
        return paper_patch
    per_side = _PAPER_IMAGE_SIZE[family] // paper_patch
    limit = max(1, image_size // per_side)
    return max(p for p in range(1, limit + 1) if image_size % p == 0)


def config_for(
    name: str, *, in_channels: int, image_size: int, num_classes: int, family: str,
    width: float = 1.0, depth: float = 1.0,
) -> CNNConfig | ResNetConfig | ViTConfig:
    """The config of the paper's ``name`` for data-set family ``family``, scaled.

    ``width`` multiplies channels, hidden widths and the ViT dimension (kept
    a multiple of the heads); ``depth`` multiplies ResNet blocks per stage and
    ViT blocks (the CNN's depth is fixed). Counts are rounded, at least 1.
    """
    arch = paper_preset(name, family)["arch"]
    if name == "cnn":
        return CNNConfig(
            in_channels=in_channels, image_size=image_size, num_classes=num_classes,
            channels=tuple(_scaled(c, width) for c in arch["channels"]),
            pool_after=arch["pool_after"], hidden=tuple(_scaled(h, width) for h in arch["hidden"]),
            dropout=arch["dropout"])
    if name == "resnet":
        return ResNetConfig(
            in_channels=in_channels, num_classes=num_classes,
            blocks=tuple(_scaled(b, depth) for b in arch["blocks"]),
            widths=tuple(_scaled(w, width) for w in arch["widths"]))
    heads = arch["heads"]
    return ViTConfig(
        in_channels=in_channels, image_size=image_size, num_classes=num_classes,
        patch_size=_patch_for(image_size, family, arch["patch_size"]),
        dim=heads * _scaled(arch["dim"] // heads, width), depth=_scaled(arch["depth"], depth),
        heads=heads)


@torch.no_grad()
def scale_init(model: nn.Module, factor: float) -> nn.Module:
    """Multiply the weights of every ``nn.Conv2d`` and ``nn.Linear`` by ``factor``.

    The paper's "init factor" (docs/science.md 2.2): PyTorch's default
    initialisation times a constant; biases, normalisation layers and the
    ViT's class token and positions keep their initial values.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.weight.mul_(factor)
    return model


def build(
    name: str,
    *,
    in_channels: int,
    image_size: int,
    num_classes: int,
    preset: str = "paper",
    width: float = 1.0,
    depth: float = 1.0,
    init_factor: float = 1.0,
    dataset: str | None = None,
) -> nn.Module:
    """Build the paper's CNN, ResNet or ViT for inputs (in_channels, image_size, image_size).

    Parameters
    ----------
    name : {"cnn", "resnet", "vit"}
    in_channels, image_size, num_classes : int
        Input shape and number of classes (from :func:`normscale.data.info`).
    preset : {"paper"}
        The architecture sizes of docs/science.md 2.2 for the data-set family:
        ``dataset`` when given (``"mnist"``, ``"cifar10"``, ``"cifar100"``,
        ``"fashion-mnist"`` and ``"digits"`` count as MNIST), else inferred
        (grey -> MNIST, colour with more than 10 classes -> CIFAR-100,
        other colour -> CIFAR-10).
    width, depth : float > 0
        Multipliers for small runs (see :func:`config_for`).
    init_factor : float > 0
        Multiplies the default initial weights (:func:`scale_init`). The
        paper's value is ``paper_preset(name, dataset)["init_factor"]``; the
        default 1 is PyTorch's initialisation.
    dataset : str, optional
        The data set, to pick the preset family.

    Returns
    -------
    torch.nn.Module mapping (B, in_channels, image_size, image_size) to
    (B, num_classes) logits, built from ``nn.Conv2d``, ``nn.Linear``,
    ``nn.BatchNorm2d`` and ``nn.LayerNorm``.
    """
    owner = "build"
    check_param(owner, "name", name, Options(MODELS))
    check_param(owner, "preset", preset, Options(PRESETS))
    for key, value in (("in_channels", in_channels), ("image_size", image_size)):
        check_param(owner, key, value, Interval(Integral, 1, None, closed="left"))
    check_param(owner, "num_classes", num_classes, Interval(Integral, 2, None, closed="left"))
    for key, value in (("width", width), ("depth", depth), ("init_factor", init_factor)):
        check_param(owner, key, value, POSITIVE)
    family = family_of(dataset=dataset, in_channels=in_channels, num_classes=num_classes)
    config = config_for(name, in_channels=in_channels, image_size=image_size,
                        num_classes=num_classes, family=family, width=width, depth=depth)
    model = {"cnn": CNN, "resnet": ResNet, "vit": ViT}[name](config)
    return scale_init(model, init_factor) if init_factor != 1.0 else model


def parameter_count(name: str, *, in_channels: int, image_size: int, num_classes: int,
                    preset: str = "paper", width: float = 1.0, depth: float = 1.0,
                    dataset: str | None = None) -> int:
    """N, the number of trainable parameters of :func:`build`'s model (the model-size axis
    of the classic joint scaling law, :mod:`normscale.scaling`)."""
    model = build(name, in_channels=in_channels, image_size=image_size,
                  num_classes=num_classes, preset=preset, width=width, depth=depth,
                  dataset=dataset)
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
