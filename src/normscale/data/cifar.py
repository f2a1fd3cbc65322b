"""CIFAR-10 and CIFAR-100: the official python pickles, in their tar.gz or unpacked.

Krizhevsky's "python version": each batch is a pickled dict with ``data``
(N, 3072) uint8, rows holding the red, green and blue 32x32 planes, and
``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100); a meta file holds the
class names. The archive is read in place (no extraction). Pickles are read
with an unpickler that accepts only plain containers and numpy arrays, so a
crafted file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass

import numpy as np
import torch

from normscale.data.base import ImageData
from normscale.data.download import RemoteFile, md5_file
from normscale.data.files import resolve, search_dirs
from normscale.errors import DataError

MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)


@dataclass(frozen=True)
class CifarLayout:
    """Files of one CIFAR variant (MD5s as listed by torchvision)."""

    name: str  # the data set's name: "cifar10" or "cifar100"
    archive: RemoteFile  # the python-version tar.gz and its MD5
    folder: str  # top folder inside the archive
    train: tuple[RemoteFile, ...]  # the pickled training batches inside that folder
    test: tuple[RemoteFile, ...]  # the pickled test batch(es)
    meta: RemoteFile  # the pickled metadata file that holds the class names
    label_key: str  # key of a batch's labels ("labels"; CIFAR-100: "fine_labels")
    names_key: str  # key of the class names in meta ("label_names", "fine_label_names")


CIFAR10 = CifarLayout(
    name="cifar10",
    archive=RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    folder="cifar-10-batches-py",
    train=(
        RemoteFile("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        RemoteFile("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        RemoteFile("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        RemoteFile("data_batch_4", "634d18415352ddfa80567beed471001a"),
        RemoteFile("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ),
    test=(RemoteFile("test_batch", "40351d587109b95175f43aff81a1287e"),),
    meta=RemoteFile("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    label_key="labels",
    names_key="label_names",
)
CIFAR100 = CifarLayout(
    name="cifar100",
    archive=RemoteFile("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
    folder="cifar-100-python",
    train=(RemoteFile("train", "16019d7e3df5f24257cddd4c3b2a4c8e"),),
    test=(RemoteFile("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
    meta=RemoteFile("meta", "7973b15100ade9c7d40fb424638fde48"),
    label_key="fine_labels",
    names_key="fine_label_names",
)

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a CIFAR file")


def _unpickle(raw: bytes, where: str) -> dict[str, object]:
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means a corrupt file
        raise DataError(f"'{where}' is not a readable CIFAR pickle: {exc}") from None
    if not isinstance(obj, dict):
        raise DataError(f"'{where}' is not a CIFAR pickle (not a dict)")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _batch(d: dict[str, object], key: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    if "data" not in d or key not in d:
        raise DataError(f"'{where}' lacks the 'data' or '{key}' entry of a CIFAR batch")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d[key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise DataError(
            f"'{where}': data {data.shape} and labels {labels.shape} are not (N, 3072) and (N,)")
    return data, labels


def _read_members(layout: CifarLayout, names: list[str], root, *, check: bool,
                  download: bool) -> dict[str, bytes]:
    """Bytes of the named files, from an unpacked folder if there is one, else the archive."""
    dirs = search_dirs(root, layout.name)
    folders = [d / layout.folder for d in dirs] + dirs
    for folder in folders:
        if all((folder / n).is_file() for n in names):
            out = {}
            specs = {s.name: s for s in (*layout.train, *layout.test, layout.meta)}
            for n in names:
                path = folder / n
                if check and (got := md5_file(path)) != specs[n].md5:
                    raise DataError(
                        f"checksum mismatch for '{path}': md5 {got}, expected {specs[n].md5}; "
                        "the file is corrupt or truncated")
                out[n] = path.read_bytes()
            return out
    (archive,) = resolve(  # downloads, or explains what to put where
        layout.name, [layout.archive], mirrors=MIRRORS, root=root, subdir=layout.name,
        download_missing=download, check=check)
    out = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for n in names:
                member = tar.extractfile(f"{layout.folder}/{n}")
                if member is None:
                    raise KeyError(n)
                out[n] = member.read()
    except KeyError as exc:
        raise DataError(f"'{archive}' has no member {layout.folder}/{exc.args[0]}") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(
            f"cannot read '{archive}': {exc}; the file is corrupt or truncated") from None
    return out


def load_cifar(layout: CifarLayout, *, root, download: bool, split: str, check: bool) -> ImageData:
    """Load one split of CIFAR-10 or CIFAR-100 (images (N, 3, 32, 32) in [0, 1])."""
    batches = [s.name for s in (layout.train if split == "train" else layout.test)]
    raw = _read_members(layout, [*batches, layout.meta.name], root, check=check, download=download)
    meta = _unpickle(raw[layout.meta.name], layout.meta.name)
    names = meta.get(layout.names_key, [])
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names]
    if not classes:
        raise DataError(f"'{layout.meta.name}' lacks the '{layout.names_key}' entry")
    parts = [_batch(_unpickle(raw[b], b), layout.label_key, b) for b in batches]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DataError(f"{layout.name}: labels outside range(0, {len(classes)})")
    x = torch.from_numpy(data).view(-1, 3, 32, 32).float().div_(255.0)  # (N, 3, 32, 32)
    y = torch.from_numpy(labels)  # (N,)
    return ImageData(images=x, labels=y, classes=classes, name=layout.name, split=split)
