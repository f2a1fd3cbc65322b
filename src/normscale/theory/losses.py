"""Convex losses V(D) of the stability D, with their proximal maps.

A loss is a small class: its value, first and second derivative, and
optionally a closed-form (or specialised) proximal map and the positions of
its sharp features. The saddle-point solver (:mod:`normscale.theory.saddle`)
only ever calls :meth:`Loss.prox` and :meth:`Loss.features`.

Conventions (docs/science.md 1.1 and 1.4)
------------------------------------
The proximal map at "temperature" x > 0 is
``D*(t) = argmin_D V(D) + (D - t)^2 / (2 x)``; we work with the displacement
``y(t) = D*(t) - t = -x V'(D*)`` and with ``log_x = log(x)``, because for
large norms lambda the solution has x ~ exp(2 lambda kappa), far beyond the
range of a float.

The norm-lambda families used for learning curves (:func:`loss_family`):

- ``"logistic"``: V(D) = log(1 + exp(-2 lambda D)) / lambda (the paper's loss);
- ``"hinge"``: V(D) = max(0, 1 - lambda D) / lambda, i.e. :class:`Hinge` with
  margin kappa = 1 / lambda (the hinge loss of a student of norm lambda);
- ``"square"``: V(D) = (1 - lambda D)^2 / (2 lambda^2), :class:`Square` with
  target 1 / lambda;
- ``"linear"``: V(D) = -D (Hebb's rule; lambda plays no role).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy.special import expit

from normscale._validation import POSITIVE, Interval, Options, check_param
from normscale.theory.prox import prox_bracketed

# log(x) beyond which x is treated as infinite by losses with a bounded prox
_LOG_X_HUGE = 700.0


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)) without overflow."""
    z = np.asarray(z, dtype=float)
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


@dataclass(frozen=True)
class Features:
    """Where the proximal displacement y(t) has sharp features, and their width.

    Attributes
    ----------
    points : tuple of float
        Positions on the t axis of the kinks, or of the centres of fast
        transitions (none for a smooth displacement).
    width : float
        The transitions' width on the t axis (0 for true kinks, ``inf`` when
        there are none).
    """

    points: tuple[float, ...] = ()
    width: float = np.inf


class Loss(ABC):
    """A convex loss V(D) of the stability D (docs/science.md 1.4).

    Subclasses define :meth:`value`, :meth:`d1`, :meth:`d2`; they may override
    :meth:`prox` (closed forms, extreme regimes) and :meth:`features`.
    """

    name: str = "loss"

    @abstractmethod
    def value(self, d: np.ndarray) -> np.ndarray:
        """V(D)."""

    @abstractmethod
    def d1(self, d: np.ndarray) -> np.ndarray:
        """V'(D)."""

    @abstractmethod
    def d2(self, d: np.ndarray) -> np.ndarray:
        """V''(D) (0 where V is piecewise linear)."""

    def prox(self, t: np.ndarray, log_x: float) -> tuple[np.ndarray, np.ndarray]:
        """Proximal displacement ``y = D*(t) - t`` and ``dy/dlog(x)``.

        The default solves ``D - t + x V'(D) = 0`` by safeguarded Newton on the
        bracket between t and t - x V'(t) (:func:`~normscale.theory.prox.prox_bracketed`).
        """
        x = float(np.exp(log_x))
        d = prox_bracketed(self.d1, self.d2, np.asarray(t, dtype=float), x)
        y = d - t
        return y, y / (1.0 + x * self.d2(d))

    def features(self, log_x: float) -> Features:
        """Sharp features of y(t) for this x (default: none)."""
        return Features()

    def describe(self) -> str:
        """A short label with the parameters, e.g. ``logistic(lam=2.5)``."""
        return self.name


class Logistic(Loss):
    """The paper's pseudo-likelihood V(D) = log(1 + exp(-2 lam D)) / lam (docs/science.md 1.1).

    Its proximal map is solved in the variable ``l = log(D* - t)``, where the
    equation ``l + softplus(2 lam (t + e^l)) = log(2 x)`` is convex and
    increasing: Newton started on the right of the root (from an explicit
    upper bound) converges monotonically, for any x up to exp(1e300).
    """

    name = "logistic"

    def __init__(self, *, lam: float):
        self.lam = float(check_param("Logistic", "lam", lam, POSITIVE))

    def value(self, d):
        return softplus(-2.0 * self.lam * np.asarray(d, dtype=float)) / self.lam

    def d1(self, d):
        return -2.0 * expit(-2.0 * self.lam * np.asarray(d, dtype=float))

    def d2(self, d):
        z = 2.0 * self.lam * np.asarray(d, dtype=float)
        return 4.0 * self.lam * expit(z) * expit(-z)

    def prox(self, t, log_x):
        t = np.asarray(t, dtype=float)
        two_lam = 2.0 * self.lam
        target = np.log(2.0) + log_x
        # upper bound of the root: min of the roots of l = target and of
        # l + 2 lam (t + e^l) = target; the latter is v - log(2 lam) with v the
        # root of v + e^v = L, and v <= L, v <= log(L) when L > 1.
        big_l = np.log(2.0 * two_lam) + log_x - two_lam * t
        v_up = np.where(big_l > 1.0, np.log(np.maximum(big_l, 1.0)), big_l)
        ell = np.minimum(target, v_up - np.log(two_lam))
        for _ in range(100):
            y = np.exp(ell)
            z = two_lam * (t + y)
            h = ell + softplus(z) - target
            dh = 1.0 + two_lam * y * expit(z)
            step = h / dh
            ell = ell - step
            if np.all(np.abs(step) <= 1e-14 * (1.0 + np.abs(ell))):  # y to ~1e-14 relative
                break
        y = np.exp(ell)
        dh = 1.0 + two_lam * y * expit(two_lam * (t + y))
        return y, y / dh

    def features(self, log_x):
        # D* crosses the curved part of V, |lam D| < log(4 lam x)/2, at these t
        d_f = max(np.log(4.0 * self.lam) + log_x, 0.0) / (2.0 * self.lam)
        d = np.array([-d_f, 0.0, d_f])
        # t = D + x V'(D) = D - 2 x sigmoid(-2 lam D), in log space
        shift = 2.0 * np.exp(np.minimum(log_x - softplus(2.0 * self.lam * d), _LOG_X_HUGE))
        return Features(tuple(d - shift), 1.0 / self.lam)

    def describe(self):
        return f"logistic(lam={self.lam:g})"


class Hinge(Loss):
    """V(D) = max(0, kappa - D), the hinge loss with margin kappa.

    As kappa decreases to Gardner's maximal stability kappa_max(alpha), x
    diverges and the solution tends to the maximally stable perceptron
    (:func:`~normscale.theory.closed_forms.max_stability`); below kappa_max
    the ground state is degenerate and the solver reports no convergence.
    """

    name = "hinge"

    def __init__(self, *, kappa: float):
        self.kappa = float(check_param("Hinge", "kappa", kappa, Interval(Real, None, None)))

    def value(self, d):
        return np.maximum(self.kappa - np.asarray(d, dtype=float), 0.0)

    def d1(self, d):
        return -(np.asarray(d, dtype=float) < self.kappa).astype(float)

    def d2(self, d):
        return np.zeros_like(np.asarray(d, dtype=float))

    def prox(self, t, log_x):
        x = np.exp(min(log_x, _LOG_X_HUGE))
        gap = self.kappa - np.asarray(t, dtype=float)
        y = np.clip(gap, 0.0, x)
        return y, np.where(gap > x, x, 0.0)

    def features(self, log_x):
        x = np.exp(min(log_x, _LOG_X_HUGE))
        return Features((self.kappa - x, self.kappa), 0.0)

    def describe(self):
        return f"hinge(kappa={self.kappa:g})"


class Square(Loss):
    """V(D) = (target - D)^2 / 2, the square loss."""

    name = "square"

    def __init__(self, *, target: float = 1.0):
        self.target = float(check_param("Square", "target", target, Interval(Real, None, None)))

    def value(self, d):
        return 0.5 * (self.target - np.asarray(d, dtype=float)) ** 2

    def d1(self, d):
        return np.asarray(d, dtype=float) - self.target

    def d2(self, d):
        return np.ones_like(np.asarray(d, dtype=float))

    def prox(self, t, log_x):
        x = np.exp(log_x)
        y = x * (self.target - np.asarray(t, dtype=float)) / (1.0 + x)
        return y, y / (1.0 + x)

    def describe(self):
        return f"square(target={self.target:g})"


class Linear(Loss):
    """V(D) = -D: its minimiser on the sphere is Hebb's rule (docs/science.md 1.2)."""

    name = "linear"

    def value(self, d):
        return -np.asarray(d, dtype=float)

    def d1(self, d):
        return -np.ones_like(np.asarray(d, dtype=float))

    def d2(self, d):
        return np.zeros_like(np.asarray(d, dtype=float))

    def prox(self, t, log_x):
        y = np.full_like(np.asarray(t, dtype=float), np.exp(log_x))
        return y, y


FAMILIES: dict[str, Callable[[float], Loss]] = {
    "logistic": lambda lam: Logistic(lam=lam),
    "hinge": lambda lam: Hinge(kappa=1.0 / lam),
    "square": lambda lam: Square(target=1.0 / lam),
    "linear": lambda lam: Linear(),
}


def loss_family(name: str) -> Callable[[float], Loss]:
    """The loss of a student of norm lambda, for a family name (see module notes)."""
    check_param("loss_family", "name", name, Options(tuple(FAMILIES)))
    return FAMILIES[name]
