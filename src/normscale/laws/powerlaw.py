"""Power laws fitted in log-log, and the offset form of the scaling law.

docs/science.md, introduction: lambda_opt(P) ~ k2 P^gamma2 (law 2),
eps_opt(P) ~ P^(-gamma) (law 4) and the realistic form with offsets
eps = k1 (k2 P^gamma2 + q2)^(-gamma1) + q1.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from normscale.errors import NormscaleError


@dataclass(frozen=True)
class PowerLaw:
    """y = prefactor * x**exponent fitted by least squares on (ln x, ln y).

    Fits law 2, lambda_opt ~ k2 P^gamma2 (``exponent`` = gamma2), and law 4,
    eps_opt ~ P^(-gamma) (``exponent`` = -gamma_meas), of docs/science.md.
    With per-point errors of ln y the points are weighted by 1 / err^2 and
    the error of the slope is scaled by the Birge ratio when the points
    scatter more than their errors say (a lack of fit, or errors that are
    too small); without them, it is the ordinary least-squares one.

    Attributes
    ----------
    exponent : float
        The slope d ln y / d ln x (weighted when per-point errors are given).
    exponent_err : float
        Standard error of ``exponent``: the weighted least-squares one times
        max(1, ``birge``) with per-point errors, the ordinary least-squares
        one (from the scatter) without them.
    prefactor : float
        exp of the intercept: y at x = 1, in the units of y (x unscaled).
    r2 : float
        Coefficient of determination of the fit in (ln x, ln y); 1 when all
        y are equal.
    rms : float
        Root-mean-square residual in ln y (unweighted, divided by ``n``).
    n : int
        Number of points fitted (3 or more).
    chi2 : float
        Weighted sum of squared residuals, sum ((ln y - fit) / err)^2; NaN
        without per-point errors.
    birge : float
        Birge ratio sqrt(``chi2`` / (n - 2)): above 1, the points scatter more
        than their errors allow; NaN without per-point errors.
    dof : int or None
        Degrees of freedom of the Student quantile for an interval on
        ``exponent``: n - 2 when the scale of the error came from the scatter
        (no per-point errors, or ``birge`` > 1); None (a normal quantile) when
        the per-point errors set it.
    """

    exponent: float
    exponent_err: float
    prefactor: float
    r2: float
    rms: float
    n: int
    chi2: float = float("nan")
    birge: float = float("nan")
    dof: int | None = None

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return self.prefactor * np.asarray(x, dtype=float) ** self.exponent


def fit_power_law(x: np.ndarray, y: np.ndarray, *, what: str = "power law",
                  log_err: np.ndarray | None = None) -> PowerLaw:
    """Fit ``y = prefactor * x**exponent`` in log-log; needs 3 points or more.

    ``log_err`` (standard errors of ln y, all finite and positive) weighs the
    points by 1 / err^2; otherwise every point weighs the same.
    """
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    n = lx.size
    if n < 3 or np.ptp(lx) == 0:
        raise NormscaleError(
            f"the {what} fit needs at least 3 distinct x values; got {np.unique(lx).size}")
    err = None if log_err is None else np.asarray(log_err, float)
    weighted = err is not None and bool(np.all(np.isfinite(err)) and np.all(err > 0))
    w = 1.0 / err ** 2 if weighted else np.ones(n)
    xm, ym = np.average(lx, weights=w), np.average(ly, weights=w)
    sxx = float(np.sum(w * (lx - xm) ** 2))
    slope = float(np.sum(w * (lx - xm) * (ly - ym)) / sxx)
    resid = ly - ym - slope * (lx - xm)
    sse = float(resid @ resid)
    syy = float(np.sum((ly - ym) ** 2))
    r2 = 1.0 - sse / syy if syy > 0 else 1.0
    pref = float(np.exp(ym - slope * xm))
    if weighted:
        chi2 = float(np.sum(w * resid ** 2))
        birge = float(np.sqrt(chi2 / (n - 2))) if n > 2 else 1.0
        scale = max(1.0, birge)
        return PowerLaw(slope, float(scale / np.sqrt(sxx)), pref, r2, float(np.sqrt(sse / n)), n,
                        chi2, birge, n - 2 if birge > 1.0 else None)
    e = np.sqrt(sse / (n - 2) / sxx) if n > 2 else float("inf")
    return PowerLaw(slope, float(e), pref, r2, float(np.sqrt(sse / n)), n, dof=n - 2)


@dataclass(frozen=True)
class OffsetFit:
    """eps_opt(P) = k1 (k2 P^gamma2 + q2)^(-gamma1) + q1, gamma1 and k1 held fixed.

    The offset form of law 4 (docs/science.md, introduction). gamma1 and k1
    come from the early-training law; only the product k1 k2^(-gamma1) is
    identified by eps_opt(P) otherwise. Fitted by bounded least squares on
    ln eps_opt from a grid of starts (:func:`fit_offset_form`).

    Attributes
    ----------
    gamma1 : float
        The early-training exponent of law 1, held fixed (as given).
    k1 : float
        The prefactor of law 1, eps ~ k1 lambda^(-gamma1), held fixed (as given).
    gamma2 : float
        The fitted exponent of lambda_opt ~ k2 P^gamma2, in [0.01, 50].
    k2 : float
        The fitted prefactor of law 2, in the units of lambda_opt (P unscaled).
    q2 : float
        The shift of the optimum, >= 0, in the units of k2 P^gamma2 (of lambda_opt).
    q1 : float
        The irreducible error, in [0, min eps_opt), in the units of eps_opt.
    rms : float
        Root-mean-square residual in ln eps_opt of the best start.
    success : bool
        The best start's ``scipy.optimize.least_squares`` status (True: converged).
    n_starts : int
        How many starts were tried (the lowest cost wins).
    """

    gamma1: float
    k1: float
    gamma2: float
    k2: float
    q2: float
    q1: float
    rms: float
    success: bool
    n_starts: int

    def __call__(self, P: np.ndarray | float) -> np.ndarray:
        P = np.asarray(P, dtype=float)
        return self.k1 * (self.k2 * P ** self.gamma2 + self.q2) ** (-self.gamma1) + self.q1


def fit_offset_form(P: np.ndarray, eps_opt: np.ndarray, *, gamma1: float, k1: float) -> OffsetFit:
    """Fit the offset form on eps_opt(P): bounded least squares in log space, grid of starts.

    Parameters are ln k2, gamma2 in [0.01, 50], q2 >= 0 (in units of
    k2 P_min^gamma2) and q1 in [0, min eps_opt). Every start of a small grid
    is run with ``scipy.optimize.least_squares``; the lowest cost wins.
    """
    from scipy.optimize import least_squares  # here: the import costs more than a fit

    P = np.asarray(P, float)
    eps = np.asarray(eps_opt, float)
    x = P / P.min()  # scaled so that q2 is in units of the smallest term
    ly = np.log(eps)
    g_guess = max(fit_power_law(P, eps).exponent * -1.0, 1e-3) / max(gamma1, 1e-6)

    def model(theta: np.ndarray) -> np.ndarray:
        ln_c, g2, q2, q1 = theta  # c = k2 P_min^gamma2
        base = np.exp(ln_c) * (x ** g2 + q2)
        return np.log(k1 * base ** (-gamma1) + q1)

    def resid(theta: np.ndarray) -> np.ndarray:
        return model(theta) - ly

    ln_c0 = -np.log(eps[0] / k1) / gamma1 if gamma1 > 0 else 0.0
    lower = [ln_c0 - 50, 0.01, 0.0, 0.0]
    upper = [ln_c0 + 50, 50.0, 10.0, 0.999 * eps.min()]
    best = None
    starts = list(itertools.product([0.5 * g_guess, g_guess, 2 * g_guess], [0.0, 0.5], [0.0, 0.5]))
    for g2, q2, q1_frac in starts:
        theta0 = np.clip([ln_c0, g2, q2, q1_frac * eps.min()], lower, upper)
        theta0[1] = min(max(theta0[1], 0.011), 49.9)
        sol = least_squares(resid, theta0, bounds=(lower, upper), method="trf")
        if best is None or sol.cost < best.cost:
            best = sol
    ln_c, g2, q2, q1 = best.x
    k2 = float(np.exp(ln_c) * P.min() ** (-g2))
    q2_abs = float(q2 * np.exp(ln_c))
    return OffsetFit(float(gamma1), float(k1), float(g2), k2, q2_abs, float(q1),
                     float(np.sqrt(np.mean(best.fun ** 2))), bool(best.success), len(starts))
