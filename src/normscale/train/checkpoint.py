"""Checkpoints: everything needed to continue a run, written atomically, read without code.

A checkpoint is ``torch.save`` of a dict with ``model_state``,
``optimizer_state``, ``rng_state``, ``config`` (the whole
:class:`~normscale.train.config.TrainConfig` plus ``in_channels``,
``image_size`` and ``num_classes``, enough for ``normscale norms`` to rebuild
the model), ``epoch``, ``step``, ``wall_time``, ``run_id`` and ``records``
(the logged points so far, as rows).

Everything in it is a tensor or a plain value (dict, list, tuple, str, int,
float, bool, None): it is read with ``torch.load(weights_only=True)``
(:func:`normscale.safeio.load_torch`), whose unpickler refuses any other
object before it is built, so a planted file runs no code. The state is
checked against that contract before saving and after loading; anything
else is refused in one line (docs/security.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from normscale import safeio
from normscale.errors import NormscaleError

#: the keys every checkpoint holds
REQUIRED = ("model_state", "optimizer_state", "rng_state", "config", "epoch", "step")
_PLAIN = (str, int, float, bool, type(None))
#: nesting a checkpoint's state never exceeds (optimizer state: dict, dict, list, dict)
_MAX_DEPTH = 12


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` through a temporary file and a rename.

    A process killed while writing leaves the previous checkpoint intact; the
    path must be missing or a regular file that is no input of the running
    command (:func:`normscale.safeio.atomic_write`); a full disk is one line.

    Raises
    ------
    NormscaleError
        A state holding other than tensors and plain values, or a path that
        cannot be written; the message names the file.
    """
    path = Path(path)
    problem = _not_plain(state, "state")
    if problem:
        raise NormscaleError(f"cannot write the checkpoint '{path}': {problem}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with safeio.atomic_write(path, "the checkpoint") as tmp:
            torch.save(state, tmp)
    except RuntimeError as exc:  # torch.save reports some unwritable files as RuntimeError
        raise NormscaleError(f"cannot write the checkpoint '{path}': "
                             f"{str(exc).splitlines()[0]}") from None
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; run nothing that is in it.

    Raises
    ------
    NormscaleError
        When the file is missing, not a regular file, truncated, holds
        objects other than tensors and plain values, or is not a normscale
        checkpoint (the message names it).
    """
    path = Path(path)
    if not path.exists():
        raise NormscaleError(f"the checkpoint '{path}' does not exist")
    # not registered as an input: the run that resumes from it replaces it as it goes
    state = safeio.load_torch(path, "the checkpoint", map_location=map_location,
                              register=False)
    if not isinstance(state, dict) or not set(REQUIRED) <= state.keys():
        raise NormscaleError(f"the checkpoint '{path}' is not a normscale checkpoint")
    problem = _checked(state)
    if problem:
        raise NormscaleError(f"the checkpoint '{path}' is not a valid normscale checkpoint: "
                             f"{problem}")
    # generator states stay on the CPU whatever map_location moved: torch.set_rng_state and
    # torch.cuda.set_rng_state both take a CPU uint8 tensor
    state["rng_state"] = {k: v.cpu() if isinstance(v, torch.Tensor) else v
                          for k, v in state["rng_state"].items()}
    return state


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` holds a normscale checkpoint (loaded as :func:`load_checkpoint` does).

    A caller about to delete or replace a file given as a checkpoint path
    (``train --checkpoint n.txt`` without ``--resume``) asks this first, so
    that an unrelated file is refused instead of destroyed.
    """
    try:
        load_checkpoint(path)
    except NormscaleError:
        return False
    return True


def _checked(state: Mapping[str, Any]) -> str | None:
    """What is wrong with a loaded state (None when it can be resumed from)."""
    for key in ("model_state", "optimizer_state", "rng_state", "config"):
        if not isinstance(state[key], dict):
            return f"'{key}' is a {type(state[key]).__name__}, not a dict"
    if not all(isinstance(v, torch.Tensor) for v in state["model_state"].values()):
        return "'model_state' holds other than tensors"
    if not isinstance(state["rng_state"].get("torch"), torch.Tensor) \
            or state["rng_state"]["torch"].dtype != torch.uint8:
        return "'rng_state' has no torch generator state (a uint8 tensor)"
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        return f"'step' is {step!r}, not an int >= 0"
    for key in ("epoch", "wall_time"):
        value = state.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value < 0:
            return f"'{key}' is {value!r}, not a finite number >= 0"
    records = state.get("records", [])
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                        for v in r.values()) for r in records):
        return "'records' is not a list of rows of numbers"
    if "run_id" in state and not isinstance(state["run_id"], str):
        return "'run_id' is not a string"
    return _not_plain(state, "state")


def _not_plain(obj: Any, where: str, depth: int = 0) -> str | None:
    """Where ``obj`` holds a value other than a tensor or a plain value (None if nowhere)."""
    if depth > _MAX_DEPTH:
        return f"{where} nests deeper than {_MAX_DEPTH} levels"
    if isinstance(obj, (torch.Tensor, *_PLAIN)):
        return None
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, _PLAIN):
                return f"{where} has a key of type {type(k).__name__}"
            problem = _not_plain(v, f"{where}[{k!r}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            problem = _not_plain(v, f"{where}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{where} holds a {type(obj).__name__} (only tensors and plain values are kept)"
