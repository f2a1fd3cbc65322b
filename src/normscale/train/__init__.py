"""Training with norm tracking (docs/science.md 2.2).

``TrainConfig`` defines a run (its hash is the run's identity), ``train``
runs it and returns its logged points (``Record``), handing each to a
callback as it comes; ``log_points`` gives the log-spaced logging schedule.

The config and the schedule are free of torch; the names that need it
(``train``, ``evaluate``, checkpoints) load on first use, so the CLI and a
sweep driver can build configs without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from normscale.store.schema import Record
from normscale.train.config import AUGMENTATIONS, MODELS, OPTIMIZERS, TrainConfig
from normscale.train.schedule import log_points

_LAZY = {"TrainResult": "curve", "evaluate": "loop", "train": "loop", "stored_config": "loop",
         "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint"}

__all__ = ["AUGMENTATIONS", "MODELS", "OPTIMIZERS", "Record", "TrainConfig", "TrainResult",
           "evaluate", "load_checkpoint", "log_points", "save_checkpoint", "stored_config", "train"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"normscale.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'normscale.train' has no attribute {name!r}")
