"""The PLRF model (normscale.solvable.model, .flow): conventions, validation, features, and
gradient flow checked against an explicit simulation in x-space."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.special import zeta
from threadpoolctl import threadpool_limits

from normscale.errors import ParameterError
from normscale.solvable import (
    PowerLawModel,
    draw_features,
    gradient_flow,
    population_flow,
)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def test_conventions_map_both_ways():
    m = PowerLawModel(alpha=0.75, beta=0.25, v=10)
    assert (m.a, m.b) == (2.0, 1.5)
    m2 = PowerLawModel.from_ab(a=2.0, b=1.5, v=10)
    assert (m2.alpha, m2.beta) == (0.75, 0.25)
    # spectrum k^-b and target power per mode k^-a, by definition
    k = np.arange(1, 11)
    assert m.data_variances() == pytest.approx(k ** -1.5)
    assert m.data_variances() * m.teacher() ** 2 == pytest.approx(k ** -2.0)


@pytest.mark.parametrize("kwargs, word", [
    ({"alpha": 0.0, "beta": 1.0, "v": 5}, "alpha"),
    ({"alpha": 0.2, "beta": 0.2, "v": 5}, r"2 alpha \+ 2 beta > 1"),
    ({"alpha": 1.0, "beta": 1.0, "v": 0}, "'v'"),
    ({"alpha": 1.0, "beta": 1.0, "v": 5.0}, "'v'"),
    ({"alpha": 1.0, "beta": 1.0, "v": 5, "d": 0}, "'d'"),
    ({"alpha": 1.0, "beta": 1.0, "v": 5, "noise": -1.0}, "noise"),
    ({"alpha": 1.0, "beta": 1.0, "v": 5, "d": 3, "tail": True}, "tail"),
])
def test_bad_parameters_are_named(kwargs, word):
    with pytest.raises(ParameterError, match=word):
        PowerLawModel(**kwargs)
    with pytest.raises(TypeError):
        PowerLawModel(1.0, 1.0, 5)                     # keyword-only


def test_features_match_brute_force_least_squares():
    m = PowerLawModel(alpha=0.8, beta=0.4, v=60, d=15)
    f = draw_features(m, seed=3)
    D, b = m.data_variances(), m.teacher()
    W = f.W
    K = W.T @ (D[:, None] * W)
    assert f.lam == pytest.approx(np.sort(np.linalg.eigvalsh(K))[::-1], rel=1e-10)
    # R* = min_theta |D^(1/2) (W theta - b)|^2, solved directly
    theta, *_ = np.linalg.lstsq(np.sqrt(D)[:, None] * W, np.sqrt(D) * b, rcond=None)
    r_star = np.sum(D * (W @ theta - b) ** 2)
    assert f.risk_star == pytest.approx(r_star, rel=1e-8)
    assert f.V @ f.theta_star == pytest.approx(theta, rel=1e-8)
    # the risk of any student: E(<W^T x, theta> - <x, b>)^2 in x-space
    t = np.random.default_rng(0).standard_normal(15)
    assert f.risk(f.V.T @ t) == pytest.approx(np.sum(D * (W @ t - b) ** 2), rel=1e-10)


def test_more_features_than_inputs_has_zero_modes():
    f = draw_features(PowerLawModel(alpha=1.0, beta=0.5, v=8, d=20), seed=0)
    assert np.sum(f.lam > 0) == 8 and f.risk_star == pytest.approx(0.0, abs=1e-12)


def test_tail_risk_is_the_missing_target_power():
    m = PowerLawModel.from_ab(a=1.7, b=1.2, v=50, tail=True)
    k = np.arange(51, 2_000_001, dtype=float)
    assert m.tail_risk() == pytest.approx(np.sum(k ** -1.7) + zeta(1.7, 2_000_001), rel=1e-10)
    assert draw_features(m).risk_star == m.tail_risk()


def test_population_flow_is_the_closed_form_sum():
    a, b = 2.0, 1.5
    f = draw_features(PowerLawModel.from_ab(a=a, b=b, v=400))
    t = np.array([0.0, 1.0, 30.0, np.inf])
    c = population_flow(f, t)
    k = np.arange(1, 401, dtype=float)
    assert c.risk[:3] == pytest.approx([np.sum(k ** -a * np.exp(-2 * s * k ** -b))
                                        for s in t[:3]], rel=1e-12)
    assert c.risk[3] == pytest.approx(0.0, abs=1e-15)
    assert c.norm[3] == pytest.approx(np.linalg.norm(k ** (-(a - b) / 2)), rel=1e-12)


def _explicit_flow(m: PowerLawModel, W, P: int, times, rng) -> np.ndarray:
    """Gradient flow written from scratch in x-space: draw x, y, form F = X W, integrate
    d theta/dt = -(F^T F theta - F^T y)/P with one matrix exponential per time (the
    augmented-matrix form of the variation-of-constants integral); the risk from D."""
    D, b = m.data_variances(), m.teacher()
    X = rng.standard_normal((P, m.v)) * np.sqrt(D)
    y = X @ b + m.noise * rng.standard_normal(P)
    F = X @ W if W is not None else X
    n = F.shape[1]
    A = np.zeros((n + 1, n + 1))
    A[:n, :n] = -F.T @ F / P
    A[:n, n] = F.T @ y / P
    out = []
    for t in times:
        theta = expm(A * t)[:n, n]
        w = W @ theta if W is not None else theta
        out.append(np.sum(D * (w - b) ** 2))
    return np.array(out)


@pytest.mark.parametrize("P, d", [(40, 12), (6, 12), (25, None)])
def test_gradient_flow_matches_explicit_simulation_in_distribution(P, d):
    # P > N: the Wishart (Bartlett) draw; P <= N: the Gram path; identity features too
    m = PowerLawModel(alpha=0.9, beta=0.3, v=30, d=d, noise=0.3)
    f = draw_features(m, seed=1)
    times = np.array([0.5, 5.0, 50.0])
    n = 600
    ours = np.array([gradient_flow(f, P=P, times=times, seed=s).risk for s in range(n)])
    rng = np.random.default_rng(12345)
    ref = np.array([_explicit_flow(m, f.W, P, times, rng) for _ in range(n)])
    z = (ours.mean(0) - ref.mean(0)) / np.sqrt(ours.var(0) / n + ref.var(0) / n)
    assert np.all(np.abs(z) < 3.5), z
    # and the spread, not only the mean (a wrong Wishart would change it)
    assert ours.std(0) == pytest.approx(ref.std(0), rel=0.25)


def test_gradient_flow_end_point_and_monotone_norm():
    m = PowerLawModel(alpha=1.0, beta=0.2, v=40, d=20, noise=0.5)
    f = draw_features(m, seed=0)
    times = np.concatenate([np.geomspace(0.01, 1e6, 40), [np.inf]])
    c = gradient_flow(f, P=60, times=times, seed=2)
    assert np.all(np.diff(c.norm) >= -1e-9 * c.norm[-1])       # |theta(t)| grows
    assert c.norm[-2] == pytest.approx(c.norm[-1], rel=1e-6)     # t -> inf is the end point
    assert c.risk[-2] == pytest.approx(c.risk[-1], rel=1e-6)


def test_times_are_validated():
    f = draw_features(PowerLawModel(alpha=1.0, beta=0.5, v=10))
    with pytest.raises(ParameterError, match="times"):
        gradient_flow(f, P=5, times=[-1.0])
    with pytest.raises(ParameterError, match="'P'"):
        gradient_flow(f, P=0, times=[1.0])
