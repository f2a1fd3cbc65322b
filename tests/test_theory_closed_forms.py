"""Reference learning curves of the teacher-student perceptron (docs/science.md 1.2)."""

from __future__ import annotations

import numpy as np
import pytest

from normscale.theory import bayes, gibbs, hebb_error, max_stability


@pytest.mark.parametrize("alpha,eps", [(1, 0.2856), (5, 0.1626), (10, 0.1201), (50, 0.0558)])
def test_hebb(alpha, eps):
    assert hebb_error(alpha=alpha) == pytest.approx(eps, abs=1e-4)


@pytest.mark.parametrize("alpha,eps", [(1, 0.266), (5, 0.0938), (10, 0.049)])
def test_max_stability(alpha, eps):
    assert max_stability(alpha=alpha).eps == pytest.approx(eps, abs=6e-4)


@pytest.mark.parametrize("alpha,eps", [(1, 0.254), (5, 0.0839), (10, 0.0436)])
def test_bayes(alpha, eps):
    assert bayes(alpha=alpha).eps == pytest.approx(eps, abs=6e-4)


def test_large_alpha_asymptotes():
    a = 2000.0
    assert a * max_stability(alpha=a).eps == pytest.approx(0.5, abs=2e-3)
    assert a * gibbs(alpha=a).eps == pytest.approx(0.625, abs=2e-3)
    assert a * bayes(alpha=a).eps == pytest.approx(0.442, abs=2e-3)


@pytest.mark.parametrize("alpha", [0.3, 3.0, 30.0])
def test_ordering(alpha):
    # Bayes < max stability < Hebb and Bayes < Gibbs at every alpha; Gibbs = Bayes at R^2
    b, g = bayes(alpha=alpha), gibbs(alpha=alpha)
    assert b.eps < max_stability(alpha=alpha).eps < hebb_error(alpha=alpha)
    assert b.eps < g.eps
    assert b.R**2 == pytest.approx(g.R, rel=1e-12)
    assert np.cos(np.pi * b.eps) == pytest.approx(b.R, rel=1e-12)
