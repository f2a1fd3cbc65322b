"""The replica-symmetric zero-temperature saddle point of the fixed-norm perceptron.

docs/science.md 1.4: E/N = extr over (R, x) of alpha E_t[M_x(t)] - (1 - R^2)/(2x).
With y(t) = D*(t) - t the proximal displacement of the loss, the two
stationarity conditions read

    1 - R^2 = alpha * E_{t ~ P_R}[ y(t)^2 ]                       (x equation)
    R       = alpha * sqrt(2/pi) * E_{g ~ N(0, 1 - R^2)}[ y(g) ]  (R equation)

The second is docs/science.md's ``R/x = -alpha int dP_R/dR M_x`` after an
integration by parts in t: int_{-inf}^t dP_R/dR = -exp(-t^2/(2 s^2))/(pi s)
with s^2 = 1 - R^2, and dM_x/dt = -y/x. It needs neither V nor x itself, only
y, which stays moderate when x overflows (x ~ exp(2 lambda kappa) for large
lambda), so the unknowns are theta = arccos(R) and log x, and the equations
are solved in logarithmic form by a damped Newton iteration with an analytic
Jacobian. A bracketed nested solve (log x for each theta, then theta) takes
over when Newton fails; a point that converges by neither is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale._validation import POSITIVE, check_param
from normscale.errors import NormscaleError
from normscale.theory.closed_forms import hebb_error
from normscale.theory.integrals import (
    Grid,
    gaussian_density,
    gaussian_density_ds,
    graded_grid,
    teacher_density,
    teacher_density_dtheta,
)
from normscale.theory.losses import Loss

TOL = 1e-10  # on the residuals, which are relative (log) errors of the two equations
_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)
_THETA_MAX = np.pi / 2 * (1 - 1e-12)
_LOG_X_CAP = 1e5  # |log x| beyond this: no solution (e.g. a hinge below maximal stability)
_HUGE_LOG_X = 700.0  # x = exp(log x) overflows beyond


@dataclass(frozen=True)
class SaddlePoint:
    """The solution at one (alpha, loss) and what follows from it.

    Attributes
    ----------
    alpha : float
        P / N.
    loss : str
        The loss and its parameters, e.g. ``logistic(lam=2.5)``.
    R : float
        Teacher-student overlap.
    x : float
        The conjugate variable (inf when it overflows; see ``log_x``).
    log_x : float
        log(x).
    eps : float
        arccos(R) / pi.
    eps_hat : float
        eps / eps_0 with eps_0 the error of Hebb's rule (the lambda -> 0 limit).
    train_loss : float
        E[V(D*)], the training loss per example.
    train_error : float
        P(D* < 0), the fraction of misclassified training examples.
    free_energy : float
        E/N at the saddle point (= alpha * train_loss when it is exact).
    n_iter : int
        Evaluations of the equations used by the solver.
    converged : bool
        Whether both equations hold to ``residual <= TOL``.
    residual : float
        max |relative error| of the two equations at the returned point.
    lam : float
        The norm lambda when the loss comes from a norm family, else nan.
    """

    alpha: float
    loss: str
    R: float
    x: float
    log_x: float
    eps: float
    eps_hat: float
    train_loss: float
    train_error: float
    free_energy: float
    n_iter: int
    converged: bool
    residual: float
    lam: float = float("nan")


@dataclass(frozen=True)
class _State:
    """Unknowns v = log(theta), R = cos(theta), and log x."""

    v: float
    log_x: float

    @property
    def theta(self) -> float:
        return float(np.exp(self.v))


def _grid(loss: Loss, theta: float, log_x: float, extra: tuple[float, ...] = ()) -> Grid:
    feats = loss.features(log_x)
    scale = min(np.sin(theta), feats.width if feats.width > 0 else np.inf, 1.0)
    return graded_grid((0.0, *feats.points, *extra), scale)


def _equations(alpha: float, loss: Loss, z: _State) -> tuple[np.ndarray, np.ndarray]:
    """Residuals F (log form) of the two equations and their Jacobian in (v, log x)."""
    theta = z.theta
    if not 0 < theta < np.pi / 2:
        return np.full(2, np.nan), np.full((2, 2), np.nan)
    s, r = np.sin(theta), np.cos(theta)
    g = _grid(loss, theta, z.log_x)
    y, y_lx = loss.prox(g.t, z.log_x)
    p = teacher_density(g.t, theta)
    n = gaussian_density(g.t, s)
    a = np.sum(g.w * p * y * y)
    b = np.sum(g.w * n * y)
    if not (a > 0 and b > 0):
        return np.full(2, np.nan), np.full((2, 2), np.nan)
    f = np.array([np.log(alpha * a / (s * s)), np.log(alpha * _SQRT_2_OVER_PI * b / r)])
    a_theta = np.sum(g.w * teacher_density_dtheta(g.t, theta) * y * y)
    b_theta = np.sum(g.w * gaussian_density_ds(g.t, s) * y) * r
    jac = np.array([
        [theta * (a_theta / a - 2.0 * r / s), np.sum(g.w * p * 2.0 * y * y_lx) / a],
        [theta * (b_theta / b + s / r), np.sum(g.w * n * y_lx) / b],
    ])
    return f, jac


def _newton(alpha: float, loss: Loss, z: _State, *, max_iter: int = 50
            ) -> tuple[_State, float, int]:
    """Damped Newton from z; returns (state, residual, evaluations)."""
    f, jac = _equations(alpha, loss, z)
    n_eval = 1
    res = float(np.max(np.abs(f)))
    if not np.isfinite(res):
        return z, np.inf, n_eval
    for _ in range(max_iter):
        if res <= TOL:
            break
        try:
            step = np.linalg.solve(jac, -f)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        # never jump beyond theta = pi/2 nor by more than a factor e^2 in theta
        step *= min(1.0, 2.0 / max(abs(step[0]), 1e-300))
        damp, accepted = 1.0, False
        while damp > 1e-8:
            trial = _State(min(z.v + damp * step[0], np.log(_THETA_MAX)), z.log_x + damp * step[1])
            f_new, jac_new = _equations(alpha, loss, trial)
            n_eval += 1
            res_new = float(np.max(np.abs(f_new)))
            if np.isfinite(res_new) and res_new < (1 - 1e-4 * damp) * res:
                z, f, jac, res, accepted = trial, f_new, jac_new, res_new, True
                break
            damp *= 0.5
        if not accepted or abs(z.log_x) > _LOG_X_CAP:
            break
    return z, res, n_eval


def _nested(alpha: float, loss: Loss) -> tuple[_State, int]:
    """Bracketed solve: log x(theta) from the x equation, then theta from the R equation."""
    from scipy.optimize import brentq

    count = [0]

    def f_x(v: float, log_x: float) -> float:
        count[0] += 1
        theta = np.exp(v)
        g = _grid(loss, theta, log_x)
        y, _ = loss.prox(g.t, log_x)
        a = np.sum(g.w * teacher_density(g.t, theta) * y * y)
        return float(np.log(alpha * a) - 2.0 * np.log(np.sin(theta))) if a > 0 else -np.inf

    def log_x_of(v: float) -> float:
        lo = hi = np.log(np.sin(np.exp(v)) / np.sqrt(alpha))  # Hebb's x
        step = 1.0
        while f_x(v, hi) < 0:
            lo, hi, step = hi, hi + step, 2 * step
            if hi > _LOG_X_CAP:
                raise NormscaleError("x diverges")
        while f_x(v, lo) > 0:
            hi, lo, step = lo, lo - step, 2 * step
            if lo < -_LOG_X_CAP:
                raise NormscaleError("x vanishes")
        return brentq(lambda lx: f_x(v, lx), lo, hi, xtol=1e-12, rtol=1e-14)

    def f_r(v: float) -> float:
        theta = np.exp(v)
        log_x = log_x_of(v)
        g = _grid(loss, theta, log_x)
        y, _ = loss.prox(g.t, log_x)
        b = np.sum(g.w * gaussian_density(g.t, np.sin(theta)) * y)
        return float(alpha * _SQRT_2_OVER_PI * b - np.cos(theta))

    # f_r > 0 near theta = pi/2 (R -> 0); scan down for a sign change
    hi = np.log(_THETA_MAX)
    lo = None
    for v in np.log(_THETA_MAX) - np.arange(0.25, 30.0, 0.25):
        try:
            if f_r(v) < 0:
                lo = v
                break
        except NormscaleError:
            continue
        hi = v
    if lo is None:
        raise NormscaleError("no bracket for R")
    v = brentq(f_r, lo, hi, xtol=1e-13, rtol=1e-14)
    return _State(v, log_x_of(v)), count[0]


def _observables(alpha: float, loss: Loss, z: _State, residual: float, n_eval: int,
                 lam: float) -> SaddlePoint:
    theta = z.theta
    s, r = np.sin(theta), np.cos(theta)
    x = float(np.exp(z.log_x)) if z.log_x < _HUGE_LOG_X else np.inf
    # D* < 0 exactly for t < t0 = x V'(0): make t0 a panel end
    t0 = -np.exp(min(z.log_x, _HUGE_LOG_X)) * float(-loss.d1(np.zeros(1))[0])
    g = _grid(loss, theta, z.log_x, (t0,))
    y, _ = loss.prox(g.t, z.log_x)
    p = g.w * teacher_density(g.t, theta)
    train_loss = float(np.sum(p * loss.value(g.t + y)))
    train_error = float(np.sum(p[g.t + y < 0]))
    free_energy = alpha * train_loss + (alpha * np.sum(p * y * y) - s * s) / (2.0 * x)
    eps = float(theta / np.pi)
    return SaddlePoint(
        alpha=alpha, loss=loss.describe(), R=float(r), x=x, log_x=float(z.log_x), eps=eps,
        eps_hat=eps / hebb_error(alpha=alpha), train_loss=train_loss, train_error=train_error,
        free_energy=float(free_energy), n_iter=n_eval, converged=bool(residual <= TOL),
        residual=float(residual), lam=lam)


def variational_energy(*, alpha: float, loss: Loss, R: float, log_x: float) -> float:
    """E/N(R, x) = alpha E_t[M_x(t)] - (1 - R^2)/(2x), before extremisation (docs/science.md 1.4).

    M_x(t) = V(D*) + (D* - t)^2/(2x) is the Moreau envelope. The solution of
    :func:`solve_saddle` is a stationary point of this function (used as an
    independent check of the equations' derivation).
    """
    check_param("variational_energy", "alpha", alpha, POSITIVE)
    theta = float(np.arccos(R))
    x = float(np.exp(log_x))
    g = _grid(loss, theta, log_x)
    y, _ = loss.prox(g.t, log_x)
    envelope = loss.value(g.t + y) + y * y / (2.0 * x)
    return float(alpha * np.sum(g.w * teacher_density(g.t, theta) * envelope)
                 - (1.0 - R * R) / (2.0 * x))


def hebb_state(alpha: float) -> _State:
    """Hebb's solution as a starting point: R = R_Hebb, x = sqrt((1 - R^2)/alpha)."""
    theta = np.pi * hebb_error(alpha=alpha)
    return _State(float(np.log(theta)), float(np.log(np.sin(theta) / np.sqrt(alpha))))


def solve_saddle(*, alpha: float, loss: Loss, start: _State | None = None,
                 lam: float = float("nan")) -> SaddlePoint:
    """Solve the saddle point of docs/science.md 1.4 for one alpha and one loss.

    Parameters
    ----------
    alpha : float
        P / N, > 0.
    loss : Loss
        The loss (see :mod:`normscale.theory.losses`).
    start : optional
        A previous solution's state (continuation); default Hebb's solution.
    lam : float, optional
        The norm, only recorded in the result.

    Returns
    -------
    SaddlePoint
        ``converged`` is False when neither Newton nor the bracketed solver
        met the tolerance; the numbers are then those of the last iterate and
        must not be used.

    Notes
    -----
    Equations: docs/science.md 1.4, in the form given in this module's docstring.
    """
    check_param("solve_saddle", "alpha", alpha, POSITIVE)
    if not isinstance(loss, Loss):
        raise NormscaleError(f"The 'loss' parameter of solve_saddle must be a Loss. Got {loss!r}.")
    z0 = start if start is not None else hebb_state(alpha)
    z, res, n_eval = _newton(alpha, loss, z0)
    if res > TOL:
        try:
            z_b, n_b = _nested(alpha, loss)
            n_eval += n_b
            z, res, n_p = _newton(alpha, loss, z_b)
            n_eval += n_p
        except (NormscaleError, ValueError):
            pass
    return _observables(alpha, loss, z, res, n_eval, lam)


def state_of(point: SaddlePoint) -> _State:
    """The solver state of a solution (to continue from it)."""
    return _State(float(np.log(np.arccos(point.R))), point.log_x)
