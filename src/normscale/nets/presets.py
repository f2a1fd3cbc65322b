"""The paper's per-data-set architectures and training settings (docs/science.md 2.2).

Three families of settings, one per data set of the paper: ``"mnist"``
(also used for fashion-mnist, digits and any grey data), ``"cifar10"`` and
``"cifar100"``. Where docs/science.md is silent, the values come from the
defaults of the paper's released training scripts (noted per value).
"""

from __future__ import annotations

import copy
from typing import Any

from normscale._validation import Options, check_param

MODELS = ("cnn", "resnet", "vit")
FAMILIES = ("mnist", "cifar10", "cifar100")
_FAMILY_OF = {"mnist": "mnist", "fashion-mnist": "mnist", "digits": "mnist",
              "cifar10": "cifar10", "cifar100": "cifar100"}

# Architecture sizes: docs/science.md 2.2.
_ARCH: dict[str, dict[str, dict[str, Any]]] = {
    "cnn": {
        "mnist": {"channels": (32, 64, 128), "pool_after": (2,), "hidden": (512,), "dropout": 0.0},
        "cifar10": {"channels": (32, 64, 128), "pool_after": (2,), "hidden": (512,),
                    "dropout": 0.0},
        "cifar100": {"channels": (64, 128, 256, 512), "pool_after": (2, 4), "hidden": (1024, 512),
                     "dropout": 0.1},
    },
    "resnet": {
        "mnist": {"blocks": (2, 2, 2, 2), "widths": (16, 32, 64, 128)},
        "cifar10": {"blocks": (2, 2, 2, 2), "widths": (64, 128, 256, 512)},
        "cifar100": {"blocks": (3, 4, 6, 3), "widths": (64, 128, 256, 512)},
    },
    "vit": {
        "mnist": {"patch_size": 7, "dim": 128, "depth": 4, "heads": 4},
        "cifar10": {"patch_size": 4, "dim": 192, "depth": 6, "heads": 3},
        "cifar100": {"patch_size": 4, "dim": 256, "depth": 6, "heads": 4},
    },
}
# Init factor (PyTorch default init times this): docs/science.md 2.2.
_INIT = {("cnn", "mnist"): 0.05, ("resnet", "cifar10"): 0.05,
         ("vit", "cifar10"): 0.005, ("vit", "cifar100"): 0.005}
# Optimiser and epochs: docs/science.md 2.2; ResNet epochs (350 / 400) from the released
# script's defaults, as are the augmentations of CNN (none) and ViT (MNIST only).
_TRAIN = {
    "cnn": {"optimizer": "adam", "lr": 1e-3, "epochs": 500},
    "resnet": {"optimizer": "adam", "lr": 1e-3, "epochs": 350},
    "vit": {"optimizer": "adamw", "lr": 3e-4, "epochs": 600},
}
_AUGMENT = {
    ("resnet", "mnist"): "affine", ("resnet", "cifar10"): "crop_flip",
    ("resnet", "cifar100"): "crop_flip", ("vit", "mnist"): "affine",
}


def family_of(*, dataset: str | None = None, in_channels: int | None = None,
              num_classes: int | None = None) -> str:
    """The paper's data set whose settings apply: from ``dataset`` if it is a known
    name, else grey -> ``"mnist"``, colour with more than 10 classes -> ``"cifar100"``,
    other colour -> ``"cifar10"``."""
    if dataset is not None and dataset in _FAMILY_OF:
        return _FAMILY_OF[dataset]
    if in_channels == 1:
        return "mnist"
    return "cifar100" if (num_classes or 0) > 10 else "cifar10"


def paper_preset(model: str, dataset: str) -> dict[str, Any]:
    """The paper's settings for ``model`` trained on ``dataset`` (docs/science.md 2.2).

    Parameters
    ----------
    model : {"cnn", "resnet", "vit"}
    dataset : str
        ``"mnist"``, ``"cifar10"``, ``"cifar100"``; ``"fashion-mnist"``,
        ``"digits"`` and ``"imagefolder"`` use the nearest family
        (see :func:`family_of`; imagefolder counts as CIFAR-10).

    Returns
    -------
    dict with keys ``model``, ``family``, ``arch`` (the architecture sizes:
    the fields of the model's config), ``init_factor``, ``optimizer``
    (``"adam"`` or ``"adamw"``), ``lr``, ``weight_decay`` (0), ``batch_size``
    (128), ``epochs`` and ``augmentation`` (a kind of
    :func:`normscale.data.augment`).
    """
    check_param("paper_preset", "model", model, Options(MODELS))
    family = family_of(dataset=dataset)
    return {
        "model": model,
        "family": family,
        "arch": copy.deepcopy(_ARCH[model][family]),
        "init_factor": _INIT.get((model, family), 1.0),
        **_TRAIN[model],
        "weight_decay": 0.0,  # no weight decay unless ablated
        "batch_size": 128,
        "augmentation": _AUGMENT.get((model, family), "none"),
    }
