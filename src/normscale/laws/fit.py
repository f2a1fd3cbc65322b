"""The whole analysis of one table of curves: :func:`fit_laws` and its :class:`LawsFit`.

docs/science.md, introduction (laws 1 to 4) and section 2.3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.special import ndtri, stdtrit

from normscale._validation import NONNEGATIVE_INT, POSITIVE, Interval, check_param
from normscale.errors import NormscaleError, ParameterError
from normscale.laws.backtest import Backtest, backtest
from normscale.laws.bootstrap import Bootstrap, bootstrap
from normscale.laws.collapse import Collapse, collapse_variance, houdayer_hartmann_S
from normscale.laws.curves import CurveSet, build_curves
from normscale.laws.estimate import Optimum, estimate
from normscale.laws.load import check_error_column, iter_groups, load_curves
from normscale.laws.paper import read_optima
from normscale.laws.powerlaw import OffsetFit, PowerLaw, fit_offset_form
from normscale.laws.profile import Gamma1
from normscale.laws.verdict import Assessment, RangeFit, assess
from normscale.laws.window import Window

_OWNER = "fit_laws"
_LEVEL = Interval(Real, 0, 1, closed="neither")


@dataclass(frozen=True)
class LawsFit:
    """The dynamical scaling laws of one group of curves, and their verdict.

    Exponents: eps ~ k1 lambda^(-gamma1) early in training,
    lambda_opt ~ k2 P^gamma2, eps_opt ~ k_meas P^(-gamma_meas),
    gamma_pred = gamma1 * gamma2. Every number below comes from the one fit
    the verdict rests on (``assessment.range``: the P whose curves reached
    their minimum); the diagnostic refits on other ranges of P are in
    ``assessment.ranges``.

    Attributes
    ----------
    group : dict
        The group's column values.
    error : str
        The error column fitted.
    P : tuple of float
        Every P of the group (the verdict's are ``P_range``).
    optima : tuple of Optimum
        lambda_opt and eps_opt per P with their errors and censoring.
    assessment : Assessment
        The verdict, its reasons, the fit it rests on and the diagnostic ranges.
    level : float
        Level of the ``*_ci`` intervals.
    offset : OffsetFit or None
        The offset form eps_opt = k1 (k2 P^gamma2 + q2)^-gamma1 + q1.
    collapse : Collapse
        The collapse of eps/eps_opt against lambda/lambda_opt: ``variance``, the
        mean variance across curves of ln(eps/eps_opt) (``collapse_variance``).
    collapse_S : float
        Houdayer-Hartmann S of the collapse (about 1 within the noise).
    backtest : Backtest or None
        eps_opt at the largest P predicted from the smaller ones.
    bootstrap : Bootstrap or None
        A bootstrap over seeds of the same fit, reported beside the
        analytic errors (a check; the verdict uses the analytic errors,
        whose coverage is measured in docs/laws.md).
    profile : Gamma1 or None
        The local-slope profile and its stretch.
    curves : tuple of CurveSet
        The curves (not serialised).
    """

    group: dict
    error: str
    P: tuple[float, ...]
    optima: tuple[Optimum, ...]
    assessment: Assessment
    level: float
    offset: OffsetFit | None
    collapse: Collapse
    collapse_S: float
    backtest: Backtest | None
    bootstrap: Bootstrap | None
    profile: Gamma1 | None = field(default=None, repr=False, compare=False)
    curves: tuple[CurveSet, ...] = field(repr=False, compare=False, default=())

    # the verdict's fit, attribute by attribute
    @property
    def range(self) -> RangeFit:
        """The fit the verdict rests on."""
        return self.assessment.range

    @property
    def P_range(self) -> tuple[float, float]:
        """Smallest and largest P of the verdict's fit."""
        return self.range.P_range

    @property
    def gamma1(self) -> float:
        """Early-law exponent, eps ~ k1 lambda^-gamma1 (law 1); NaN when undefined."""
        return self.range.gamma1

    @property
    def gamma1_err(self) -> float:
        """Standard error of gamma1 (statistical, window and bend parts in quadrature)."""
        return self.range.gamma1_err

    @property
    def gamma2(self) -> float:
        """Exponent of lambda_opt ~ k2 P^gamma2 (law 2)."""
        return self.range.gamma2

    @property
    def gamma2_err(self) -> float:
        """Standard error of gamma2 (weighted fit, widened by the Birge ratio)."""
        return self.range.gamma2_err

    @property
    def gamma_pred(self) -> float:
        """gamma1 * gamma2, the predicted data-scaling exponent."""
        return self.range.gamma_pred

    @property
    def gamma_pred_err(self) -> float:
        """Standard error of gamma_pred, propagated from gamma1's and gamma2's."""
        return self.range.gamma_pred_err

    @property
    def gamma_meas(self) -> float:
        """Exponent of eps_opt ~ k_meas P^-gamma_meas, measured (law 4)."""
        return self.range.gamma_meas

    @property
    def gamma_meas_err(self) -> float:
        """Standard error of gamma_meas (weighted fit, widened by the Birge ratio)."""
        return self.range.gamma_meas_err

    @property
    def sigma(self) -> float:
        """Standard error of gamma_pred - gamma_meas."""
        return self.range.sigma

    @property
    def window(self) -> Window | None:
        """The early law's fit (window in lambda/lambda_opt units); None when undefined."""
        return self.range.window

    @property
    def gamma1_reason(self) -> str:
        """Why gamma1 is undefined ("" when it is defined)."""
        return self.range.gamma1_reason

    @property
    def lambda_law(self) -> PowerLaw:
        """The fit of lambda_opt(P) (law 2)."""
        return self.range.lambda_law

    @property
    def eps_law(self) -> PowerLaw:
        """The fit of eps_opt(P) (law 4)."""
        return self.range.eps_law

    @property
    def k1(self) -> float:
        """Prefactor of the early law (lambda in lambda/lambda_opt units); NaN without gamma1."""
        return self.window.k1 if self.window is not None else float("nan")

    @property
    def k2(self) -> float:
        """Prefactor of lambda_opt = k2 P^gamma2."""
        return self.lambda_law.prefactor

    @property
    def k_meas(self) -> float:
        """Prefactor of eps_opt = k_meas P^-gamma_meas."""
        return self.eps_law.prefactor

    def _ci(self, quantity: str) -> tuple[float, float]:
        """value +- q err, q the Student quantile of the error's dof (normal when None)."""
        value, err = getattr(self, quantity), getattr(self, f"{quantity}_err")
        dof = self.range.dof(quantity)
        p = 0.5 + self.level / 2
        q = float(stdtrit(max(dof, 1), p)) if dof is not None else float(ndtri(p))
        return value - q * err, value + q * err

    @property
    def gamma1_ci(self) -> tuple[float, float]:
        """gamma1 +- its Student quantile (n_P - 1 dof) times its error, at ``level``."""
        return self._ci("gamma1")

    @property
    def gamma2_ci(self) -> tuple[float, float]:
        """gamma2's interval at ``level`` (Student, n - 2 dof, when the scatter set the error)."""
        return self._ci("gamma2")

    @property
    def gamma_pred_ci(self) -> tuple[float, float]:
        """gamma_pred's interval at ``level`` (Welch-Satterthwaite dof)."""
        return self._ci("gamma_pred")

    @property
    def gamma_meas_ci(self) -> tuple[float, float]:
        """gamma_meas's interval at ``level`` (Student, n - 2 dof, if the scatter set it)."""
        return self._ci("gamma_meas")

    @property
    def verdict(self) -> str:
        """``consistent``, ``tension``, ``inconclusive`` or ``untestable``."""
        return self.assessment.verdict

    @property
    def verdict_reasons(self) -> tuple[str, ...]:
        """Why: first what decided the verdict, then caveats."""
        return self.assessment.reasons

    @property
    def z(self) -> float:
        """Normal equivalent of t = (gamma_pred - gamma_meas) / sigma (``range.dof_z``)."""
        return self.assessment.z

    @property
    def collapse_variance(self) -> float:
        """Mean variance across curves of ln(eps/eps_opt) against lambda/lambda_opt."""
        return self.collapse.variance

    @property
    def n_censored(self) -> int:
        """Sizes whose lambda_opt is censored (a lower bound)."""
        return sum(o.censored for o in self.optima)

    @property
    def n_edge_minima(self) -> int:
        """Seed-averaged curves whose smallest error is their last logged point."""
        return sum(o.at_edge for o in self.optima)

    @property
    def gamma1_direct(self) -> float:
        """-(slope of ln eps_opt against ln lambda_opt across P): gamma1 with no window."""
        return self.range.gamma1_direct

    @property
    def backtest_rel_error(self) -> float:
        """Relative error of eps_opt at the largest P predicted from the others."""
        return self.backtest.rel_error if self.backtest is not None else float("nan")

    def verdict_line(self) -> str:
        """One line: the verdict, its z, the P range it rests on and its first reason."""
        r = self.range
        label = ", ".join(f"{k}={v}" for k, v in self.group.items())
        head = f"{label}: " if label else ""
        z = f", z = {r.z:+.1f}" if np.isfinite(r.z) else ""
        pred = (f", gamma_pred = {r.gamma_pred:.3f} +- {r.gamma_pred_err:.3f}, gamma_meas = "
                f"{r.gamma_meas:.3f} +- {r.gamma_meas_err:.3f}"
                if np.isfinite(r.gamma_pred) else "")
        why = f": {self.verdict_reasons[0]}" if self.verdict_reasons else ""
        return (f"{head}{self.verdict} on P = {r.P_range[0]:g}..{r.P_range[1]:g} "
                f"({r.name}{z}{pred}){why}")

    def optima_table(self) -> pd.DataFrame:
        """The per-P optimum table."""
        return pd.DataFrame([asdict(o) | {"basin_decades": o.basin_decades}
                             for o in self.optima])

    def to_dict(self) -> dict:
        """JSON-able summary (no curves); non-finite floats become None in the CLI."""
        out = {"group": dict(self.group), "error": self.error, "P": list(self.P)}
        for name in ("gamma1", "gamma1_err", "k1", "gamma2", "gamma2_err", "k2", "gamma_pred",
                     "gamma_pred_err", "gamma_meas", "gamma_meas_err", "k_meas", "sigma",
                     "level", "collapse_variance", "collapse_S", "backtest_rel_error",
                     "n_edge_minima", "n_censored", "gamma1_reason", "gamma1_direct"):
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
              strict_minimum: bool, optima: dict[float, float] | None = None,
              on_step: Callable[[], None] | None = None) -> LawsFit:
    """Analyse the curves of one group (see :func:`fit_laws`)."""
    est = estimate(sets, window=window, strict_minimum=strict_minimum, given=optima)
    judged = assess(sets, est.optima, window=window)
    r = judged.range
    keep = {float(p) for p in r.P}
    used = [cs for cs in sets if cs.P in keep]
    used_opt = tuple(o for o in est.optima if o.P in keep)
    has_seeds = all(len(cs.seeds) >= 2 for cs in used)
    boot = (bootstrap(used, n_boot=n_boot, seed=seed, level=level, window=window,
                      strict_minimum=strict_minimum, on_step=on_step)
            if has_seeds and n_boot > 0 and optima is None else None)
    lam = np.array([o.lambda_opt for o in used_opt])
    eps = np.array([o.eps_opt for o in used_opt])
    P = np.array([o.P for o in used_opt])
    S = houdayer_hartmann_S([cs.mean for cs in used], lam, eps, _point_errors(used))
    win = r.window
    try:
        offset = (fit_offset_form(P, eps, gamma1=r.gamma1, k1=win.k1)
                  if win is not None and r.gamma1 > 0 else None)
    except (ValueError, NormscaleError):
        offset = None
    try:
        bt = backtest(used, eps[-1], window=window, strict_minimum=strict_minimum)
        bt = bt if np.isfinite(bt.gamma_pred) else None
    except NormscaleError:
        bt = None  # fewer than 3 P left, or no window on the smaller P
    return LawsFit(
        group=group, error=error, P=tuple(float(cs.P) for cs in sets), optima=est.optima,
        assessment=judged, level=level, offset=offset,
        collapse=collapse_variance([cs.mean for cs in used], lam, eps), collapse_S=S,
        backtest=bt, bootstrap=boot, profile=est.profile, curves=tuple(sets))


def fit_laws(df, *, group_by: Sequence[str] = (), error: str = "test_error",
             window: tuple[float, ...] | None = None, n_boot: int = 0, seed: int = 0,
             level: float = 0.95, strict_minimum: bool = False, optima=None,
             on_step: Callable[[], None] | None = None) -> list[LawsFit]:
    """Fit the dynamical scaling laws on a table of learning curves and test them, per group.

    Parameters
    ----------
    df : pandas.DataFrame or path
        Long-format curves (see :func:`normscale.laws.load_curves`, applied here).
    group_by : sequence of str
        Grouping columns; one :class:`LawsFit` per group.
    error : str
        The error column to fit (``test_error``, or e.g. the perceptron's ``eps_hat``).
    window : (lo, hi), (lo, hi, P_min) or None
        None: gamma1's window from the local-slope profile. A pair fixes it
        by hand in units of lambda/lambda_opt(P), the units of the paper's
        hand-picked windows (docs/science.md 2.3); a third value uses only
        the curves with P >= P_min, the paper's ``min_P``.
    n_boot : int
        Bootstrap replicates over seeds, reported beside the analytic errors
        as a check (used when every P has 2 seeds or more; 0, the default,
        switches it off).
    seed : int
        Seed of the bootstrap's random generator.
    level : float
        Level of the reported intervals (``*_ci``).
    strict_minimum : bool
        Refuse curves whose minimum is their last point (default: keep
        them; their optima are flagged censored).
    optima : path, DataFrame or dict, optional
        lambda_opt per P given by the user (columns ``P``, ``lambda_opt``;
        for seed-averaged curves, the mean over seeds of each seed's own
        optimum, as the paper's released rows have). Its P must be those of
        the curves; its errors are unknown, so the fit of law 2 takes its
        error from the scatter of the optima.

    Returns
    -------
    list of LawsFit
        One per group, sorted by group; a one-item list when ungrouped.

    Notes
    -----
    Laws 1 to 4 of docs/science.md (introduction); the test and its
    calibration are in docs/laws.md.
    """
    check_param(_OWNER, "n_boot", n_boot, NONNEGATIVE_INT)
    check_param(_OWNER, "seed", seed, Interval(Integral, 0, None, closed="left"))
    check_param(_OWNER, "level", float(level), _LEVEL)
    if isinstance(group_by, str):
        group_by = [g for g in group_by.split(",") if g]
    win = _check_window(window)
    table = load_curves(df)
    col = check_error_column(table, error)
    given = read_optima(optima) if optima is not None else None
    fits = []
    for group, sub in iter_groups(table, group_by):
        label = ", ".join(f"{k}={v}" for k, v in group.items())
        sets = build_curves(sub, col)
        try:
            if given is not None:
                missing = [cs.P for cs in sets if cs.P not in given]
                if missing:
                    raise NormscaleError(
                        f"the optima table has no lambda_opt for P = "
                        f"{', '.join(f'{p:g}' for p in missing)}")
            fits.append(fit_group(sets, group=group, error=col, window=win, n_boot=n_boot,
                                  seed=seed, level=level, strict_minimum=strict_minimum,
                                  optima=given, on_step=on_step))
        except NormscaleError as exc:
            raise NormscaleError(f"{label}: {exc}" if label else str(exc)) from None
    if not fits:
        raise NormscaleError("the table holds no curves")
    return fits


__all__ = ["LawsFit", "fit_group", "fit_laws"]
