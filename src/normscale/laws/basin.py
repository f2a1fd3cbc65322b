"""The optimum of a learning curve as the centre of its basin (law 2's lambda_opt).

Real curves are noisy near their minimum, often flat there, and often cut
by the end of training. The grid argmin of such a curve jumps between
neighbouring points from one seed to the next, and says nothing about how
well lambda_opt is pinned. normscale takes the *basin* instead: the
contiguous run of logged points around the argmin whose error stays within
``BASIN_NOISE_LEVELS`` noise levels of the minimum. lambda_opt is the
centre of the basin in log norm, and half its width, in decades, is the
uncertainty of log10 lambda_opt.

A basin that reaches the last logged point is *censored*: training ended
inside it, so the true minimum may lie further right, and lambda_opt is a
lower bound; unless the run's stop rule saw it past its optimum (the error
stopped improving over a stretch of norm growth after its best point: a
``stop_reason`` of ``past_optimum``), in which case the basin is only flat.
A run stopped by a cap (``max_epochs``) is censored whatever its shape.
A censored curve whose error still falls over its last
``FALLING_STEPS`` logging steps by more than the noise, at a local slope above
``FALLING_FRACTION`` of its steepest, is *still falling*: it never reached
its minimum at all (a curve that flattened into its last point is only
censored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale.laws.curves import Curve

#: the basin: within this many noise levels of ln eps_opt (2: a point of the basin is not
#: distinguishable from the minimum at about 95% for Gaussian noise on both)
BASIN_NOISE_LEVELS = 2.0
#: floor of the lambda_opt uncertainty, in grid steps: a one-point basin is known to half a step
MIN_HALF_WIDTH_STEPS = 0.5
#: a censored curve is "still falling" when its error drops by more than the basin tolerance
#: over this last stretch, in logging steps (the curve's median step in log10 norm: the same
#: points in any units of the norm) ...
FALLING_STEPS = 3.0
#: ... at a local slope above this fraction of the curve's steepest: the end of training cut a
#: descent, rather than a curve that had flattened into its minimum
FALLING_FRACTION = 0.25


@dataclass(frozen=True)
class Basin:
    """The basin of one curve around its minimum (:func:`find_basin`; law 2's lambda_opt).

    Attributes
    ----------
    lambda_opt : float
        The basin's centre: the geometric mean of its end norms,
        sqrt(``lo`` ``hi``), in the curve's norm units (a lower bound when
        ``censored``).
    log10_err : float
        The uncertainty of log10 lambda_opt, in decades: half the basin's
        width, at least ``MIN_HALF_WIDTH_STEPS`` (half) a median grid step.
    eps_opt : float
        The smallest logged error (not refined), in the curve's error units.
    lo, hi : float
        The norms of the basin's first and last points (the contiguous points
        around the argmin with ln eps <= ln eps_min + ``BASIN_NOISE_LEVELS``
        ``noise``).
    n_points : int
        The logged points inside the basin (1 or more).
    censored : bool
        The basin reaches the last logged point and the run's stop rule did
        not see it past its optimum, or the run was stopped by a cap:
        ``lambda_opt`` is then a lower bound.
    still_falling : bool
        Censored, and the error still drops over the last ``FALLING_STEPS``
        logging steps by more than ``BASIN_NOISE_LEVELS`` ``noise``, at a
        local slope above ``FALLING_FRACTION`` of the curve's steepest: the
        curve never reached its minimum. Always False when not ``censored``.
    noise : float
        The noise level of ln eps used (natural log): the one given, else the
        curve's own from its second differences (at least 0.01).
    """

    lambda_opt: float
    log10_err: float
    eps_opt: float
    lo: float
    hi: float
    n_points: int
    censored: bool
    still_falling: bool
    noise: float

    @property
    def decades(self) -> float:
        """Width of the basin in decades of the norm."""
        return float(np.log10(self.hi / self.lo))


def curve_noise(curve: Curve) -> float:
    """Noise level of ln eps along one curve (:func:`normscale.laws.window.noise_level`)."""
    from normscale.laws.window import noise_level

    return noise_level([curve])


def find_basin(curve: Curve, *, noise: float | None = None) -> Basin:
    """The basin of ``curve`` around its smallest logged error.

    Parameters
    ----------
    curve : Curve
        One learning curve, sorted by norm.
    noise : float, optional
        Noise level of ln eps (default: estimated along the curve from its
        second differences, :func:`curve_noise`).

    Notes
    -----
    Basin = {i contiguous with argmin : ln eps_i <= ln eps_min + k s}, with
    k = ``BASIN_NOISE_LEVELS`` and s the noise level; lambda_opt =
    sqrt(lambda_lo lambda_hi); its error in decades max(log10(lambda_hi /
    lambda_lo) / 2, ``MIN_HALF_WIDTH_STEPS`` grid steps).
    """
    s = curve_noise(curve) if noise is None else float(noise)
    ln_eps = np.log(curve.error)
    i = int(np.argmin(ln_eps))
    inside = ln_eps <= ln_eps[i] + BASIN_NOISE_LEVELS * s
    lo = hi = i
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    while hi < inside.size - 1 and inside[hi + 1]:
        hi += 1
    u = np.log10(curve.norm)
    step = float(np.median(np.diff(u))) if u.size > 1 else 0.0
    half = max(0.5 * (u[hi] - u[lo]), MIN_HALF_WIDTH_STEPS * step)
    # a run stopped by a cap (epochs, time) before it passed its optimum is censored even
    # when its last points rise: the stop rule did not see the optimum; one its stop rule saw
    # past its optimum is not, even when its basin reaches its end: the error was flat there
    censored = (hi == u.size - 1 and not curve.past_optimum) or curve.stopped_early
    falling = False
    if censored:
        tail = u >= u[-1] - FALLING_STEPS * step * (1 + 1e-9)
        if tail.sum() >= 2:
            drop = ln_eps[tail][0] - ln_eps[-1]
            end_slope = drop / (u[-1] - u[tail][0]) / np.log(10)
            steepest = np.max(-np.diff(ln_eps) / np.diff(u)) / np.log(10)
            falling = bool(drop > BASIN_NOISE_LEVELS * s
                           and end_slope > FALLING_FRACTION * steepest)
    return Basin(lambda_opt=float(10 ** (0.5 * (u[lo] + u[hi]))), log10_err=float(half),
                 eps_opt=float(curve.error[i]), lo=float(curve.norm[lo]),
                 hi=float(curve.norm[hi]), n_points=hi - lo + 1, censored=bool(censored),
                 still_falling=falling, noise=s)
