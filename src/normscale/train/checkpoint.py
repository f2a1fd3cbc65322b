"""Checkpoints: everything needed to continue a run, written atomically.

A checkpoint is ``torch.save`` of a dict with ``model_state``,
``optimizer_state``, ``rng_state``, ``config`` (the whole
:class:`~normscale.train.config.TrainConfig` plus ``in_channels``,
``image_size`` and ``num_classes``, enough for ``normscale norms`` to rebuild
the model), ``epoch``, ``step``, ``wall_time``, ``run_id`` and ``records``
(the logged points so far, as rows).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from normscale.errors import NormscaleError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` through a temporary file and a rename.

    A process killed while writing leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports an unwritable file as either
        tmp.unlink(missing_ok=True)
        msg = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise NormscaleError(f"cannot write the checkpoint '{path}': {msg}") from None
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    NormscaleError
        When the file is missing, truncated or not a normscale checkpoint
        (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise NormscaleError(f"the checkpoint '{path}' does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise NormscaleError(f"the checkpoint '{path}' is corrupt or not a checkpoint "
                             f"({type(exc).__name__})") from None
    needed = {"model_state", "optimizer_state", "rng_state", "config", "epoch", "step"}
    if not isinstance(state, dict) or not needed <= state.keys():
        raise NormscaleError(f"the checkpoint '{path}' is not a normscale checkpoint")
    return state
