"""gamma1 from the local-slope profile of the curves in lambda/lambda_opt (law 1, automatic).

The early-training law eps ~ k1 lambda^(-gamma1) says that the local slope
s(x) = -d ln eps / d ln lambda, x = log10(lambda/lambda_opt), holds at
gamma1 over a stretch before the minimum. Real curves rarely show a long
plateau of s: it is either peaked (the steepest part of the descent, where
the paper puts its hand windows) or it falls steadily from the first logged
point (training was already past its early phase when logging began). So
normscale looks at the profile itself, averaged over P, and reports what it
sees:

1. Each curve's local slope is the least-squares slope of ln eps against
   ln lambda over a sliding window of +-``PROFILE_HALF_STEPS`` logging
   steps, at every logged point below its minimum.
2. The profiles are interpolated on a common grid of x (``GRID_STEPS``
   logging steps) and averaged over the P that cover each x (at least half
   of them, and 2).
3. A stretch *holds* when the averaged profile stays within ``TOLERANCE``
   (relative) of its mid-range over at least ``MIN_STEPS`` logging steps.
   The steepest stretch that holds is kept
   and widened while it still holds; its ends more than ``TRIM`` below its
   median are trimmed off (the onset of the elbow).
4. gamma1 is then fitted from the window on with the bend towards the
   minimum modelled (:mod:`normscale.laws.early`: the early law plus the
   late rise, per P, averaged; ``estimator`` "sum form") when that corrects
   the profile's steepest slope by at most 2 ``TOLERANCE``: the curves come
   close to their early law. A larger correction means they never do (the
   sum form overshoots on a saturating rise, like the perceptron's): the
   window's mean slope is then a lower bound (the bend only lowers the
   local slope) and the sum form an upper one, and gamma1 is their midpoint
   with half their distance as a systematic error (``estimator`` "bracket").
   Where fewer than 2 curves rise past their minimum, gamma1 is the paper's
   estimator in the window: the mean over P
   of the per-P least-squares slopes (:func:`normscale.laws.window.fit_window`).
   When that window starts within a logging step of the profile's first
   point (a short curve, the early law cut by the start of logging), the
   change of the profile across the window (first third against last
   third) is added to gamma1's error.

gamma1 is *undefined*, with the reason, when no stretch holds, when the
profile peaks at its first point and falls from there (its mean over the
first third of its range is more than 2 ``TOLERANCE`` above its mean over the
middle third; it is monotone:
the descent began before the logging, so the early law is not seen), or
when the per-P slopes inside the stretch scatter by more than
``MAX_SPREAD`` of their mean (the curves do not share one early law there,
the collapse fails).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from normscale.errors import NormscaleError
from normscale.laws.curves import Curve
from normscale.laws.early import sum_form_gamma1
from normscale.laws.window import MIN_POINTS, Window, fit_window

#: half-width of the sliding window of the local slope, in logging steps (5 points on a regular
#: grid). Every length on the norm axis is counted in logging steps (the curves' median step in
#: log10 norm), never in decades: a change of units lambda -> c lambda^k multiplies both by k, so
#: the same points are used whatever the units, and the profile only scales by 1/k
PROFILE_HALF_STEPS = 2.0
#: step of the common grid of x = log10(lambda/lambda_opt), in logging steps
GRID_STEPS = 0.5
#: a stretch holds while the averaged profile stays within this fraction of its mid-range
TOLERANCE = 0.15
#: the fit window drops the ends of the stretch that sit this far below its median
TRIM = 0.05
#: the shortest stretch that can hold, in logging steps (4 points per curve)
MIN_STEPS = 3.0
#: the per-P slopes in the stretch may scatter by this fraction of their mean (sd / mean):
#: more, and the curves do not share one early law there
MAX_SPREAD = 0.35


@dataclass(frozen=True)
class SlopeProfile:
    """The averaged local-slope profile of the curves below their minimum (law 1).

    Empty arrays when fewer than 2 curves have a profile, or no grid point is
    covered by enough of them.

    Attributes
    ----------
    x : ndarray of shape (n,)
        The common grid of x = log10(lambda/lambda_opt) (decades, <= 0), in
        steps of ``GRID_STEPS`` logging steps, from the first to the last point
        covered by at least 2 curves and half of them.
    slope : ndarray of shape (n,)
        The mean over the curves covering each ``x`` of the local slope
        s = -d ln eps / d ln lambda (> 0 where the error falls; the same in
        any log base), each curve's profile interpolated linearly on ``x``;
        NaN at a point in between that too few curves cover.
    n_curves : ndarray of int, shape (n,)
        How many curves (one per P) cover each ``x``.
    per_curve : tuple of (float, ndarray, ndarray)
        Each curve's own profile as (P, x, s), at its logged points with
        x <= 0 (those with 3 points or more in the sliding window); only
        curves with 2 such points or more.
    half_width : float
        The half-width of the sliding window of the local slope, in decades of
        the norm: ``PROFILE_HALF_STEPS`` times the median logging step.
    """

    x: np.ndarray
    slope: np.ndarray
    n_curves: np.ndarray
    per_curve: tuple[tuple[float, np.ndarray, np.ndarray], ...]
    half_width: float


@dataclass(frozen=True)
class Gamma1:
    """gamma1 from the profile: the window it was fitted in, or why it is undefined.

    Attributes
    ----------
    window : Window or None
        The window in lambda/lambda_opt and the early-law fit in it, its
        ``gamma1`` the result (``estimator`` says which); None when gamma1 is
        undefined.
    reason : str
        Why gamma1 is undefined (no stretch holds, the profile is monotone,
        the per-P slopes scatter, too few points); ``""`` when it is defined.
    stretch : tuple of float or None
        (first, last) x = log10(lambda/lambda_opt) (decades) of the stretch of
        the averaged profile that held, before its ends were trimmed; kept
        also when the per-P slopes inside it disagree; None when no stretch
        held (or no profile).
    profile : SlopeProfile or None
        The averaged local-slope profile the stretch was read from.
    step : float
        The curves' median logging step in decades of the norm
        (:func:`logging_step`), the unit of a one-step change of the window.
    defined : bool
        Whether gamma1 is defined (``window`` is not None) (property).
    value : float
        ``window.gamma1``, NaN when undefined (property).
    """

    window: Window | None
    reason: str
    stretch: tuple[float, float] | None
    profile: SlopeProfile | None
    step: float

    @property
    def defined(self) -> bool:
        return self.window is not None

    @property
    def value(self) -> float:
        return self.window.gamma1 if self.window is not None else float("nan")


def logging_step(curves: list[Curve]) -> float:
    """The curves' median logging step, in decades of the norm."""
    return float(np.median([np.median(np.diff(np.log10(c.norm))) for c in curves]))


def local_slopes(curve: Curve, lambda_opt: float, half_width: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(x, s): the local slope s = -d ln eps / d ln lambda at each logged point with x <= 0.

    The least-squares slope over the points within ``half_width`` (log10
    norm) of each point, from prefix sums: O(n log n) in the curve's length.
    """
    u = np.log10(curve.norm)
    x = u - np.log10(lambda_opt)
    y = np.log(curve.error)
    k = np.flatnonzero(x <= 1e-9 * half_width)
    if k.size == 0:
        return np.array([]), np.array([])
    lo = np.searchsorted(u, u[k] - half_width * (1 + 1e-6), side="left")
    hi = np.searchsorted(u, u[k] + half_width * (1 + 1e-6), side="right")
    v = u - u[0]  # centred for the sums' precision
    csum = [np.concatenate([[0.0], np.cumsum(a)]) for a in (np.ones_like(v), v, y, v * v, v * y)]
    n, sv, sy, svv, svy = (c[hi] - c[lo] for c in csum)
    cvv = svv - sv * sv / np.maximum(n, 1)
    cvy = svy - sv * sy / np.maximum(n, 1)
    ok = (n >= 3) & (cvv > 0)
    return x[k][ok], -(cvy[ok] / cvv[ok]) / np.log(10)


def slope_profile(curves: list[Curve], lambda_opt: np.ndarray) -> SlopeProfile:
    """The local-slope profile of every curve and their average on a common grid."""
    step = logging_step(curves)
    half = PROFILE_HALF_STEPS * step
    per = []
    for c, lo in zip(curves, lambda_opt, strict=True):
        x, s = local_slopes(c, float(lo), half)
        if x.size >= 2:
            per.append((c.P, x, s))
    if len(per) < 2:
        return SlopeProfile(np.array([]), np.array([]), np.array([], int), tuple(per), half)
    x0 = min(x[0] for _, x, _ in per)
    d = GRID_STEPS * step
    grid = np.arange(np.floor(x0 / d) * d, 0.0 + 1e-9 * d, d)
    values = np.full((len(per), grid.size), np.nan)
    for j, (_, x, s) in enumerate(per):
        inside = (grid >= x[0] - 1e-6 * d) & (grid <= x[-1] + 1e-6 * d)
        values[j, inside] = np.interp(grid[inside], x, s)
    count = np.sum(~np.isnan(values), axis=0)
    enough = count >= max(2, (len(per) + 1) // 2)
    mean = np.where(enough, np.nanmean(np.where(enough, values, 0.0), axis=0), np.nan)
    keep = np.flatnonzero(enough)
    if keep.size == 0:
        return SlopeProfile(np.array([]), np.array([]), np.array([], int), tuple(per), half)
    sl = slice(keep[0], keep[-1] + 1)
    return SlopeProfile(grid[sl], mean[sl], count[sl], tuple(per), half)


def _holding_stretches(x: np.ndarray, s: np.ndarray, min_width: float):
    """All (i, j) with x[j] - x[i] >= min_width where s stays within TOLERANCE of its mid-range;
    returns arrays i, j, mean slope."""
    n = x.size
    csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(s))])
    out_i, out_j, out_m = [], [], []
    for i in range(n):
        if np.isnan(s[i]):
            continue
        seg = s[i:]
        bad = np.isnan(seg)
        stop = int(np.argmax(bad)) if bad.any() else seg.size
        seg = seg[:stop]
        hi, lo = np.maximum.accumulate(seg), np.minimum.accumulate(seg)
        mid = 0.5 * (hi + lo)
        holds = (hi - lo) <= 2 * TOLERANCE * np.abs(mid)
        holds &= mid > 0
        # a stretch stops holding for good once it fails (running max/min only grow)
        last = int(np.argmin(holds)) if not holds.all() else holds.size
        j = np.arange(i, i + last)
        wide = x[j] - x[i] >= min_width * (1 - 1e-6)
        j = j[wide]
        out_i.append(np.full(j.size, i))
        out_j.append(j)
        out_m.append((csum[j + 1] - csum[i]) / (j - i + 1))
    if not out_i:
        return np.array([], int), np.array([], int), np.array([])
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_m)


def _trimmed(prof: SlopeProfile, i: int, j: int, min_width: float) -> tuple[float, float]:
    """The fit window inside a holding stretch: its ends trimmed while the profile there is more
    than ``TRIM`` below the stretch's median (the onset of the elbow, or of the early plateau,
    which a tolerance of +-``TOLERANCE`` lets in and which would bias gamma1 low)."""
    s = prof.slope
    floor = (1 - TRIM) * float(np.median(s[i:j + 1]))
    a, b = i, j
    while b > a and s[b] < floor and prof.x[b - 1] - prof.x[a] >= min_width * (1 - 1e-6):
        b -= 1
    while a < b and s[a] < floor and prof.x[b] - prof.x[a + 1] >= min_width * (1 - 1e-6):
        a += 1
    return float(prof.x[a]), float(prof.x[b])


def _falls(x: np.ndarray, s: np.ndarray) -> bool:
    """Whether the profile falls from its start: its mean over the first third of its range
    exceeds its mean over the middle third by more than the ``TOLERANCE`` a holding stretch
    allows (a relative change, the same in any units of the norm; a flat early law with noise
    does not pass it, a descent that began before logging does)."""
    first = x <= x[0] + (x[-1] - x[0]) / 3
    middle = ~first & (x <= x[0] + 2 * (x[-1] - x[0]) / 3)
    if not first.any() or not middle.any():
        return False
    return float(np.mean(s[first])) > (1 + 2 * TOLERANCE) * float(np.mean(s[middle]))


def profile_gamma1(curves: list[Curve], lambda_opt: np.ndarray) -> Gamma1:
    """gamma1 from the averaged local-slope profile (see the module docstring).

    Parameters
    ----------
    curves : list of Curve
        Seed-averaged curves, one per P.
    lambda_opt : numpy.ndarray
        Their lambda_opt (the basin centres).

    Returns
    -------
    Gamma1
        The window and the early-law fit in it, or the reason gamma1 is
        undefined. Never raises on short or odd curves.
    """
    lambda_opt = np.asarray(lambda_opt, float)
    step = logging_step(curves)
    prof = slope_profile(curves, lambda_opt)
    if prof.x.size < 2:
        return Gamma1(None, "fewer than 2 curves have 3 points or more below their minimum",
                      None, prof, step)
    min_width = MIN_STEPS * step
    i, j, m = _holding_stretches(prof.x, prof.slope, min_width)
    if i.size == 0:
        return Gamma1(None, f"no stretch of the slope profile holds within "
                            f"{TOLERANCE:.0%} over {MIN_STEPS:g} logging steps", None, prof, step)
    best = int(np.argmax(m))
    # widen the steepest stretch while it holds: the widest holding stretch that contains it
    contains = (i <= i[best]) & (j >= j[best])
    k = int(np.flatnonzero(contains)[np.argmax((j - i)[contains])])
    a, b = _trimmed(prof, int(i[k]), int(j[k]), min_width)
    stretch = (float(prof.x[i[k]]), float(prof.x[j[k]]))
    if int(np.nanargmax(prof.slope)) == 0 and _falls(prof.x, prof.slope):
        return Gamma1(None, "the slope profile is monotone: it is steepest at its first point "
                            f"(lambda/lambda_opt = {10 ** prof.x[0]:.2g}); the early "
                            "descent began before logging", stretch, prof, step)
    try:
        win = replace(fit_window(curves, lambda_opt, (10 ** a, 10 ** b)), automatic=True)
    except NormscaleError:
        return Gamma1(None, f"fewer than 2 curves have {MIN_POINTS} points in the steepest "
                            f"stretch [{10 ** a:.2g}, {10 ** b:.2g}]", stretch, prof, step)
    slopes = np.asarray(win.slopes)
    spread = float(np.std(slopes, ddof=1) / abs(np.mean(slopes))) if slopes.size > 1 else 0.0
    if not spread <= MAX_SPREAD:
        return Gamma1(None, f"the per-P slopes in the steepest stretch [{10 ** a:.2g}, "
                            f"{10 ** b:.2g}] scatter from {slopes.min():.2f} to "
                            f"{slopes.max():.2f} ({spread:.0%} of their mean): no early law "
                            "shared by the curves", stretch, prof, step)
    upto = prof.x <= b + 1e-6 * step
    x_peak = float(prof.x[upto][int(np.nanargmax(prof.slope[upto]))])
    sf = sum_form_gamma1(curves, lambda_opt, x_start=10 ** a, x_peak=10 ** max(x_peak, a),
                         gamma1_start=win.gamma1)
    steepest = float(np.nanmax(prof.slope[upto]))
    if sf is not None and sf.gamma1 <= (1 + 2 * TOLERANCE) * steepest:
        # a correction within twice the profile's tolerance of its steepest point: the curves
        # come close to their early law, and the sum form's extrapolation is trusted
        win = replace(win, gamma1=sf.gamma1, gamma1_err=sf.gamma1_err, slopes=sf.slopes,
                      P_used=sf.P_used, estimator="sum form")
    elif sf is not None:
        # a larger one: the curves never come close to the early law the sum form reads into
        # them (a saturating rise, like the perceptron's towards maximal stability, makes it
        # overshoot). The window's mean slope is a lower bound (the bend only lowers the local
        # slope) and the sum form an upper one: gamma1 is their midpoint, half their distance
        # a systematic error
        half = 0.5 * abs(sf.gamma1 - win.gamma1)
        win = replace(win, gamma1=0.5 * (sf.gamma1 + win.gamma1),
                      gamma1_err=float(np.hypot(sf.gamma1_err, half)), slopes=sf.slopes,
                      P_used=sf.P_used, estimator="bracket")
    elif a <= prof.x[0] + step * (1 + 1e-9):
        # the window starts where the profile does: the early law may go on, steeper or
        # flatter, before logging began; gamma1 is uncertain by the change of the profile
        # across the window (mean over its first third against its last third: noise averages
        # out on a flat profile, a falling one keeps its drop)
        inside = (prof.x >= a - 1e-6 * step) & (prof.x <= b + 1e-6 * step)
        xs, ss = prof.x[inside], prof.slope[inside]
        third = (xs[-1] - xs[0]) / 3
        edge = abs(float(np.mean(ss[xs <= xs[0] + third]))
                   - float(np.mean(ss[xs >= xs[-1] - third])))
        win = replace(win, gamma1_err=float(np.hypot(win.gamma1_err, edge)))
    return Gamma1(win, "", stretch, prof, step)


def window_variants(curves: list[Curve], lambda_opt: np.ndarray, window: Window) -> list[float]:
    """gamma1 in the window moved by one logging step: shifted left and right, widened and
    narrowed on both sides (those that still hold 3 points on 2 curves); ``window`` in
    lambda/lambda_opt."""
    a, b = np.log10(window.lo), np.log10(window.hi)
    d = logging_step(curves)
    out = []
    for lo, hi in ((a - d, b - d), (a + d, b + d), (a - d, b + d), (a + d, b - d)):
        if hi - lo < d:
            continue
        try:
            out.append(fit_window(curves, lambda_opt, (10 ** lo, 10 ** hi)).gamma1)
        except NormscaleError:
            continue
    return out
