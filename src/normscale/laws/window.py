"""The early-training window where eps ~ k1 lambda^(-gamma1) (docs/science.md, law 1).

A window is an interval of the norm in one of two units: ``"norm"``
(absolute, the same interval for every P: law 1 says the early curves of
all P share one power law there) or ``"lambda/lambda_opt"`` (rescaled, the
units of the paper's hand-picked windows, docs/science.md 2.3: the elbow sits at
the same place for every P when the curves collapse).

The automatic window (normscale) is the widest window below the minimum
where one power law with a common exponent and a free prefactor per P fits
all curves within their noise, grown from the steepest stretch of the
curves so that the flat start of training (chance level, Hebb limit) is
never taken for the power law.

Censored minima: a curve whose minimum is its last logged point only gives
a lower bound on lambda_opt, so its place on the lambda/lambda_opt axis is
unknown (it may belong further left by any factor). In rescaled units such
curves are left out of the window search (:func:`find_window`,
``censored``); in absolute units they are kept, since lambda_opt enters
there only through the elbow cut, which a lower bound makes more cautious.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from normscale.errors import NormscaleError
from normscale.laws.curves import Curve

#: width of the seed window that anchors the search, in decades of lambda/lambda_opt
ANCHOR_DECADES = 0.5
#: grid of candidate window edges, in decades
EDGE_STEP = 0.05
#: points a curve needs inside the window to take part
MIN_POINTS = 3
#: a window is accepted while its rms residual stays below this many noise levels
TOLERANCE = 1.5
#: the two halves of an accepted window have slopes within this many standard errors
CURVATURE_Z = 2.0
#: each curve takes part only below this fraction of its lambda_opt (below its elbow); the
#: departure from the early power law near the elbow grows like (lambda/lambda_opt)^(gamma1+beta)
#: (beta: the late rise), so it biases gamma1 by about 1e-3 at 0.1 and half that at 0.05
ELBOW_FRACTION = 0.05
#: noise floor in ln(error): noiseless curves still accept a 1% scatter around a line
NOISE_FLOOR = 0.01
#: the two units a window can have
UNITS = ("norm", "lambda/lambda_opt")


@dataclass(frozen=True)
class Window:
    """A window [lo, hi] in ``units`` and the early-law fit inside it (law 1).

    The fit is of ln eps against ln lambda (natural logs) on the points of
    each curve inside the window: a least-squares slope per P (the paper's
    estimator, docs/science.md 2.3) and a joint fit with one common slope and
    one prefactor per P. A window is *within noise* when that joint fit's
    ``rms`` is at most ``TOLERANCE`` times ``noise``; when no automatic window
    is, the steepest anchor window is kept (the per-P slopes then differ by
    more than the noise, and ``gamma1_err`` says by how much).
    :func:`normscale.laws.profile.profile_gamma1` may replace ``gamma1``,
    ``gamma1_err``, ``slopes`` and ``P_used`` by the sum form's (``estimator``).

    Attributes
    ----------
    lo, hi : float
        The window's edges in ``units`` (plain values, not logs): absolute
        norms for ``"norm"``, ratios lambda/lambda_opt for ``"lambda/lambda_opt"``;
        ``lo`` = 0 is a hand window with no lower cut.
    gamma1 : float
        The early exponent of eps ~ k1 lambda^(-gamma1), > 0 for a falling
        error: with ``estimator`` ``"window"`` minus the mean of the per-P
        slopes; ``"sum form"`` the mean of the sum form's per-P exponents
        (:mod:`normscale.laws.early`); ``"bracket"`` the midpoint of the two.
    gamma1_err : float
        Its standard error: for ``"window"`` the standard error over P of the
        per-P slopes (sd / sqrt(n), ``dof`` degrees of freedom), widened by the
        profile's change across the window when it starts at the first
        logged point; for ``"sum form"`` :attr:`SumFormGamma1.gamma1_err
        <normscale.laws.early.SumFormGamma1.gamma1_err>`; for ``"bracket"``
        that combined in quadrature with half the distance of the two bounds.
    pooled_gamma1 : float
        Minus the common slope of the joint fit (one exponent, one prefactor
        per P) in the window; never replaced by the sum form.
    k1 : float
        The prefactor of eps ~ k1 lambda^(-pooled_gamma1) with lambda in
        absolute norm units (in either ``units``): the geometric mean over P
        of the joint fit's per-P prefactors, in the units of eps.
    rms : float
        The joint fit's residual standard deviation in ln eps: sqrt(SSE / dof)
        with dof = points - curves - 1 (at least 1).
    noise : float
        The curves' noise level in ln eps (:func:`noise_level`: from second
        differences, at least ``NOISE_FLOOR`` = 0.01).
    P_used : tuple of float
        The sizes P whose curves have ``MIN_POINTS`` points or more in the
        window (at least 2); with the sum form, the sizes it fitted.
    slopes : tuple of float
        The per-P exponents, in the order of ``P_used``: minus each curve's
        least-squares slope of ln eps on ln lambda in the window, or with the
        sum form its per-P gamma1.
    n_points : int
        Points inside the window, summed over the curves in the fit.
    automatic : bool
        True when the window was found from the curves (by the slope profile,
        :func:`normscale.laws.profile.profile_gamma1`, or :func:`find_window`);
        False for a window given by hand (:func:`fit_window`).
    units : str
        ``"norm"`` (the same absolute interval for every P) or
        ``"lambda/lambda_opt"`` (rescaled by each P's lambda_opt); see ``UNITS``.
    P_censored : tuple of float
        The sizes whose lambda_opt is censored (a lower bound) in a rescaled
        search, left out of it unless ``censored_kept``; empty otherwise.
    censored_kept : bool
        True when fewer than 2 uncensored curves could hold a window, so the
        censored ones were used too.
    slope_errs : tuple of float
        Each window slope's own least-squares standard error (residual
        variance over n - 2), one per curve in the window fit; kept when the
        sum form replaces ``slopes``. The input of :attr:`gamma1_err_paper`.
    estimator : str
        How ``gamma1`` was obtained: ``"window"``, ``"sum form"`` or
        ``"bracket"`` (see ``gamma1``).
    within_noise : bool
        Whether one power law fits the window within ``TOLERANCE`` noise
        levels: ``rms`` <= ``TOLERANCE`` * ``noise`` (property).
    """

    lo: float
    hi: float
    gamma1: float
    gamma1_err: float
    pooled_gamma1: float
    k1: float
    rms: float
    noise: float
    P_used: tuple[float, ...]
    slopes: tuple[float, ...]
    n_points: int
    automatic: bool
    units: str
    P_censored: tuple[float, ...] = ()
    censored_kept: bool = False
    slope_errs: tuple[float, ...] = ()
    estimator: str = "window"

    @property
    def gamma1_err_paper(self) -> float:
        """The paper's gamma1 error: sqrt(mean over P of each slope's own fit variance).

        Its analysis notebook (``fit_phi``) reports this beside the mean of
        the per-P slopes; it measures how well each curve fixes its slope,
        not how much the slopes differ between P (that is ``gamma1_err``).
        """
        errs = np.asarray(self.slope_errs)
        return float(np.sqrt(np.mean(errs ** 2))) if errs.size else float("nan")

    @property
    def within_noise(self) -> bool:
        return self.rms <= TOLERANCE * self.noise

    @property
    def dof(self) -> int:
        """Degrees of freedom of ``gamma1_err``: the number of per-P slopes minus one."""
        return len(self.slopes) - 1

    def to_dict(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "units": self.units,
                "P_used": list(self.P_used), "n_points": self.n_points,
                "rms": self.rms, "noise": self.noise, "within_noise": self.within_noise,
                "automatic": self.automatic, "P_censored": list(self.P_censored),
                "censored_kept": self.censored_kept, "gamma1_err_paper": self.gamma1_err_paper,
                "estimator": self.estimator}


@dataclass(frozen=True)
class _Sums:
    """Prefix sums per curve for O(1) window regressions; shape (n_curves, n_max + 1)."""

    u: list[np.ndarray]  # log10(lambda/lambda_opt), sorted, per curve
    s: np.ndarray  # (5, n_curves, n_max + 1): counts, x, y, xx, xy
    syy: np.ndarray  # (n_curves, n_max + 1)


def _prefix_sums(curves: list[Curve], lambda_opt: np.ndarray) -> _Sums:
    us = [np.log10(c.norm / lo) for c, lo in zip(curves, lambda_opt, strict=False)]
    n_max = max(u.size for u in us)
    s = np.zeros((5, len(curves), n_max + 1))
    syy = np.zeros((len(curves), n_max + 1))
    for j, (c, u) in enumerate(zip(curves, us, strict=False)):
        x, y = np.log(c.norm), np.log(c.error)
        for k, v in enumerate((np.ones_like(x), x, y, x * x, x * y)):
            s[k, j, 1:u.size + 1] = np.cumsum(v)
            s[k, j, u.size + 1:] = s[k, j, u.size]
        syy[j, 1:u.size + 1] = np.cumsum(y * y)
        syy[j, u.size + 1:] = syy[j, u.size]
    return _Sums(us, s, syy)


def _window_stats(sums: _Sums, lo: np.ndarray, hi: np.ndarray):
    """Per-window, per-curve centred sums; arrays of shape (n_windows, n_curves)."""
    n_c = len(sums.u)
    # window edges sit on a grid: search each distinct edge once per curve
    lo_u, lo_inv = np.unique(lo, return_inverse=True)
    hi_u, hi_inv = np.unique(hi, return_inverse=True)
    i0 = np.stack([np.searchsorted(u, lo_u - 1e-12, side="left") for u in sums.u], axis=1)[lo_inv]
    i1 = np.stack([np.searchsorted(u, hi_u + 1e-12, side="right") for u in sums.u], axis=1)[hi_inv]
    cols = np.arange(n_c)[None, :]
    n, sx, sy, sxx, sxy = (sums.s[k][cols, i1] - sums.s[k][cols, i0] for k in range(5))
    syy = sums.syy[cols, i1] - sums.syy[cols, i0]
    use = n >= MIN_POINTS
    safe = np.where(use, n, 1)
    cxx = np.where(use, sxx - sx * sx / safe, 0.0)
    cxy = np.where(use, sxy - sx * sy / safe, 0.0)
    cyy = np.where(use, syy - sy * sy / safe, 0.0)
    return use, n, sx, sy, cxx, cxy, cyy


def noise_level(curves: list[Curve]) -> float:
    """Robust noise level of ln(error) from second differences along each curve.

    For white noise of size s the second difference has standard deviation
    s sqrt(6); the median absolute deviation makes smooth curvature and a few
    jumps irrelevant. Floored at ``NOISE_FLOOR``.
    """
    parts = [np.diff(np.log(c.error), 2) for c in curves if c.error.size >= 3]
    d2 = np.concatenate(parts) if parts else np.array([])
    s = np.median(np.abs(d2 - np.median(d2))) / 0.6745 / np.sqrt(6.0) if d2.size else 0.0
    return float(max(s, NOISE_FLOOR))


def _fit_in_window(curves: list[Curve], scale: np.ndarray, lo: float, hi: float,
                   noise: float, automatic: bool, units: str) -> Window:
    """Fit in [lo, hi] of norm/scale (scale: ones for ``"norm"`` units, else lambda_opt)."""
    sums = _prefix_sums(curves, scale)
    use, n, sx, sy, cxx, cxy, cyy = (a[0] for a in _window_stats(
        sums, np.array([np.log10(lo)]), np.array([np.log10(hi)])))
    if use.sum() < 2:
        raise NormscaleError(
            f"the window [{lo:g}, {hi:g}] holds {MIN_POINTS} points or more "
            f"for {int(use.sum())} curve(s); at least 2 are needed")
    slopes = cxy[use] / cxx[use]
    pooled = cxy[use].sum() / cxx[use].sum()
    sse = cyy[use].sum() - pooled * cxy[use].sum()
    n_pts = int(n[use].sum())
    dof = max(n_pts - int(use.sum()) - 1, 1)
    intercepts = (sy[use] - pooled * sx[use]) / n[use]
    g1 = float(-slopes.mean())
    err = float(slopes.std(ddof=1) / np.sqrt(slopes.size))
    # each slope's own standard error: its residual variance over (n - 2), over cxx
    resid = np.maximum(cyy[use] - slopes * cxy[use], 0.0) / np.maximum(n[use] - 2, 1)
    slope_errs = tuple(float(v) for v in np.sqrt(resid / cxx[use]))
    P_used = tuple(c.P for c, u in zip(curves, use, strict=False) if u)
    return Window(float(lo), float(hi), g1, err, float(-pooled), float(np.exp(intercepts.mean())),
                  float(np.sqrt(max(sse, 0.0) / dof)), noise, P_used,
                  tuple(float(-s) for s in slopes), n_pts, automatic, units,
                  slope_errs=slope_errs)


def fit_window(curves: list[Curve], lambda_opt: np.ndarray,
               window: tuple[float, float] | tuple[float, float, float]) -> Window:
    """The early law fitted in a window fixed by hand, in lambda/lambda_opt units.

    ``window`` is ``(lo, hi)``, or ``(lo, hi, P_min)`` to fit only the curves
    with P >= P_min, as the paper's notebooks do (their ``min_P``: the gamma1
    of CNN/MNIST uses P >= 24000 in [1e-3, 1e-2], docs/science.md 2.3).
    """
    lo, hi, *rest = window
    keep = np.array([c.P >= rest[0] for c in curves]) if rest else np.ones(len(curves), bool)
    if keep.sum() < 2:
        raise NormscaleError(
            f"the window's P_min = {rest[0]:g} leaves {int(keep.sum())} curve(s); "
            f"at least 2 are needed")
    chosen, lam = _subset(curves, lambda_opt, keep)
    return _fit_in_window(chosen, lam, lo, hi, noise_level(chosen), automatic=False,
                          units=UNITS[1])


def _subset(curves: list[Curve], lambda_opt: np.ndarray, keep: np.ndarray
            ) -> tuple[list[Curve], np.ndarray]:
    """The curves flagged by the boolean ``keep``, with their lambda_opt."""
    return ([c for c, k in zip(curves, keep, strict=True) if k],
            np.asarray(lambda_opt, float)[keep])


def find_window(curves: list[Curve], lambda_opt: np.ndarray, *, units: str = "norm",
                censored: np.ndarray | None = None) -> Window:
    """Find the early-training window automatically (see the module docstring).

    Parameters
    ----------
    curves : list of Curve
        Seed-averaged curves, one per P.
    lambda_opt : numpy.ndarray
        lambda_opt of each curve.
    units : {"norm", "lambda/lambda_opt"}
        Units in which the window is searched.
    censored : numpy.ndarray of bool, optional
        Curves whose lambda_opt is only a lower bound (minimum at the last
        logged point). In ``"lambda/lambda_opt"`` units they are left out of
        the search: their position on that axis is unknown. When fewer than
        2 uncensored curves can hold a window, all curves are used and the
        result says so (``Window.censored_kept``). Ignored in ``"norm"``
        units.

    Returns
    -------
    Window
        The window and the early-law fit inside it.

    Notes
    -----

    0. Each curve is cut at ``ELBOW_FRACTION`` times its lambda_opt.
    1. Candidate windows have edges on a grid of ``EDGE_STEP`` decades in
       ``units`` (``"norm"`` or ``"lambda/lambda_opt"``) and hold at least
       ``MIN_POINTS`` points for 2 curves or more.
    2. The anchor is the ``ANCHOR_DECADES``-wide window with the steepest
       common slope (common exponent, one prefactor per P).
    3. Among windows that contain the anchor, the one with the most points
       whose rms residual is at most ``TOLERANCE`` times the noise level
       (estimated from the curves, :func:`noise_level`) and whose lower and
       upper halves have common slopes within ``CURVATURE_Z`` standard
       errors (no curvature) is chosen.
    """
    if units != UNITS[1] or censored is None or not np.any(censored):
        return _find_window(curves, lambda_opt, units=units)
    cens = np.asarray(censored, bool)
    if cens.size != len(curves):
        raise NormscaleError(f"censored has {cens.size} entries for {len(curves)} curves")
    P_cens = tuple(c.P for c, k in zip(curves, cens, strict=True) if k)
    try:
        win = _find_window(*_subset(curves, lambda_opt, ~cens), units=units)
    except NormscaleError:
        return replace(_find_window(curves, np.asarray(lambda_opt, float), units=units),
                       P_censored=P_cens, censored_kept=True)
    return replace(win, P_censored=P_cens)


def _find_window(curves: list[Curve], lambda_opt: np.ndarray, *, units: str) -> Window:
    """:func:`find_window` on all ``curves``."""
    noise = noise_level(curves)
    below, scale = [], []
    for c, lo in zip(curves, lambda_opt, strict=True):
        keep = c.norm <= ELBOW_FRACTION * lo
        if keep.sum() >= MIN_POINTS:
            below.append(Curve(c.P, c.norm[keep], c.error[keep]))
            scale.append(1.0 if units == UNITS[0] else float(lo))
    if len(below) < 2:
        raise NormscaleError(
            f"fewer than 2 curves have {MIN_POINTS} points or more below their minimum: "
            "no early-training window")
    scale = np.array(scale)
    sums = _prefix_sums(below, scale)
    u_min, u_max = min(u[0] for u in sums.u), max(u[-1] for u in sums.u)
    edges = np.arange(u_min, u_max + EDGE_STEP, EDGE_STEP)
    a, b = np.meshgrid(edges, edges, indexing="ij")
    keep = b - a >= ANCHOR_DECADES - 1e-9
    lo, hi = a[keep], b[keep]
    use, n, _, _, cxx, cxy, cyy = _window_stats(sums, lo, hi)
    n_curves = use.sum(axis=1)
    sxx, sxy = (cxx * use).sum(axis=1), (cxy * use).sum(axis=1)
    valid = (n_curves >= 2) & (sxx > 0)
    slope = np.where(valid, sxy / np.where(valid, sxx, 1.0), np.inf)
    sse = (cyy * use).sum(axis=1) - np.where(valid, slope, 0.0) * sxy
    n_pts = (n * use).sum(axis=1)
    rms = np.sqrt(np.maximum(sse, 0.0) / np.maximum(n_pts - n_curves - 1, 1))
    # curvature test: the common slopes of the lower and upper halves must agree
    halves = []
    for h_lo, h_hi in ((lo, 0.5 * (lo + hi)), (0.5 * (lo + hi), hi)):
        h_use, _, _, _, h_xx, h_xy, _ = _window_stats(sums, h_lo, h_hi)
        sxx_h = (h_xx * h_use).sum(axis=1)
        ok_h = sxx_h > 0
        h_slope = (h_xy * h_use).sum(axis=1) / np.where(ok_h, sxx_h, 1)
        halves.append((np.where(ok_h, h_slope, np.nan),
                       np.where(ok_h, noise / np.sqrt(np.where(ok_h, sxx_h, 1)), np.inf)))
    (s_a, e_a), (s_b, e_b) = halves
    straight = ~(np.abs(s_a - s_b) > CURVATURE_Z * np.hypot(e_a, e_b))
    anchors = valid & np.isclose(hi - lo, ANCHOR_DECADES) & (n_curves >= (len(below) + 1) // 2)
    if not anchors.any():
        anchors = valid
    if not anchors.any():
        raise NormscaleError(
            f"no window below the minima holds {MIN_POINTS} points or more for 2 curves: "
            "the curves are too short or too sparse before their minima")
    k = int(np.argmin(np.where(anchors, slope, np.inf)))
    a_lo, a_hi = lo[k], hi[k]
    contains_anchor = (lo <= a_lo + 1e-9) & (hi >= a_hi - 1e-9)
    ok = valid & contains_anchor & (rms <= TOLERANCE * noise) & straight & (slope < 0)
    if not ok.any():
        ok = np.zeros_like(valid)
        ok[k] = True
    score = np.where(ok, n_pts + 1e-3 * (hi - lo), -np.inf)
    best = int(np.argmax(score))
    return _fit_in_window(below, scale, 10 ** lo[best], 10 ** hi[best], noise, automatic=True,
                          units=units)
