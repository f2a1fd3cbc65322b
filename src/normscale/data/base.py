"""The two records every loader shares: a data set in memory and what a model needs to know."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the records are torch-free, so configs can name an augmentation
    import torch

#: the augmentations of :func:`normscale.data.augment` (the paper's, docs/science.md 2.2)
AUGMENTATIONS = ("none", "crop_flip", "affine")


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a data set before loading it (enough to build a model).

    Attributes
    ----------
    name : str
        Registry name (``"mnist"``, ``"cifar10"``, ...).
    in_channels, image_size, num_classes : int
        Input shape ``(in_channels, image_size, image_size)`` and number of classes.
    augmentation : str
        The paper's augmentation for this data set, one of ``AUGMENTATIONS`` (docs/science.md 2.2):
        ``"affine"`` for MNIST-like data, ``"crop_flip"`` for CIFAR.
    mean, std : tuple of float
        Per-channel normalisation constants, on the raw pixel scale [0, 1].
    n_train, n_test : int or None
        Official split sizes (``None`` when only known after loading).
    """

    name: str
    in_channels: int
    image_size: int
    num_classes: int
    augmentation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    n_train: int | None = None
    n_test: int | None = None


@dataclass(frozen=True)
class ImageData:
    """One split of a data set, whole, as tensors.

    Attributes
    ----------
    images : torch.Tensor of shape (N, C, H, W), float32
        Raw pixels on the scale [0, 1] (not normalised: see :func:`normalize`).
    labels : torch.Tensor of shape (N,), int64
        Class indices in ``range(len(classes))``.
    classes : list of str
        Class names, index = label.
    name : str
        Registry name of the data set.
    split : str
        ``"train"`` or ``"test"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str = "train"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> ImageData:
        """The same data on ``device`` (e.g. ``"cuda"``): the whole set moves once."""
        return replace(self, images=self.images.to(device), labels=self.labels.to(device))
