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
from dataclasses import dataclass

import numpy as np

from normscale.laws.basin import Basin, curve_noise, find_basin
from normscale.laws.curves import Curve

#: points on each side of the argmin used by the parabola (5 in all: 2 degrees of freedom)
PARABOLA_HALF_WIDTH = 2
#: the ``band`` estimator's band in ln eps: the points within 22% of the minimum error (e^0.2)
BAND = 0.2
#: eps_opt's band in ln eps: the vertex value of the parabola through the points within 49% of
#: the minimum error (e^0.4). The value at a noisy argmin is biased low, and more so where the
#: relative noise is larger (the largest P), which steepened gamma_meas by 0.4% to 1.8% on the
#: calibration families; averaging over the band removes that selection bias, while the
#: parabola's own misfit is the same ratio at every P on curves that collapse and leaves
#: gamma_meas alone (``benchmarks/calibrate_laws.py``, docs/laws.md)
EPS_BAND = 0.4


def _step(u: np.ndarray) -> float:
    return float(np.median(np.diff(u))) if u.size > 1 else 0.0


def argmin_estimate(curve: Curve, noise: float | None = None, *,
                    basin: Basin | None = None) -> tuple[float, float]:
    """The grid argmin; error max(step / sqrt(12), half the basin width) (``basin``: the
    curve's, when already found)."""
    u = np.log10(curve.norm)
    i = int(np.argmin(curve.error))
    basin = basin if basin is not None else find_basin(curve, noise=noise)
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


@dataclass(frozen=True)
class Vertex:
    """The vertex of a local parabola in (log10 norm, ln eps): lambda_opt and eps_opt of law 2.

    Found by :func:`parabola_fit`. When there was no convex parabola with its
    vertex inside its points (``ok`` False), the fields fall back to the grid
    argmin, as said per field.

    Attributes
    ----------
    log10_lambda : float
        log10 of the norm at the vertex (log10 lambda_opt, in the curve's norm
        units); the argmin's log10 norm when not ``ok``.
    log10_err : float
        Standard error of ``log10_lambda`` (in log10, decades): the vertex's
        delta-method error from the noise of ln eps (at least 1e-12); when not
        ``ok``, half the fitted span of log10 norm, at least a grid step over
        sqrt(12).
    ln_eps : float
        ln eps (natural log) of the parabola at its vertex; the smallest logged
        ln eps when not ``ok``.
    ln_eps_err : float
        Standard error of ``ln_eps`` (in ln eps): the delta-method error of the
        vertex value; the noise level of one point's ln eps when not ``ok``.
    ok : bool
        True when the parabola is convex with its vertex inside its points.
    """

    log10_lambda: float
    log10_err: float
    ln_eps: float
    ln_eps_err: float
    ok: bool


def parabola_fit(curve: Curve, noise: float | None = None, *,
                 half_width: int = PARABOLA_HALF_WIDTH, band: float | None = None) -> Vertex:
    """The vertex of a least-squares parabola in (log10 norm, ln eps) around the argmin.

    Notes
    -----
    ln eps = a v^2 + b v + c with v = u - u_i, C = s^2 (X^T X)^-1 the
    covariance of (a, b, c), s the noise level of ln eps. The vertex
    v* = -b / (2a) has Var v* = g^T C g with g = (b / (2 a^2), -1 / (2a), 0);
    its value f = c - b^2 / (4a) has Var f = h^T C h with
    h = (b^2 / (4 a^2), -b / (2a), 1).
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
    fallback = Vertex(float(u[i]), float(max(0.5 * (v[-1] - v[0]), _step(u) / math.sqrt(12.0))),
                      float(y[i]), s, False)
    if hi - lo < 4:
        return fallback
    X = np.stack([v * v, v, np.ones_like(v)], axis=1)
    cov = s * s * np.linalg.inv(X.T @ X)
    a, b, c = np.linalg.solve(X.T @ X, X.T @ y[lo:hi])
    if not a > 0 or not v[0] <= -b / (2 * a) <= v[-1]:
        return fallback
    g = np.array([b / (2 * a * a), -1.0 / (2 * a), 0.0])
    h = np.array([b * b / (4 * a * a), -b / (2 * a), 1.0])
    return Vertex(float(u[i] - b / (2 * a)), max(math.sqrt(max(float(g @ cov @ g), 0.0)), 1e-12),
                  float(c - b * b / (4 * a)), math.sqrt(max(float(h @ cov @ h), 0.0)), True)


def parabola_estimate(curve: Curve, noise: float | None = None) -> tuple[float, float]:
    """The vertex of the local parabola (:func:`parabola_fit`) and its delta-method error."""
    v = parabola_fit(curve, noise)
    return v.log10_lambda, v.log10_err


def parabola3_estimate(curve: Curve, noise: float | None = None) -> tuple[float, float]:
    """:func:`parabola_estimate` on 3 points each side of the argmin."""
    v = parabola_fit(curve, noise, half_width=3)
    return v.log10_lambda, v.log10_err


def band_estimate(curve: Curve, noise: float | None = None) -> tuple[float, float]:
    """The vertex of a parabola through the points within ``BAND`` of the minimum in ln eps.

    The band is a ratio of errors (eps <= 1.22 eps_min, or 2 noise levels when the
    noise is larger), so on curves that collapse, eps / eps_opt = Phi(lambda / lambda_opt),
    it covers the same stretch of lambda / lambda_opt at every P: whatever bias an
    asymmetric minimum gives the vertex, it is the same at every P and leaves gamma2 alone.
    At least ``PARABOLA_HALF_WIDTH`` points on each side are used.
    """
    v = parabola_fit(curve, noise, band=BAND)
    return v.log10_lambda, v.log10_err


def basin_estimate(curve: Curve, noise: float | None = None) -> tuple[float, float]:
    """The basin's centre and half its width (:func:`normscale.laws.basin.find_basin`)."""
    b = find_basin(curve, noise=noise)
    return float(math.log10(b.lambda_opt)), float(b.log10_err)


#: name -> estimator(curve, noise=None) -> (log10 lambda_opt, its standard error)
ESTIMATORS = {"argmin": argmin_estimate, "parabola": parabola_estimate,
              "parabola3": parabola3_estimate, "band": band_estimate, "basin": basin_estimate}
