"""Data sets as whole tensors: loaders, class-balanced nested subsets, batch augmentation.

docs/science.md 2.2: the paper trains on subsets of size P of MNIST, CIFAR-10 and
CIFAR-100. ``normscale.data`` reads the official files (``load_dataset``),
says what a model needs before loading (``info``), draws nested balanced
subsets (``subset_indices``) and normalises / augments whole batches on any
device (``normalize``, ``augment``).

``AUGMENTATIONS`` and the records (``DatasetInfo``, ``ImageData``) are
torch-free; the loaders load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from normscale.data.base import AUGMENTATIONS, DatasetInfo, ImageData

if TYPE_CHECKING:  # for type checkers and the API docs; at run time they load on first use
    from normscale.data.augmentation import augment, normalize
    from normscale.data.download import cache_dir
    from normscale.data.registry import DATASETS, info, load_dataset
    from normscale.data.subsets import subset_indices, subset_order

_LAZY = {"augment": "augmentation", "normalize": "augmentation", "cache_dir": "download",
         "DATASETS": "registry", "info": "registry", "load_dataset": "registry",
         "subset_indices": "subsets", "subset_order": "subsets"}

__all__ = [
    "AUGMENTATIONS", "DATASETS", "DatasetInfo", "ImageData", "augment", "cache_dir", "info",
    "load_dataset", "normalize", "subset_indices", "subset_order",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"normscale.data.{_LAZY[name]}"), name)
        globals()[name] = value  # once: later lookups (and monkeypatching) see a plain attribute
        return value
    raise AttributeError(f"module 'normscale.data' has no attribute {name!r}")
