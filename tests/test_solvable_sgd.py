"""One-pass SGD on the PLRF model: the Volterra theory (normscale.solvable.volterra) against
the step-by-step recursion, the full second-moment matrix recursion, and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from normscale.errors import ParameterError
from normscale.solvable import (
    PowerLawModel,
    draw_features,
    log_steps,
    max_stable_gamma,
    noise_kernel_norm,
    sgd_monte_carlo,
    sgd_phase,
    sgd_theory,
)
from normscale.solvable.volterra import sgd_theory_stepwise


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.mark.parametrize("batch, noise, block", [(1, 0.0, 64), (3, 0.4, 7), (2, 0.1, 1)])
def test_blocked_recursion_is_the_stepwise_one(batch, noise, block):
    f = draw_features(PowerLawModel(alpha=0.8, beta=0.6, v=120, d=30, noise=noise), seed=2)
    gamma = 0.5 * max_stable_gamma(f, batch=batch)
    steps = 777
    th = sgd_theory(f, gamma=gamma, batch=batch, steps=steps, log_times=np.arange(steps + 1),
                    block=block)
    ref = sgd_theory_stepwise(f, gamma=gamma, batch=batch, steps=steps)
    assert th.mean == pytest.approx(ref, rel=1e-10)


def test_diagonal_closure_matches_the_full_second_moment_recursion():
    """E[e e^T] in the original coordinates, written from Wick's theorem without the
    eigenbasis: M' = (I - gK) M (I - gK) + g^2/B (K M K + (tr(K M) + R* + s^2) K)."""
    m = PowerLawModel(alpha=0.7, beta=0.9, v=50, d=12, noise=0.2)
    f = draw_features(m, seed=4)
    D, b, W = m.data_variances(), m.teacher(), f.W
    K = W.T @ (D[:, None] * W)
    theta_star, *_ = np.linalg.lstsq(np.sqrt(D)[:, None] * W, np.sqrt(D) * b, rcond=None)
    r_star = np.sum(D * (W @ theta_star - b) ** 2)
    gamma, B = 0.3 / np.linalg.eigvalsh(K).max(), 2
    M = np.outer(theta_star, theta_star)
    I = np.eye(12)
    risks = []
    for _ in range(301):
        risks.append(r_star + np.trace(K @ M))
        A = I - gamma * K
        M = A @ M @ A + gamma ** 2 / B * (K @ M @ K + (np.trace(K @ M) + r_star + m.noise ** 2)
                                          * K)
    th = sgd_theory(f, gamma=gamma, batch=B, steps=300, log_times=np.arange(301))
    assert th.mean == pytest.approx(np.array(risks), rel=1e-9)


def _x_space_sgd(m: PowerLawModel, W, gamma, B, log_times, runs, rng) -> np.ndarray:
    """SGD written from scratch: fresh x ~ N(0, D), y = <x, b> + noise, features W^T x."""
    D, b = m.data_variances(), m.teacher()
    theta = np.zeros((runs, W.shape[1]))
    out = np.empty((runs, len(log_times)))
    k = 0
    for t in range(log_times[-1] + 1):
        if t == log_times[k]:
            out[:, k] = ((theta @ W.T - b) ** 2) @ D
            k += 1
        x = rng.standard_normal((runs, B, m.v)) * np.sqrt(D)
        y = x @ b + m.noise * rng.standard_normal((runs, B))
        f = x @ W
        err = np.einsum("rbn,rn->rb", f, theta) - y
        theta -= gamma / B * np.einsum("rbn,rb->rn", f, err)
    return out


def test_eigenbasis_monte_carlo_matches_x_space_sgd():
    m = PowerLawModel(alpha=0.9, beta=0.5, v=25, d=8, noise=0.3)
    f = draw_features(m, seed=0)
    gamma, B = 0.2 / f.lam[0], 2
    t = np.array([0, 3, 10, 30, 100, 200])
    ours = sgd_monte_carlo(f, gamma=gamma, batch=B, steps=200, log_times=t, n_runs=800, seed=5)
    ref = _x_space_sgd(m, f.W, gamma, B, t, 800, np.random.default_rng(99))
    se = np.sqrt(ours.se ** 2 + (ref.std(0, ddof=1) / np.sqrt(800)) ** 2)
    assert ours.mean[0] == pytest.approx(ref.mean(0)[0], rel=1e-12)
    assert np.all(np.abs(ours.mean[1:] - ref.mean(0)[1:]) < 3 * se[1:])


# three (alpha, beta) in different phases of Paquette et al. (I, II, III) and one in IV
PHASE_PAIRS = [(1.0, 0.3), (1.0, 0.7), (0.7, 1.2), (0.4, 0.8)]


@pytest.mark.parametrize("alpha, beta", PHASE_PAIRS)
def test_volterra_theory_matches_monte_carlo_within_two_standard_errors(alpha, beta):
    f = draw_features(PowerLawModel(alpha=alpha, beta=beta, v=200, d=30), seed=0)
    gamma = 0.15 / f.lam[0]        # gamma lam_max = 0.15: light tails of the risk at batch 1
    t = log_steps(1000, 10)
    th = sgd_theory(f, gamma=gamma, steps=1000, log_times=t)
    mc = sgd_monte_carlo(f, gamma=gamma, steps=1000, log_times=t, n_runs=1500, seed=0)
    assert mc.mean[0] == pytest.approx(th.mean[0], rel=1e-12)  # step 0: the null risk, exactly
    z = (mc.mean[1:] - th.mean[1:]) / mc.se[1:]
    assert np.all(np.abs(z) <= 2.0), np.round(z, 2)
    assert th.mean[-1] < 0.5 * th.mean[0]                       # it learns: not a flat check


def test_phases_are_distinct_for_the_checked_pairs():
    assert [sgd_phase(alpha=a, beta=b) for a, b in PHASE_PAIRS] == ["I", "II", "III", "IV"]


def test_divergent_step_is_refused_and_the_bound_is_sharp():
    f = draw_features(PowerLawModel(alpha=1.0, beta=0.7, v=100, d=20), seed=0)
    g = max_stable_gamma(f, batch=1)
    assert noise_kernel_norm(f, gamma=0.999 * g) < 1 <= noise_kernel_norm(f, gamma=1.001 * g)
    with pytest.raises(ParameterError, match="diverges"):
        sgd_theory(f, gamma=1.01 * g, steps=10)
    # just below the bound the expected risk stays bounded, just above it grows
    below = sgd_theory(f, gamma=0.95 * g, steps=20000, log_times=np.array([10000, 20000]))
    assert below.mean[1] <= below.mean[0] * 1.001


def test_log_times_are_validated():
    f = draw_features(PowerLawModel(alpha=1.0, beta=0.7, v=20, d=5), seed=0)
    with pytest.raises(ParameterError, match="log_times"):
        sgd_theory(f, gamma=0.01, steps=10, log_times=np.array([0, 20]))
    with pytest.raises(ParameterError, match="n_runs"):
        sgd_monte_carlo(f, gamma=0.01, steps=10, n_runs=1)


def test_monte_carlo_records_the_norm():
    f = draw_features(PowerLawModel(alpha=1.0, beta=0.3, v=40, d=10), seed=0)
    t = np.array([0, 5, 50])
    mc = sgd_monte_carlo(f, gamma=0.15 / f.lam[0], steps=50, log_times=t, n_runs=400, seed=1)
    gamma = 0.15 / f.lam[0]
    assert mc.norm[0] == 0.0                            # theta_0 = 0
    # the mean follows gradient descent on the population loss exactly:
    # E theta_j(t) = theta*_j (1 - (1 - gamma lam_j)^t); the rms norm is at least its norm
    # (Jensen) and, at this small step, not far above it
    for k, t_k in enumerate(t[1:], start=1):
        mean_norm = np.linalg.norm(f.theta_star * (1 - (1 - gamma * f.lam) ** t_k))
        assert mean_norm * 0.97 <= mc.norm[k] <= mean_norm * 1.5


@pytest.mark.parametrize("alpha, beta", [(1.0, 0.3), (1.0, 0.7), (0.7, 1.2)])
def test_sgd_time_exponent_is_the_theory_s_late_slope(alpha, beta):
    """Phases I, II (population bias) and III (SGD noise) at d -> infinity (identity features,
    v far above the modes learned): the local slope of the exact expected risk tends to
    min((2a + 2b - 1)/(2a), 2 - 1/(2a)) (a, b = alpha, beta)."""
    from normscale.solvable import sgd_time_exponent

    f = draw_features(PowerLawModel(alpha=alpha, beta=beta, v=5000))
    t = np.array([300, 3000, 30000])
    L = sgd_theory(f, gamma=0.15 / f.lam[0], steps=30000, log_times=t).mean
    slopes = -np.diff(np.log(L)) / np.log(10)
    pred = sgd_time_exponent(alpha=alpha, beta=beta)
    assert slopes[-1] == pytest.approx(pred, rel=0.03)
    assert abs(slopes[-1] - pred) <= abs(slopes[0] - pred) + 1e-3   # and it converges there
