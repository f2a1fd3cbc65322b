"""A classic form on a table: fit, bootstrap, compute-optimal frontier, held-out check.

:func:`load_table` reads a CSV or Parquet table; :func:`analyse` takes the
columns named by the user, leaves out the ``exclude_top`` rows of highest y
(Besiroglu et al. 2024 leave out the 5 highest losses of the Chinchilla
data), fits and bootstraps the form, derives the compute-optimal
allocation of a ``joint`` fit, and, with ``holdout`` > 0, checks the
extrapolation to the largest configurations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from normscale.errors import DataError, ParameterError
from normscale.scaling.allocation import Allocation, CostModel, compute_optimal, fit_cost
from normscale.scaling.fit import ScalingFit, bootstrap_fit, fit_form
from normscale.scaling.forms import get_form
from normscale.scaling.holdout import Holdout, holdout, split_largest

#: suffixes read as a run store (one row per run: its eps_opt, P, N, width, seed)
STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def load_table(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet table, or a run store (:func:`normscale.scaling.runs.load_runs`: one
    row per run with ``eps_opt``, ``P`` and ``N``); errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no table '{p}'")
    if p.suffix in STORE_SUFFIXES:
        from normscale.scaling.runs import load_runs

        return load_runs(p)
    try:
        return pd.read_parquet(p) if p.suffix in (".parquet", ".pq") else pd.read_csv(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise DataError(f"cannot read the table '{p}': {exc}".splitlines()[0]) from None


@dataclass(frozen=True)
class ScalingAnalysis:
    """Everything :func:`analyse` found: the fit (with its bootstrap), the frontier of a
    ``joint`` fit (else None), the held-out check (else None), the rows used and left out."""

    fit: ScalingFit
    allocation: Allocation | None
    holdout: Holdout | None
    x: np.ndarray
    y: np.ndarray
    n_excluded: int

    def to_dict(self) -> dict:
        return {"fit": self.fit.to_dict(),
                "allocation": None if self.allocation is None else self.allocation.to_dict(),
                "holdout": None if self.holdout is None else self.holdout.to_dict(),
                "n_excluded": self.n_excluded}


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    if name not in table.columns:
        raise ParameterError(f"no column '{name}' in the table (columns: "
                             f"{', '.join(map(str, table.columns))})")
    v = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        raw = table[name].to_numpy()[np.flatnonzero(bad)[0]]
        raise ParameterError(f"the column '{name}' must hold finite numbers > 0 (the forms are "
                             f"fitted in logs); row {np.flatnonzero(bad)[0]} holds {raw!r}")
    return v


def analyse(table: pd.DataFrame, *, form: str, x: tuple[str, ...], y: str,
            cost: str | None = None, holdout_k: int = 0, exclude_top: int = 0,
            delta: float | None = 1e-3, n_boot: int = 1000, seed: int = 0,
            level: float = 0.95, interval: str = "bca",
            starts: np.ndarray | int | None = None) -> ScalingAnalysis:
    """Fit ``form`` on columns ``x`` (P[, N]) and ``y`` of ``table``, and check it.

    Parameters
    ----------
    table : DataFrame
    form : {"power", "joint", "broken"}
    x : tuple of column names
        (P,) for ``power`` and ``broken``; (P, N) for ``joint``: the data
        size first, the model size second.
    y : column name of the output (loss, test error).
    cost : column name, optional
        A measured cost (FLOP, seconds) for the compute-optimal allocation
        and for ranking the held-out configurations; C = 6 N P otherwise.
    holdout_k : int
        Configurations held out for the extrapolation check (0: none).
    exclude_top : int
        Rows of highest y left out before anything else.
    delta, n_boot, seed, level, starts : see :func:`~normscale.scaling.fit.fit_form`
        and :func:`~normscale.scaling.fit.bootstrap_fit`; ``interval`` is its ``method``.

    Returns
    -------
    ScalingAnalysis
    """
    f = get_form(form)
    if len(x) != f.n_x:
        hint = " (P,N: data size first, model size second)" if form == "joint" else ""
        raise ParameterError(f"the form '{form}' takes {f.n_x} x column(s){hint}; "
                             f"got {len(x)}: {','.join(x)}")
    if cost is not None and form != "joint":
        raise ParameterError(f"--cost needs the 'joint' form (a cost of N and P); got '{form}'")
    if exclude_top < 0 or exclude_top >= len(table):
        raise ParameterError(f"--exclude-top must be in [0, {len(table) - 1}]; got {exclude_top}")
    X = np.column_stack([_column(table, c) for c in x])
    Y = _column(table, y)
    C = _column(table, cost) if cost is not None else None
    if exclude_top:
        keep = np.ones(len(Y), dtype=bool)
        keep[np.argsort(Y, kind="stable")[::-1][:exclude_top]] = False
        X, Y = X[keep], Y[keep]
        C = None if C is None else C[keep]
    if holdout_k:
        split_largest(X, holdout_k, C)                  # a bad K fails before any fit
    fit = fit_form(form, X, Y, delta=delta, starts=starts, x_names=tuple(x), y_name=y)
    fit = bootstrap_fit(fit, X, Y, n_boot=n_boot, seed=seed, level=level, method=interval)
    allocation = None
    if form == "joint":
        model = CostModel() if C is None else fit_cost(X[:, 1], X[:, 0], C)
        try:
            allocation = compute_optimal(fit, cost=model)
        except ParameterError:
            allocation = None              # a non-positive exponent: no finite optimum
    held = None
    if holdout_k:
        size = C if C is not None else None
        held = holdout(form, X, Y, k=holdout_k, size=size, delta=delta, n_boot=n_boot,
                       seed=seed, level=level, starts=starts, x_names=tuple(x), y_name=y)
    return ScalingAnalysis(fit, allocation, held, X, Y, exclude_top)
