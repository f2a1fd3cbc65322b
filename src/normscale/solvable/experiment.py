"""Simulated tables of the PLRF model, fitted by normscale's own pipeline.

Four kinds of table, all in the long format that ``normscale fit`` and
``normscale scaling`` read (one row per logged point: ``P``, ``N``,
``step``, ``norm``, ``test_error``, ``seed``, and the model's ``a``, ``b``,
``alpha``, ``beta``, ``noise``, ``v`` and the ``law`` it was made for; an
infinite P, N or step is a limit taken exactly):

- :func:`time_table`: gradient flow at log-spaced times, P > v samples,
  identity features (N -> infinity): L(t);
- :func:`data_table`: the minimum-norm solution (t = infinity) on P samples,
  identity features with v = ``v_ratio`` P: L(P);
- :func:`model_table`: the best student of N random features (P, t =
  infinity), v = ``v_ratio`` N: L(N);
- :func:`noisy_table`: gradient flow with label noise for several P: the
  norm-indexed curves of the dynamical laws.

The input dimension grows with the size (v = v_ratio x size) in the L(P) and
L(N) tables so that the part of the spectrum cut off at v is the same
fraction of the tail at every size: a fixed v would bend the curve as the
size nears it.

:func:`fit_classic` fits y = A x^-alpha + c with
:func:`normscale.scaling.analyse` (bootstrap over configurations, optional
held-out largest sizes); :func:`fit_dynamical` runs
:func:`normscale.laws.fit_laws`. Neither re-implements a fit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from normscale.solvable.exponents import (
    dynamical_exponents,
    model_exponent,
    size_exponent,
    time_exponent,
)
from normscale.solvable.flow import gradient_flow
from normscale.solvable.model import PowerLawModel, draw_features

#: the columns of every table, in order
COLUMNS = ("law", "a", "b", "alpha", "beta", "noise", "v", "P", "N", "step", "norm",
           "test_error", "seed")

#: laws and the column that is their x
LAW_X = {"time": "step", "data": "P", "model": "N"}


def _rows(model: PowerLawModel, law: str, P, N, steps, norms, errors, seed) -> pd.DataFrame:
    n = len(errors)
    return pd.DataFrame({
        "law": law, "a": model.a, "b": model.b, "alpha": model.alpha, "beta": model.beta,
        "noise": model.noise, "v": model.v, "P": np.broadcast_to(np.asarray(P, float), n),
        "N": np.broadcast_to(np.asarray(N, float), n), "step": np.asarray(steps, float),
        "norm": np.asarray(norms, float), "test_error": np.asarray(errors, float),
        "seed": seed})


def time_table(*, a: float, b: float, v: int, P: int, k_range=(3.0, 40.0), n_times: int = 16,
               seeds=range(4)) -> pd.DataFrame:
    """Gradient flow from 0 on P noiseless samples, identity features with the tail beyond v
    (``tail=True``): L(t) at times t = k^b for k log-spaced in ``k_range`` (the mode being
    learned at t; keep it far below v). P >> v, e.g. 10^8: the Wishart draw costs v^3 at any
    P, and the empirical spectrum is off by about sqrt(v/P)."""
    model = PowerLawModel.from_ab(a=a, b=b, v=v, tail=True)
    times = np.geomspace(*k_range, n_times) ** b
    feats = draw_features(model)
    frames = [_rows(model, "time", P, math.inf, c.times, c.norm, c.risk, s)
              for s in seeds for c in [gradient_flow(feats, P=P, times=times, seed=s)]]
    return pd.concat(frames, ignore_index=True)


def data_table(*, a: float, b: float, P_grid, v_ratio: int = 8, seeds=range(4)
               ) -> pd.DataFrame:
    """The minimum-norm student (gradient flow at t = infinity) on P noiseless samples,
    identity features (N -> infinity), v = v_ratio P: L(P)."""
    frames = []
    for P in P_grid:
        model = PowerLawModel.from_ab(a=a, b=b, v=int(v_ratio * P))
        feats = draw_features(model)
        for s in seeds:
            c = gradient_flow(feats, P=int(P), times=[math.inf], seed=s, index=int(P))
            frames.append(_rows(model, "data", P, math.inf, c.times, c.norm, c.risk, s))
    return pd.concat(frames, ignore_index=True)


def model_table(*, a: float, b: float, N_grid, v_ratio: int = 8, seeds=range(4)
                ) -> pd.DataFrame:
    """The best student of N random features (P, t -> infinity), v = v_ratio N: L(N) = R*."""
    frames = []
    for N in N_grid:
        model = PowerLawModel.from_ab(a=a, b=b, v=int(v_ratio * N), d=int(N))
        for s in seeds:
            f = draw_features(model, seed=s)
            frames.append(_rows(model, "model", math.inf, N, [math.inf],
                                [np.linalg.norm(f.theta_star)], [f.risk_star], s))
    return pd.concat(frames, ignore_index=True)


def noisy_table(*, a: float, b: float, noise: float, v: int, P_grid, times, seeds=range(4)
                ) -> pd.DataFrame:
    """Gradient flow with label noise on P samples, identity features (v modes): the curves
    (norm, test error) of the dynamical laws, one per (P, seed)."""
    model = PowerLawModel.from_ab(a=a, b=b, v=v, noise=noise, tail=True)
    feats = draw_features(model)
    frames = [_rows(model, "dynamical", P, math.inf, c.times, c.norm, c.risk, s)
              for P in P_grid for s in seeds
              for c in [gradient_flow(feats, P=int(P), times=times, seed=s, index=int(P))]]
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class ClassicFit:
    """A classic law fitted on a simulated table against its prediction.

    Attributes
    ----------
    law : str
        ``"time"`` (L(t), x = step), ``"data"`` (L(P)) or ``"model"`` (L(N)).
    a, b : float
        The model's exponents: target power k^-a and spectrum k^-b per mode.
    predicted : float
        The asymptotic exponent of the law (:func:`predicted_exponent`).
    fitted : float
        The exponent alpha of y = A x^-alpha + c fitted to the table (the
        ``power`` form of :func:`normscale.scaling.analyse`, squared loss on
        log y).
    ci : (float, float)
        The bootstrap interval of ``fitted`` at ``level`` (configurations
        resampled).
    level : float
        Level of ``ci``, e.g. 0.95.
    inside : bool
        Whether ``predicted`` lies in ``ci``.
    n_points : int
        Rows fitted (sizes times seeds).
    holdout_k : int
        Largest sizes held out for the extrapolation check (0: none).
    holdout_rmsle : float
        RMSLE of the prediction of the held-out rows by the fit on the
        others; NaN without a hold-out.
    holdout_inside : int
        Held-out rows inside the fit's bootstrap band; 0 without a hold-out.
    analysis : ScalingAnalysis
        The whole :class:`normscale.scaling.ScalingAnalysis` (fit, bootstrap,
        hold-out).
    """

    law: str
    a: float
    b: float
    predicted: float
    fitted: float
    ci: tuple[float, float]
    level: float
    inside: bool
    n_points: int
    holdout_k: int
    holdout_rmsle: float
    holdout_inside: int
    analysis: object

    def row(self) -> dict:
        return {"law": self.law, "a": self.a, "b": self.b, "predicted": self.predicted,
                "fitted": self.fitted, "ci_lo": self.ci[0], "ci_hi": self.ci[1],
                "inside": self.inside, "holdout_k": self.holdout_k,
                "holdout_rmsle": self.holdout_rmsle, "holdout_inside": self.holdout_inside}


def predicted_exponent(law: str, *, a: float, b: float) -> float:
    """The asymptotic exponent of ``law`` for this model: (a-1)/b for time,
    min(a-1, 2b) for data, and min(a-1, b) for model size (the feature-limited floor
    of the PLRF model, Paquette et al.'s F_0; see docs/solvable.md on why not 2b)."""
    if law == "time":
        return time_exponent(a=a, b=b)
    if law == "data":
        return size_exponent(a=a, b=b)
    if law == "model":
        return model_exponent(a=a, b=b)
    raise ValueError(f"unknown law {law!r}")


def fit_classic(table: pd.DataFrame, *, n_boot: int = 200, holdout_k: int = 0, seed: int = 0,
                level: float = 0.95, coarse: bool = True) -> ClassicFit:
    """Fit y = A x^-alpha + c on a table of one law (its ``law`` column) with
    :func:`normscale.scaling.analyse` and set it against :func:`predicted_exponent`.

    The loss is squared on log y (``normscale scaling --loss squared``): the rows are
    several draws per size with a smooth spread and no outliers. A Huber loss with the
    Chinchilla threshold (1e-3 on log y, far below that spread) behaves like least
    absolute deviations, passes through single rows, and its bootstrap then returns the
    same exponent in most replicates: an interval of zero width.
    """
    from normscale.scaling import analyse

    law = str(table["law"].iloc[0])
    a, b = float(table["a"].iloc[0]), float(table["b"].iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # one-start warnings stay in fit.warnings
        an = analyse(table, form="power", x=(LAW_X[law],), y="test_error", n_boot=n_boot,
                     seed=seed, level=level, holdout_k=holdout_k, delta=None,
                     starts=10 if coarse else None)
    fit = an.fit
    lo, hi = fit.bootstrap.intervals["alpha"]
    pred = predicted_exponent(law, a=a, b=b)
    h = an.holdout
    return ClassicFit(law, a, b, pred, float(fit.params["alpha"]), (float(lo), float(hi)), level,
                      bool(lo <= pred <= hi), fit.n_points, holdout_k,
                      float("nan") if h is None else float(h.rmsle),
                      0 if h is None else int(np.sum(h.inside)), an)


def window_gamma1(table: pd.DataFrame, fit) -> float:
    """The early-law slope of the noiseless population curve over the window the fit used.

    For each P of the window, the slope -d ln L / d ln |theta| of
    :func:`~normscale.solvable.flow.population_flow` (P -> infinity, sigma = 0,
    same v and tail) fitted over lambda in [lo, hi] x lambda_opt(P), averaged
    over P: what gamma1 is at these sizes if the only difference from the
    asymptote is the shape of the noiseless curve. NaN without a window.
    """
    from normscale.solvable.flow import population_flow

    window = getattr(fit, "window", None)
    if window is None or not np.isfinite(fit.gamma1):
        return math.nan
    row = table.iloc[0]
    model = PowerLawModel.from_ab(a=float(row["a"]), b=float(row["b"]), v=int(row["v"]),
                                  tail=True)
    curve = population_flow(draw_features(model), np.geomspace(1e-3, 1e9, 2000))
    opt = {o.P: o.lambda_opt for o in fit.optima}
    slopes = []
    for P in window.P_used:
        keep = (curve.norm >= window.lo * opt[P]) & (curve.norm <= window.hi * opt[P])
        if keep.sum() >= 3:
            slopes.append(-np.polyfit(np.log(curve.norm[keep]), np.log(curve.risk[keep]), 1)[0])
    return float(np.mean(slopes)) if slopes else math.nan


@dataclass(frozen=True)
class DynamicalFit:
    """The dynamical laws fitted on a noisy table, beside their asymptotic prediction.

    Attributes
    ----------
    a, b : float
        The model's exponents: target power k^-a and spectrum k^-b per mode.
    noise : float
        Standard deviation sigma of the training labels' noise.
    prediction : DynamicalPrediction
        The asymptotic laws of
        :func:`~normscale.solvable.exponents.dynamical_exponents`.
    fit : LawsFit
        The fit of :func:`normscale.laws.fit_laws` on the table (its first
        group), with ``normscale fit``'s automatic analysis.
    gamma1_window : float
        The noiseless population curve's slope -d ln L / d ln |theta| over
        the window the fit used, averaged over its P (:func:`window_gamma1`);
        NaN without a window.
    """

    a: float
    b: float
    noise: float
    prediction: object
    fit: object
    gamma1_window: float

    def rows(self) -> list[dict]:
        f, p = self.fit, self.prediction
        out = []
        for name, pred, val, ci in (("gamma1", p.gamma1, f.gamma1, f.gamma1_ci),
                                    ("gamma2", p.gamma2, f.gamma2, f.gamma2_ci),
                                    ("gamma_pred", p.gamma1 * p.gamma2, f.gamma_pred,
                                     f.gamma_pred_ci),
                                    ("gamma_meas", p.gamma, f.gamma_meas, f.gamma_meas_ci)):
            lo, hi = (float(ci[0]), float(ci[1])) if ci is not None else (math.nan, math.nan)
            out.append({"law": name, "a": self.a, "b": self.b, "predicted": pred,
                        "fitted": float(val), "ci_lo": lo, "ci_hi": hi,
                        "inside": bool(lo <= pred <= hi) if math.isfinite(pred) else False})
        return out


def fit_dynamical(table: pd.DataFrame, *, n_boot: int = 100, seed: int = 0) -> DynamicalFit:
    """``normscale fit``'s automatic analysis on a :func:`noisy_table`, beside the prediction."""
    from normscale.laws import fit_laws

    a, b = float(table["a"].iloc[0]), float(table["b"].iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_laws(table, n_boot=n_boot, seed=seed)[0]
    return DynamicalFit(a, b, float(table["noise"].iloc[0]), dynamical_exponents(a=a, b=b), fit,
                        window_gamma1(table, fit))
