"""MNIST and Fashion-MNIST: the IDX file format (LeCun et al.), gzipped or not.

IDX: two zero bytes, a type byte (0x08 = uint8), the number of dimensions,
then each dimension as a big-endian int32, then the values in C order. The
reader checks that the file holds exactly that many values, so a truncated
file is an error, never a short data set.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from normscale.data.base import ImageData
from normscale.data.download import RemoteFile
from normscale.data.files import resolve
from normscale.errors import DataError

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # the mirror torchvision uses
    "https://yann.lecun.com/exdb/mnist/",  # the original home, often unreachable
)
FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

# (images, labels) per split; MD5s of the published .gz files (as listed by
# torchvision) and, for MNIST, of their content (LeCun's page / shared/data/README).
MNIST_FILES = {
    "train": (
        RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                   "6bbc9ace898e44ae57da46a324031adb"),
        RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                   "a25bea736e30d166cdddb491f175f624"),
    ),
    "test": (
        RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                   "2646ac647ad5339dbf082846283269ea"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f1e8ab4",
                   "27ae3e4e09519cfbb04c329615203637"),
    ),
}
FASHION_FILES = {
    "train": (
        RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ),
    "test": (
        RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
}
MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (``.gz`` or not) into an array of its shape.

    Raises :class:`DataError` naming the file when the header is not IDX
    uint8 or the file holds more or fewer values than the header says.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:  # bad gzip header, CRC error, truncated stream
        raise DataError(f"cannot read '{path}': {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"'{path}' is not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DataError(f"'{path}': IDX type 0x{data[2]:02x} is not supported (only uint8)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"'{path}' is truncated (incomplete IDX header)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise DataError(
            f"'{path}' holds {len(data) - header} values but its IDX header {shape} "
            f"says {expected}: the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_idx_pair(images_path: Path, labels_path: Path, *, num_classes: int) -> tuple[
        torch.Tensor, torch.Tensor]:
    """Images (N, 1, H, W) float32 in [0, 1] and labels (N,) int64 from two IDX files."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(
            f"'{images_path}' must be (N, H, W) and '{labels_path}' (N,); "
            f"got {images.shape} and {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"'{images_path}' holds {images.shape[0]} images but '{labels_path}' "
            f"{labels.shape[0]} labels")
    if labels.size and int(labels.max()) >= num_classes:
        raise DataError(f"'{labels_path}' holds label {int(labels.max())} >= {num_classes}")
    x = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)  # (N, 1, H, W)
    y = torch.from_numpy(labels.astype(np.int64))  # (N,)
    return x, y


def _load(name: str, files: dict, mirrors: tuple[str, ...], classes: list[str], *, root,
          download: bool, split: str, check: bool) -> ImageData:
    img_path, lbl_path = resolve(name, files[split], mirrors=mirrors, root=root, subdir=name,
                                 download_missing=download, check=check)
    x, y = load_idx_pair(img_path, lbl_path, num_classes=len(classes))
    return ImageData(images=x, labels=y, classes=list(classes), name=name, split=split)


def load_mnist(*, root, download: bool, split: str, check: bool) -> ImageData:
    """Load a split of MNIST from its official IDX files (images (N, 1, 28, 28) in [0, 1])."""
    return _load("mnist", MNIST_FILES, MNIST_MIRRORS, MNIST_CLASSES, root=root,
                 download=download, split=split, check=check)


def load_fashion_mnist(*, root, download: bool, split: str, check: bool) -> ImageData:
    """Load a split of Fashion-MNIST from its official IDX files."""
    return _load("fashion-mnist", FASHION_FILES, FASHION_MIRRORS, FASHION_CLASSES, root=root,
                 download=download, split=split, check=check)
