"""Back-test: fit on all but the largest P, predict eps_opt at the largest P.

The prediction uses the paper's claim (docs/science.md, introduction, law 4):
eps_opt ~ P^(-gamma_pred) with gamma_pred = gamma1 * gamma2 measured on the
smaller P only, its prefactor matched to their eps_opt in log space. The
direct fit eps_opt ~ P^(-gamma_meas) on the same P is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale.laws.curves import CurveSet
from normscale.laws.estimate import estimate


@dataclass(frozen=True)
class Backtest:
    """eps_opt at the held-out largest P: measured, predicted, relative errors (pred-true)/true.

    Attributes
    ----------
    P_held_out : float
        The largest P, left out of the refit.
    eps_opt : float
        The measured eps_opt at ``P_held_out`` (as given: the full analysis's
        optimum there), in the units of the curves' error.
    eps_pred : float
        eps_opt predicted by law 4 with gamma_pred: exp(mean over the smaller
        P of (ln eps_opt + gamma_pred ln P) - gamma_pred ln ``P_held_out``).
    rel_error : float
        (``eps_pred`` - ``eps_opt``) / ``eps_opt``; negative: predicted too low.
    eps_pred_meas : float
        eps_opt predicted by the direct fit eps_opt ~ P^(-gamma_meas) on the
        smaller P, extrapolated to ``P_held_out``.
    rel_error_meas : float
        (``eps_pred_meas`` - ``eps_opt``) / ``eps_opt``.
    gamma_pred : float
        gamma1 gamma2 measured on the smaller P only; NaN when gamma1 is
        undefined there (then ``eps_pred`` and ``rel_error`` are NaN too).
    """

    P_held_out: float
    eps_opt: float
    eps_pred: float
    rel_error: float
    eps_pred_meas: float
    rel_error_meas: float
    gamma_pred: float


def backtest(sets: list[CurveSet], eps_opt_held_out: float, *,
             window: tuple[float, ...] | None = None, strict_minimum: bool = False) -> Backtest:
    """Refit on ``sets[:-1]`` (sorted by P) and predict eps_opt at ``sets[-1].P``."""
    est = estimate(sets[:-1], window=window, strict_minimum=strict_minimum)
    P, eps = est.P, est.eps_opt
    P_out = sets[-1].P
    eps_opt_held_out = float(eps_opt_held_out)
    ln_a = np.mean(np.log(eps) + est.gamma_pred * np.log(P))
    pred = float(np.exp(ln_a - est.gamma_pred * np.log(P_out)))
    pred_meas = float(est.eps_law(P_out))
    return Backtest(P_out, eps_opt_held_out, pred, (pred - eps_opt_held_out) / eps_opt_held_out,
                    pred_meas, (pred_meas - eps_opt_held_out) / eps_opt_held_out, est.gamma_pred)
