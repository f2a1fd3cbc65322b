"""float32 passes over float64 data (perceptron/precision.py) against float64 products and runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normscale.perceptron import fixed_norm_path, make_data
from normscale.perceptron.precision import gram, half_copies, hessvec_half, matvec, rmatvec


@pytest.mark.parametrize("scale", [1.0, 1e-60, 1e-200])
def test_float32_products_keep_relative_accuracy_at_any_scale(scale):
    """Values far below float32's range (1e-38) are scaled, not flushed to 0."""
    gen = torch.Generator().manual_seed(0)
    z = make_data(n=50, alpha=4, seeds=[0, 1]).z  # (2, 200, 50) float64
    z32 = z.float()
    v = scale * torch.randn(2, 50, generator=gen, dtype=torch.float64)
    w = scale * torch.rand(2, 200, generator=gen, dtype=torch.float64)
    exact_mv = torch.einsum("spn,sn->sp", z, v)
    exact_rmv = torch.einsum("spn,sp->sn", z, w)
    def rel(got, exact):  # max-norm: a 2-norm would square 1e-200 to 0
        return float((got - exact).abs().max() / exact.abs().max())

    for got, exact in ((matvec(z32, v), exact_mv), (rmatvec(z32, w), exact_rmv)):
        assert got.dtype == torch.float64
        assert rel(got, exact) < 1e-6
    a, c = gram(z32, w)
    assert rel(a.double() * c, torch.einsum("spn,sp,spm->snm", z, w, z)) < 1e-6
    # same dtype: the plain products, bit for bit
    assert torch.equal(matvec(z, v), exact_mv) and torch.equal(rmatvec(z, w), exact_rmv)


def test_float32_passes_give_the_float64_path_at_loose_gtol():
    """At gtol 1e-3 float32 passes reach the solutions of float64 ones, up to lambda = 300."""
    data = make_data(n=150, alpha=6, seeds=[0, 1])
    lams = np.geomspace(0.05, 300, 12)
    fast = fixed_norm_path(data, lams=lams, gtol=1e-3)  # "auto": float32 passes
    slow = fixed_norm_path(data, lams=lams, gtol=1e-3, passes="data")
    tight = fixed_norm_path(data, lams=lams, gtol=1e-10)
    assert fast.converged.all() and slow.converged.all()
    assert (fast.grad_norm <= 1e-3).all()
    assert fast.directions.dtype == torch.float64
    # both within what gtol 1e-3 allows of the exact path, and the same to float32 rounding
    assert np.abs(fast.r - tight.r).max() < 1e-3
    np.testing.assert_allclose(fast.r, slow.r, atol=1e-5)
    np.testing.assert_allclose(fast.train_loss, slow.train_loss, rtol=1e-4)


def test_float16_hessian_products_on_binary_data():
    """+-1 data in float16 is exact: the Hessian product errs only by float16 vectors (3e-4)."""
    gen = torch.Generator().manual_seed(1)
    z = make_data(n=300, alpha=3, seeds=[0, 1]).z  # (2, 900, 300), +-1
    zh, zh_t = half_copies(z)
    assert torch.equal(zh.double(), z) and torch.equal(zh_t.double(), z.transpose(1, 2))
    for scale in (1.0, 1e-80):
        v = scale * torch.randn(2, 300, generator=gen, dtype=torch.float64)
        h = torch.rand(2, 900, generator=gen, dtype=torch.float64) ** 8  # weights over decades
        exact = torch.einsum("spn,sp,spm,sm->sn", z, h, z, v)
        got = hessvec_half((zh, zh_t), h, v)
        assert got.dtype == torch.float64
        assert 1e-6 < float((got - exact).abs().max() / exact.abs().max()) < 2e-3
