"""The data sets normscale knows: their facts (:func:`info`) and loaders (:func:`load_dataset`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from normscale._validation import Options, check_param
from normscale.data import cifar, digits, idx, imagefolder
from normscale.data.base import DatasetInfo, ImageData
from normscale.errors import DataError

# Normalisation constants of the paper's scripts (docs/science.md 2.2): (0.5, 0.5)
# for grey images; CIFAR-10's channel statistics for both CIFARs.
_GREY = {"mean": (0.5,), "std": (0.5,)}
_CIFAR = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2023, 0.1994, 0.2010)}


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    load: Callable[..., ImageData]


_REGISTRY: dict[str, _Entry] = {
    "mnist": _Entry(DatasetInfo("mnist", 1, 28, 10, "affine", n_train=60000, n_test=10000,
                                **_GREY), idx.load_mnist),
    "fashion-mnist": _Entry(DatasetInfo("fashion-mnist", 1, 28, 10, "affine", n_train=60000,
                                        n_test=10000, **_GREY), idx.load_fashion_mnist),
    "cifar10": _Entry(DatasetInfo("cifar10", 3, 32, 10, "crop_flip", n_train=50000,
                                  n_test=10000, **_CIFAR),
                       partial(cifar.load_cifar, cifar.CIFAR10)),
    "cifar100": _Entry(DatasetInfo("cifar100", 3, 32, 100, "crop_flip", n_train=50000,
                                   n_test=10000, **_CIFAR),
                       partial(cifar.load_cifar, cifar.CIFAR100)),
    "digits": _Entry(DatasetInfo("digits", 1, 8, 10, "affine", n_train=digits.N_TRAIN,
                                 n_test=1797 - digits.N_TRAIN, **_GREY), digits.load_digits),
}
DATASETS = (*_REGISTRY, "imagefolder")
SPLITS = ("train", "test")


def info(name: str, *, root: str | Path | None = None) -> DatasetInfo:
    """What a model needs to know about data set ``name``, without loading it.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist", "cifar10", "cifar100", "digits", "imagefolder"}
    root : path, optional
        Only for ``"imagefolder"``: the folder or zip (its class folders and
        first image are read; augmentation ``"crop_flip"`` for colour images,
        ``"affine"`` for grey ones; mean 0.5 and std 0.5 per channel).
    """
    check_param("info", "name", name, Options(DATASETS))
    if name != "imagefolder":
        return _REGISTRY[name].info
    listing = imagefolder.list_images(root)
    channels, h, w = listing.shape
    if h != w:
        raise DataError(f"imagefolder: the models need square images; '{root}' holds {w}x{h}")
    return DatasetInfo(
        "imagefolder", channels, h, len(listing.classes),
        "affine" if channels == 1 else "crop_flip",
        mean=(0.5,) * channels, std=(0.5,) * channels,
        n_train=len(listing.entries["train"]), n_test=len(listing.entries["test"]))


def load_dataset(
    name: str,
    *,
    root: str | Path | None = None,
    download: bool = False,
    split: str = "train",
    verify: bool = True,
) -> ImageData:
    """Load one split of a data set, whole, as tensors.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist", "cifar10", "cifar100", "digits", "imagefolder"}
    root : path, optional
        Folder holding the official files (directly or in a sub-folder named
        like the data set); for ``"imagefolder"`` the folder or zip of images.
        Default: the download cache (``$NORMSCALE_DATA``).
    download : bool
        Fetch missing files from the official locations into ``root`` (or
        the cache), checking their MD5.
    split : {"train", "test"}
    verify : bool
        Check the MD5 of the official files before reading them (about 0.1 s
        for MNIST). Structural checks (sizes, headers, gzip CRC) are always done.

    Returns
    -------
    ImageData
        ``images`` (N, C, H, W) float32 in [0, 1], ``labels`` (N,) int64.

    Raises
    ------
    DataError
        Missing files (the message says which files to put where), a
        checksum mismatch or a truncated file (naming the file).
    """
    check_param("load_dataset", "name", name, Options(DATASETS))
    check_param("load_dataset", "split", split, Options(SPLITS))
    if name == "imagefolder":
        return imagefolder.load_imagefolder(root=root, split=split)
    data = _REGISTRY[name].load(root=root, download=download, split=split, check=verify)
    expected = _REGISTRY[name].info
    if data.images.shape[1:] != (expected.in_channels, expected.image_size, expected.image_size):
        raise DataError(f"{name}: images of shape {tuple(data.images.shape[1:])}, expected "
                        f"{(expected.in_channels, expected.image_size, expected.image_size)}")
    return replace(data, split=split)
