"""A classic form on a table: fit, bootstrap, compute-optimal frontier, held-out check.

:func:`load_table` reads a CSV or Parquet table; :func:`analyse` takes the
columns named by the user, by role (``data``: the data size P or D,
``model``: the model size N) or in the form's order (``x``), leaves out the
``exclude_top`` rows of highest y (Besiroglu et al. 2024 leave out the 5
highest losses of the Chinchilla data), fits and bootstraps the form,
derives the compute-optimal allocation of a ``joint`` fit, and, with
``holdout`` > 0, checks the extrapolation to the largest configurations.

Work is bounded before it starts: the number of point evaluations that the
fit, the bootstrap and the jackknife would take is estimated from the
table's size, and an analysis above ``MAX_WORK`` is refused with the
numbers (memory is bounded by the engine's blocks at any size).
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
from normscale.scaling.holdout import Holdout, holdout

#: suffixes read as a run store (one row per run: its eps_opt, P, N, width, seed)
STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
#: point evaluations (rows x evaluations of the form) an analysis may take: about 3 minutes
#: at the 0.07 us per point evaluation measured on Epoch's data (2 shared cores)
MAX_WORK = 3e9
#: evaluations per refit, for the estimate: a far start (grid), a start in the right basin
#: (projection's refinement), a start at the fit's minimum (bootstrap, jackknife)
EVALS_FAR, EVALS_NEAR, EVALS_AT_MINIMUM = 100, 60, 30
#: column names that say which role a column plays (compared in lower case), for the check
#: of the order of ``--x``
MODEL_NAMES = frozenset({"n", "params", "parameters", "n_params", "num_params", "nparams",
                         "model_size", "model size", "width", "n_parameters"})
DATA_NAMES = frozenset({"p", "d", "tokens", "n_tokens", "data", "data_size", "samples",
                        "n_samples", "examples", "n_examples", "dataset_size"})


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
    """Everything :func:`analyse` found: the fit, the frontier, the held-out check.

    Attributes
    ----------
    fit : ScalingFit
        The form fitted to every row kept, with its bootstrap.
    allocation : Allocation or None
        The compute-optimal frontier of a ``joint`` fit; None for the other
        forms, or when the fit has no finite optimum (``allocation_note``).
    holdout : Holdout or None
        The extrapolation check to the largest configurations; None without
        ``holdout_k``.
    x : array of shape (n, d)
        The inputs of the rows fitted, in the form's order (data size first),
        after ``exclude_top``.
    y : array of shape (n,)
        Their outputs.
    n_excluded : int
        Rows of highest y left out before fitting (``exclude_top``).
    allocation_note : str or None
        Why a ``joint`` fit has no frontier (alpha or beta not > 0); None
        otherwise.
    """

    fit: ScalingFit
    allocation: Allocation | None
    holdout: Holdout | None
    x: np.ndarray
    y: np.ndarray
    n_excluded: int
    allocation_note: str | None = None

    def to_dict(self) -> dict:
        return {"fit": self.fit.to_dict(),
                "allocation": None if self.allocation is None else self.allocation.to_dict(),
                "allocation_note": self.allocation_note,
                "holdout": None if self.holdout is None else self.holdout.to_dict(),
                "n_excluded": self.n_excluded}


def _column(table: pd.DataFrame, name: str, flag: str) -> np.ndarray:
    """The column ``name`` (given by ``flag``) as positive floats; errors name both."""
    if name not in table.columns:
        raise ParameterError(f"{flag}: no column '{name}' in the table (columns: "
                             f"{', '.join(map(str, table.columns))})")
    v = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raw = table[name].to_numpy()[row]
        raw = repr(raw) if isinstance(raw, str) else f"{raw}"
        raise ParameterError(f"{flag}: the column '{name}' must hold finite numbers > 0 (the "
                             f"forms are fitted in logs); row {row} holds {raw}")
    return v


def _roles(form: str, x: tuple[str, ...] | None, data: str | None,
           model: str | None) -> tuple[str, ...]:
    """The input columns in the form's order, from roles or from ``x`` (checked)."""
    f = get_form(form)
    if x is not None and (data is not None or model is not None):
        raise ParameterError("give the input columns either by role (--data, --model) or as "
                             "--x, not both")
    if x is None:
        if form == "joint":
            if data is None or model is None:
                raise ParameterError("the joint form needs --data (the data-size column, P or "
                                     "D) and --model (the model-size column, N)")
            x = (data, model)
        else:
            if model is not None:
                raise ParameterError(f"--model is a role of the joint form; the form '{form}' "
                                     "takes one input: give it as --data")
            if data is None:
                raise ParameterError(f"the form '{form}' needs its input column: --data COL "
                                     "(or --x COL)")
            x = (data,)
    elif form == "joint" and len(x) == 2:
        first, second = (c.strip().lower() for c in x)
        if first in MODEL_NAMES and second in DATA_NAMES:
            raise ParameterError(f"--x {x[0]},{x[1]}: '{x[0]}' names a model size and "
                                 f"'{x[1]}' a data size, but --x takes the data size first; "
                                 f"give the roles: --data {x[1]} --model {x[0]}")
    x = tuple(x)
    if len(x) != f.n_x:
        hint = " (give --data D --model N)" if form == "joint" else ""
        raise ParameterError(f"the form '{form}' takes {f.n_x} x column(s){hint}; "
                             f"got {len(x)}: {','.join(x)}")
    if len(set(x)) != len(x):
        raise ParameterError(f"--x names the column '{x[0]}' twice: the joint form needs two "
                             "different columns, the data size and the model size")
    return x


def work(n_rows: int, n_configs: int, *, n_boot: int, method: str, n_starts: int,
         interval: str, holdout_k: int) -> float:
    """Point evaluations (rows x evaluations of the form) that :func:`analyse` will take.

    The fit (``n_starts`` far starts, or projection's ranking and
    refinement), the bootstrap (up to ``BOOT_STARTS`` refits per replicate),
    the jackknife of BCa (one refit per configuration), twice with a
    held-out check.
    """
    from normscale.scaling.fit import BOOT_STARTS
    from normscale.scaling.projection import N_REFINE

    fit = (n_starts * EVALS_FAR if method == "grid"
           else n_starts + N_REFINE * EVALS_NEAR)
    boot = n_boot * BOOT_STARTS * EVALS_AT_MINIMUM
    jack = n_configs * EVALS_AT_MINIMUM if interval == "bca" else 0
    return n_rows * (fit + boot + jack) * (2 if holdout_k else 1)


def _check_work(n_rows, n_configs, **kw) -> None:
    total = work(n_rows, n_configs, **kw)
    if total <= MAX_WORK:
        return
    per_boot = n_rows * 3 * EVALS_AT_MINIMUM * (2 if kw["holdout_k"] else 1)
    rest = total - kw["n_boot"] * per_boot
    hint = []
    if rest < MAX_WORK:
        hint.append(f"--n-boot {max(2, int((MAX_WORK - rest) // per_boot))} or fewer")
    jack = n_rows * n_configs * EVALS_AT_MINIMUM * (2 if kw["holdout_k"] else 1)
    if kw["interval"] == "bca" and jack > 0.1 * total:
        hint.append("--interval percentile (no jackknife over the "
                    f"{n_configs:,} configurations)")
    hint.append("fewer rows (the mean over the seeds of each configuration)")
    raise ParameterError(f"this analysis would take about {total:.2g} point evaluations "
                         f"({n_rows:,} rows, {kw['n_boot']} bootstrap replicates; about "
                         f"{total * 7e-8 / 60:.0f} min here), above the limit of "
                         f"{MAX_WORK:.0e}: use {', or '.join(hint)}")


def analyse(table: pd.DataFrame, *, form: str, x: tuple[str, ...] | None = None, y: str,
            data: str | None = None, model: str | None = None,
            cost: str | None = None, holdout_k: int = 0, exclude_top: int = 0,
            delta: float | None = 1e-3, n_boot: int = 1000, seed: int = 0,
            level: float = 0.95, interval: str = "bca",
            starts: np.ndarray | int | None = None,
            method: str | None = None) -> ScalingAnalysis:
    """Fit ``form`` on the input columns and ``y`` of ``table``, and check it.

    Parameters
    ----------
    table : DataFrame
    form : {"power", "joint", "broken"}
    x : tuple of column names, optional
        The input columns in the form's order: (P,) for ``power`` and
        ``broken``; (P, N) for ``joint``, the data size first, the model size
        second. An order whose names say the opposite (``("N", "D")``) is
        refused. Or name the roles instead:
    data : column name, optional
        The data size (P, D: tokens, examples): B and beta of ``joint``
        belong to it; the single input of ``power`` and ``broken``.
    model : column name, optional
        The model size N of ``joint``: A and alpha belong to it.
    y : column name of the output (loss, test error).
    cost : column name, optional
        A measured cost (FLOP, seconds) for the compute-optimal allocation
        and for ranking the held-out configurations; C = 6 N P otherwise.
    holdout_k : int
        Configurations held out for the extrapolation check (0: none).
    exclude_top : int
        Rows of highest y left out before anything else.
    delta, n_boot, seed, level, starts, method : see :func:`~normscale.scaling.fit.fit_form`
        and :func:`~normscale.scaling.fit.bootstrap_fit`; ``interval`` is its ``method``.

    Returns
    -------
    ScalingAnalysis
    """
    f = get_form(form)
    x = _roles(form, None if x is None else tuple(x), data, model)
    if cost is not None and form != "joint":
        raise ParameterError(f"--cost needs the 'joint' form (a cost of N and P); got '{form}'")
    if exclude_top < 0 or exclude_top >= len(table):
        raise ParameterError(f"--exclude-top must be in [0, {len(table) - 1}]; got {exclude_top}")
    flags = (("--data", "--model") if data is not None or model is not None else ("--x", "--x"))
    X = np.column_stack([_column(table, c, flag) for c, flag in zip(x, flags, strict=False)])
    Y = _column(table, y, "--y")
    C = _column(table, cost, "--cost") if cost is not None else None
    if exclude_top:
        keep = np.ones(len(Y), dtype=bool)
        keep[np.argsort(Y, kind="stable")[::-1][:exclude_top]] = False
        X, Y = X[keep], Y[keep]
        C = None if C is None else C[keep]
    p = len(f.params)
    n_configs = len(np.unique(X, axis=0))
    if exclude_top and n_configs <= p:
        raise ParameterError(f"--exclude-top {exclude_top} leaves {n_configs} configurations; "
                             f"the form '{form}' has {p} parameters and needs more")
    if holdout_k and not 1 <= holdout_k <= n_configs - p - 1:
        raise ParameterError(f"--holdout {holdout_k}: the table has {n_configs} configurations "
                             f"and the form '{form}' needs more than {p} to fit, so --holdout "
                             f"must be in [1, {max(1, n_configs - p - 1)}]")
    resolved = ("grid" if starts is not None else "projection") if method is None else method
    n_starts = (len(f.exponent_grid(np.log(X))) if resolved == "projection"
                else len(f.starts(np.log(X), np.log(Y))) if starts is None
                else len(f.starts(np.log(X), np.log(Y))[::int(starts)])
                if isinstance(starts, int | np.integer) else len(np.atleast_2d(starts)))
    _check_work(len(Y), n_configs, n_boot=n_boot, method=resolved, n_starts=n_starts,
                interval=interval, holdout_k=holdout_k)
    model_cost = CostModel()
    if C is not None:
        try:
            model_cost = fit_cost(X[:, 1], X[:, 0], C)
        except ParameterError as exc:
            raise ParameterError(f"--cost '{cost}': {exc}") from None
    fit = fit_form(form, X, Y, delta=delta, starts=starts, x_names=tuple(x), y_name=y,
                   method=method)
    fit = bootstrap_fit(fit, X, Y, n_boot=n_boot, seed=seed, level=level, method=interval)
    allocation, note = None, None
    if form == "joint":
        try:
            allocation = compute_optimal(fit, cost=model_cost)
        except ParameterError as exc:
            note = str(exc)                # a non-positive exponent: no finite optimum
    held = None
    if holdout_k:
        held = holdout(form, X, Y, k=holdout_k, size=C, delta=delta, n_boot=n_boot,
                       seed=seed, level=level, starts=starts, x_names=tuple(x), y_name=y,
                       method=method)
    return ScalingAnalysis(fit, allocation, held, X, Y, exclude_top, note)
