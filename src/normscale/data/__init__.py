"""Data sets as whole tensors: loaders, class-balanced nested subsets, batch augmentation.

docs/science.md 2.2: the paper trains on subsets of size P of MNIST, CIFAR-10 and
CIFAR-100. ``normscale.data`` reads the official files (``load_dataset``),
says what a model needs before loading (``info``), draws nested balanced
subsets (``subset_indices``) and normalises / augments whole batches on any
device (``normalize``, ``augment``).
"""

from normscale.data.augment import AUGMENTATIONS, augment, normalize
from normscale.data.base import DatasetInfo, ImageData
from normscale.data.download import cache_dir
from normscale.data.registry import DATASETS, info, load_dataset
from normscale.data.subsets import subset_indices, subset_order

__all__ = [
    "AUGMENTATIONS", "DATASETS", "DatasetInfo", "ImageData", "augment", "cache_dir", "info",
    "load_dataset", "normalize", "subset_indices", "subset_order",
]
