"""The paper's networks: CNN, ResNet and ViT (docs/science.md 2.2), plain modules, no norm code.

:func:`build` makes a model from the paper's per-data-set preset, scaled by a
width (and depth) multiplier for small CPU runs, with the paper's "init
factor" applied to the default PyTorch initialisation. :func:`paper_preset`
gives the matching training settings.

The names of the models and their presets (``MODELS``, ``paper_preset``) are
torch-free; the modules load on first use, so a config can name a model
without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from normscale.nets.presets import FAMILIES, MODELS, family_of, paper_preset

if TYPE_CHECKING:  # for type checkers and the API docs; at run time they load on first use
    from normscale.nets.cnn import CNN, CNNConfig
    from normscale.nets.factory import build, config_for, parameter_count, scale_init
    from normscale.nets.resnet import ResNet, ResNetConfig
    from normscale.nets.vit import ViT, ViTConfig

_LAZY = {"CNN": "cnn", "CNNConfig": "cnn", "ResNet": "resnet", "ResNetConfig": "resnet",
         "ViT": "vit", "ViTConfig": "vit", "build": "factory",
         "config_for": "factory", "parameter_count": "factory", "scale_init": "factory"}

__all__ = ["CNN", "CNNConfig", "FAMILIES", "MODELS", "ResNet", "ResNetConfig", "ViT", "ViTConfig",
           "build", "config_for", "family_of", "paper_preset", "parameter_count", "scale_init"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"normscale.nets.{_LAZY[name]}"), name)
        globals()[name] = value  # once: later lookups (and monkeypatching) see a plain attribute
        return value
    raise AttributeError(f"module 'normscale.nets' has no attribute {name!r}")
