"""The master-curve collapse eps/eps_opt = Phi(lambda/lambda_opt) (docs/science.md, law 3).

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
    """How well the rescaled curves collapse (law 3 of docs/science.md).

    The float fields are NaN when fewer than two curves are given or the
    rescaled curves share no range of lambda/lambda_opt.

    Attributes
    ----------
    variance : float
        The variance across curves (ddof 1) of ln(eps/eps_opt), natural log,
        averaged over ``_N_GRID`` points evenly spaced in ln(lambda/lambda_opt)
        on the common range; 0 for a perfect collapse.
    rms_spread : float
        sqrt(``variance``): the typical spread of the curves in ln eps (0.01 is
        about 1%).
    lo, hi : float
        The common range in lambda/lambda_opt (a ratio, not a log): the
        largest first point and the smallest last point of the rescaled curves.
    n_curves : int
        The number of curves compared.
    """

    variance: float
    rms_spread: float
    lo: float
    hi: float
    n_curves: int


def collapse_variance(curves: list[Curve], lambda_opt: np.ndarray, eps_opt: np.ndarray) -> Collapse:
    """Measure how well ``eps/eps_opt`` against ``lambda/lambda_opt`` collapses onto one curve."""
    xs = [np.log(c.norm / lo) for c, lo in zip(curves, lambda_opt, strict=False)]
    ys = [np.log(c.error / eo) for c, eo in zip(curves, eps_opt, strict=False)]
    lo, hi = max(x[0] for x in xs), min(x[-1] for x in xs)
    if not hi > lo or len(curves) < 2:
        return Collapse(float("nan"), float("nan"), float("nan"), float("nan"), len(curves))
    grid = np.linspace(lo, hi, _N_GRID)
    # (n_curves, n_grid)
    values = np.array([np.interp(grid, x, y) for x, y in zip(xs, ys, strict=True)])
    variance = float(np.mean(np.var(values, axis=0, ddof=1)))
    return Collapse(variance, float(np.sqrt(variance)), float(np.exp(lo)), float(np.exp(hi)),
                    len(curves))


#: floor of a point's error in ln eps when the curves carry no error bars (1%, as the noise floor
#: of the window search)
_MIN_POINT_ERROR = 0.01


def houdayer_hartmann_S(curves: list[Curve], lambda_opt: np.ndarray, eps_opt: np.ndarray,
                        errors: list[np.ndarray] | None = None) -> float:
    """Quality S of the collapse (Houdayer and Hartmann, Phys. Rev. B 70, 014418, 2004).

    Each point of each rescaled curve, (x, y) = (ln lambda/lambda_opt,
    ln eps/eps_opt), is compared with the master curve built from the
    *other* curves at the same x: S = (1/N) sum (y - Y)^2 / (dy^2 + dY^2),
    with Y the inverse-variance mean of the other curves interpolated
    linearly at x (only those whose range covers x) and dY^2 its variance.
    S is about 1 when the curves collapse within their error bars and
    grows as the square of the misfit. ``errors`` are the standard errors
    of ln eps per point (from the seeds); without them each curve's noise
    level from its second differences is used (floored at 1%). NaN when
    no point has another curve beside it.

    Notes
    -----
    The original takes Y from a straight-line fit through the neighbouring
    points of each other curve; linear interpolation between the two
    neighbours is the same to first order and needs no window parameter.
    """
    from normscale.laws.window import noise_level

    xs = [np.log(c.norm / lo) for c, lo in zip(curves, lambda_opt, strict=True)]
    ys = [np.log(c.error / eo) for c, eo in zip(curves, eps_opt, strict=True)]
    if errors is None:
        errors = [np.full(c.norm.size, max(noise_level([c]), _MIN_POINT_ERROR)) for c in curves]
    errs = [np.maximum(np.asarray(e, float), _MIN_POINT_ERROR) for e in errors]
    total, count = 0.0, 0
    for p in range(len(curves)):
        num = np.zeros(xs[p].size)
        wsum = np.zeros(xs[p].size)
        for q in range(len(curves)):
            if q == p:
                continue
            inside = (xs[p] >= xs[q][0]) & (xs[p] <= xs[q][-1])
            if not inside.any():
                continue
            w = 1.0 / np.interp(xs[p][inside], xs[q], errs[q]) ** 2
            num[inside] += w * np.interp(xs[p][inside], xs[q], ys[q])
            wsum[inside] += w
        ok = wsum > 0
        if not ok.any():
            continue
        Y = num[ok] / wsum[ok]
        total += float(np.sum((ys[p][ok] - Y) ** 2 / (errs[p][ok] ** 2 + 1.0 / wsum[ok])))
        count += int(ok.sum())
    return total / count if count else float("nan")
