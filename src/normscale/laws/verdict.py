"""Do the data support gamma_pred = gamma1 gamma2 = gamma_meas? Nested ranges of P and a verdict.

The dynamical laws are asymptotic in P, and real studies rarely give clean
power laws over all their P: lambda_opt(P) bends, minima are cut by the end
of training, the early law is not seen. So the laws are refitted on nested
ranges of the largest P (all, the upper 2/3, the upper 1/2), each with its
own gamma1 (from the curves of that range), gamma2, gamma_meas and the
window-free check gamma1_direct = -d ln eps_opt / d ln lambda_opt across P
(if eps_opt = eps(lambda_opt) on one master curve, eps_opt ~
lambda_opt^-gamma1 from P to P, with no window at all).

Systematic errors: half the spread of gamma2, gamma_meas and gamma_pred over
the ranges, and half the spread of gamma_pred over a one-step change of the
gamma1 window; the reported sigma(gamma_pred) is never below either.

The verdict of a range:

- ``untestable`` when gamma1 is undefined there (with the profile's reason),
  when it has fewer than ``MIN_P`` sizes, when most of its minima were
  still falling at the end of training (lambda_opt unknown), or when its
  basins are flat (median width above ``FLAT_DECADES``);
- ``tension`` when |z| > ``Z_MAX`` for gamma_pred against gamma_meas, or
  |z| > ``Z_DIRECT_MAX`` for gamma1 against gamma1_direct, or when lambda_opt(P) or eps_opt(P) is
  curved on it (quadratic term in log-log at more than ``CURVATURE_T``
  standard errors: no single power law);
- ``consistent`` otherwise.

The group's verdict is that of all P when it is consistent, else that of
the widest upper range that is consistent (the laws hold asymptotically;
the reasons say what fails below), else ``tension`` if any range could be
tested, else ``untestable``. Caveats (censored minima, gamma_pred by
range) are listed in the reasons without changing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from normscale.errors import NormscaleError
from normscale.laws.curves import CurveSet
from normscale.laws.fits import PowerLaw, fit_power_law
from normscale.laws.pipeline import LawsInP, gamma1_in
from normscale.laws.profile import window_variants

#: nested ranges: name and the fraction of the P (the largest ones) they keep
RANGES = (("all", 1.0), ("upper 2/3", 2 / 3), ("upper 1/2", 1 / 2))
#: |z| above this is a tension (two-sided 95%)
Z_MAX = 2.0
#: |z| of gamma1 against gamma1_direct above this is a tension: a second test of nearly the same
#: hypothesis (gamma1_direct ~ gamma_meas / gamma2), so a stricter level keeps the false-alarm
#: rate of the pair near 5%
Z_DIRECT_MAX = 3.0
#: a quadratic term in log-log at more than this many standard errors is a curved law; 3, not
#: 2: with 2 laws on up to 3 ranges, 2 would flag a straight law in about 1 study in 4
CURVATURE_T = 3.0
#: fewest P for a testable range (3 give a slope and no check of it)
MIN_P = 4
#: fewest P for the curvature test (a parabola through 5 points keeps 2 degrees of freedom)
MIN_P_CURVATURE = 5
#: a median basin wider than this (decades of the norm) leaves lambda_opt undetermined
FLAT_DECADES = 1.0
#: more than this fraction of the P still falling at their last point: lambda_opt unknown
MAX_FALLING = 0.5
#: verdicts, best first
VERDICTS = ("consistent", "tension", "untestable")


def curvature_t(P: np.ndarray, y: np.ndarray) -> float:
    """t statistic of the quadratic term of ln y = a + b L + c L^2, L = ln P centred.

    NaN with fewer than ``MIN_P_CURVATURE`` points. Large |t|: ln y is not
    linear in ln P, the power law bends.
    """
    L = np.log(np.asarray(P, float))
    L = L - L.mean()
    ly = np.log(np.asarray(y, float))
    n = L.size
    if n < MIN_P_CURVATURE or np.ptp(L) == 0:
        return float("nan")
    X = np.stack([np.ones(n), L, L * L], axis=1)
    coef, *_ = np.linalg.lstsq(X, ly, rcond=None)
    resid = ly - X @ coef
    s2 = float(resid @ resid) / (n - 3)
    cov = s2 * np.linalg.inv(X.T @ X)
    se = math.sqrt(max(cov[2, 2], 0.0))
    if se == 0.0:
        return 0.0 if coef[2] == 0 else math.copysign(math.inf, coef[2])
    return float(coef[2] / se)


def _half_spread(values) -> float:
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    return float(0.5 * np.ptp(v)) if v.size >= 2 else 0.0


@dataclass(frozen=True)
class RangeFit(LawsInP):
    """The laws refitted on one range of P (the largest ones).

    ``gamma1`` is NaN when undefined on this range (``gamma1_reason``
    says why); ``gamma1_err`` is the spread of the per-P slopes over P;
    ``window`` its window in lambda/lambda_opt; ``window_gamma1`` gamma1 in
    the window moved by one logging step; ``lambda_law``, ``eps_law`` and
    ``direct`` the fits of lambda_opt(P), eps_opt(P) and eps_opt against
    lambda_opt; ``curvature`` the t statistics of their quadratic terms.
    ``verdict``, ``problems`` (why it is not ``consistent``), ``z``,
    ``z_direct`` and ``sigma`` are filled in by :func:`assess`.
    """

    name: str
    P: tuple[float, ...]
    gamma1: float
    gamma1_err: float
    gamma1_reason: str
    window: tuple[float, float] | None
    window_gamma1: tuple[float, ...]
    lambda_law: PowerLaw
    eps_law: PowerLaw
    direct: PowerLaw | None
    curvature: dict[str, float]
    n_still_falling: int
    n_censored: int
    median_basin_decades: float
    verdict: str = "untestable"
    problems: tuple[str, ...] = ()
    z: float = float("nan")
    z_direct: float = float("nan")
    sigma: float = float("nan")
    gamma_pred_err: float = float("nan")
    gamma_meas_err: float = float("nan")

    @property
    def gamma1_direct(self) -> float:
        return -self.direct.exponent if self.direct is not None else float("nan")

    @property
    def P_range(self) -> tuple[float, float]:
        return (min(self.P), max(self.P))

    def to_dict(self) -> dict:
        return {"name": self.name, "P": list(self.P), "P_range": list(self.P_range),
                "gamma1": self.gamma1, "gamma1_err": self.gamma1_err,
                "gamma1_reason": self.gamma1_reason,
                "window": list(self.window) if self.window else None,
                "window_gamma1": list(self.window_gamma1),
                "gamma2": self.gamma2, "gamma2_err": self.lambda_law.exponent_err,
                "gamma_meas": self.gamma_meas, "gamma_meas_err": self.gamma_meas_err,
                "gamma_pred": self.gamma_pred, "gamma_pred_err": self.gamma_pred_err,
                "gamma1_direct": self.gamma1_direct,
                "gamma1_direct_err": (self.direct.exponent_err if self.direct is not None
                                      else float("nan")),
                "curvature_t": dict(self.curvature), "sigma": self.sigma, "z": self.z,
                "z_direct": self.z_direct, "verdict": self.verdict,
                "problems": list(self.problems), "n_censored": self.n_censored,
                "n_still_falling": self.n_still_falling,
                "median_basin_decades": self.median_basin_decades}


@dataclass(frozen=True)
class Assessment:
    """The nested-range fits and the group's verdict.

    ``verdict`` is one of :data:`VERDICTS`; ``reasons`` say why (first the
    problems that decided it, then caveats); ``range`` is the
    :class:`RangeFit` the verdict rests on (its ``z``, ``P_range``);
    ``systematic`` maps gamma2, gamma_meas, gamma_pred (ranges) and
    gamma_pred_window to half their spread.
    """

    verdict: str
    reasons: tuple[str, ...]
    range: RangeFit
    ranges: tuple[RangeFit, ...]
    systematic: dict[str, float] = field(default_factory=dict)

    @property
    def z(self) -> float:
        return self.range.z

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "verdict_reasons": list(self.reasons), "z": self.z,
                "z_direct": self.range.z_direct, "verdict_range": self.range.name,
                "P_range": list(self.range.P_range), "systematic": dict(self.systematic),
                "ranges": [r.to_dict() for r in self.ranges]}


def _range_fit(name: str, sets: list[CurveSet], optima, *, window, gamma1_method) -> RangeFit:
    P = np.array([o.P for o in optima])
    lam = np.array([o.lambda_opt for o in optima])
    eps = np.array([o.eps_opt for o in optima])
    try:
        win, reason, _ = gamma1_in(sets, optima, window=window, gamma1_method=gamma1_method)
    except NormscaleError as exc:
        win, reason = None, str(exc)
    variants: list[float] = []
    if win is not None and win.units == "lambda/lambda_opt":
        variants = window_variants([cs.mean for cs in sets], lam, win)
    try:
        direct = fit_power_law(lam, eps, what="eps_opt(lambda_opt)")
    except NormscaleError:
        direct = None
    return RangeFit(
        name=name, P=tuple(float(p) for p in P),
        gamma1=win.gamma1 if win is not None else float("nan"),
        gamma1_err=win.gamma1_err if win is not None else float("nan"),
        gamma1_reason=reason, window=(win.lo, win.hi) if win is not None else None,
        window_gamma1=tuple(variants),
        lambda_law=fit_power_law(P, lam, what="lambda_opt(P)"),
        eps_law=fit_power_law(P, eps, what="eps_opt(P)"), direct=direct,
        curvature={"lambda_opt": curvature_t(P, lam), "eps_opt": curvature_t(P, eps)},
        n_still_falling=sum(o.still_falling for o in optima),
        n_censored=sum(o.censored for o in optima),
        median_basin_decades=float(np.median([np.log10(o.basin_hi / o.basin_lo)
                                              for o in optima])))


def _judge(r: RangeFit, syst: dict[str, float], errors: dict[str, float] | None = None
           ) -> RangeFit:
    """Fill in the errors, the z-scores and the verdict of one range.

    ``errors`` overrides the statistical errors of gamma1, gamma2 and
    gamma_meas (the bootstrap's, on all P); the systematic ones are added.
    """
    from dataclasses import replace

    stat = {"gamma1": r.gamma1_err, "gamma2": r.lambda_law.exponent_err,
            "gamma_meas": r.eps_law.exponent_err} | (errors or {})
    g1, g2 = r.gamma1, r.gamma2
    s2 = math.hypot(stat["gamma2"], syst["gamma2"])
    s_meas = math.hypot(stat["gamma_meas"], syst["gamma_meas"])
    win_half = _half_spread([g1 * g2] + [v * g2 for v in r.window_gamma1])
    if np.isfinite(g1) and g1 != 0 and g2 != 0:
        s_stat = abs(g1 * g2) * math.sqrt((stat["gamma1"] / g1) ** 2 + (s2 / g2) ** 2)
        s_pred = math.hypot(s_stat, max(syst["gamma_pred"], win_half))
    else:
        s_pred = float("nan")
    sigma = math.hypot(s_pred, s_meas)
    z = (r.gamma_pred - r.gamma_meas) / sigma if sigma > 0 else float("nan")
    g1_half = _half_spread([g1, *r.window_gamma1])
    s_direct = (math.hypot(stat["gamma1"], r.direct.exponent_err, g1_half)
                if r.direct is not None and np.isfinite(g1) else float("nan"))
    z_d = (g1 - r.gamma1_direct) / s_direct if s_direct > 0 else float("nan")
    hard, soft = [], []
    n = len(r.P)
    if not np.isfinite(g1):
        hard.append(f"gamma1 undefined: {r.gamma1_reason}")
    if n < MIN_P:
        hard.append(f"too few P ({n}; at least {MIN_P} are needed to test a power law)")
    if r.n_still_falling > MAX_FALLING * n:
        hard.append(f"{r.n_still_falling} of {n} curves were still falling at their last point "
                    "(lambda_opt unknown: train longer)")
    if r.median_basin_decades > FLAT_DECADES:
        hard.append(f"flat basins: the error stays within its noise over a median "
                    f"{r.median_basin_decades:.2g} decades of the norm (lambda_opt undetermined)")
    if not hard:
        if abs(z) > Z_MAX:
            soft.append(f"gamma_pred = {r.gamma_pred:.3f} against gamma_meas = "
                        f"{r.gamma_meas:.3f}: z = {z:+.1f}")
        if np.isfinite(z_d) and abs(z_d) > Z_DIRECT_MAX:
            soft.append(f"gamma1 = {g1:.3f} disagrees with the window-free gamma1_direct = "
                        f"{r.gamma1_direct:.3f} (z = {z_d:+.1f})")
    for what, t in r.curvature.items():
        if np.isfinite(t) and abs(t) > CURVATURE_T:
            soft.append(f"{what}(P) is curved over P = {r.P_range[0]:g}..{r.P_range[1]:g} "
                        f"(quadratic term at {t:+.1f} standard errors): not one power law")
    verdict = "untestable" if hard else ("tension" if soft else "consistent")
    return replace(r, verdict=verdict, problems=tuple(hard + soft), z=float(z),
                   z_direct=float(z_d), sigma=float(sigma), gamma_pred_err=float(s_pred),
                   gamma_meas_err=float(s_meas))


def assess(sets: list[CurveSet], optima, *, window=None, gamma1_method: str = "profile",
           errors: dict[str, float] | None = None
           ) -> Assessment:
    """Refit the laws on nested ranges of the largest P and judge them (module docstring).

    Parameters
    ----------
    sets : list of CurveSet
        The curves, sorted by P.
    optima : sequence of Optimum
        Their optima, in the same order.
    window, gamma1_method
        How gamma1 is found on each range (:func:`normscale.laws.pipeline.gamma1_in`).
    errors : dict, optional
        Statistical errors of gamma1, gamma2, gamma_meas on all P that
        replace the least-squares ones there (the bootstrap's over seeds).
    """
    n = len(sets)
    fits, seen = [], set()
    for name, frac in RANGES:
        k = max(3, int(math.ceil(frac * n)))
        if k in seen or k > n:
            continue
        seen.add(k)
        fits.append(_range_fit(name, sets[n - k:], tuple(optima[n - k:]), window=window,
                               gamma1_method=gamma1_method))
    syst = {"gamma2": _half_spread(r.gamma2 for r in fits),
            "gamma_meas": _half_spread(r.gamma_meas for r in fits),
            "gamma_pred": _half_spread(r.gamma_pred for r in fits)}
    judged = [_judge(r, syst, errors if i == 0 else None) for i, r in enumerate(fits)]
    syst["gamma_pred_window"] = _half_spread(
        [judged[0].gamma_pred] + [v * judged[0].gamma2 for v in judged[0].window_gamma1])
    full = judged[0]
    consistent = [r for r in judged if r.verdict == "consistent"]
    tested = [r for r in judged if r.verdict == "tension"]
    if consistent:
        chosen, verdict = consistent[0], "consistent"
        reasons = [] if chosen is full else [
            f"holds on P >= {chosen.P_range[0]:g} ({chosen.name}, z = {chosen.z:+.1f}); over "
            f"all P: " + "; ".join(full.problems)]
    elif tested:
        chosen, verdict = tested[0], "tension"
        reasons = [f"{chosen.name} (P >= {chosen.P_range[0]:g}): " + "; ".join(chosen.problems)]
        if chosen is not full:
            reasons.append("all P: " + "; ".join(full.problems))
    else:
        chosen, verdict = full, "untestable"
        reasons = list(full.problems)
    if full.n_censored:
        reasons.append(f"{full.n_censored} of {len(full.P)} minima censored (the basin reaches "
                       "the last logged point: lambda_opt is a lower bound)")
    if len(judged) > 1:
        preds = ", ".join(f"{r.name} {r.gamma_pred:.3f}" for r in judged)
        reasons.append(f"gamma_pred by P range: {preds}")
    return Assessment(verdict, tuple(reasons), chosen, tuple(judged), syst)
