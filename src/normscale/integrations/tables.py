"""Logged curves from other tools into the long table of ``normscale fit``.

The table is the one :func:`normscale.store.long_table` exports: one row per
(run, logged point, norm kind) with the columns ``model, dataset, optimizer,
weight_decay, norm_kind, P, seed, epoch, norm, test_error``, then ``step``
and ``run`` (where the point came from). Two sources:

- :func:`from_columns` -- a CSV export of W&B or MLflow (one row per run and
  step, as their history exports give), read through a column map;
- :func:`normscale.integrations.tensorboard.read_curves` -- TensorBoard
  event files, which builds the same table from tags.

Both take each run's ``P`` and ``seed`` from a column, a constant, or (for
TensorBoard) the run's folder name or hyperparameters: ``normscale fit``
indexes curves by P and averages over seeds, so neither may be missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from normscale.errors import NormscaleError
from normscale.store.export import LEADING_COLUMNS

#: the columns every imported table has, in this order
COLUMNS = (*LEADING_COLUMNS, "step", "run")
#: the names a column map may set (the other leading columns are constants or absent)
MAPPABLE = ("P", "seed", "norm", "test_error", "test_loss", "step", "epoch", "model",
            "dataset", "run")


def from_columns(table: pd.DataFrame, columns: Mapping[str, str], *,
                 constants: Mapping[str, object] | None = None, norm_kind: str = "norm",
                 log10: bool = False, where: str = "the table") -> pd.DataFrame:
    """The long table from a wide export: rename through ``columns``, fill ``constants``.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per logged point (W&B ``history`` / MLflow metric exports).
    columns : mapping of str to str
        Long-table name -> column of ``table``, for names of :data:`MAPPABLE`;
        ``norm`` and ``test_error`` are required, ``P`` and ``seed`` unless
        given in ``constants``.
    constants : mapping, optional
        Values for names no column holds (``P``, ``seed``, ``model``, ``dataset``, ...).
    norm_kind : str, default "norm"
        The ``norm_kind`` of every row (e.g. ``spectral_complexity``).
    log10 : bool, default False
        The norm column holds log10 of the norm (loggers that keep float32
        need it for R_A beyond 3e38); the table gets the norm itself.
    where : str
        How error messages name the source.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS` (and ``test_loss`` when mapped). With a
        ``run`` column, rows of one run and step are merged first (a history
        export spreads metrics logged at one step over several rows); rows
        without a norm or an error are then dropped.

    Raises
    ------
    NormscaleError
        A mapped column that the table lacks, a name outside :data:`MAPPABLE`,
        a missing P, seed, norm or error, a non-positive P, or a P, seed or
        step that is not an integer up to :data:`MAX_INTEGER` (a fraction,
        inf, 1e30). Rows whose norm is not finite (after ``log10``) are dropped.
    """
    constants = dict(constants or {})
    for name, col in columns.items():
        if name not in MAPPABLE:
            raise NormscaleError(f"cannot map {name!r}: the names are {', '.join(MAPPABLE)}")
        if col not in table.columns:
            raise NormscaleError(f"{where} has no column {col!r} (mapped to {name}); its "
                                 f"columns are {', '.join(map(str, table.columns))}")
    for name in ("norm", "test_error", "P", "seed"):
        if name not in columns and name not in constants:
            how = "--column" if name in ("norm", "test_error") else f"--column or --{name}"
            raise NormscaleError(f"no {name} for {where}: give it with {how}")
    df = pd.DataFrame({name: table[col].to_numpy() for name, col in columns.items()})
    if "run" in df.columns and "step" in df.columns:
        df = df.groupby(["run", "step"], sort=True, dropna=False).first().reset_index()
    for name, value in constants.items():
        if name not in df.columns:
            df[name] = value
    for name in ("norm", "test_error", "P", "seed", "step", "epoch", "test_loss"):
        if name in df.columns:
            df[name] = pd.to_numeric(df[name], errors="coerce")
    df = df.dropna(subset=["norm", "test_error"]).reset_index(drop=True)
    if log10:
        with np.errstate(over="ignore"):
            df["norm"] = np.power(10.0, df["norm"].to_numpy(dtype=float))
    df = df[np.isfinite(df["norm"].to_numpy(dtype=float))].reset_index(drop=True)
    bad = df[df["P"].isna() | ~(df["P"] > 0)]
    if len(bad):
        raise NormscaleError(f"{where}: P must be a number > 0 in every row; got "
                             f"{bad['P'].iloc[0]!r}")
    if df["seed"].isna().any():
        raise NormscaleError(f"{where}: the seed column holds empty values")
    for name, low in (("P", 1), ("seed", 0), ("step", 0)):
        if name in df.columns:
            df[name] = _integers(df[name], name, low, where)
    df["P"] = df["P"].astype(int)
    df["seed"] = df["seed"].astype(int)
    df["norm_kind"] = norm_kind
    for name in COLUMNS:
        if name not in df.columns:
            df[name] = math.nan if name in ("epoch", "step") else None
    extra = [c for c in ("test_loss",) if c in df.columns]
    out = df[[*COLUMNS, *extra]]
    return out.sort_values(["model", "dataset", "norm_kind", "P", "seed", "step"],
                           kind="stable", ignore_index=True, na_position="first")


#: largest step, P or seed read from a log: 2**53, where float64 (every logger's number
#: type) stops holding every integer; a larger value is a logging error, not a step
MAX_INTEGER = 2**53


def _integers(values: pd.Series, name: str, low: int, where: str) -> pd.Series:
    """``values`` as integers (NaN kept where a step is absent); a fraction, inf or a value
    past :data:`MAX_INTEGER` is one line naming the column."""
    x = values.to_numpy(dtype=float)
    present = ~np.isnan(x) if name == "step" else np.ones(len(x), dtype=bool)
    bad = present & ~(np.isfinite(x) & (x >= low) & (x <= MAX_INTEGER) & (x == np.round(x)))
    if bad.any():
        raise NormscaleError(f"{where}: {name} must be an integer from {low} to 2**53 in every "
                             f"row; got {x[bad][0]!r}")
    return values if name == "step" else values.astype("int64")


def parse_column_map(items: Sequence[str]) -> dict[str, str]:
    """``["norm=norms/spectral_complexity", "P=config.P"]`` -> a column map (CLI helper)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, col = item.partition("=")
        if not sep or not name.strip() or not col.strip():
            raise NormscaleError(f"--column takes NAME=COLUMN (e.g. norm=norms/l2); got {item!r}")
        out[name.strip()] = col.strip()
    return out
