"""The master-curve collapse eps/eps_opt = Phi(lambda/lambda_opt) (SCIENCE.md, law 3).

"The curves collapse" becomes a number, as in finite-size-scaling
analyses: the rescaled curves are interpolated on a common grid of
ln(lambda/lambda_opt) over the range all of them cover, and the spread of
ln(eps/eps_opt) across curves is averaged over that grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale.laws.curves import Curve

#: grid points on the common range
_N_GRID = 64


@dataclass(frozen=True)
class Collapse:
    """Quality of the collapse.

    ``quality`` is the mean over the common range of the variance across
    curves of ln(eps/eps_opt) (0 for a perfect collapse); ``rms_spread`` its
    square root; ``lo``, ``hi`` the common range in lambda/lambda_opt and
    ``n_curves`` the number of curves compared. NaN when the rescaled
    curves share no range.
    """

    quality: float
    rms_spread: float
    lo: float
    hi: float
    n_curves: int


def collapse_quality(curves: list[Curve], lambda_opt: np.ndarray, eps_opt: np.ndarray) -> Collapse:
    """Measure how well ``eps/eps_opt`` against ``lambda/lambda_opt`` collapses onto one curve."""
    xs = [np.log(c.norm / lo) for c, lo in zip(curves, lambda_opt, strict=False)]
    ys = [np.log(c.error / eo) for c, eo in zip(curves, eps_opt, strict=False)]
    lo, hi = max(x[0] for x in xs), min(x[-1] for x in xs)
    if not hi > lo or len(curves) < 2:
        return Collapse(float("nan"), float("nan"), float("nan"), float("nan"), len(curves))
    grid = np.linspace(lo, hi, _N_GRID)
    # (n_curves, n_grid)
    values = np.array([np.interp(grid, x, y) for x, y in zip(xs, ys, strict=True)])
    quality = float(np.mean(np.var(values, axis=0, ddof=1)))
    return Collapse(quality, float(np.sqrt(quality)), float(np.exp(lo)), float(np.exp(hi)),
                    len(curves))
