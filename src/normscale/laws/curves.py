"""One learning curve per (P, seed), the seed average, and the minimum of each.

The minimum of the test error over training, eps_opt at lambda_opt, is the
anchor of both dynamical laws (docs/science.md, introduction, law 2). It is
refined below the logging grid by a least-squares parabola in
(log norm, log error) through the grid minimum and its neighbours.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from normscale.errors import NormscaleError

#: points on each side of the grid minimum used by the parabola
_HALF_WIDTH = 2
#: the most points per curve the laws use; longer curves are thinned by binning (:func:`thin`)
MAX_POINTS = 500
#: values of a ``stop_reason`` column that mean "stopped by a cap, not past the optimum"
CAPPED_STOP_REASONS = ("max_epochs", "max_time")


@dataclass(frozen=True)
class Curve:
    """Error against norm for one training-set size, sorted by norm.

    Attributes
    ----------
    P : float
        The training-set size (the ``P`` column, or ``alpha`` = P/N for the
        perceptron's tables).
    norm : ndarray of shape (n,)
        The logged norms lambda, strictly increasing (repeated norms averaged,
        long curves thinned to ``MAX_POINTS``), in the table's norm units.
    error : ndarray of shape (n,)
        The error at each norm (the test error, or the column chosen), in the
        table's units (a fraction, not a log).
    stopped_early : bool
        The run was stopped by a cap (its ``stop_reason`` is one of
        :data:`CAPPED_STOP_REASONS`) before its stop rule saw the optimum, so
        its minimum counts as censored; for a seed average, true when more
        than half of the seeds were.
    past_optimum : bool
        Its stop rule saw the error stop improving over a stretch of norm
        growth after its best point (``stop_reason`` ``past_optimum``), so a
        basin that reaches its last point is flat there, not cut; for a seed
        average, true when more than half of the seeds were.
    """

    P: float
    norm: np.ndarray   # (n,) increasing
    error: np.ndarray  # (n,)
    stopped_early: bool = False
    past_optimum: bool = False


@dataclass(frozen=True)
class CurveMinimum:
    """The minimum of one curve over training (:func:`curve_minimum`; law 2's anchor).

    Attributes
    ----------
    lambda_opt : float
        The norm at the minimum, in the curve's norm units: the vertex of the
        parabola in (ln lambda, ln eps) when ``refined``, else the norm of the
        smallest logged error.
    eps_opt : float
        The error there: exp of the parabola's value at its vertex when
        ``refined``, else the smallest logged error.
    index : int
        The index of the smallest logged error in the curve (never 0).
    at_edge : bool
        True when the smallest logged error is the last point: the curve may
        still be falling, ``lambda_opt`` is then a lower bound (never refined).
    refined : bool
        True when the parabola was convex with its vertex between the outer
        neighbours, so the vertex gives ``lambda_opt`` and ``eps_opt``.
    """

    lambda_opt: float
    eps_opt: float
    index: int
    at_edge: bool
    refined: bool


@dataclass(frozen=True)
class CurveSet:
    """The curves of one P: per seed and their seed average.

    Attributes
    ----------
    P : float
        The training-set size.
    seeds : tuple of Curve
        One curve per seed, in the order of the ``seed`` column (one curve
        when the table has none); seeds whose norms do not overlap the
        others' are left out.
    mean : Curve
        The seed average (:func:`average_seeds`): point by point on a shared
        grid, else the mean error on a log grid of the common norm range.
    """

    P: float
    seeds: tuple[Curve, ...]
    mean: Curve


def thin(norm: np.ndarray, error: np.ndarray, max_points: int = MAX_POINTS
         ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: consecutive points binned in groups of equal size (the
    norm's geometric mean, the error's mean in each group).

    A curve logged at every step (a W&B or TensorBoard history) holds far more points than the
    laws need and than their O(n) steps should pay for; averaging neighbours also lowers the
    noise of each point. Binning by index keeps the analysis the same in any units of the norm.
    """
    n = norm.size
    if n <= max_points:
        return norm, error
    edges = np.linspace(0, n, max_points + 1).round().astype(int)
    counts = np.diff(edges)
    ln_norm = np.add.reduceat(np.log(norm), edges[:-1]) / counts
    return np.exp(ln_norm), np.add.reduceat(error, edges[:-1]) / counts


def _sorted_curve(P: float, norm: np.ndarray, error: np.ndarray,
                  stopped_early: bool = False, past_optimum: bool = False) -> Curve:
    frame = pd.DataFrame({"norm": norm, "error": error}).groupby("norm", sort=True).mean()
    norm, error = thin(frame.index.to_numpy(float), frame["error"].to_numpy(float))
    return Curve(P, norm, error, stopped_early, past_optimum)


def same_grid(curves) -> bool:
    """True when all ``curves`` were logged at the same norms."""
    first = curves[0]
    return all(c.norm.shape == first.norm.shape and np.allclose(c.norm, first.norm)
               for c in curves)


def average_seeds(curves: tuple[Curve, ...]) -> Curve:
    """Seed average of curves of one P.

    Curves logged at the same norms are averaged point by point. Otherwise,
    as in the paper (docs/science.md 2.3), each curve is interpolated linearly in
    (log norm, log error) on a log grid over the norm range that all seeds
    cover, and the errors are averaged there.
    """
    first = curves[0]
    stopped = 2 * sum(c.stopped_early for c in curves) > len(curves)
    past = 2 * sum(c.past_optimum for c in curves) > len(curves)
    if same_grid(curves):
        return Curve(first.P, first.norm, np.mean([c.error for c in curves], axis=0), stopped,
                     past)
    lo = max(c.norm[0] for c in curves)
    hi = min(c.norm[-1] for c in curves)
    if not hi > lo:
        raise NormscaleError(
            f"the seeds of P={first.P:g} share no common range of norms: cannot average them")
    n = int(np.median([c.norm.size for c in curves]))
    grid = np.geomspace(lo, hi, max(n, 3))
    logs = [np.interp(np.log(grid), np.log(c.norm), np.log(c.error)) for c in curves]
    return Curve(first.P, grid, np.mean(np.exp(logs), axis=0), stopped, past)


def _overlapping(P: float, names: list, seeds: list[Curve]) -> tuple[Curve, ...]:
    """Leave out the seeds whose norms do not overlap the others' (a run that never trained,
    whose weights stopped at their start), narrowest range first, with a warning."""
    kept = list(zip(names, seeds, strict=True))
    dropped = []
    while len(kept) > 1 and not (min(c.norm[-1] for _, c in kept)
                                 > max(c.norm[0] for _, c in kept)):
        narrowest = min(kept, key=lambda nc: np.log(nc[1].norm[-1] / nc[1].norm[0]))
        kept.remove(narrowest)
        dropped.append(narrowest[0])
    if dropped:
        warnings.warn(f"P={P:g}: seed(s) {', '.join(map(str, dropped))} left out: their norms "
                      "do not overlap the other seeds' (a run that did not train?)",
                      stacklevel=3)
    return tuple(c for _, c in kept)


def build_curves(df: pd.DataFrame, error: str) -> list[CurveSet]:
    """Split a table (one group) into :class:`CurveSet` objects, one per P, sorted by P.

    Seeds whose norm range does not overlap the other seeds' of the same P are
    left out with a warning (see :func:`_overlapping`). A ``stop_reason``
    column marks the runs stopped by a cap (:data:`CAPPED_STOP_REASONS`) and
    those a stop rule saw past their optimum (``past_optimum``).
    """
    sets = []
    has_seed = "seed" in df.columns
    reason = df["stop_reason"] if "stop_reason" in df.columns else pd.Series("", index=df.index)
    capped = reason.isin(CAPPED_STOP_REASONS)
    past = reason == "past_optimum"
    for P, sub in df.groupby("P", sort=True):
        parts = list(sub.groupby("seed", sort=True)) if has_seed else [(0, sub)]
        seeds = _overlapping(float(P), [name for name, _ in parts], [
            _sorted_curve(float(P), g["norm"].to_numpy(float), g[error].to_numpy(float),
                          bool(capped.loc[g.index].any()), bool(past.loc[g.index].all()))
            for _, g in parts])
        short = [c for c in seeds if c.norm.size < 3]
        if short:
            raise NormscaleError(
                f"the curve for P={P:g} has {short[0].norm.size} distinct norm(s); "
                "at least 3 are needed")
        sets.append(CurveSet(float(P), seeds, average_seeds(seeds)))
    return sets


def curve_minimum(curve: Curve) -> CurveMinimum:
    """Locate the minimum of the error over the curve, refined below the grid.

    Notes
    -----
    A parabola ln eps = a u^2 + b u + c, u = ln lambda, is fitted by least
    squares to the grid minimum and up to two neighbours on each side; when
    it is convex and its vertex lies between the outer neighbours, the vertex
    gives (lambda_opt, eps_opt), otherwise the grid minimum is kept. A
    minimum at the last point is kept unrefined and flagged ``at_edge``.

    Raises
    ------
    NormscaleError
        When the smallest error is at the smallest norm: the curve never
        falls, it has no minimum over training inside its range.
    """
    i = int(np.argmin(curve.error))
    n = curve.error.size
    if i == 0:
        raise NormscaleError(
            f"the curve for P={curve.P:g} has its minimum at its smallest norm "
            f"({curve.norm[0]:g}): no minimum inside its range")
    if i == n - 1:
        return CurveMinimum(float(curve.norm[i]), float(curve.error[i]), i, True, False)
    lo, hi = max(0, i - _HALF_WIDTH), min(n, i + _HALF_WIDTH + 1)
    u, y = np.log(curve.norm[lo:hi]), np.log(curve.error[lo:hi])
    v = np.vander(u - u[i - lo], 3)  # columns u^2, u, 1
    a, b, c = np.linalg.solve(v.T @ v, v.T @ y)  # least-squares parabola
    if a > 0:
        vertex = -b / (2 * a)
        if u[0] - u[i - lo] < vertex < u[-1] - u[i - lo]:
            lam = float(np.exp(u[i - lo] + vertex))
            eps = float(np.exp(c - b * b / (4 * a)))
            return CurveMinimum(lam, eps, i, False, True)
    return CurveMinimum(float(curve.norm[i]), float(curve.error[i]), i, False, False)
