"""Power iteration and NormTracker against full SVDs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normscale.errors import ParameterError
from normscale.norms import MEASURES, NormTracker, measure, power_iteration
from normscale.norms.power import refine


@pytest.mark.parametrize(("shape", "krylov"), [
    ((1, 7), 2), ((7, 1), 2), ((30, 50), 2), ((64, 9), 2),
    ((1, 7), 20), ((7, 1), 20), ((30, 50), 20), ((64, 9), 20), ((128, 128), 20), ((64, 576), 20),
])
def test_power_iteration_cold_start_matches_svd(shape, krylov):
    # Gaussian matrices: the two top singular values are close, the hard case
    torch.manual_seed(0)
    a = torch.randn(*shape, dtype=torch.float64)
    res = power_iteration(a, max_iter=5000, krylov=krylov)
    exact = torch.linalg.svdvals(a)[0].item()
    assert res.converged
    assert res.sigma == pytest.approx(exact, rel=1e-6)
    assert res.sigma <= exact * (1 + 1e-14)  # a Rayleigh quotient: never above sigma_1


def test_power_iteration_warm_start_is_cheap_and_accurate():
    torch.manual_seed(1)
    u, _ = torch.linalg.qr(torch.randn(200, 200, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(300, 200, dtype=torch.float64))
    a = u @ torch.diag(0.9 ** torch.arange(200.0, dtype=torch.float64)) @ v.T  # gap 10%
    cold = power_iteration(a, max_iter=5000)
    for _ in range(5):  # small steps, as between two logging points of training
        a = a + 1e-5 * torch.randn_like(a)
        warm = power_iteration(a, cold.v, max_iter=5000)
        again_cold = power_iteration(a, max_iter=5000)
        assert warm.sigma == pytest.approx(torch.linalg.svdvals(a)[0].item(), rel=1e-6)
        assert warm.n_iter < again_cold.n_iter / 3
        cold = warm


def test_power_iteration_in_float32_keeps_float64_accuracy():
    """Iterating in float32, sigma from one float64 product: float64-grade sigma."""
    torch.manual_seed(2)
    u, _ = torch.linalg.qr(torch.randn(150, 150, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(400, 150, dtype=torch.float64))
    a = u @ torch.diag(0.97 ** torch.arange(150.0, dtype=torch.float64)) @ v.T  # gap 3%
    exact = torch.linalg.svdvals(a)[0].item()
    low = refine(a, power_iteration(a.float(), max_iter=5000, tol=1e-12))
    plain32 = power_iteration(a.float(), max_iter=5000, tol=1e-12)
    assert low.converged and low.v.dtype == torch.float64
    assert low.sigma == pytest.approx(exact, rel=1e-10)
    assert low.sigma <= exact * (1 + 1e-14)
    # without the float64 product the float32 rounding shows in sigma
    assert abs(plain32.sigma - exact) / exact > 10 * abs(low.sigma - exact) / exact


def test_power_iteration_reports_non_convergence_and_zero_matrix():
    a = torch.diag(torch.linspace(1.0, 0.5, 50, dtype=torch.float64))
    res = power_iteration(a, torch.ones(50, dtype=torch.float64), max_iter=3)
    assert not res.converged and res.n_iter == 3 and res.sigma < 1.0
    zero = power_iteration(torch.zeros(4, 5, dtype=torch.float64))
    assert zero.sigma == 0.0 and zero.converged
    with pytest.raises(ParameterError, match="'tol'"):
        power_iteration(a, tol=0.0)


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 4, 32), nn.ReLU(), nn.Linear(32, 4))


def test_tracker_follows_training_and_matches_exact_measures():
    torch.manual_seed(0)
    model = small_cnn()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    tracker = NormTracker(model, reference="init")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 4, (64,))
    first = tracker.report()
    warm_iters = []
    for _ in range(4):
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        with torch.no_grad():
            got = tracker.measure()
        want = measure(model, reference=init)
        assert tuple(got) == MEASURES
        for key in MEASURES:
            assert got[key] == pytest.approx(want[key], rel=1e-6), key
        warm_iters.append(max(r.n_iter for r in tracker.report().layers))
    # the training moved the weights away from init, and R_A saw it
    assert got["distance_from_init"] > 0.1 and got["spectral_complexity"] > 0
    # warm start: far fewer iterations than the cold first measurement
    assert max(r.n_iter for r in first.layers) > 5
    assert max(warm_iters) <= 3


def test_tracker_without_fallback_reports_unconverged_layers():
    torch.manual_seed(0)
    model = nn.Linear(40, 30)
    tracker = NormTracker(model, max_iter=1, fallback=False)
    row, = tracker.layers()
    assert not row.converged and row.n_iter == 1
    fb, = NormTracker(model, max_iter=1).layers()
    assert fb.converged and fb.spectral_norm == pytest.approx(
        torch.linalg.svdvals(model.weight.double())[0].item(), rel=1e-12)


def test_tracker_reference_from_state_dict_and_module_agree():
    torch.manual_seed(0)
    model, other = small_cnn(), small_cnn()
    a = NormTracker(model, reference=other, spectral="exact").measure()
    b = NormTracker(model, reference=other.state_dict(), spectral="exact").measure()
    assert a == b
    with pytest.raises(ParameterError, match="'reference'"):
        NormTracker(model, reference=3)
