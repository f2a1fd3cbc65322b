"""Compute-optimal allocation from a ``joint`` fit (Hoffmann et al. 2022, approach 3).

With y = E + A N^-alpha + B P^-beta and a cost C = k N^u P^v (u = v = 1,
k = 6 for training FLOP, C = 6 N P), minimising y at fixed C gives
(Lagrange, in log N and log P)

    log N_opt = (beta log(C/k) - v c) / (u beta + v alpha),
    log P_opt = (alpha log N_opt + c) / beta,
    c = log(beta B u / (alpha A v)),

so N_opt ~ C^a and P_opt ~ C^b with a = beta / (u beta + v alpha) and
b = alpha / (u beta + v alpha); with C = 6 N P these are Hoffmann's
a = beta/(alpha+beta), b = alpha/(alpha+beta) and N_opt = G (C/6)^a,
G = (alpha A / (beta B))^(1/(alpha+beta)).

A measured cost column (FLOP, seconds) gives k, u and v by least squares
of log C on log N and log P over the runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale.errors import ParameterError
from normscale.scaling.fit import ScalingFit

#: a fitted cost exponent of N or P below this is "does not grow" (a constant cost column)
MIN_COST_EXPONENT = 1e-3


@dataclass(frozen=True)
class CostModel:
    """The cost of a run, C = k N^u P^v; by default training FLOP, C = 6 N P.

    Attributes
    ----------
    k : float
        The prefactor (6 for training FLOP).
    u : float
        The exponent of the model size N.
    v : float
        The exponent of the data size P.
    fitted : bool
        Whether k, u and v were read off a measured cost column by least
        squares (:func:`fit_cost`) rather than set.
    rms : float
        The root-mean-square residual of log C of that least-squares fit
        over the runs (0 when not fitted).
    """

    k: float = 6.0
    u: float = 1.0
    v: float = 1.0
    fitted: bool = False
    rms: float = 0.0

    def cost(self, N: np.ndarray, P: np.ndarray) -> np.ndarray:
        return self.k * np.asarray(N, float) ** self.u * np.asarray(P, float) ** self.v


def fit_cost(N: np.ndarray, P: np.ndarray, C: np.ndarray) -> CostModel:
    """Least squares of log C = log k + u log N + v log P over the runs."""
    N, P, C = (np.asarray(v, dtype=float).ravel() for v in (N, P, C))
    if not np.all(np.isfinite(C) & (C > 0)):
        raise ParameterError("The cost values must be finite and > 0.")
    X = np.column_stack([np.ones_like(N), np.log(N), np.log(P)])
    if np.linalg.matrix_rank(X) < 3:
        raise ParameterError("The cost column needs runs that vary N and P independently "
                             "(log N and log P are collinear here).")
    coef, *_ = np.linalg.lstsq(X, np.log(C), rcond=None)
    rms = float(np.sqrt(np.mean((X @ coef - np.log(C)) ** 2)))
    if not (coef[1] > MIN_COST_EXPONENT and coef[2] > MIN_COST_EXPONENT):
        raise ParameterError(f"The cost does not grow with both N and P (fitted C ~ "
                             f"N^{coef[1]:.3g} P^{coef[2]:.3g}): it has no compute-optimal "
                             "allocation.")
    return CostModel(float(np.exp(coef[0])), float(coef[1]), float(coef[2]), True, rms)


def _optimum(params: np.ndarray, cost: CostModel, C: np.ndarray):
    """N_opt, P_opt, y_opt at budgets C (broadcast over rows of params: E, A, B, alpha, beta)."""
    E, A, B, alpha, beta = (params[..., i, None] for i in range(5))
    u, v = cost.u, cost.v
    c = np.log(beta * B * u / (alpha * A * v))
    logN = (beta * np.log(C / cost.k) - v * c) / (u * beta + v * alpha)
    logP = (alpha * logN + c) / beta
    N, P = np.exp(logN), np.exp(logP)
    return N, P, E + A * N ** -alpha + B * P ** -beta


@dataclass(frozen=True)
class Allocation:
    """The compute-optimal frontier of a ``joint`` fit (module notes for the equations).

    The intervals and bands are percentiles, at the bootstrap's level, over
    the fit's bootstrap replicates whose alpha and beta are both > 0; they
    are NaN when the fit has no bootstrap (or fewer than 2 replicates).

    Attributes
    ----------
    a : float
        Exponent of N_opt ~ C^a: beta / (u beta + v alpha).
    b : float
        Exponent of P_opt ~ C^b: alpha / (u beta + v alpha).
    a_ci, b_ci : (float, float)
        Bootstrap percentile intervals of ``a`` and ``b``.
    a_se, b_se : float
        Bootstrap standard deviations (ddof 1) of ``a`` and ``b``.
    cost : CostModel
        The cost C = k N^u P^v the frontier minimises at.
    params : array of shape (5,)
        The fit's natural parameters in the order (E, A, B, alpha, beta).
    C : array of shape (m,)
        The budgets of the frontier, in the cost's unit.
    N, P : array of shape (m,)
        N_opt and P_opt: the model and data sizes that minimise the fitted
        y at each budget.
    y : array of shape (m,)
        The fitted y at (N_opt, P_opt): the lowest y each budget buys.
    N_lo, N_hi, P_lo, P_hi, y_lo, y_hi : array of shape (m,)
        Lower and upper bootstrap percentile bands of ``N``, ``P`` and ``y``
        at each budget.
    """

    a: float
    b: float
    a_ci: tuple[float, float]
    b_ci: tuple[float, float]
    a_se: float
    b_se: float
    cost: CostModel
    params: np.ndarray
    C: np.ndarray
    N: np.ndarray
    P: np.ndarray
    y: np.ndarray
    N_lo: np.ndarray
    N_hi: np.ndarray
    P_lo: np.ndarray
    P_hi: np.ndarray
    y_lo: np.ndarray
    y_hi: np.ndarray

    def at(self, C: float) -> dict[str, float]:
        """N_opt, P_opt and the loss at budget ``C``, by the same formula as the frontier."""
        return dict(zip(("N", "P", "y"), (float(v[0]) for v in _optimum(
            self.params[None], self.cost, np.array([float(C)]))), strict=True))

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "a_ci": list(self.a_ci), "b_ci": list(self.b_ci),
                "a_se": self.a_se, "b_se": self.b_se,
                "cost": {"k": self.cost.k, "u": self.cost.u, "v": self.cost.v,
                         "fitted": self.cost.fitted, "rms": self.cost.rms},
                "frontier": [{"C": float(c), "N": float(n), "P": float(p), "y": float(y)}
                             for c, n, p, y in zip(self.C, self.N, self.P, self.y, strict=True)]}


def compute_optimal(fit: ScalingFit, *, cost: CostModel | None = None,
                    C: np.ndarray | None = None, n_budgets: int = 40) -> Allocation:
    """The compute-optimal allocation of a ``joint`` fit.

    Parameters
    ----------
    fit : ScalingFit
        A ``joint`` fit, x = (P, N); with a bootstrap for the intervals.
    cost : CostModel, optional
        C = 6 N P by default; :func:`fit_cost` for a measured cost column.
    C : array-like, optional
        Budgets of the frontier; by default ``n_budgets`` log-spaced ones
        from 0.1x the smallest to 10x the largest cost of the data.

    Returns
    -------
    Allocation
    """
    if fit.form != "joint":
        raise ParameterError(f"Compute-optimal allocation needs the 'joint' form. "
                             f"Got '{fit.form}' instead.")
    cost = CostModel() if cost is None else cost
    names = ("E", "A", "B", "alpha", "beta")
    params = np.array([fit.params[k] for k in names])
    if params[3] <= 0 or params[4] <= 0:
        raise ParameterError("Compute-optimal allocation needs alpha > 0 and beta > 0; the fit "
                             f"has alpha = {params[3]:.3g}, beta = {params[4]:.3g}.")
    if C is None:
        (plo, phi), (nlo, nhi) = fit.x_range
        lo, hi = cost.cost(nlo, plo), cost.cost(nhi, phi)
        C = np.geomspace(0.1 * lo, 10 * hi, n_budgets)
    C = np.asarray(C, dtype=float)
    denom = cost.u * params[4] + cost.v * params[3]
    a, b = params[4] / denom, params[3] / denom
    N, P, y = (v[0] for v in _optimum(params[None], cost, C))
    nan = np.full_like(C, np.nan)
    bands = [nan] * 6
    a_ci = b_ci = (float("nan"), float("nan"))
    a_se = b_se = float("nan")
    boot = fit.bootstrap
    if boot is not None and boot.n_ok >= 2:
        s = boot.samples[:, [boot.names.index(k) for k in names]]
        s = s[(s[:, 3] > 0) & (s[:, 4] > 0)]
        d = cost.u * s[:, 4] + cost.v * s[:, 3]
        aa, bb = s[:, 4] / d, s[:, 3] / d
        tail = 50 * (1 - boot.level)
        a_ci = tuple(float(v) for v in np.percentile(aa, [tail, 100 - tail]))
        b_ci = tuple(float(v) for v in np.percentile(bb, [tail, 100 - tail]))
        a_se, b_se = float(aa.std(ddof=1)), float(bb.std(ddof=1))
        Nb, Pb, yb = _optimum(s, cost, C)
        bands = [q for arr in (Nb, Pb, yb) for q in np.percentile(arr, [tail, 100 - tail], axis=0)]
    return Allocation(float(a), float(b), a_ci, b_ci, a_se, b_se, cost, params, C, N, P, y,
                      *bands)
