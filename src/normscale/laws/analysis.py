"""The whole analysis of one table of curves: :func:`fit_laws` and its :class:`LawsFit`.

docs/science.md, introduction (laws 1 to 4) and section 2.3.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import stats

from normscale._validation import NONNEGATIVE_INT, POSITIVE, Interval, Options, check_param
from normscale.errors import NormscaleError, ParameterError
from normscale.laws.backtest import Backtest, backtest
from normscale.laws.bootstrap import Bootstrap, bootstrap
from normscale.laws.collapse import Collapse, collapse_quality, houdayer_hartmann_S
from normscale.laws.curves import CurveSet, build_curves
from normscale.laws.fits import OffsetFit, PowerLaw, fit_offset_form
from normscale.laws.pipeline import GAMMA1_METHODS, Optimum, estimate
from normscale.laws.profile import Gamma1
from normscale.laws.table import check_error_column, iter_groups, load_curves
from normscale.laws.verdict import Assessment, assess
from normscale.laws.window import Window

_OWNER = "fit_laws"
_LEVEL = Interval(Real, 0, 1, closed="neither")


@dataclass(frozen=True)
class LawsFit:
    """The dynamical scaling laws of one group of curves.

    Exponents: eps ~ k1 lambda^(-gamma1) early in training,
    lambda_opt ~ k2 P^gamma2, eps_opt ~ k_meas P^(-gamma_meas),
    gamma_pred = gamma1 * gamma2.

    ``*_err`` are standard errors. The analytic one is always computed: the
    standard error over P of the per-P slopes for gamma1, the least-squares
    standard errors for gamma2 and gamma_meas, propagated for gamma_pred; it
    sees the scatter between P (including a lack of fit of the power law)
    but not the noise common to all P. When every P has 2 seeds or more
    (``err_method == "bootstrap"``) the error is the larger of the analytic
    one and the bootstrap standard error over seeds (:meth:`Bootstrap.se`,
    small-sample corrected), which sees the seed noise and the choice of
    the window but not the lack of fit. ``*_ci`` is the reported interval
    at level ``level``: value +- t * err with t the Student quantile for the
    analytic error's degrees of freedom (per-P slopes minus 1 for gamma1,
    number of P minus 2 for gamma2 and gamma_meas, the smaller for
    gamma_pred). ``sigma`` is the uncertainty of gamma_pred - gamma_meas,
    sqrt(gamma_pred_err^2 + gamma_meas_err^2): the paper's formula
    (docs/science.md 2.3) with the systematic errors below included.

    Systematic errors (:mod:`normscale.laws.verdict`) are added in
    quadrature to the ``*_err`` of gamma2, gamma_meas and gamma_pred: half
    the spread over nested ranges of P, and for gamma_pred at least half
    its spread over a one-step change of the gamma1 window.

    ``window`` is None when gamma1 is undefined (``gamma1_reason`` says
    why; gamma1, gamma_pred and their errors are then NaN).
    ``assessment`` holds the nested-range fits and the verdict
    (``verdict``, ``verdict_reasons``, ``z``); ``collapse_S`` is the
    Houdayer-Hartmann quality of the collapse (about 1 within the noise).
    """

    group: dict
    error: str
    P: tuple[float, ...]
    gamma1: float
    gamma1_err: float
    k1: float
    gamma2: float
    gamma2_err: float
    k2: float
    gamma_pred: float
    gamma_pred_err: float
    gamma_meas: float
    gamma_meas_err: float
    k_meas: float
    sigma: float
    err_method: str
    level: float
    gamma1_ci: tuple[float, float]
    gamma2_ci: tuple[float, float]
    gamma_pred_ci: tuple[float, float]
    gamma_meas_ci: tuple[float, float]
    gamma1_method: str
    window: Window | None
    lambda_law: PowerLaw
    eps_law: PowerLaw
    offset: OffsetFit | None
    optima: tuple[Optimum, ...]
    collapse: Collapse
    backtest: Backtest | None
    bootstrap: Bootstrap | None
    n_edge_minima: int
    assessment: Assessment
    collapse_S: float
    gamma1_reason: str = ""
    profile: Gamma1 | None = field(default=None, repr=False, compare=False)
    curves: tuple[CurveSet, ...] = field(repr=False, compare=False, default=())

    @property
    def collapse_quality(self) -> float:
        return self.collapse.quality

    @property
    def verdict(self) -> str:
        return self.assessment.verdict

    @property
    def verdict_reasons(self) -> tuple[str, ...]:
        return self.assessment.reasons

    @property
    def z(self) -> float:
        return self.assessment.z

    @property
    def n_censored(self) -> int:
        """Sizes whose lambda_opt is censored (a lower bound)."""
        return sum(o.censored for o in self.optima)

    @property
    def gamma1_direct(self) -> float:
        """-(slope of ln eps_opt against ln lambda_opt across all P): gamma1 with no window."""
        return self.assessment.ranges[0].gamma1_direct

    def verdict_line(self) -> str:
        """One line: the verdict, its z, the P range it rests on and its first reason."""
        r = self.assessment.range
        label = ", ".join(f"{k}={v}" for k, v in self.group.items())
        head = f"{label}: " if label else ""
        z = f", z = {r.z:+.1f}" if np.isfinite(r.z) else ""
        why = f": {self.verdict_reasons[0]}" if self.verdict_reasons else ""
        return (f"{head}{self.verdict} on P = {r.P_range[0]:g}..{r.P_range[1]:g} "
                f"({r.name}{z}){why}")

    @property
    def backtest_rel_error(self) -> float:
        return self.backtest.rel_error if self.backtest is not None else float("nan")

    def optima_table(self) -> pd.DataFrame:
        """The per-P optimum table."""
        return pd.DataFrame([asdict(o) | {"flat_decades": o.flat_decades} for o in self.optima])

    def to_dict(self) -> dict:
        """JSON-able summary (no curves); non-finite floats become None in the CLI."""
        out = {"group": dict(self.group), "error": self.error, "P": list(self.P)}
        for name in ("gamma1", "gamma1_err", "k1", "gamma2", "gamma2_err", "k2", "gamma_pred",
                     "gamma_pred_err", "gamma_meas", "gamma_meas_err", "k_meas", "sigma",
                     "err_method", "level", "gamma1_method", "collapse_quality",
                     "collapse_S", "backtest_rel_error", "n_edge_minima", "n_censored",
                     "gamma1_reason", "gamma1_direct"):
            out[name] = getattr(self, name)
        out["censored_fraction"] = self.n_censored / len(self.P)
        out.update(self.assessment.to_dict())
        for name in ("gamma1_ci", "gamma2_ci", "gamma_pred_ci", "gamma_meas_ci"):
            out[name] = list(getattr(self, name))
        w = self.window
        out["window"] = w.to_dict() if w is not None else None
        out["gamma1_fit"] = ({"slopes": list(w.slopes), "pooled_gamma1": w.pooled_gamma1}
                             if w is not None else None)
        out["lambda_law"] = asdict(self.lambda_law)
        out["eps_law"] = asdict(self.eps_law)
        out["offset"] = asdict(self.offset) if self.offset is not None else None
        out["collapse"] = asdict(self.collapse)
        out["backtest"] = asdict(self.backtest) if self.backtest is not None else None
        boot = self.bootstrap
        out["bootstrap"] = ({"n_boot": boot.n_boot, "n_ok": boot.n_ok, "n_seeds": boot.n_seeds,
                             "level": boot.level, "std": boot.std,
                             "intervals": {k: list(v) for k, v in boot.intervals.items()}}
                            if boot is not None else None)
        out["optima"] = self.optima_table().to_dict(orient="records")
        return out


def _check_window(window) -> tuple[float, ...] | None:
    if window is None:
        return None
    try:
        values = tuple(float(v) for v in window)
    except (TypeError, ValueError):
        values = ()
    if len(values) not in (2, 3):
        raise ParameterError(
            f"The 'window' parameter of {_OWNER} must be None, a pair (lo, hi) or a triple "
            f"(lo, hi, P_min). Got {window!r} instead.")
    check_param(_OWNER, "window[0]", values[0], POSITIVE)
    if not values[1] > values[0]:
        raise ParameterError(
            f"The 'window' parameter of {_OWNER} must have lo < hi. Got {window!r} instead.")
    if len(values) == 3:
        check_param(_OWNER, "window[2]", values[2], POSITIVE)
    return values


def _interval(value: float, err: float, dof: int, level: float) -> tuple[float, float]:
    """value +- t_{dof}((1 + level)/2) err: the reported interval."""
    half = float(stats.t.ppf(0.5 + level / 2, max(dof, 1))) * err
    return value - half, value + half


def _point_errors(sets: list[CurveSet]) -> list[np.ndarray] | None:
    """Standard error of ln eps of each seed-averaged point, where every P has 2+ seeds logged
    at the same norms; None otherwise."""
    out = []
    for cs in sets:
        if len(cs.seeds) < 2 or any(c.norm.shape != cs.mean.norm.shape
                                    or not np.allclose(c.norm, cs.mean.norm) for c in cs.seeds):
            return None
        logs = np.log([c.error for c in cs.seeds])
        out.append(logs.std(axis=0, ddof=1) / np.sqrt(len(cs.seeds)))
    return out


def fit_group(sets: list[CurveSet], *, group: dict, error: str,
              window: tuple[float, ...] | None, n_boot: int, seed: int, level: float,
              strict_minimum: bool, gamma1_method: str = "profile",
              on_step: Callable[[], None] | None = None) -> LawsFit:
    """Analyse the curves of one group (see :func:`fit_laws`)."""
    est = estimate(sets, window=window, strict_minimum=strict_minimum, gamma1_method=gamma1_method)
    win = est.window
    if win is not None and win.P_censored:
        names = ", ".join(f"{p:g}" for p in win.P_censored)
        warnings.warn(
            f"{len(win.P_censored)} curve(s) (P={names}) have a censored lambda_opt (minimum at "
            "their last point): " + ("too few uncensored curves, so all were used for the "
                                     "rescaled gamma1 window" if win.censored_kept else
                                     "left out of the rescaled gamma1 window"), stacklevel=3)
    has_seeds = all(len(cs.seeds) >= 2 for cs in sets)
    boot = (bootstrap(sets, n_boot=n_boot, seed=seed, level=level, window=window,
                      strict_minimum=strict_minimum, gamma1_method=gamma1_method, on_step=on_step)
            if has_seeds and n_boot > 0 else None)
    g1, g2, gm = est.gamma1, est.gamma2, est.gamma_meas
    nan = float("nan")
    s1 = win.gamma1_err if win is not None else nan
    s2, sm = est.lambda_law.exponent_err, est.eps_law.exponent_err
    method = "analytic"
    if boot is not None:
        # neither error sees everything (see LawsFit): keep the larger
        s1, s2, sm = (max(boot.se(q), s) if np.isfinite(boot.se(q)) else s
                      for q, s in (("gamma1", s1), ("gamma2", s2), ("gamma_meas", sm)))
        method = "bootstrap"
    lam, eps = est.lambda_opt, est.eps_opt
    S = houdayer_hartmann_S([cs.mean for cs in sets], lam, eps, _point_errors(sets))
    judged = assess(sets, est.optima, window=window, gamma1_method=gamma1_method,
                    errors={"gamma1": s1, "gamma2": s2, "gamma_meas": sm})
    syst = judged.systematic
    s2_tot, sm_tot = math.hypot(s2, syst["gamma2"]), math.hypot(sm, syst["gamma_meas"])
    sp = judged.ranges[0].gamma_pred_err
    if boot is not None and np.isfinite(boot.se("gamma_pred")):
        sp = max(sp, boot.se("gamma_pred"))
    dof_P = len(est.P) - 2
    dof_1 = win.dof if win is not None else 1
    try:
        offset = (fit_offset_form(est.P, eps, gamma1=g1, k1=win.k1)
                  if win is not None and g1 > 0 else None)
    except (ValueError, NormscaleError):
        offset = None
    try:
        bt = backtest(sets, eps[-1], window=window, strict_minimum=strict_minimum,
                      gamma1_method=gamma1_method)
        bt = bt if np.isfinite(bt.gamma_pred) else None
    except NormscaleError:
        bt = None  # fewer than 3 P left, or no window on the smaller P
    return LawsFit(
        group=group, error=error, P=tuple(float(p) for p in est.P),
        gamma1=g1, gamma1_err=s1, k1=win.k1 if win is not None else nan,
        gamma2=g2, gamma2_err=s2_tot, k2=est.lambda_law.prefactor,
        gamma_pred=est.gamma_pred, gamma_pred_err=sp,
        gamma_meas=gm, gamma_meas_err=sm_tot, k_meas=est.eps_law.prefactor,
        sigma=math.hypot(sp, sm_tot),
        err_method=method, level=level,
        gamma1_ci=_interval(g1, s1, dof_1, level), gamma2_ci=_interval(g2, s2_tot, dof_P, level),
        gamma_pred_ci=_interval(est.gamma_pred, sp, min(dof_1, dof_P), level),
        gamma_meas_ci=_interval(gm, sm_tot, dof_P, level), gamma1_method=gamma1_method,
        window=win, lambda_law=est.lambda_law, eps_law=est.eps_law,
        offset=offset, optima=est.optima,
        collapse=collapse_quality([cs.mean for cs in sets], lam, eps),
        backtest=bt, bootstrap=boot, n_edge_minima=sum(o.at_edge for o in est.optima),
        assessment=judged, collapse_S=S, gamma1_reason=est.gamma1_reason, profile=est.profile,
        curves=tuple(sets),
    )


def fit_laws(df, *, group_by: Sequence[str] = (), error: str = "test_error",
             window: tuple[float, ...] | None = None, n_boot: int = 200, seed: int = 0,
             level: float = 0.95, strict_minimum: bool = False, gamma1_method: str = "profile",
             on_step: Callable[[], None] | None = None) -> list[LawsFit]:
    """Fit the dynamical scaling laws on a table of learning curves, one analysis per group.

    Parameters
    ----------
    df : pandas.DataFrame or path
        Long-format curves (see :func:`normscale.laws.load_curves`, applied here).
    group_by : sequence of str
        Grouping columns; one :class:`LawsFit` per group.
    error : str
        The error column to fit (``test_error``, or e.g. the perceptron's ``eps_hat``).
    window : (lo, hi), (lo, hi, P_min) or None
        None: the automatic window, in the units of ``gamma1_method``. A pair
        fixes the gamma1 window by hand in units of lambda/lambda_opt(P), the
        units of the paper's hand-picked windows (docs/science.md 2.3); a third
        value uses only the curves with P >= P_min, the paper's ``min_P``.
    n_boot : int
        Bootstrap replicates over seeds (used when every P has 2 seeds or
        more; 0 switches the bootstrap off).
    seed : int
        Seed of the bootstrap's random generator.
    level : float
        Level of the bootstrap percentile intervals.
    strict_minimum : bool
        Refuse curves whose minimum is their last point (default: keep the
        last point as lambda_opt and count it in ``n_edge_minima``).
    gamma1_method : {"profile", "common", "rescaled"}
        How gamma1 is found automatically. ``"profile"`` (default): from the
        local-slope profile of the curves in lambda/lambda_opt, averaged
        over P (:mod:`normscale.laws.profile`); undefined, with its reason,
        when the curves show no early law. The others search a window of one
        power law: ``"common"``: absolute norm, one window where the early curves of all P
        share one power law (law 1 holds in absolute units; the window does
        not depend on the lambda_opt estimates, so ill-defined minima do not
        move it). ``"rescaled"``: lambda/lambda_opt, the paper's method
        (docs/science.md 2.3) with the window found automatically.

    Returns
    -------
    list of LawsFit
        One per group, sorted by group; a one-item list when ungrouped.

    Notes
    -----
    Laws 1 to 4 of docs/science.md (introduction) and the paper's procedure
    with normscale's changes (docs/science.md 2.3).
    """
    check_param(_OWNER, "n_boot", n_boot, NONNEGATIVE_INT)
    check_param(_OWNER, "seed", seed, Interval(Integral, 0, None, closed="left"))
    check_param(_OWNER, "level", float(level), _LEVEL)
    check_param(_OWNER, "gamma1_method", gamma1_method, Options(tuple(GAMMA1_METHODS)))
    if isinstance(group_by, str):
        group_by = [g for g in group_by.split(",") if g]
    win = _check_window(window)
    table = load_curves(df)
    col = check_error_column(table, error)
    fits = []
    for group, sub in iter_groups(table, group_by):
        label = ", ".join(f"{k}={v}" for k, v in group.items())
        sets = build_curves(sub, col)
        try:
            fits.append(fit_group(sets, group=group, error=col, window=win, n_boot=n_boot,
                                  seed=seed, level=level, strict_minimum=strict_minimum,
                                  gamma1_method=gamma1_method, on_step=on_step))
        except NormscaleError as exc:
            raise NormscaleError(f"{label}: {exc}" if label else str(exc)) from None
    if not fits:
        raise NormscaleError("the table holds no curves")
    return fits


__all__ = ["LawsFit", "fit_group", "fit_laws"]
