"""A safeguarded, vectorised solver for the proximal map of a convex loss.

The proximal map of docs/science.md 1.4, ``D*(t) = argmin_D V(D) + (D - t)^2/(2x)``,
is the root of ``g(D) = D - t + x V'(D)``, which is increasing in D. The root
lies between t and t - x V'(t) (g changes sign there because V' is
non-decreasing), so Newton steps are accepted only inside a shrinking
bracket, and when they shrink fast enough, and replaced by bisection
otherwise: it cannot diverge, cycle nor stop at a bound.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from normscale.errors import NormscaleError


def prox_bracketed(
    d1: Callable[[np.ndarray], np.ndarray],
    d2: Callable[[np.ndarray], np.ndarray],
    t: np.ndarray,
    x: float,
    *,
    rtol: float = 1e-14,
    max_iter: int = 200,
) -> np.ndarray:
    """Solve ``D - t + x V'(D) = 0`` for every t by safeguarded Newton.

    Parameters
    ----------
    d1, d2 : callable
        V' and V'' (vectorised).
    t : ndarray of shape (n,)
        Points where the map is evaluated.
    x : float
        The proximal parameter, x > 0.

    Returns
    -------
    ndarray of shape (n,)
        D*(t).
    """
    t = np.asarray(t, dtype=float)
    other = t - x * d1(t)
    lo, hi = np.minimum(t, other), np.maximum(t, other)
    d = 0.5 * (lo + hi)
    done = np.zeros(t.shape, dtype=bool)
    last_step = hi - lo
    for _ in range(max_iter):
        g = d - t + x * d1(d)
        pos = g > 0
        hi = np.where(pos, d, hi)
        lo = np.where(pos, lo, d)
        slope = 1.0 + x * d2(d)
        newton = d - g / slope
        # Newton only inside the bracket and when it at least halves the step
        # (the rule of Numerical Recipes' rtsafe), else bisection
        good = (newton >= lo) & (newton <= hi) & (np.abs(newton - d) <= 0.5 * last_step)
        new = np.where(good, newton, 0.5 * (lo + hi))
        last_step = np.abs(new - d)
        scale = 1.0 + np.abs(new)
        small = (g == 0) | (np.abs(new - d) <= rtol * scale) | (hi - lo <= rtol * scale)
        d = np.where(done | (g == 0), d, new)
        done |= small
        if np.all(done):
            return d
    raise NormscaleError(f"the proximal map did not converge in {max_iter} iterations (x={x:g})")
