"""Replica theory of the fixed-norm perceptron (docs/science.md 1.2, 1.4)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from normscale.errors import ParameterError
from normscale.theory import (
    Hinge,
    Linear,
    Logistic,
    Loss,
    Square,
    bayes,
    hebb_error,
    hebb_overlap,
    lambda_opt,
    learning_curve,
    max_stability,
    solve,
    solve_saddle,
    variational_energy,
)
from normscale.theory.integrals import gaussian_density, teacher_density
from normscale.theory.prox import prox_bracketed


@pytest.mark.parametrize("alpha", [0.1, 1.0, 5.0, 1000.0])
def test_linear_loss_gives_hebb(alpha):
    p = solve_saddle(alpha=alpha, loss=Linear())
    assert p.converged
    assert p.R == pytest.approx(hebb_overlap(alpha=alpha), abs=1e-8)


def test_logistic_tends_to_hebb_linearly_in_lambda():
    d = [solve(alpha=5.0, lam=lam).eps - hebb_error(alpha=5.0) for lam in (1e-2, 1e-3, 1e-4)]
    assert abs(d[2]) < 2e-5
    assert d[0] / d[1] == pytest.approx(10.0, rel=0.05)
    assert d[1] / d[2] == pytest.approx(10.0, rel=0.05)


@pytest.mark.parametrize("alpha,lam,eps", [
    (1, 0.5, 0.2599), (5, 0.5, 0.1243), (2, 1.5, 0.1754), (5, 2.5, 0.0871), (10, 5, 0.0453)])
def test_anchor_values(alpha, lam, eps):
    p = solve(alpha=alpha, lam=lam)
    assert p.converged
    assert p.eps == pytest.approx(eps, abs=5e-4)


@pytest.mark.parametrize("alpha", [0.1, 1.0, 10.0, 100.0, 1000.0])
def test_never_below_bayes(alpha):
    c = learning_curve(alpha=alpha, lams=np.geomspace(1e-3, 1e3, 19))
    assert c.converged
    assert np.all(c.eps > bayes(alpha=alpha).eps)


def test_large_lambda_rises_to_max_stability():
    c = learning_curve(alpha=5.0, lams=[30.0, 100.0, 300.0, 1000.0])
    assert c.converged
    assert c.eps[0] == pytest.approx(0.0908, abs=5e-4)
    assert np.all(np.diff(c.eps) > 0)
    ms = max_stability(alpha=5.0).eps
    assert np.all(c.eps < ms)
    assert c.eps[-1] == pytest.approx(ms, abs=2e-4)


def test_hinge_tends_to_max_stability_and_flags_below_it():
    ms = max_stability(alpha=5.0)
    near = solve_saddle(alpha=5.0, loss=Hinge(kappa=ms.kappa * 1.001))
    assert near.converged
    assert near.eps == pytest.approx(ms.eps, abs=2e-4)
    below = solve_saddle(alpha=5.0, loss=Hinge(kappa=0.5 * ms.kappa))
    assert not below.converged


def _quad_residuals(alpha, loss, p):
    """Both saddle-point equations re-integrated by scipy.quad (independent of the grid)."""
    theta = np.arccos(p.R)
    s = np.sin(theta)
    feats = loss.features(p.log_x)
    pts = sorted({0.0, *[q for q in feats.points if abs(q) < 11]})

    def integral(f, lo, hi):
        cuts = [lo, *[q for q in pts if lo < q < hi], hi]
        return sum(quad(f, a, b, epsabs=0, epsrel=1e-11, limit=500)[0]
                   for a, b in zip(cuts, cuts[1:], strict=False))

    y = lambda t: float(loss.prox(np.array([t]), p.log_x)[0][0])  # noqa: E731
    a = integral(lambda t: teacher_density(np.array([t]), theta)[0] * y(t) ** 2, -11, 11)
    b = integral(lambda t: gaussian_density(np.array([t]), s)[0] * y(t), -11 * s, 11 * s)
    return alpha * a / s**2 - 1, alpha * np.sqrt(2 / np.pi) * b / p.R - 1


@pytest.mark.parametrize("alpha,lam", [(5.0, 2.5), (5.0, 300.0), (200.0, 50.0)])
def test_equations_hold_under_independent_quadrature(alpha, lam):
    loss = Logistic(lam=lam)
    p = solve(alpha=alpha, lam=lam)
    r1, r2 = _quad_residuals(alpha, loss, p)
    assert abs(r1) < 1e-7 and abs(r2) < 1e-7


def test_solution_is_a_saddle_of_the_free_energy():
    loss = Logistic(lam=2.5)
    p = solve_saddle(alpha=5.0, loss=loss)
    f = lambda r, lx: variational_energy(alpha=5.0, loss=loss, R=r, log_x=lx)  # noqa: E731
    h = 1e-5
    d_r = (f(p.R + h, p.log_x) - f(p.R - h, p.log_x)) / (2 * h)
    d_x = (f(p.R, p.log_x + h) - f(p.R, p.log_x - h)) / (2 * h)
    assert abs(d_r) < 1e-7 and abs(d_x) < 1e-7
    # a minimum in R, a maximum in x
    assert f(p.R + 1e-2, p.log_x) > f(p.R, p.log_x) > f(p.R, p.log_x + 0.1)
    assert p.free_energy == pytest.approx(f(p.R, p.log_x), rel=1e-10)
    assert p.free_energy == pytest.approx(5.0 * p.train_loss, rel=1e-8)


@pytest.mark.parametrize("loss", [Logistic(lam=0.3), Logistic(lam=40.0), Square(target=0.7),
                                  Hinge(kappa=0.2)])
@pytest.mark.parametrize("log_x", [-6.0, 0.0, 3.0])
def test_specialised_prox_matches_generic_solver(loss, log_x):
    t = np.linspace(-5, 5, 41)
    y, y_lx = loss.prox(t, log_x)
    x = np.exp(log_x)
    d = prox_bracketed(loss.d1, loss.d2, t, x)
    assert np.allclose(y, d - t, rtol=1e-9, atol=1e-12 * (1 + x))
    # dy/dlog x by finite differences
    y_p, _ = loss.prox(t, log_x + 1e-6)
    y_m, _ = loss.prox(t, log_x - 1e-6)
    smooth = np.abs(t - getattr(loss, "kappa", 99)) > 1e-3  # away from the hinge's kinks
    smooth &= np.abs(t - getattr(loss, "kappa", 99) + x) > 1e-3
    assert np.allclose(y_lx[smooth], ((y_p - y_m) / 2e-6)[smooth], rtol=1e-5, atol=1e-9)


class _PlainLogistic(Loss):
    """The logistic loss given only by V, V', V'': the generic path of the solver."""

    name = "plain"

    def __init__(self, lam):
        self.lam = lam

    def value(self, d):
        return np.logaddexp(0, -2 * self.lam * d) / self.lam

    def d1(self, d):
        return -1 + np.tanh(self.lam * d)

    def d2(self, d):
        return self.lam / np.cosh(self.lam * d) ** 2


def test_a_new_loss_is_a_small_class():
    plain = solve_saddle(alpha=2.0, loss=_PlainLogistic(1.5))
    assert plain.converged
    assert plain.eps == pytest.approx(solve(alpha=2.0, lam=1.5).eps, abs=1e-8)


def test_lambda_opt_is_the_minimum():
    o = lambda_opt(alpha=10.0)
    assert o.converged
    c = learning_curve(alpha=10.0, lams=o.lam_opt * np.array([0.9, 0.99, 1.01, 1.1]))
    assert np.all(c.eps > o.eps_opt)
    assert o.eps_opt > bayes(alpha=10.0).eps


def test_training_error_and_loss_are_consistent():
    # small lambda: many training errors; the loss tends to log(2)/lambda - E[D]
    p = solve(alpha=1.0, lam=0.5)
    assert 0 < p.train_error < 0.5
    assert p.train_loss > 0
    q = solve(alpha=5.0, lam=300.0)
    assert q.train_error == 0.0


def test_bad_parameters_raise():
    with pytest.raises(ParameterError, match="'alpha' parameter"):
        solve(alpha=-1.0, lam=1.0)
    with pytest.raises(ParameterError, match="'lam' parameter"):
        Logistic(lam=0.0)
    with pytest.raises(ParameterError, match="'loss' parameter"):
        learning_curve(alpha=1.0, lams=[1.0], loss="cubic")
