"""The whole analysis of one table of curves: :func:`fit_laws` and its :class:`LawsFit`.

SCIENCE.md, introduction (laws 1 to 4) and section 2.3.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real

import pandas as pd
from scipy import stats

from normscale._validation import NONNEGATIVE_INT, POSITIVE, Interval, Options, check_param
from normscale.errors import NormscaleError, ParameterError
from normscale.laws.backtest import Backtest, backtest
from normscale.laws.bootstrap import Bootstrap, bootstrap
from normscale.laws.collapse import Collapse, collapse_quality
from normscale.laws.curves import CurveSet, build_curves
from normscale.laws.fits import OffsetFit, PowerLaw, fit_offset_form
from normscale.laws.pipeline import GAMMA1_METHODS, Optimum, estimate
from normscale.laws.table import check_error_column, iter_groups, load_curves
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
    gamma_pred). ``sigma`` is the paper's uncertainty of
    gamma_pred - gamma_meas (SCIENCE.md 2.3), from the ``*_err``.
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
    window: Window
    lambda_law: PowerLaw
    eps_law: PowerLaw
    offset: OffsetFit | None
    optima: tuple[Optimum, ...]
    collapse: Collapse
    backtest: Backtest | None
    bootstrap: Bootstrap | None
    n_edge_minima: int
    curves: tuple[CurveSet, ...] = field(repr=False, compare=False)

    @property
    def collapse_quality(self) -> float:
        return self.collapse.quality

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
                     "backtest_rel_error", "n_edge_minima"):
            out[name] = getattr(self, name)
        for name in ("gamma1_ci", "gamma2_ci", "gamma_pred_ci", "gamma_meas_ci"):
            out[name] = list(getattr(self, name))
        out["window"] = self.window.to_dict()
        out["gamma1_fit"] = {"slopes": list(self.window.slopes),
                             "pooled_gamma1": self.window.pooled_gamma1}
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


def _sigma(g1: float, s1: float, g2: float, s2: float, s_meas: float) -> float:
    """sqrt((g1 g2)^2 [(s1/g1)^2 + (s2/g2)^2] + s_meas^2), SCIENCE.md 2.3."""
    return math.sqrt((g1 * g2) ** 2 * ((s1 / g1) ** 2 + (s2 / g2) ** 2) + s_meas ** 2)


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


def fit_group(sets: list[CurveSet], *, group: dict, error: str,
              window: tuple[float, ...] | None, n_boot: int, seed: int, level: float,
              strict_minimum: bool, gamma1_method: str = "common",
              on_step: Callable[[], None] | None = None) -> LawsFit:
    """Analyse the curves of one group (see :func:`fit_laws`)."""
    est = estimate(sets, window=window, strict_minimum=strict_minimum, gamma1_method=gamma1_method)
    win = est.window
    if win.P_censored:
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
    s1, s2, sm = win.gamma1_err, est.lambda_law.exponent_err, est.eps_law.exponent_err
    sp = abs(g1 * g2) * math.sqrt((s1 / g1) ** 2 + (s2 / g2) ** 2) if g1 and g2 else float("nan")
    method = "analytic"
    if boot is not None:
        # neither error sees everything (see LawsFit): keep the larger
        s1, s2, sm, sp = (max(boot.se(q), s) for q, s in
                          (("gamma1", s1), ("gamma2", s2), ("gamma_meas", sm), ("gamma_pred", sp)))
        method = "bootstrap"
    dof_P = len(est.P) - 2
    try:
        offset = fit_offset_form(est.P, est.eps_opt, gamma1=g1, k1=win.k1) if g1 > 0 else None
    except (ValueError, NormscaleError):
        offset = None
    try:
        bt = backtest(sets, est.eps_opt[-1], window=window, strict_minimum=strict_minimum,
                      gamma1_method=gamma1_method)
    except NormscaleError:
        bt = None  # fewer than 3 P left, or no window on the smaller P
    return LawsFit(
        group=group, error=error, P=tuple(float(p) for p in est.P),
        gamma1=g1, gamma1_err=s1, k1=win.k1,
        gamma2=g2, gamma2_err=s2, k2=est.lambda_law.prefactor,
        gamma_pred=est.gamma_pred, gamma_pred_err=sp,
        gamma_meas=gm, gamma_meas_err=sm, k_meas=est.eps_law.prefactor,
        sigma=_sigma(g1, s1, g2, s2, sm) if g1 and g2 else float("nan"),
        err_method=method, level=level,
        gamma1_ci=_interval(g1, s1, win.dof, level), gamma2_ci=_interval(g2, s2, dof_P, level),
        gamma_pred_ci=_interval(est.gamma_pred, sp, min(win.dof, dof_P), level),
        gamma_meas_ci=_interval(gm, sm, dof_P, level), gamma1_method=gamma1_method, window=win,
        lambda_law=est.lambda_law, eps_law=est.eps_law,
        offset=offset, optima=est.optima,
        collapse=collapse_quality([cs.mean for cs in sets], est.lambda_opt, est.eps_opt),
        backtest=bt, bootstrap=boot, n_edge_minima=sum(o.at_edge for o in est.optima),
        curves=tuple(sets),
    )


def fit_laws(df, *, group_by: Sequence[str] = (), error: str = "test_error",
             window: tuple[float, ...] | None = None, n_boot: int = 200, seed: int = 0,
             level: float = 0.95, strict_minimum: bool = False, gamma1_method: str = "common",
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
        units of the paper's hand-picked windows (SCIENCE.md 2.3); a third
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
    gamma1_method : {"common", "rescaled"}
        Units in which the automatic gamma1 window is searched. ``"common"``
        (default): absolute norm, one window where the early curves of all P
        share one power law (law 1 holds in absolute units; the window does
        not depend on the lambda_opt estimates, so ill-defined minima do not
        move it). ``"rescaled"``: lambda/lambda_opt, the paper's method
        (SCIENCE.md 2.3) with the window found automatically.

    Returns
    -------
    list of LawsFit
        One per group, sorted by group; a one-item list when ungrouped.

    Notes
    -----
    Laws 1 to 4 of SCIENCE.md (introduction) and the paper's procedure
    with normscale's changes (SCIENCE.md 2.3).
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
