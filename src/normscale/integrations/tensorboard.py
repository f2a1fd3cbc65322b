"""TensorBoard event files into the long table of ``normscale fit`` (extra ``tensorboard``).

Every folder under the log directory that holds event files is one run
(Lightning's ``name/version_0``, a Hugging Face ``runs/<date>``). Its
scalars are read with the reader TensorBoard ships (``EventAccumulator``,
every point kept, none sampled away); for each norm tag, the points where
the norm and the error were logged at the same step become rows, the step
being the point's own (the ``norms/step`` tag of the normscale callbacks)
where it was logged. A step
logged twice (a resumed run) keeps its latest value. TensorBoard stores
scalars as float32: the imported curves equal the store's to about 1e-7
relative.

A run's P and seed come from a constant, from its hyperparameters
(``hparams:KEY`` reads Lightning's ``hparams.yaml`` beside the events), or
from its folder name (a regular expression with one group, e.g.
``P=(\\d+)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from normscale import safeio
from normscale.errors import NormscaleError
from normscale.integrations._optional import require
from normscale.integrations.tables import COLUMNS, from_columns

_ea = require("tensorboard.backend.event_processing.event_accumulator", "tensorboard",
              "normscale.integrations.tensorboard")


def run_folders(logdir: str | Path) -> list[Path]:
    """The folders under ``logdir`` (itself included) that hold event files, sorted."""
    root = Path(logdir)
    if not root.is_dir():
        raise NormscaleError(f"the log directory '{root}' "
                             + ("is not a folder" if root.exists() else "does not exist"))
    folders = sorted({p.parent for p in root.rglob("*tfevents*") if p.is_file()})
    if not folders:
        raise NormscaleError(f"no TensorBoard event files (*tfevents*) under '{root}'")
    return folders


def read_scalars(folder: str | Path) -> pd.DataFrame:
    """Every scalar of one run folder: columns ``tag, step, value, wall_time``.

    A (tag, step) logged more than once keeps the value with the latest wall time.
    """
    for event_file in Path(folder).glob("*tfevents*"):
        safeio.check_input(event_file, "the event file")  # a regular, readable file
    acc = _ea.EventAccumulator(str(folder), size_guidance={_ea.SCALARS: 0},
                               purge_orphaned_data=False)
    try:
        acc.Reload()
        rows = [(tag, e.step, e.value, e.wall_time)
                for tag in acc.Tags().get("scalars", []) for e in acc.Scalars(tag)]
    except Exception as exc:  # noqa: BLE001 -- the reader raises many types on a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise NormscaleError(f"cannot read the TensorBoard events in '{folder}' ({first})"
                             ) from None
    table = pd.DataFrame(rows, columns=["tag", "step", "value", "wall_time"])
    table = table.sort_values(["tag", "step", "wall_time"], kind="stable")
    return table.drop_duplicates(["tag", "step"], keep="last").reset_index(drop=True)


def read_curves(logdir: str | Path, *, norm_tags: Sequence[str], error_tag: str,
                loss_tag: str | None = None, epoch_tag: str | None = "norms/epoch",
                step_tag: str | None = "norms/step",
                P: int | None = None, P_from: str | None = None, seed: int | None = None,
                seed_from: str | None = None, model: str | None = None,
                dataset: str | None = None, log10: bool = False) -> pd.DataFrame:
    """The long table (:data:`~normscale.integrations.tables.COLUMNS`) of the runs under ``logdir``.

    Parameters
    ----------
    logdir : path
        A TensorBoard log directory (searched recursively).
    norm_tags : sequence of str
        Scalar tags of norms, e.g. ``norms/spectral_complexity`` (as the
        normscale callbacks log them); each gives the ``norm_kind`` of its
        rows (the tag's last path component).
    error_tag : str
        The scalar tag of the error recorded as ``test_error``.
    loss_tag : str, optional
        A scalar tag recorded as ``test_loss``.
    epoch_tag : str or None, default "norms/epoch"
        The tag of the epoch (passes over the data), as the normscale
        callbacks log it; NaN where absent.
    step_tag : str or None, default "norms/step"
        A tag holding the optimizer step of each point, used instead of
        TensorBoard's own step where present (the Lightning callback logs
        it: Lightning files a validation under ``global_step - 1``).
    P, seed : int, optional
        Constants for every run.
    P_from, seed_from : str, optional
        ``hparams:KEY`` (from the run's ``hparams.yaml``) or a regular
        expression with one group, searched in the run folder's path
        relative to ``logdir``.
    model, dataset : str, optional
        The ``model`` and ``dataset`` columns.
    log10 : bool, default False
        The norm tags hold log10 of the norm.

    Returns
    -------
    pandas.DataFrame
        One row per (run, step, norm tag) where the norm and the error are both logged.
    """
    if (P is None) == (P_from is None):
        raise NormscaleError("give the runs' training-set size with exactly one of --P and "
                             "--P-from")
    if seed is not None and seed_from is not None:
        raise NormscaleError("give the seed with at most one of --seed and --seed-from")
    norm_tags = list(dict.fromkeys(norm_tags))  # a tag given twice is read once
    kinds = [t.rsplit("/", 1)[-1] for t in norm_tags]
    twice = next((k for k in kinds if kinds.count(k) > 1), None)
    if twice is not None:
        raise NormscaleError(f"--norm-tag: two tags end in {twice!r}, so their rows would share "
                             "one norm_kind; import them one at a time")
    root = Path(logdir)
    parts = []
    for folder in run_folders(root):
        scalars = read_scalars(folder)
        if scalars.empty:
            continue
        wide = scalars.pivot(index="step", columns="tag", values="value")
        name = folder.relative_to(root).as_posix() or "."
        missing = [t for t in (error_tag, *norm_tags) if t not in wide.columns]
        if missing:
            if len(missing) == len(norm_tags) + 1:
                continue  # a folder of other scalars (e.g. a second writer): not a run of ours
            raise NormscaleError(f"the run '{name}' under '{root}' has no scalar tag "
                                 f"{missing[0]!r}; its tags: {', '.join(wide.columns)}")
        constants: dict[str, Any] = {
            "P": P if P is not None else _from(P_from, folder, name, "P"),
            "seed": (seed if seed is not None else
                     _from(seed_from, folder, name, "seed") if seed_from else 0),
            "model": model, "dataset": dataset, "run": name}
        wide = wide.reset_index()
        if step_tag and step_tag in wide.columns:
            # the point's own step; a logger that sent the norms later (the Hugging Face
            # Trainer: at the next training log) then joins them to the error at that step
            logged = wide[step_tag].notna()
            wide["step"] = wide["step"].astype(float)  # the tag is a float: checked later
            wide.loc[logged, "step"] = wide.loc[logged, step_tag]
            wide = wide.groupby("step", as_index=False, sort=True).first()
        for tag in norm_tags:
            columns = {"norm": tag, "test_error": error_tag, "step": "step"}
            if loss_tag and loss_tag in wide.columns:
                columns["test_loss"] = loss_tag
            if epoch_tag and epoch_tag in wide.columns:
                columns["epoch"] = epoch_tag
            parts.append(from_columns(wide, columns, constants=constants,
                                      norm_kind=tag.rsplit("/", 1)[-1], log10=log10,
                                      where=f"the run '{name}'"))
    if not parts:
        raise NormscaleError(f"no run under '{root}' logs the tags {error_tag!r} and "
                             f"{', '.join(map(repr, norm_tags))}")
    table = pd.concat(parts, ignore_index=True)
    table["step"] = table["step"].astype(int)
    return table.sort_values(["model", "dataset", "norm_kind", "P", "seed", "run", "step"],
                             kind="stable", ignore_index=True)[[
        *COLUMNS, *[c for c in table.columns if c not in COLUMNS]]]


def _from(spec: str | None, folder: Path, name: str, what: str) -> int:
    assert spec is not None
    if spec.startswith("hparams:"):
        key = spec.split(":", 1)[1]
        path = folder / "hparams.yaml"
        if not path.is_file():
            raise NormscaleError(f"--{what}-from {spec}: the run '{name}' has no hparams.yaml")
        hparams = safeio.load_yaml(path, f"--{what}-from {spec}: the file") or {}
        value: Any = hparams
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            raise NormscaleError(f"--{what}-from {spec}: '{path}' has no key {key!r}")
    else:
        try:
            match = re.search(spec, name)
        except re.error as exc:
            raise NormscaleError(f"--{what}-from {spec!r} is not a regular expression "
                                 f"({exc})") from None
        if match is None or not match.groups():
            raise NormscaleError(f"--{what}-from {spec!r} does not match the run '{name}' "
                                 "(or has no group)")
        value = match.group(1)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number):
        raise NormscaleError(f"--{what}-from {spec}: the run '{name}' gives {value!r}, "
                             "not an integer")
    return int(number)
