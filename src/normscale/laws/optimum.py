"""Estimators of lambda_opt, the norm at a curve's minimum (law 2), and their uncertainty.

Each estimator takes one :class:`~normscale.laws.curves.Curve` and returns
``(log10 lambda_opt, its standard error in log10)``. They all depend on the
norm only through the logged points (grid indices) and on the error only
through ln eps, so a change of the norm's units, lambda -> c lambda^k,
moves every estimate to k log10 lambda_opt + log10 c and scales every error
by k: they are equivariant by construction.

Candidates, measured for bias and coverage on ground truth with asymmetric
minima (``benchmarks/calibrate_laws.py optimum``, the table in docs/laws.md):

- ``argmin``: the logged point with the smallest error; its error is the
  uniform-rounding one, a grid step over sqrt(12), widened to half the
  basin (:func:`normscale.laws.basin.find_basin`) where the noise makes
  the basin wider than one step;
- ``parabola``: a least-squares parabola in (log10 norm, ln eps) through the
  argmin and ``PARABOLA_HALF_WIDTH`` points on each side, its vertex as the
  estimate and the delta-method error of the vertex from the noise level of
  ln eps (the curve's own, from second differences);
- ``basin``: the centre of the basin (points within two noise levels of the
  minimum), half its width as the error.
"""

from __future__ import annotations

import math

import numpy as np

from normscale.laws.basin import curve_noise, find_basin
from normscale.laws.curves import Curve

#: points on each side of the argmin used by the parabola (5 in all: 2 degrees of freedom)
PARABOLA_HALF_WIDTH = 2
#: the ``band`` estimator's band in ln eps: the points within 22% of the minimum error (e^0.2)
BAND = 0.2


def _step(u: np.ndarray) -> float:
    return float(np.median(np.diff(u))) if u.size > 1 else 0.0


def argmin_estimate(curve: Curve, noise: float | None = None) -> tuple[float, float]:
    """The grid argmin; error max(step / sqrt(12), half the basin width)."""
    u = np.log10(curve.norm)
    i = int(np.argmin(curve.error))
    basin = find_basin(curve, noise=noise)
    half = 0.5 * math.log10(basin.hi / basin.lo)
    return float(u[i]), float(max(_step(u) / math.sqrt(12.0), half))


def _band(y: np.ndarray, i: int, band: float, half_width: int) -> tuple[int, int]:
    """The contiguous points around ``i`` with y <= y[i] + band, at least ``half_width`` on
    each side where the curve has them: (lo, hi) as a slice."""
    lo = hi = i
    while lo > 0 and y[lo - 1] <= y[i] + band:
        lo -= 1
    while hi < y.size - 1 and y[hi + 1] <= y[i] + band:
        hi += 1
    return min(lo, max(0, i - half_width)), max(hi, min(y.size - 1, i + half_width)) + 1


def parabola_fit(curve: Curve, noise: float | None = None, *,
                 half_width: int = PARABOLA_HALF_WIDTH,
                 band: float | None = None) -> tuple[float, float, float, bool]:
    """The vertex of a least-squares parabola in (log10 norm, ln eps) around the argmin.

    Returns ``(log10 lambda_opt, its error, ln eps at the vertex, ok)``.
    ``ok`` is False when the parabola is not convex or its vertex falls
    outside the points it was fitted on; the argmin (its error half the
    fitted span) and the smallest logged ln eps are returned then.

    Notes
    -----
    ln eps = a v^2 + b v + c with v = u - u_i, the vertex v* = -b / (2a);
    Var v* = g^T C g with g = (b / (2 a^2), -1 / (2a)) and C = s^2 (X^T X)^-1
    the covariance of (a, b), s the noise level of ln eps.
    """
    u = np.log10(curve.norm)
    y = np.log(curve.error)
    n = u.size
    i = int(np.argmin(y))
    s = curve_noise(curve) if noise is None else float(noise)
    if band is None:
        lo, hi = max(0, i - half_width), min(n, i + half_width + 1)
    else:
        lo, hi = _band(y, i, max(band, 2 * s), half_width)
    v = u[lo:hi] - u[i]
    fallback = (float(u[i]), float(max(0.5 * (v[-1] - v[0]), _step(u) / math.sqrt(12.0))),
                float(y[i]), False)
    if hi - lo < 4:
        return fallback
    X = np.stack([v * v, v, np.ones_like(v)], axis=1)
    XtX_inv = np.linalg.inv(X.T @ X)
    a, b, c = XtX_inv @ X.T @ y[lo:hi]
    if not a > 0:
        return fallback
    vertex = -b / (2 * a)
    if not v[0] <= vertex <= v[-1]:
        return fallback
    g = np.array([b / (2 * a * a), -1.0 / (2 * a)])
    var = float(g @ (s * s * XtX_inv[:2, :2]) @ g)
    err = max(math.sqrt(max(var, 0.0)), 1e-12)
    return float(u[i] + vertex), float(err), float(c - b * b / (4 * a)), True


def parabola_value_error(curve: Curve, noise: float | None = None, *,
                         half_width: int = PARABOLA_HALF_WIDTH) -> float:
    """Standard error of ln eps at the vertex of the local parabola (:func:`parabola_fit`).

    Notes
    -----
    f = c - b^2 / (4a); Var f = g^T C g with g = (b^2 / (4 a^2), -b / (2a), 1)
    and C = s^2 (X^T X)^-1. Without a convex parabola, the noise level s of
    one point.
    """
    u = np.log10(curve.norm)
    y = np.log(curve.error)
    i = int(np.argmin(y))
    lo, hi = max(0, i - half_width), min(u.size, i + half_width + 1)
    s = curve_noise(curve) if noise is None else float(noise)
    if hi - lo < 4:
        return s
    v = u[lo:hi] - u[i]
    X = np.stack([v * v, v, np.ones_like(v)], axis=1)
    XtX_inv = np.linalg.inv(X.T @ X)
    a, b, _ = XtX_inv @ X.T @ y[lo:hi]
    if not a > 0 or not v[0] <= -b / (2 * a) <= v[-1]:
        return s
    g = np.array([b * b / (4 * a * a), -b / (2 * a), 1.0])
    return float(np.sqrt(max(float(g @ (s * s * XtX_inv) @ g), 0.0)))


def parabola_estimate(curve: Curve, noise: float | None = None) -> tuple[float, float]:
    """The vertex of the local parabola (:func:`parabola_fit`) and its delta-method error."""
    u, err, _, _ = parabola_fit(curve, noise)
    return u, err


def parabola3_estimate(curve: Curve, noise: float | None = None) -> tuple[float, float]:
    """:func:`parabola_estimate` on 3 points each side of the argmin."""
    u, err, _, _ = parabola_fit(curve, noise, half_width=3)
    return u, err


def band_estimate(curve: Curve, noise: float | None = None) -> tuple[float, float]:
    """The vertex of a parabola through the points within ``BAND`` of the minimum in ln eps.

    The band is a ratio of errors (eps <= 1.22 eps_min, or 2 noise levels when the
    noise is larger), so on curves that collapse, eps / eps_opt = Phi(lambda / lambda_opt),
    it covers the same stretch of lambda / lambda_opt at every P: whatever bias an
    asymmetric minimum gives the vertex, it is the same at every P and leaves gamma2 alone.
    At least ``PARABOLA_HALF_WIDTH`` points on each side are used.
    """
    u, err, _, _ = parabola_fit(curve, noise, band=BAND)
    return u, err


def basin_estimate(curve: Curve, noise: float | None = None) -> tuple[float, float]:
    """The basin's centre and half its width (:func:`normscale.laws.basin.find_basin`)."""
    b = find_basin(curve, noise=noise)
    return float(math.log10(b.lambda_opt)), float(b.log10_err)


#: name -> estimator(curve, noise=None) -> (log10 lambda_opt, its standard error)
ESTIMATORS = {"argmin": argmin_estimate, "parabola": parabola_estimate,
              "parabola3": parabola3_estimate, "band": band_estimate, "basin": basin_estimate}
