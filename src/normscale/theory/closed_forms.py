"""Learning curves of the teacher-student perceptron with their own scalar equations.

These are the references of docs/science.md 1.2 (Engel & Van den Broeck,
"Statistical Mechanics of Learning", ch. 2-4): Hebb's rule (closed form),
Gardner's maximally stable perceptron, Gibbs learning and the Bayes-optimal
student. They are solved here independently of the general saddle-point
solver (plain ``scipy.integrate.quad`` and ``brentq``), so that they can
serve as checks of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtr

from normscale._validation import POSITIVE, check_param

_SQRT_2PI = np.sqrt(2.0 * np.pi)


@dataclass(frozen=True)
class ReferenceCurvePoint:
    """One point of a reference learning curve: the overlap R and eps = arccos(R)/pi."""

    alpha: float  # P / N, the examples per weight
    R: float  # the overlap of the student's direction with the teacher's
    eps: float  # the generalisation error arccos(R) / pi
    kappa: float = float("nan")  # the margin, for the maximally stable perceptron


def _phi(t: float) -> float:
    return float(np.exp(-0.5 * t * t) / _SQRT_2PI)


def hebb_overlap(*, alpha: float) -> float:
    """R of Hebb's rule, R = sqrt(2 alpha / (2 alpha + pi)) (docs/science.md 1.2)."""
    check_param("hebb_overlap", "alpha", alpha, POSITIVE)
    return float(np.sqrt(2.0 * alpha / (2.0 * alpha + np.pi)))


def hebb_error(*, alpha: float) -> float:
    """eps_0 = arccos(R_Hebb)/pi, the lambda -> 0 limit of the logistic loss (science.md 1.2)."""
    return float(np.arccos(hebb_overlap(alpha=alpha)) / np.pi)


def max_stability(*, alpha: float) -> ReferenceCurvePoint:
    """Gardner's maximally stable perceptron learning a teacher (docs/science.md 1.2).

    Notes
    -----
    The x -> infinity limit of the saddle point of docs/science.md 1.4 for the
    hinge loss with margin kappa, whose displacement is y(t) = (kappa - t)_+:

        1 - R^2 = alpha * int dt P_R(t) (kappa - t)_+^2
        R       = alpha * sqrt(2/pi) * E_{g ~ N(0, 1 - R^2)} (kappa - g)_+

    (the second from the R equation after an integration by parts). The
    second gives kappa(R) in closed form up to a scalar root; the first is
    then a scalar equation in R. alpha * eps -> 0.5 at large alpha.
    """
    check_param("max_stability", "alpha", alpha, POSITIVE)

    def kappa_of(theta: float) -> float:
        r, s = np.cos(theta), np.sin(theta)

        def mean_gap(k: float) -> float:  # E (k - g)_+ for g ~ N(0, s^2), increasing in k
            return k * ndtr(k / s) + s * _phi(k / s)

        target = r / (alpha * np.sqrt(2.0 / np.pi))
        hi = max(target, s)
        while mean_gap(hi) < target:
            hi *= 2.0
        lo = -10.0 * s
        return brentq(lambda k: mean_gap(k) - target, lo, hi, xtol=1e-15, rtol=1e-15)

    def gap(theta: float) -> float:
        k = kappa_of(theta)
        cot = 1.0 / np.tan(theta)

        def integrand(t: float) -> float:
            return 2.0 * _phi(t) * ndtr(t * cot) * (k - t) ** 2

        # breakpoints at the scales of the integrand: 0 (width s) and the kink at kappa
        cuts = sorted({-12.0, min(k, 0.0), k})
        total = sum(quad(integrand, a, b, epsabs=1e-300, epsrel=1e-12, limit=400)[0]
                    for a, b in zip(cuts, cuts[1:], strict=False) if b > a)
        return alpha * total - np.sin(theta) ** 2

    theta = _root_in_theta(gap)
    return ReferenceCurvePoint(alpha, float(np.cos(theta)), float(theta / np.pi), kappa_of(theta))


def _root_in_theta(fun) -> float:
    """The root in theta in (0, pi/2) of ``fun``, bracketed by halving theta from pi/2."""
    hi = np.pi / 2 * (1 - 1e-12)
    f_hi = fun(hi)
    lo = hi
    for _ in range(60):
        lo /= 2.0
        if np.sign(fun(lo)) != np.sign(f_hi):
            break
        hi, f_hi = lo, fun(lo)
    else:
        raise RuntimeError("no sign change found in theta")
    return brentq(fun, lo, hi, xtol=1e-15, rtol=1e-14)


def gibbs(*, alpha: float) -> ReferenceCurvePoint:
    """Gibbs learning (a student drawn uniformly from the version space).

    Notes
    -----
    Engel & Van den Broeck eq. (2.42), with R = q:

        R / sqrt(1 - R) = (alpha / pi) * int Dt exp(-R t^2 / 2) / H(-sqrt(R) t)

    alpha * eps -> 0.625 at large alpha.
    """
    check_param("gibbs", "alpha", alpha, POSITIVE)
    return ReferenceCurvePoint(alpha, *_gibbs_overlap_eps(alpha))


def _gibbs_overlap_eps(alpha: float) -> tuple[float, float]:
    def rhs(r: float) -> float:
        sr = np.sqrt(r)

        def integrand(t: float) -> float:  # phi(t) exp(-R t^2/2) / Phi(sqrt(R) t), in logs
            return float(np.exp(-0.5 * (1.0 + r) * t * t - log_ndtr(sr * t)) / _SQRT_2PI)

        return alpha / np.pi * quad(integrand, -np.inf, np.inf, epsabs=0, epsrel=1e-13,
                                    limit=200)[0]

    # unknown theta with R = cos(theta): R / sqrt(1 - R) - rhs(R) is negative near theta = pi/2
    theta = _root_in_theta(lambda th: rhs(np.cos(th)) - np.cos(th) / np.sqrt(1 - np.cos(th)))
    r = float(np.cos(theta))
    return r, float(theta / np.pi)


def bayes(*, alpha: float) -> ReferenceCurvePoint:
    """The Bayes-optimal student: R_Bayes = sqrt(R_Gibbs) (the centre of the version space).

    alpha * eps -> 0.442 at large alpha. No student, and so no fixed-norm
    curve, has a lower error (docs/science.md 1.2).
    """
    check_param("bayes", "alpha", alpha, POSITIVE)
    r_gibbs, _ = _gibbs_overlap_eps(alpha)
    r = float(np.sqrt(r_gibbs))
    return ReferenceCurvePoint(alpha, r, float(np.arccos(r) / np.pi))
