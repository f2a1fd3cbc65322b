"""The perceptron lab against closed forms, independent solvers and the limits in science.md 1.2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from normscale.perceptron import (
    fixed_norm_path,
    generalization_error,
    gradient_descent,
    hebb,
    hebb_error,
    make_data,
    max_stability,
    overlap,
)
from normscale.perceptron.fixed import _grad_of, _stabilities

BAYES_ALPHA5 = 0.0839  # docs/science.md 1.2
MAXSTAB_ALPHA5 = 0.094  # docs/science.md 1.2


def _tol(values) -> float:
    """Finite-size tolerance: 4 standard errors of the seed mean."""
    values = np.asarray(values)
    return 4 * values.std(ddof=1) / np.sqrt(values.size)


@pytest.fixture(scope="module")
def alpha5():
    """alpha = 5, N = 400, 4 seeds, and its fixed-norm path from lambda = 1e-3 to 300."""
    data = make_data(n=400, alpha=5, seeds=range(4))
    path = fixed_norm_path(data, lams=np.geomspace(1e-3, 300, 30))
    return data, path


# --- data ------------------------------------------------------------------------------------

def test_data_reproducible_nested_and_labelled_by_teacher():
    a = make_data(n=50, alpha=3, seeds=[7, 8])
    b = make_data(n=50, alpha=3, seeds=[7, 8])
    c = make_data(n=50, alpha=25, seeds=[8])  # P = 1250 spans two generator blocks
    assert torch.equal(a.z, b.z) and torch.equal(a.teacher, b.teacher)
    assert torch.equal(c.z[0, :150], a.z[1])  # nested in alpha
    assert not torch.equal(a.z[0], a.z[1])
    assert torch.allclose(a.teacher.norm(dim=-1), torch.tensor(50.0).sqrt().double())
    for d in (a, c, make_data(n=50, alpha=3, seeds=[1], inputs="gaussian")):
        margins = torch.einsum("spn,sn->sp", d.z, d.teacher)
        assert bool((margins > 0).all())  # z = y x with y = sign(teacher . x)
    assert set(a.z.unique().tolist()) == {-1.0, 1.0}


def _loss(z: torch.Tensor, d: torch.Tensor, lam: float) -> torch.Tensor:
    """The fixed-norm loss written out here, independently of fixed.py: per seed,
    (1/P) sum_mu V_lambda(z_mu . d), V_lambda(t) = log(1 + exp(-2 lambda t)) / lambda."""
    t = -2.0 * lam * torch.einsum("spn,sn->sp", z, d)
    return torch.logaddexp(torch.zeros_like(t), t).mean(-1) / lam


def test_gradient_matches_autograd():
    data = make_data(n=30, alpha=2, seeds=[0, 1])
    d = torch.randn(2, 30, dtype=torch.float64, requires_grad=True)
    for lam in (0.05, 3.0, 200.0):
        loss = _loss(data.z, d, lam).sum()
        (auto,) = torch.autograd.grad(loss, d)
        g, _ = _grad_of(data.z, _stabilities(data.z, d.detach()), lam)
        assert torch.allclose(g, auto, rtol=1e-12, atol=1e-15)


# --- fixed norm ------------------------------------------------------------------------------

def test_fixed_norm_is_a_constrained_minimum():
    """No random point of the sphere near the solution has a lower loss."""
    data = make_data(n=40, alpha=3, seeds=[3])
    for lam in (0.3, 30.0):
        path = fixed_norm_path(data, lams=[lam])
        d = path.directions
        f0 = _loss(data.z, d, lam)
        gen = torch.Generator().manual_seed(0)
        for scale in (1e-3, 1e-1):
            trial = d + scale * torch.randn(200, 40, generator=gen, dtype=torch.float64)
            trial = trial / trial.norm(dim=-1, keepdim=True)
            f = _loss(data.z.expand(200, -1, -1), trial, lam)
            assert bool((f >= f0 - 1e-15).all())


def test_fixed_norm_matches_sklearn_l2_logistic_regression():
    """The sphere minimiser solves the L2-regularised problem whose solution has the same norm."""
    data = make_data(n=60, alpha=3, seeds=[5])
    z = data.z[0].numpy()
    path = fixed_norm_path(data, lams=[0.1, 1.0, 10.0], gtol=1e-10)
    for i, lam in enumerate(path.lams):
        sub = fixed_norm_path(data, lams=[lam], gtol=1e-10)
        d = sub.directions[0].numpy()
        s = 1 / (1 + np.exp(2 * lam * (z @ d)))
        c = 2 * lam / np.linalg.norm(z.T @ s)  # beta = 2 lam d = C sum_mu z_mu s_mu
        # sklearn needs two classes: the mirrored copies (-z, -1) double the loss, so C/2
        clf = LogisticRegression(C=c / 2, fit_intercept=False, tol=1e-12, max_iter=10_000)
        clf.fit(np.vstack([z, -z]), np.r_[np.ones(len(z)), -np.ones(len(z))])
        beta = clf.coef_[0]
        assert np.linalg.norm(beta) == pytest.approx(2 * lam, rel=1e-5)
        r_sk = float(overlap(torch.as_tensor(beta)[None], data.teacher)[0])
        assert r_sk == pytest.approx(path.r[0, i], abs=1e-6)  # lbfgs stops near 1e-7


def test_small_lambda_is_hebb(alpha5):
    data, path = alpha5
    eps_hebb_sample = generalization_error(overlap(hebb(data), data.teacher)).numpy()
    np.testing.assert_allclose(path.eps[:, 0], eps_hebb_sample, atol=2e-4)  # lambda = 1e-3
    # and the sample mean matches the N -> infinity formula within finite-size error
    assert abs(path.eps[:, 0].mean() - hebb_error(alpha=5)) < _tol(path.eps[:, 0])
    assert hebb_error(alpha=1) == pytest.approx(0.2856, abs=1e-4)
    assert hebb_error(alpha=50) == pytest.approx(0.0558, abs=1e-4)


def test_fixed_norm_never_below_bayes_and_converged(alpha5):
    _, path = alpha5
    assert path.converged.all()
    assert (path.grad_norm <= 1e-8).all()
    mean = path.eps.mean(0)
    i = int(np.argmin(mean))
    assert mean[i] > BAYES_ALPHA5 - _tol(path.eps[:, i])
    # the shape of docs/science.md 1.5: a minimum near lambda ~ 5 between Hebb and max stability
    assert 1 < path.lams[i] < 30
    assert mean[i] < mean[0] and mean[i] < mean[-1]


def test_max_stability_at_alpha5(alpha5):
    data, path = alpha5
    ms = max_stability(data)
    assert (ms.kkt_violation < 1e-8).all()  # all margins >= 1: feasible, so exact
    assert abs(ms.eps.mean() - MAXSTAB_ALPHA5) < _tol(ms.eps)
    # max stability maximises the smallest stability: no fixed-norm solution beats it
    kappa_fixed = torch.einsum("spn,sn->sp", data.z, path.directions).amin(-1).numpy()
    assert (ms.kappa >= kappa_fixed - 1e-12).all()
    assert (kappa_fixed > 0.97 * ms.kappa).all()  # lambda = 300 is close to the limit
    np.testing.assert_allclose(path.eps[:, -1], ms.eps, atol=0.01)


def test_float32_underflow_is_reported_not_converged():
    """At lambda = 300 on a separable sample the float32 gradient is exactly 0."""
    data = make_data(n=60, alpha=0.5, seeds=[0, 1], dtype=torch.float32)
    path = fixed_norm_path(data, lams=[1.0, 300.0], gtol=1e-4)
    assert path.converged[:, 0].all()
    assert not path.converged[:, 1].any()
    assert np.isinf(path.grad_norm[:, 1]).all()  # not NaN


def test_hard_case_alpha100_lambda300_converges():
    data = make_data(n=60, alpha=100, seeds=[0, 1])
    path = fixed_norm_path(data, lams=np.geomspace(1, 300, 12))
    assert path.converged.all(), path.grad_norm
    # non-convergence is reported, not hidden
    short = fixed_norm_path(data, lams=[300.0], max_iter=1)
    assert not short.converged.any()
    assert (short.grad_norm > 1e-8).all()


# --- gradient descent ------------------------------------------------------------------------

def test_gd_follows_fixed_norm_curve_at_alpha5():
    data = make_data(n=200, alpha=5, seeds=[0, 1])
    run = gradient_descent(data, steps=400, n_record=25)
    assert (np.diff(run.lam, axis=1) > 0).all()  # lambda(t) is monotone
    assert run.lam[:, 0] == pytest.approx(1e-3)
    assert (run.lam[:, -1] > 4).all()  # the run passes lambda_opt
    for s in range(2):
        lams = run.lam[s, 1:]
        path = fixed_norm_path(make_data(n=200, alpha=5, seeds=[s]), lams=lams)
        gap = np.abs(run.eps[s, 1:] - path.eps[0])
        # from lambda = 2 (before the optimum) on; GD lags the curve at its
        # first large steps (docs/perceptron.md)
        assert gap[lams >= 2].max() < 0.01


def test_the_memory_check_counts_the_solver_working_copies(monkeypatch):
    """P x N = 2000 x 100 float64 inputs take 1.6 MB; at gtol >= 1e-4 the solver adds a float32
    copy and, for binary inputs, two float16 ones (8 more bytes a value): a limit between the
    two sizes passes the tight-gtol run and refuses the other, naming the copies."""
    from normscale.errors import ParameterError
    from normscale.perceptron import experiment
    from normscale.perceptron.fixed import copy_bytes

    assert copy_bytes(dtype="float64", gtol=1e-3, inputs="binary") == 8
    assert copy_bytes(dtype="float64", gtol=1e-3, inputs="gaussian") == 4
    assert copy_bytes(dtype="float64", gtol=1e-8, inputs="binary") == 0
    assert copy_bytes(dtype="float32", gtol=1e-3, inputs="binary") == 0
    values, matrix = 2000 * 100, 8 * 100 ** 2
    monkeypatch.setattr(experiment, "memory_limit", lambda device: 8 * values + matrix + 1000)
    experiment.PerceptronConfig(alphas=(20.0,), n=100, gtol=1e-8)  # fits without copies
    with pytest.raises(ParameterError, match="solver's copies"):
        experiment.PerceptronConfig(alphas=(20.0,), n=100, gtol=1e-3)
