"""gamma1 corrected for the bend of the curves towards their minimum (law 1, automatic).

The early law eps ~ lambda^-gamma1 holds only well below lambda_opt: any
window near the elbow sees a local slope below gamma1 (by 6% on curves that
obey the laws exactly, 13% with a steep early law, 18% when the error rises
slowly past its minimum; docs/laws.md, calibration). normscale therefore
fits the bend instead of ignoring it: each seed-averaged curve, from the
start of the early law up to its last point past the minimum, is fitted
with the sum of the early law and the late rise,

    eps(lambda) = A (lambda / lambda_opt)^-gamma1 + B (lambda / lambda_opt)^beta,

the realistic form of the paper's picture (a power law in early training
joined to a rise past the optimum), by least squares in ln eps. gamma1 is
the mean over P of the per-P exponents (the paper's estimator, now free of
the bend), its error their standard error over P combined with half the
change of gamma1 when the fit starts at the peak of the slope profile
rather than at the start of its holding stretch (the start of training,
a plateau at chance level, bends the curves from the other side).

A curve that never rises past its minimum (at least ``RISE_X`` lambda_opt)
cannot pin beta, and a curve the sum form misses by more than its noise
does not have that shape: both are left out. With fewer than 2 curves left,
or per-P exponents that scatter by more than ``MAX_SPREAD``, the window
estimator is kept, with the bend as an error (:mod:`normscale.laws.verdict`).
The model is closed under lambda -> c lambda^k (gamma1 -> gamma1/k,
beta -> beta/k), so the estimate is equivariant in the units of the norm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from normscale.laws.curves import Curve
from normscale.laws.window import noise_level

#: a curve takes part when it reaches this far past its minimum (lambda / lambda_opt)
RISE_X = 1.5
#: ... and has this many points from the start of the fit on (4 parameters)
MIN_FIT_POINTS = 6
#: starting values of beta for the least squares (the best of the starts is kept)
BETA_STARTS = (0.3, 1.0, 3.0)
#: a fit is kept when its rms residual in ln eps is within this many noise levels of the
#: curve: otherwise the curve does not have the sum form, and the window estimator is used
MAX_RMS_NOISE = 2.0
#: ... and the per-P exponents may scatter by this fraction of their mean (as the window's)
MAX_SPREAD = 0.35
#: evaluations per least-squares start (a fit that needs more is not a sum form)
MAX_NFEV = 200
#: the fitted model's minimum may sit this many logging steps from lambda_opt
MAX_MIN_SHIFT_STEPS = 3.0


@dataclass(frozen=True)
class SumFormGamma1:
    """gamma1 from the per-P sum-form fits (see the module docstring).

    Each curve is fitted with eps = A (lambda/lambda_opt)^-gamma1 + B
    (lambda/lambda_opt)^beta from ``x_peak`` on (the slope profile's steepest
    point), and again from ``x_start`` (the start of its holding stretch) for
    the error; only the curves fitted from both take part.

    Attributes
    ----------
    gamma1 : float
        The early exponent of law 1: the mean over ``P_used`` of ``slopes``.
    gamma1_err : float
        sqrt(se^2 + ``start_shift``^2), se the standard error over P of
        ``slopes`` (sd with ddof 1 over sqrt(n)).
    slopes : tuple of float
        The per-P exponents gamma1 of the fits started at ``x_peak``, > 0, in
        the order of ``P_used``.
    betas : tuple of float
        The per-P late-rise exponents beta of the same fits, > 0.
    P_used : tuple of float
        The sizes P whose curves took part (at least 2).
    start_shift : float
        Half the change of the mean exponent when the fits start at
        ``x_start`` instead of ``x_peak``: |mean at peak - mean at start| / 2,
        a systematic error in units of gamma1.
    """

    gamma1: float
    gamma1_err: float
    slopes: tuple[float, ...]
    betas: tuple[float, ...]
    P_used: tuple[float, ...]
    start_shift: float


def fit_sum_form(curve: Curve, lambda_opt: float, x_lo: float,
                 gamma1_start: float, noise: float, step: float) -> tuple[float, float] | None:
    """(gamma1, beta) of one curve from ``x_lo`` (lambda / lambda_opt) on, or None when it
    cannot be fitted, the fit misses the curve by more than ``MAX_RMS_NOISE`` noise levels, or
    its minimum is more than ``MAX_MIN_SHIFT_STEPS`` logging steps (``step``, decades) from
    lambda_opt."""
    x = curve.norm / lambda_opt
    keep = x >= x_lo * (1 - 1e-9)
    x, y = x[keep], np.log(curve.error[keep])
    if x.size < MIN_FIT_POINTS or x.max() < RISE_X or x.min() >= 1.0:
        return None
    from scipy.optimize import least_squares  # here: the import costs more than a fit

    lx = np.log(x)
    i = int(np.argmin(y))

    # parameters (ln A, ln gamma1, ln B, ln beta): positive exponents without bounds, so the
    # fast Levenberg-Marquardt solver applies
    def resid(p: np.ndarray) -> np.ndarray:
        a, lg, b, lb = p
        return np.logaddexp(a - np.exp(lg) * lx, b + np.exp(lb) * lx) - y

    def jac(p: np.ndarray) -> np.ndarray:
        a, lg, b, lb = p
        t1, t2 = a - np.exp(lg) * lx, b + np.exp(lb) * lx
        w1 = np.exp(t1 - np.logaddexp(t1, t2))  # the early term's share of eps
        w2 = 1.0 - w1
        return np.stack([w1, -w1 * lx * np.exp(lg), w2, w2 * lx * np.exp(lb)], axis=1)

    best = None
    g0 = min(max(gamma1_start, 1e-2), 10.0)
    for beta0 in BETA_STARTS:
        p0 = [y[i] + g0 * lx[i], math.log(g0), y[i] - beta0 * lx[i], math.log(beta0)]
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                r = least_squares(resid, p0, jac=jac, method="lm", max_nfev=MAX_NFEV)
            except (ValueError, np.linalg.LinAlgError):
                continue
        if r.success and np.all(np.isfinite(r.x)) and (best is None or r.cost < best.cost):
            best = r
    if best is None or np.sqrt(np.mean(best.fun ** 2)) > MAX_RMS_NOISE * noise:
        return None
    a, lg, b, lb = (float(v) for v in best.x)
    if not (-30.0 < lg < 5.0 and -30.0 < lb < 5.0):
        return None  # an exponent run off to 0 or to infinity: not the sum form
    g1, beta = math.exp(lg), math.exp(lb)
    # the model's own minimum, x* = (g1 A / (beta B))^(1 / (g1 + beta)), must be the curve's:
    # a rise term that flattened into a floor (beta -> 0) fits an approach to an offset, not
    # the bend of the early law into a minimum
    log_x_min = (math.log(g1 / beta) + a - b) / (g1 + beta)
    if abs(log_x_min) > MAX_MIN_SHIFT_STEPS * step * math.log(10):
        return None
    return float(g1), float(beta)


def sum_form_gamma1(curves: list[Curve], lambda_opt: np.ndarray, *, x_start: float,
                    x_peak: float, gamma1_start: float) -> SumFormGamma1 | None:
    """gamma1 from the per-P sum-form fits started at ``x_peak`` (the profile's steepest
    point), its error widened by half the change when started at ``x_start`` (the start of
    the holding stretch); None when fewer than 2 curves can be fitted from both."""
    at_peak, at_start, betas, used = [], [], [], []
    for c, lo in zip(curves, lambda_opt, strict=True):
        noise = noise_level([c])
        step = float(np.median(np.diff(np.log10(c.norm))))
        a = fit_sum_form(c, float(lo), x_peak, gamma1_start, noise, step)
        b = a and fit_sum_form(c, float(lo), x_start, a[0], noise, step)
        if a is None or b is None:
            continue
        at_peak.append(a[0])
        at_start.append(b[0])
        betas.append(a[1])
        used.append(c.P)
    if len(used) < 2:
        return None
    g = np.array(at_peak)
    if not float(g.std(ddof=1)) <= MAX_SPREAD * abs(float(g.mean())):
        return None
    shift = 0.5 * abs(float(g.mean()) - float(np.mean(at_start)))
    se = float(g.std(ddof=1) / math.sqrt(g.size))
    return SumFormGamma1(float(g.mean()), math.hypot(se, shift), tuple(at_peak), tuple(betas),
                         tuple(used), shift)
