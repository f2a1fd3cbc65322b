"""The replica theory against the perceptron lab at N = 2000 (finite-size error only)."""

from __future__ import annotations

import numpy as np
import pytest

from normscale.perceptron.data import make_data
from normscale.perceptron.fixed import fixed_norm_path
from normscale.theory import solve

N = 2000
SEEDS = (0, 1, 2)
# eps fluctuates by ~0.004 from sample to sample at N = 2000 (measured over seeds);
# the mean of 3 seeds is within 4 standard errors of the N -> infinity value
EPS_TOL = 4 * 0.004 / np.sqrt(len(SEEDS))


@pytest.mark.slow
@pytest.mark.parametrize("alpha,lams", [(1.0, (0.5, 3.0)), (0.5, (2.0,))])
def test_theory_matches_simulation(alpha, lams):
    data = make_data(n=N, alpha=alpha, seeds=SEEDS, inputs="gaussian")
    path = fixed_norm_path(data, lams=lams)
    assert path.converged.all()
    for j, lam in enumerate(lams):
        th = solve(alpha=alpha, lam=lam)
        assert path.eps[:, j].mean() == pytest.approx(th.eps, abs=EPS_TOL)
        # the training loss is self-averaging too: 10% at N = 2000
        assert path.train_loss[:, j].mean() == pytest.approx(th.train_loss, rel=0.1)
