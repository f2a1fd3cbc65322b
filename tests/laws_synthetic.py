"""Synthetic learning curves with known exponents, for the laws tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_curves(*, gamma1: float = 0.5, gamma2: float = 1.0, k2: float = 0.1,
                     P=(500, 1000, 2000, 4000, 8000, 16000), n_seeds: int = 5,
                     noise: float = 0.03, n_points: int = 40, beta: float = 1.0,
                     plateau: float | None = None, q1: float = 0.0, bend: float = 0.0,
                     start_decades: float | None = None, cut: int = 0,
                     rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Curves eps = K [lam^-g1 + (g1/beta) lam_opt^(-g1-beta) lam^beta], minimum at k2 P^g2.

    The early part K lam^-g1 is the same for every P (law 1); the minimum is
    at lam_opt (law 2). ``plateau`` caps the error from above smoothly
    (a flat start of training, like chance level or the Hebb limit).
    Multiplicative log-normal noise of size ``noise`` on every point.
    ``q1`` adds an irreducible error to every curve; ``bend`` bends
    lambda_opt(P) by a factor (1 + P / P_min)^bend (no single power law);
    ``start_decades`` starts each curve that many decades below its own
    lambda_opt (instead of one common start); ``cut`` stops the curves of the
    ``cut`` largest P at 0.3 lambda_opt, before their minimum.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    rows = []
    lam_opt_min = k2 * min(P) ** gamma2
    for k, p in enumerate(P):
        lam_opt = k2 * p ** gamma2 * (1 + p / min(P)) ** bend
        start = lam_opt * 10 ** -start_decades if start_decades else lam_opt_min * 1e-3
        stop = lam_opt * (0.3 if k >= len(P) - cut else 10)
        lam = np.geomspace(start, stop, n_points)
        eps = 0.2 * (lam ** -gamma1 + gamma1 / beta * lam_opt ** (-gamma1 - beta) * lam ** beta)
        if plateau is not None:
            eps = 1.0 / (1.0 / eps ** 4 + 1.0 / plateau ** 4) ** 0.25
        eps = eps + q1
        for s in range(n_seeds):
            e = eps * np.exp(noise * rng.standard_normal(lam.size))
            rows.append(pd.DataFrame({"P": p, "seed": s, "norm": lam, "test_error": e}))
    return pd.concat(rows, ignore_index=True)
