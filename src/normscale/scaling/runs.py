"""The model-size axis from normscale's own runs: eps_opt(N, P) per run, from a store.

A width sweep (``cpu/cnn-mnist-width``) trains the same network at several
width multipliers over several training-set sizes P. The store's long
table (:func:`normscale.store.export.long_table`) carries each run's
parameter count ``N``; :func:`optima` reduces it to one row per run: its
best test error over training, ``eps_opt`` (the early-stopping optimum, the
minimum over the norm of the paper's curves), with the norm and step where
it is reached. :func:`normscale.scaling.width.fit_width_study` fits the
``joint`` form on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from normscale.errors import DataError, NormscaleError

#: columns kept per run, when the long table has them
RUN_COLUMNS = ("model", "dataset", "optimizer", "weight_decay", "width", "P", "N", "seed",
               "run_id", "norm_kind")


def optima(table: pd.DataFrame, *, error: str = "test_error") -> pd.DataFrame:
    """One row per run: its grouping columns, ``eps_opt`` = min of ``error``, and where.

    Parameters
    ----------
    table : DataFrame
        The long table of a store (one row per logged point and norm kind).
    error : str
        The error column to minimise.

    Returns
    -------
    DataFrame
        Columns of :data:`RUN_COLUMNS` present in ``table``, ``eps_opt``,
        ``norm_opt`` and ``step_opt``.
    """
    for col in ("run_id", error):
        if col not in table.columns:
            raise NormscaleError(f"the runs table has no column '{col}'")
    t = table[np.isfinite(pd.to_numeric(table[error], errors="coerce"))]
    if t.empty:
        raise NormscaleError(f"the runs table has no finite '{error}'")
    best = t.loc[t.groupby("run_id")[error].idxmin()]
    keep = [c for c in RUN_COLUMNS if c in best.columns]
    out = best[keep].copy()
    out["eps_opt"] = best[error].to_numpy()
    if "norm" in best.columns:
        out["norm_opt"] = best["norm"].to_numpy()
    if "step" in best.columns:
        out["step_opt"] = best["step"].to_numpy()
    sort = [c for c in ("width", "P", "seed") if c in out.columns]
    return out.sort_values(sort, kind="stable", ignore_index=True)


def load_runs(path: str | Path, *, norm: str | None = "spectral_complexity") -> pd.DataFrame:
    """The per-run optima of a store (a SQLite file written by ``normscale sweep``)."""
    from normscale.store import Store
    from normscale.store.export import long_table

    p = Path(path)
    if not p.is_file():
        raise DataError(f"no store '{p}'")
    store = Store(p, readonly=True)  # a reader: never writes, refuses a file not a store
    try:
        table = long_table(store, norm=norm)
    finally:
        store.close()
    if table.empty:
        raise DataError(f"the store '{p}' has no finished run")
    return optima(table)
