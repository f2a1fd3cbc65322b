"""Paper mode: the paper's own analysis, step by step, to reproduce its numbers exactly.

D'Amico, Bocchi, Negri (arXiv 2505.13230) fit the dynamical laws by hand
choices per row, in its analysis notebook:

1. each P's seed-mean curve is rescaled by its own grid minimum: eps_opt
   is the smallest logged error, lambda* the norm there;
2. gamma1 is the mean, over P >= P_min, of the least-squares slopes of
   log(eps/eps_opt) against log(lambda/lambda*) inside a window [lo, hi]
   of lambda/lambda* (lo = 0: no lower cut); its error is the root mean
   square of those slopes' own standard errors;
3. gamma2 is the least-squares slope of log lambda_opt against log P over
   P >= a second P_min, where lambda_opt(P) is the mean over seeds of the
   norm at each seed's own minimum (not the argmin of the mean curve);
4. gamma_meas is the least-squares slope of the grid minima eps_opt(P) over
   all P (or P >= a third P_min);
5. sigma = sqrt((g1 g2)^2 [(s1/g1)^2 + (s2/g2)^2] + s_meas^2).

:func:`fit_paper` does exactly that. The per-seed lambda_opt comes from the
seeds' own argmins when the curves carry a ``seed`` column, or from a table
``P, lambda_opt[, n_seeds]`` (the paper released them beside its seed-mean
curves). This mode gives no verdict: it reproduces choices, it does not
judge them (:func:`normscale.laws.fit_laws` does).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from normscale.errors import NormscaleError
from normscale.laws.curves import CurveSet, build_curves
from normscale.laws.estimate import LawsInP
from normscale.laws.load import check_error_column, iter_groups, load_curves
from normscale.laws.powerlaw import PowerLaw, fit_power_law


def paper_sigma(g1: float, s1: float, g2: float, s2: float, s_meas: float) -> float:
    """sqrt((g1 g2)^2 [(s1/g1)^2 + (s2/g2)^2] + s_meas^2): the paper's sigma."""
    return math.sqrt((g1 * g2) ** 2 * ((s1 / g1) ** 2 + (s2 / g2) ** 2) + s_meas ** 2)


@dataclass(frozen=True)
class PaperChoices:
    """The hand choices of one row (docs/laws.md, paper mode; docs/science.md 2.3).

    Attributes
    ----------
    window_lo : float
        The window's lower edge in lambda/lambda* (a ratio, not a log),
        lambda* the norm at each P's grid minimum; 0: no lower cut.
    window_hi : float
        The window's upper edge in lambda/lambda*, > ``window_lo``.
    gamma1_P_min : float
        The smallest P whose slope enters gamma1 (step 2); 0: all P.
    gamma2_P_min : float
        The smallest P of the fit of lambda_opt ~ P^gamma2 (step 3); 0: all P.
    gamma_meas_P_min : float
        The smallest P of the fit of eps_opt ~ P^-gamma_meas (step 4); 0: all P.
    """

    window_lo: float
    window_hi: float
    gamma1_P_min: float = 0.0
    gamma2_P_min: float = 0.0
    gamma_meas_P_min: float = 0.0

    def __post_init__(self):
        if not (self.window_lo >= 0 and self.window_hi > self.window_lo):
            raise NormscaleError(
                f"the paper window needs 0 <= lo < hi; got [{self.window_lo:g}, "
                f"{self.window_hi:g}]")
        for name in ("gamma1_P_min", "gamma2_P_min", "gamma_meas_P_min"):
            if not getattr(self, name) >= 0:
                raise NormscaleError(f"{name} must be >= 0; got {getattr(self, name)!r}")


@dataclass(frozen=True)
class PaperFit(LawsInP):
    """The paper's numbers on one group (steps 1 to 5 of the module docstring).

    gamma2 (law 2), gamma_meas (law 4), their errors and gamma_pred = gamma1
    gamma2 are properties read off ``lambda_law`` and ``eps_law``
    (:class:`~normscale.laws.estimate.LawsInP`).

    Attributes
    ----------
    group : dict
        The grouping columns' values of this group ({} for an ungrouped table).
    P : tuple of float
        Every training-set size of the group, increasing.
    choices : PaperChoices
        The row's hand choices the fit used.
    gamma1 : float
        The early exponent of law 1: the mean of ``slopes`` (step 2).
    gamma1_err : float
        The paper's error of gamma1: the root mean square of ``slope_errs``
        (how well each curve fixes its slope, not their spread over P).
    slopes : tuple of float
        Per P of ``P_gamma1``: minus the least-squares slope of
        log10(eps/eps_opt) against log10(lambda/lambda*) in the window (the
        same in any log base).
    slope_errs : tuple of float
        Each slope's own standard error (scipy.stats.linregress's), in the
        order of ``P_gamma1``.
    P_gamma1 : tuple of float
        The sizes P >= ``choices.gamma1_P_min`` with 3 points or more in the
        window: those of ``slopes``.
    lambda_law : PowerLaw
        lambda_opt ~ k2 P^gamma2 fitted on ``lambda_opt`` (law 2, unweighted).
    eps_law : PowerLaw
        eps_opt ~ P^-gamma_meas fitted on ``eps_opt`` over P >=
        ``choices.gamma_meas_P_min`` (law 4, unweighted).
    lambda_opt : dict of float to float
        P -> lambda_opt used for gamma2, in the curves' norm units, for P >=
        ``choices.gamma2_P_min``: the plain mean over seeds of each seed's
        grid-argmin norm, the given optima table's, or the argmin of the
        seed-mean curve (see ``lambda_opt_source``).
    lambda_opt_source : str
        Where ``lambda_opt`` came from: ``"optima table"``, ``"seeds' own
        argmins"`` or ``"argmin of the seed-mean curve"`` (no seeds, no table).
    eps_opt : tuple of float
        The grid minimum of each P's seed-mean curve (its smallest logged
        error), in the order of ``P``.
    sigma : float
        The paper's error of the comparison, sqrt((g1 g2)^2 [(s1/g1)^2 +
        (s2/g2)^2] + s_meas^2) (:func:`paper_sigma`) (property).
    z : float
        (gamma_pred - gamma_meas) / ``sigma``, the paper's own comparison
        (property).
    """

    group: dict
    P: tuple[float, ...]
    choices: PaperChoices
    gamma1: float
    gamma1_err: float
    slopes: tuple[float, ...]
    slope_errs: tuple[float, ...]
    P_gamma1: tuple[float, ...]
    lambda_law: PowerLaw
    eps_law: PowerLaw
    lambda_opt: dict[float, float]
    lambda_opt_source: str
    eps_opt: tuple[float, ...]

    @property
    def sigma(self) -> float:
        return paper_sigma(self.gamma1, self.gamma1_err, self.gamma2, self.gamma2_err,
                           self.gamma_meas_err)

    @property
    def z(self) -> float:
        return (self.gamma_pred - self.gamma_meas) / self.sigma

    def to_dict(self) -> dict:
        out = {"group": dict(self.group), "method": "paper", "P": list(self.P)}
        for name in ("gamma1", "gamma1_err", "gamma2", "gamma2_err", "gamma_pred",
                     "gamma_meas", "gamma_meas_err", "sigma", "z", "lambda_opt_source"):
            out[name] = getattr(self, name)
        out["paper_choices"] = {k: getattr(self.choices, k) for k in (
            "window_lo", "window_hi", "gamma1_P_min", "gamma2_P_min", "gamma_meas_P_min")}
        out["gamma1_fit"] = {"P": list(self.P_gamma1), "slopes": list(self.slopes),
                             "slope_errs": list(self.slope_errs)}
        out["lambda_opt"] = [{"P": p, "lambda_opt": v} for p, v in self.lambda_opt.items()]
        out["eps_opt"] = list(self.eps_opt)
        return out


def read_optima(source: str | os.PathLike | pd.DataFrame) -> dict[float, float]:
    """Read a table ``P, lambda_opt[, n_seeds]``; returns {P: lambda_opt}.

    A dict {P: lambda_opt} is checked and returned; a P given twice is refused.
    """
    if isinstance(source, dict):
        source = pd.DataFrame({"P": list(source), "lambda_opt": list(source.values())})
    where = "the optima table" if isinstance(source, pd.DataFrame) else f"'{source}'"
    if isinstance(source, pd.DataFrame):
        df = source
    else:
        path = Path(source)
        if path.is_dir():
            raise NormscaleError(f"the optima file '{path}' is a folder")
        if not path.is_file():
            raise NormscaleError(f"the optima file '{path}' does not exist")
        try:
            df = pd.read_csv(path)
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise NormscaleError(f"cannot read the optima file '{path}': {msg}") from None
    missing = [c for c in ("P", "lambda_opt") if c not in df.columns]
    if missing:
        raise NormscaleError(f"{where} has no column {missing[0]!r}; it needs P, lambda_opt")
    P = pd.to_numeric(df["P"], errors="coerce").to_numpy(float)
    lam = pd.to_numeric(df["lambda_opt"], errors="coerce").to_numpy(float)
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(lam))) or np.any(P <= 0) or np.any(
            lam <= 0):
        raise NormscaleError(f"{where} must hold finite P > 0 and lambda_opt > 0")
    values, counts = np.unique(P, return_counts=True)
    if np.any(counts > 1):
        raise NormscaleError(f"{where} gives P = {values[counts > 1][0]:g} more than once; "
                             "give one lambda_opt per P")
    return dict(zip(P.tolist(), lam.tolist(), strict=True))


def _seed_argmins(sets: list[CurveSet]) -> dict[float, float] | None:
    """Mean over seeds of each seed's grid-argmin norm, per P (None without 2+ seeds)."""
    if not all(len(cs.seeds) >= 2 for cs in sets):
        return None
    return {cs.P: float(np.mean([c.norm[int(np.argmin(c.error))] for c in cs.seeds]))
            for cs in sets}


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and its standard error (scipy.stats.linregress's)."""
    xm = x - x.mean()
    sxx = float(xm @ xm)
    slope = float(xm @ (y - y.mean())) / sxx
    resid = y - y.mean() - slope * xm
    se = math.sqrt(float(resid @ resid) / (x.size - 2) / sxx) if x.size > 2 else float("nan")
    return slope, se


def paper_group(sets: list[CurveSet], choices: PaperChoices, *, group: dict,
                optima: dict[float, float] | None) -> PaperFit:
    """The paper's analysis of one group (see the module docstring)."""
    lo = math.log10(choices.window_lo) if choices.window_lo > 0 else -math.inf
    hi = math.log10(choices.window_hi)
    slopes, errs, used, eps_opt = [], [], [], []
    for cs in sets:
        c = cs.mean
        i = int(np.argmin(c.error))
        eps_opt.append(float(c.error[i]))
        if cs.P < choices.gamma1_P_min:
            continue
        x = np.log10(c.norm / c.norm[i])
        y = np.log10(c.error / c.error[i])
        inside = (x >= lo) & (x <= hi)
        if inside.sum() < 3:
            continue
        slope, se = _ols(x[inside], y[inside])
        slopes.append(-slope)
        errs.append(se)
        used.append(cs.P)
    if not slopes:
        raise NormscaleError(
            f"no curve with P >= {choices.gamma1_P_min:g} has 3 points in the window "
            f"[{choices.window_lo:g}, {choices.window_hi:g}] of lambda/lambda*")
    if optima is not None:
        lam, source = optima, "optima table"
    else:
        lam, source = _seed_argmins(sets), "seeds' own argmins"
        if lam is None:
            warnings.warn("no seeds and no optima table: gamma2 uses the argmin of each "
                          "seed-mean curve, not the paper's mean of the seeds' argmins "
                          "(pass --optima)", stacklevel=3)
            lam = {cs.P: float(cs.mean.norm[int(np.argmin(cs.mean.error))]) for cs in sets}
            source = "argmin of the seed-mean curve"
    P2 = np.array(sorted(p for p in lam if p >= choices.gamma2_P_min))
    P = np.array([cs.P for cs in sets])
    keep = P >= choices.gamma_meas_P_min
    for flag, n, p_min in (("--gamma2-p-min", P2.size, choices.gamma2_P_min),
                           ("--gamma-meas-p-min", int(keep.sum()), choices.gamma_meas_P_min)):
        if n < 3:
            raise NormscaleError(f"{flag} {p_min:g} leaves {n} P (of {P.size}); the fit needs "
                                 "at least 3")
    lambda_law = fit_power_law(P2, np.array([lam[p] for p in P2]), what="lambda_opt(P)")
    eps_law = fit_power_law(P[keep], np.array(eps_opt)[keep], what="eps_opt(P)")
    return PaperFit(group=group, P=tuple(P.tolist()), choices=choices,
                    gamma1=float(np.mean(slopes)),
                    gamma1_err=float(np.sqrt(np.mean(np.square(errs)))),
                    slopes=tuple(slopes), slope_errs=tuple(errs), P_gamma1=tuple(used),
                    lambda_law=lambda_law, eps_law=eps_law,
                    lambda_opt={float(p): float(lam[p]) for p in P2},
                    lambda_opt_source=source, eps_opt=tuple(eps_opt))


def fit_paper(df, *, choices: PaperChoices, optima=None, group_by=(),
              error: str = "test_error") -> list[PaperFit]:
    """The paper's analysis (module docstring) on a table of curves, one fit per group.

    Parameters
    ----------
    df : pandas.DataFrame or path
        Long-format curves (:func:`normscale.laws.load_curves`).
    choices : PaperChoices
        The window and the smallest P of each fit.
    optima : path, DataFrame or None
        Table ``P, lambda_opt[, n_seeds]`` of the per-seed mean optimum norm.
        Without it, a ``seed`` column gives the same quantity from the seeds'
        own argmins. Only for an ungrouped table.
    group_by : sequence of str
        Grouping columns.
    error : str
        The error column.
    """
    if isinstance(group_by, str):
        group_by = [g for g in group_by.split(",") if g]
    table = load_curves(df)
    col = check_error_column(table, error)
    lam = read_optima(optima) if optima is not None else None
    groups = list(iter_groups(table, group_by))
    if lam is not None and len(groups) > 1:
        raise NormscaleError("--optima holds one group's optima; fit one group at a time")
    fits = []
    for group, sub in groups:
        sets = build_curves(sub, col)
        if lam is not None:
            missing = sorted({cs.P for cs in sets if cs.P >= choices.gamma2_P_min} - set(lam))
            if missing:
                raise NormscaleError(
                    f"the optima table has no lambda_opt for P = {missing[0]:g}")
        label = ", ".join(f"{k}={v}" for k, v in group.items())
        try:
            fits.append(paper_group(sets, choices, group=group, optima=lam))
        except NormscaleError as exc:
            raise NormscaleError(f"{label}: {exc}" if label else str(exc)) from None
    return fits


def paper_markdown(fits: list[PaperFit]) -> str:
    """A markdown table of paper-mode fits."""
    head = list(fits[0].group) + ["gamma1", "gamma2", "gamma_pred", "gamma_meas", "sigma", "z",
                                  "window", "P_min (g1, g2, meas)", "lambda_opt from"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in fits:
        c = f.choices
        lines.append("| " + " | ".join([str(v) for v in f.group.values()] + [
            f"{f.gamma1:.4f} ± {f.gamma1_err:.4f}", f"{f.gamma2:.4f} ± {f.gamma2_err:.4f}",
            f"{f.gamma_pred:.3f}", f"{f.gamma_meas:.3f} ± {f.gamma_meas_err:.3f}",
            f"{f.sigma:.3f}", f"{f.z:+.1f}", f"[{c.window_lo:g}, {c.window_hi:g}]",
            f"{c.gamma1_P_min:g}, {c.gamma2_P_min:g}, {c.gamma_meas_P_min:g}",
            f.lambda_opt_source]) + " |")
    return "\n".join(lines) + "\n"
