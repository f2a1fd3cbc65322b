"""Fit the dynamical laws on every group of runs in a store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from normscale.errors import NormscaleError
from normscale.laws import LawsFit, fit_laws
from normscale.store import Store, long_table
from normscale.store.schema import GROUP_COLUMNS


def stop_reasons(store: Store, group: dict) -> dict[str, int]:
    """How many runs of ``group`` ended for each stop reason, read from the store.

    ``group`` maps long-table columns to values (one fit's ``group``); the
    columns that are config fields (model, dataset, optimizer, ...) select
    the runs, the others (``norm_kind``) do not. Runs still running or
    failed are left out; finished runs stored before stop reasons existed
    count as ``"unknown"``.
    """
    counts: dict[str, int] = {}
    for run in store.runs():
        if run.status not in ("finished", "diverged"):
            continue
        cfg = run.config
        if any(k in cfg and not _same(cfg[k], v) for k, v in group.items()):
            continue
        reason = run.stop_reason or ("diverged" if run.status == "diverged" else "unknown")
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def _same(a: object, b: object) -> bool:
    """A config value against a group's value (a long-table cell: lists and tables as their
    JSON text, as :func:`normscale.store.long_table` writes them)."""
    a, b = (json.dumps(v, sort_keys=True, default=str) if isinstance(v, list | dict | tuple)
            else v for v in (a, b))
    if _missing(a) and _missing(b):
        return True
    try:
        return float(a) == float(b)  # weight_decay 0 against 0.0
    except (TypeError, ValueError, OverflowError):
        return a == b


def _missing(v: object) -> bool:
    return bool(pd.api.types.is_scalar(v) and pd.isna(v))


def stop_counts(counts: dict[str, int]) -> str:
    """``"17 past_optimum, 1 max_epochs (censored)"``: the most common reason first."""
    return ", ".join(f"{n} {k}" + (" (censored)" if k == "max_epochs" else "")
                     for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def stop_line(counts: dict[str, int]) -> str:
    """``"18 runs stopped: 17 past_optimum, 1 max_epochs (censored)"``."""
    return f"{sum(counts.values())} runs stopped: " + stop_counts(counts)


@dataclass(frozen=True)
class GroupFailure:
    """A group whose laws could not be fitted (too few P values, no minimum, ...)."""

    group: dict  # the group's columns and values (model, dataset, optimizer, ...)
    error: str  # why it could not be fitted, as the fit said it


def fit_store(store: Store, *, group_by: Sequence[str] = GROUP_COLUMNS,
              norm: str | None = "spectral_complexity", n_boot: int = 0, seed: int = 0,
              ) -> tuple[pd.DataFrame, list[LawsFit], list[GroupFailure]]:
    """The paper's table for every group of finished runs in ``store``.

    Parameters
    ----------
    store : Store
    group_by : sequence of str
        Columns of the long table (:func:`normscale.store.long_table`); one
        analysis per distinct combination. ``width`` is added when the runs
        span several widths (a width sweep: the dynamical laws per width).
    norm : str or None
        The norm kind that indexes the curves (docs/science.md 2.1); None fits every
        kind (group by ``norm_kind`` then, for the paper's ablation on norms).
    n_boot, seed
        Bootstrap over seeds, a check beside the analytic errors
        (:func:`normscale.laws.fit_laws`; 0, the default, switches it off).

    Returns
    -------
    table : DataFrame
        The long table the fits were made on.
    fits : list of LawsFit
        One per group that could be fitted.
    failures : list of GroupFailure
        Groups that could not be fitted, with the reason; one bad group never
        hides the others.
    """
    table = long_table(store, norm=norm)
    if table.empty:
        raise NormscaleError(f"the store '{store.path}' holds no finished run with records")
    if ("width" in table.columns and "width" not in group_by
            and table["width"].nunique(dropna=True) > 1):
        group_by = (*group_by, "width")  # a width sweep: the dynamical laws per width
    missing = [c for c in group_by if c not in table.columns]
    if missing:
        raise NormscaleError(f"cannot group by {missing}: the columns are "
                             + ", ".join(table.columns))
    fits, failures = [], []
    groups = table.groupby(list(group_by), dropna=False, sort=True) if group_by else [((), table)]
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        group = dict(zip(group_by, key, strict=True))
        try:
            fits += fit_laws(sub, group_by=tuple(group_by), n_boot=n_boot, seed=seed)
        except NormscaleError as exc:
            failures.append(GroupFailure(group=group, error=str(exc)))
    return table, fits, failures


def norms_side_by_side(store: Store, *, group_by: Sequence[str] = GROUP_COLUMNS
                       ) -> list[LawsFit]:
    """The laws fitted once per norm kind (the paper's ablation on norms), when the store's
    runs tracked several kinds; an empty list otherwise. Groups that cannot be fitted are left
    out (the main fit reports its own failures)."""
    table = long_table(store, norm=None)
    if table.empty or "norm_kind" not in table.columns or table["norm_kind"].nunique() < 2:
        return []
    by = [c for c in group_by if c in table.columns and c != "norm_kind"] + ["norm_kind"]
    fits = []
    for _, sub in table.groupby(by, dropna=False, sort=True):
        try:
            fits += fit_laws(sub, group_by=tuple(by))
        except NormscaleError:
            continue
    return fits
