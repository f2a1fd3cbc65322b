"""Do the data support gamma_pred = gamma1 gamma2 = gamma_meas? One test, with known size and power.

The verdict rests on one fit, on a range of P fixed before any z is seen
and chosen from the curves alone: every P whose curve reached its minimum
(a P whose curves were still falling at their last point, so that
lambda_opt is unknown, is left out and named). On that fit:

- ``gamma1`` comes from the local-slope profile (:mod:`normscale.laws.profile`);
  its error combines the standard error of the per-P slopes, half their
  spread over a one-step change of the window, and the bend: how much
  steeper the averaged profile gets anywhere up to the window's end (the
  curves bend towards their minimum inside any finite window, which pulls
  the window's mean slope below the early law's);
- ``gamma2`` and ``gamma_meas`` are weighted least-squares slopes of the
  optima (:func:`normscale.laws.estimate.fit_optima`): each lambda_opt weighs
  by its own error, which is wide for a flat minimum (errors in the
  measured variable), so a flat basin widens gamma2 instead of ending the
  test; the Birge ratio widens both when the optima scatter more than
  their errors allow;
- gamma_pred = gamma1 gamma2 with its error propagated, sigma = the
  error of gamma_pred - gamma_meas, t = (gamma_pred - gamma_meas) / sigma.
  Parts of sigma are estimated from few values (gamma1's from the spread
  of 4 to 12 per-P slopes; gamma2's and gamma_meas's from the scatter of
  the optima when the Birge ratio exceeds 1), so t is a Student statistic,
  not a normal one: its degrees of freedom ``dof_z`` come from the
  Welch-Satterthwaite formula, and ``z`` is its normal equivalent (the
  normal quantile of the same tail probability). With 5 P the plain ratio
  had a standard deviation of 1.5 under the null, and flagged 20% of
  families that obey the laws (docs/laws.md, calibration).

The verdict:

- ``untestable``: gamma1 undefined (with the profile's reason), or fewer
  than ``MIN_P`` sizes with a minimum;
- ``tension``: |z| > ``Z_MAX`` (two-sided 5%), or lambda_opt(P) or
  eps_opt(P) curved (the t statistic of a quadratic term in log-log beyond
  the two-sided Student quantile at ``CURVATURE_LEVEL``, measured on the
  optima that are not censored: a curvature of lower bounds says nothing
  about the law);
- ``inconclusive``: |z| <= ``Z_MAX``, but the test could not have told a
  violation by ``VIOLATION`` (gamma_meas = 1.25 gamma_pred) from
  agreement: such a violation would have been missed more often than seen
  (power below ``POWER`` = 1/2 at two-sided 5%). It needs VIOLATION
  |gamma_pred| >= (z_0.975 + z_POWER) sigma, that is sigma <= 0.128
  |gamma_pred|. The reasons also give the violation the test sees with
  80% power (2.80 sigma / |gamma_pred|);
- ``consistent``: |z| <= ``Z_MAX`` on a test that had that power.

Nothing here is measured in decades of the norm: lengths along the norm
axis are counted in logging steps, and the thresholds are on z, on t
statistics and on relative errors, so raising the norm to a power k
changes gamma1 into gamma1 / k and gamma2 into k gamma2 and nothing else.

Nested ranges of the largest P (the upper 2/3 and the upper 1/2) are
refitted the same way as diagnostics (``ranges``): they never change the
verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.special import ndtri, stdtr, stdtrit

from normscale.errors import NormscaleError
from normscale.laws.curves import CurveSet
from normscale.laws.estimate import LawsInP, fit_optima, gamma1_in
from normscale.laws.powerlaw import PowerLaw, fit_power_law
from normscale.laws.profile import window_variants
from normscale.laws.window import Window

#: diagnostic ranges: name and the fraction of the P (the largest ones) they keep
RANGES = (("upper 2/3", 2 / 3), ("upper 1/2", 1 / 2))
#: |z| above this is a tension (two-sided 5% for a normal z)
Z_MAX = 2.0
#: a quadratic term in log-log is a curved law when its t statistic passes the two-sided
#: Student quantile at this level (n - 3 degrees of freedom): 1% per law, 2% for the two, whatever
#: the number of P (a fixed threshold of 3 standard errors flagged 10% of straight laws at 5 P,
#: whose t has 2 degrees of freedom)
CURVATURE_LEVEL = 0.01
#: fewest P for a testable fit (3 give a slope and no check of it)
MIN_P = 4
#: fewest uncensored optima for the curvature test (a parabola through 5 keeps 2 dof)
MIN_P_CURVATURE = 5
#: the violation the test must be able to see: gamma_meas = (1 + VIOLATION) gamma_pred ...
VIOLATION = 0.25
#: ... with at least this probability (two-sided at Z_MAX): 1/2, "more often seen than missed"
POWER = 0.5
#: verdicts, best first
VERDICTS = ("consistent", "tension", "inconclusive", "untestable")


def max_sigma(gamma_pred: float) -> float:
    """The largest sigma at which the test still has ``POWER`` against a ``VIOLATION``.

    A shift of VIOLATION |gamma_pred| in gamma_pred - gamma_meas is seen at
    two-sided 5% with probability POWER when it is (z_0.975 + z_POWER) sigma
    or more: sigma <= VIOLATION |gamma_pred| / 1.96 for POWER = 1/2.
    """
    return VIOLATION * abs(gamma_pred) / (float(ndtri(0.975)) + float(ndtri(POWER)))


def curvature_t(P: np.ndarray, y: np.ndarray, log_err: np.ndarray | None = None) -> float:
    """t statistic of the quadratic term of ln y = a + b L + c L^2, L = ln P centred.

    With ``log_err`` (standard errors of ln y, finite and positive) the fit is
    weighted and the error of c is the weighted one times max(1, Birge
    ratio), as for the laws themselves; without, the ordinary one. NaN with
    fewer than ``MIN_P_CURVATURE`` points. Large |t|: ln y is not linear in
    ln P, the power law bends.
    """
    L = np.log(np.asarray(P, float))
    L = L - L.mean()
    ly = np.log(np.asarray(y, float))
    n = L.size
    if n < MIN_P_CURVATURE or np.ptp(L) == 0:
        return float("nan")
    err = None if log_err is None else np.asarray(log_err, float)
    weighted = err is not None and bool(np.all(np.isfinite(err)) and np.all(err > 0))
    w = 1.0 / err ** 2 if weighted else np.ones(n)
    X = np.stack([np.ones(n), L, L * L], axis=1)
    XtW = X.T * w
    cov = np.linalg.inv(XtW @ X)
    coef = cov @ XtW @ ly
    resid = ly - X @ coef
    chi2 = float(np.sum(w * resid ** 2)) / (n - 3)
    scale = max(1.0, chi2) if weighted else chi2
    se = math.sqrt(max(cov[2, 2] * scale, 0.0))
    if se == 0.0:
        return 0.0 if coef[2] == 0 else math.copysign(math.inf, coef[2])
    return float(coef[2] / se)


def satterthwaite(parts) -> float | None:
    """Welch-Satterthwaite degrees of freedom of a sum of variances, each with its own
    (``None``: known exactly): (sum v)^2 / sum(v^2 / dof); None when no part is estimated."""
    den = sum(v * v / d for v, d in parts if d is not None and v > 0)
    if not den > 0:
        return None
    return float(sum(v for v, _ in parts) ** 2 / den)


def normal_equivalent(t: float, dof: float | None) -> float:
    """The normal quantile with the same tail probability as Student's t with ``dof``."""
    if dof is None or not np.isfinite(t):
        return float(t)
    tail = float(stdtr(dof, -abs(t)))
    if tail <= 0.0:
        return float(t)  # beyond double precision: the ordering is all that is left
    return math.copysign(-float(ndtri(tail)), t)


def _half_spread(values) -> float:
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    return float(0.5 * np.ptp(v)) if v.size >= 2 else 0.0


@dataclass(frozen=True)
class RangeFit(LawsInP):
    """The laws fitted and tested on one range of P.

    Attributes
    ----------
    name : str
        The range: ``"all P"``, ``"P with a minimum"`` (the verdict's), or a
        diagnostic (``"upper 2/3"``, ``"upper 1/2"``).
    P : tuple of float
        The training-set sizes in the range, sorted.
    gamma1 : float
        Early-law exponent, eps ~ lambda^-gamma1 (law 1); NaN when undefined.
    gamma1_err : float
        Its standard error: ``gamma1_stat``, ``gamma1_window`` and
        ``gamma1_bend`` added in quadrature.
    gamma1_stat : float
        The per-P slopes' standard error (with the sum form: widened by half
        the change with the fit's start; bracketed: by half the bracket).
    gamma1_window : float
        Half the spread of gamma1 over a one-step change of the window
        (``window_gamma1``; 0 unless the window estimator decided).
    gamma1_bend : float
        How much steeper the averaged slope profile gets than gamma1 up to
        the window's end: the bias of a window near the elbow (window
        estimator only).
    gamma1_reason : str
        Why gamma1 is undefined ("" when it is defined).
    window : Window or None
        The early law's fit (window in lambda/lambda_opt units, its
        estimator); None when gamma1 is undefined.
    window_gamma1 : tuple of float
        gamma1 in the window moved by one logging step each way.
    lambda_law : PowerLaw
        lambda_opt = k2 P^gamma2 (law 2), weighted by the optima's errors.
    eps_law : PowerLaw
        eps_opt = k P^-gamma_meas (law 4), weighted by the optima's errors.
    direct : PowerLaw or None
        eps_opt against lambda_opt across P: -exponent is ``gamma1_direct``,
        a window-free check of gamma1.
    curvature : dict of str to float
        t statistics of a quadratic term in log-log of lambda_opt(P) and
        eps_opt(P), on the uncensored optima (NaN with too few).
    n_still_falling : int
        P whose curves were still falling at their end.
    n_censored : int
        P whose lambda_opt is a lower bound.
    verdict : str
        One of :data:`VERDICTS`.
    problems : tuple of str
        Why the verdict is not ``consistent``.
    t : float
        (gamma_pred - gamma_meas) / sigma.
    dof_z : float
        Its Welch-Satterthwaite degrees of freedom (inf: every part of sigma
        is known, not estimated).
    z : float
        The normal equivalent of ``t``: the normal quantile of its Student
        tail probability; |z| > ``Z_MAX`` is a tension.
    z_direct : float
        (gamma1 - gamma1_direct) / their combined error.
    sigma : float
        Standard error of gamma_pred - gamma_meas.
    max_sigma : float
        The largest sigma at which the test still has power against a 25%
        violation (:func:`max_sigma`); above it the verdict is
        ``inconclusive``.
    """

    name: str
    P: tuple[float, ...]
    gamma1: float
    gamma1_err: float
    gamma1_stat: float
    gamma1_window: float
    gamma1_bend: float
    gamma1_reason: str
    window: Window | None
    window_gamma1: tuple[float, ...]
    lambda_law: PowerLaw
    eps_law: PowerLaw
    direct: PowerLaw | None
    curvature: dict[str, float]
    n_still_falling: int
    n_censored: int
    verdict: str = "untestable"
    problems: tuple[str, ...] = ()
    t: float = float("nan")
    dof_z: float = float("nan")
    z: float = float("nan")
    z_direct: float = float("nan")
    sigma: float = float("nan")
    max_sigma: float = float("nan")

    @property
    def gamma_pred_err(self) -> float:
        g1, g2 = self.gamma1, self.gamma2
        if not np.isfinite(g1) or g1 == 0 or g2 == 0:
            return float("nan")
        return abs(g1 * g2) * math.hypot(self.gamma1_err / g1, self.gamma2_err / g2)

    @property
    def gamma1_direct(self) -> float:
        return -self.direct.exponent if self.direct is not None else float("nan")

    @property
    def P_range(self) -> tuple[float, float]:
        return (min(self.P), max(self.P))

    def dof(self, quantity: str) -> float | None:
        """Degrees of freedom of the Student quantile of ``quantity``'s interval (None: normal;
        gamma_pred's by Welch-Satterthwaite from gamma1's and gamma2's)."""
        d1 = self.window.dof if self.window is not None else 1
        if quantity == "gamma1":
            return d1
        if quantity == "gamma2":
            return self.lambda_law.dof
        if quantity == "gamma_meas":
            return self.eps_law.dof
        return satterthwaite(self._parts()[:2])

    def _parts(self) -> list[tuple[float, float | None]]:
        """(variance, its degrees of freedom) of the three parts of sigma^2: gamma2 times
        gamma1's error, gamma1 times gamma2's error, and gamma_meas's error."""
        d1 = self.window.dof if self.window is not None else 1
        return [((self.gamma2 * self.gamma1_err) ** 2, d1),
                ((self.gamma1 * self.gamma2_err) ** 2, self.lambda_law.dof),
                (self.gamma_meas_err ** 2, self.eps_law.dof)]

    def to_dict(self) -> dict:
        return {"name": self.name, "P": list(self.P), "P_range": list(self.P_range),
                "gamma1": self.gamma1, "gamma1_err": self.gamma1_err,
                "gamma1_stat": self.gamma1_stat, "gamma1_window": self.gamma1_window,
                "gamma1_bend": self.gamma1_bend,
                "gamma1_reason": self.gamma1_reason,
                "window": [self.window.lo, self.window.hi] if self.window else None,
                "window_gamma1": list(self.window_gamma1),
                "gamma2": self.gamma2, "gamma2_err": self.gamma2_err,
                "gamma2_birge": self.lambda_law.birge,
                "gamma_meas": self.gamma_meas, "gamma_meas_err": self.gamma_meas_err,
                "gamma_meas_birge": self.eps_law.birge,
                "gamma_pred": self.gamma_pred, "gamma_pred_err": self.gamma_pred_err,
                "gamma1_direct": self.gamma1_direct,
                "gamma1_direct_err": (self.direct.exponent_err if self.direct is not None
                                      else float("nan")),
                "curvature_t": dict(self.curvature), "sigma": self.sigma,
                "max_sigma": self.max_sigma, "t": self.t, "dof_z": self.dof_z, "z": self.z,
                "z_direct": self.z_direct,
                "verdict": self.verdict, "problems": list(self.problems),
                "n_censored": self.n_censored, "n_still_falling": self.n_still_falling}


@dataclass(frozen=True)
class Assessment:
    """The verdict, the fit it rests on and the diagnostic ranges.

    Attributes
    ----------
    verdict : str
        One of :data:`VERDICTS`.
    reasons : tuple of str
        Why: first what decided it, then caveats and the diagnostics.
    range : RangeFit
        The fit the verdict rests on (the P with a minimum).
    ranges : tuple of RangeFit
        ``range`` first, then the diagnostic refits on nested upper ranges
        of P, which never change the verdict.
    dropped : tuple of float
        The P left out because their curves were still falling.
    """

    verdict: str
    reasons: tuple[str, ...]
    range: RangeFit
    ranges: tuple[RangeFit, ...]
    dropped: tuple[float, ...] = field(default=())

    @property
    def z(self) -> float:
        return self.range.z

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "verdict_reasons": list(self.reasons), "z": self.z,
                "z_direct": self.range.z_direct, "verdict_range": self.range.name,
                "P_range": list(self.range.P_range), "P_dropped": list(self.dropped),
                "max_sigma": self.range.max_sigma,
                "ranges": [r.to_dict() for r in self.ranges]}


def _bend(prof, win) -> float:
    """How much steeper the averaged slope profile gets anywhere up to the window's end than
    gamma1 in the window: the curves bend towards their minimum inside any finite window, so
    the window's mean slope is below the early law's by about this much (0 by hand windows)."""
    if (prof is None or win is None or win.estimator != "window" or prof.profile is None
            or prof.profile.x.size == 0):
        return 0.0
    p = prof.profile
    upto = p.x <= np.log10(win.hi) + 1e-6 * prof.step
    if not upto.any():
        return 0.0
    return float(max(0.0, np.nanmax(p.slope[upto]) - win.gamma1))


def fit_range(name: str, sets: list[CurveSet], optima, *, window=None) -> RangeFit:
    """Fit the laws on ``sets`` (sorted by P) with their ``optima``, and judge them."""
    P = np.array([o.P for o in optima])
    lam = np.array([o.lambda_opt for o in optima])
    eps = np.array([o.eps_opt for o in optima])
    lam_err = np.array([o.lambda_opt_err for o in optima]) * np.log(10)
    eps_err = np.array([o.eps_opt_err for o in optima])
    try:
        win, reason, prof = gamma1_in(sets, optima, window=window)
    except NormscaleError as exc:
        win, reason, prof = None, str(exc), None
    variants: list[float] = []
    if win is not None and window is None and win.estimator == "window":
        variants = window_variants([cs.mean for cs in sets], lam, win)
    g1 = win.gamma1 if win is not None else float("nan")
    stat = win.gamma1_err if win is not None else float("nan")
    moved = _half_spread([g1, *variants])
    bend = _bend(prof, win)
    try:
        direct = fit_power_law(lam, eps, what="eps_opt(lambda_opt)")
    except NormscaleError:
        direct = None
    open_ = [not o.censored for o in optima]
    r = RangeFit(
        name=name, P=tuple(float(p) for p in P), gamma1=g1,
        gamma1_err=math.hypot(stat, moved, bend) if win is not None else float("nan"),
        gamma1_stat=stat, gamma1_window=moved, gamma1_bend=bend, gamma1_reason=reason,
        window=win,
        window_gamma1=tuple(variants),
        lambda_law=fit_optima(optima, "lambda_opt"), eps_law=fit_optima(optima, "eps_opt"),
        direct=direct,
        curvature={"lambda_opt": curvature_t(P[open_], lam[open_], lam_err[open_]),
                   "eps_opt": curvature_t(P[open_], eps[open_], eps_err[open_])},
        n_still_falling=sum(o.still_falling for o in optima),
        n_censored=sum(o.censored for o in optima))
    return _judge(r)


def _judge(r: RangeFit) -> RangeFit:
    """Fill in sigma, z and the verdict of one fit (module docstring)."""
    sigma = math.hypot(r.gamma_pred_err, r.gamma_meas_err)
    t = (r.gamma_pred - r.gamma_meas) / sigma if sigma > 0 else float("nan")
    dof_z = satterthwaite(r._parts()) if np.isfinite(t) else None
    z = normal_equivalent(t, dof_z)
    s_direct = (math.hypot(r.gamma1_err, r.direct.exponent_err)
                if r.direct is not None and np.isfinite(r.gamma1) else float("nan"))
    z_d = (r.gamma1 - r.gamma1_direct) / s_direct if s_direct > 0 else float("nan")
    limit = max_sigma(r.gamma_pred) if np.isfinite(r.gamma_pred) else float("nan")
    hard, soft, weak = [], [], []
    n = len(r.P)
    if not np.isfinite(r.gamma1):
        hard.append(f"gamma1 undefined: {r.gamma1_reason}")
    if n < MIN_P:
        hard.append(f"too few P with a minimum ({n}; at least {MIN_P} are needed to test a "
                    "power law)")
    if not hard:
        if abs(z) > Z_MAX:
            soft.append(f"gamma_pred = {r.gamma_pred:.3f} against gamma_meas = "
                        f"{r.gamma_meas:.3f}: z = {z:+.1f}"
                        + (f" (t = {t:+.1f} on {dof_z:.0f} degrees of freedom)"
                           if dof_z is not None else ""))
        n_open = n - r.n_censored
        limit_t = (float(stdtrit(n_open - 3, 1 - CURVATURE_LEVEL / 2))
                   if n_open >= MIN_P_CURVATURE else float("inf"))
        for what, t_curve in r.curvature.items():
            if np.isfinite(t_curve) and abs(t_curve) > limit_t:
                soft.append(f"{what}(P) is curved over P = {r.P_range[0]:g}..{r.P_range[1]:g} "
                            f"(quadratic term at {t_curve:+.1f} standard errors on the "
                            f"{n_open} uncensored optima, beyond {limit_t:.1f}): not one "
                            "power law")
        if not soft and not sigma <= limit:
            weak.append(
                f"the test has no power: sigma = {sigma:.3f} against gamma_pred = "
                f"{r.gamma_pred:.3f}; a violation by {VIOLATION:.0%} (gamma_meas = "
                f"{1 + VIOLATION:g} gamma_pred) is seen more often than missed only if "
                f"sigma <= {limit:.3f}; it sees a violation by "
                f"{_detectable(sigma, r.gamma_pred):.0%} with probability 80%")
    verdict = ("untestable" if hard else "tension" if soft else
               "inconclusive" if weak else "consistent")
    return replace(r, verdict=verdict, problems=tuple(hard + soft + weak), t=float(t),
                   dof_z=float(dof_z) if dof_z is not None else math.inf, z=float(z),
                   z_direct=float(z_d), sigma=float(sigma), max_sigma=float(limit))


def _detectable(sigma: float, gamma_pred: float) -> float:
    """The relative violation seen with probability 80% at this sigma (two-sided 5%)."""
    return (float(ndtri(0.975)) + float(ndtri(0.8))) * sigma / abs(gamma_pred)


def assess(sets: list[CurveSet], optima, *, window=None) -> Assessment:
    """Fit and test the laws on the P with a minimum; refit nested ranges as diagnostics.

    Parameters
    ----------
    sets : list of CurveSet
        The curves, sorted by P.
    optima : sequence of Optimum
        Their optima, in the same order.
    window : pair or triple, optional
        gamma1's window by hand (:func:`normscale.laws.estimate.gamma1_in`).
    """
    keep = [not o.still_falling for o in optima]
    used = [cs for cs, k in zip(sets, keep, strict=True) if k]
    used_opt = tuple(o for o, k in zip(optima, keep, strict=True) if k)
    dropped = tuple(o.P for o, k in zip(optima, keep, strict=True) if not k)
    name = "all P" if not dropped else "P with a minimum"
    if len(used) < MIN_P and dropped:
        # too few minima: the fit on all P is shown, but nothing can be tested
        main = fit_range("all P", list(sets), tuple(optima), window=window)
        why = (f"{len(dropped)} of {len(sets)} curves were still falling at their last point "
               f"(lambda_opt unknown: train longer); {len(used)} P with a minimum are too few")
        main = replace(main, verdict="untestable", problems=(why, *main.problems))
        used, used_opt, dropped = list(sets), tuple(optima), ()
    else:
        main = fit_range(name, used, used_opt, window=window)
    fits = [main]
    n = len(used)
    seen = {n}
    for label, frac in RANGES:
        k = max(3, int(math.ceil(frac * n)))
        if k in seen or k > n:
            continue
        seen.add(k)
        fits.append(fit_range(label, used[n - k:], used_opt[n - k:], window=window))
    reasons = list(main.problems)
    if dropped:
        names = ", ".join(f"{p:g}" for p in dropped)
        reasons.append(f"P = {names} left out: still falling at their last point (lambda_opt "
                       "unknown: train longer)")
    if main.n_censored:
        reasons.append(f"{main.n_censored} of {len(main.P)} minima censored (the basin reaches "
                       "the last logged point: lambda_opt is a lower bound)")
    if len(fits) > 1:
        preds = ", ".join(f"{r.name} {r.gamma_pred:.3f} ({r.verdict})" for r in fits[1:])
        reasons.append(f"diagnostics, not the verdict: gamma_pred by P range: {preds}")
    return Assessment(main.verdict, tuple(reasons), main, tuple(fits), dropped)
