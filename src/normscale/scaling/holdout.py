"""Extrapolation you can check: fit without the largest configurations, predict them.

The K largest configurations (by size: the input itself for one input, the
product N P, proportional to the compute 6 N P, for ``joint``, or a cost
column) are held out with all their rows; the form is fitted and
bootstrapped on the rest, and the held-out rows are predicted with the
bootstrap band. The error is reported per point (log of predicted over
observed) and as the RMSLE, sqrt(mean(log(yhat/y)^2)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale.errors import ParameterError
from normscale.scaling.fit import ScalingFit, bootstrap_fit, config_index, fit_form


@dataclass(frozen=True)
class Holdout:
    """Prediction of the ``k`` largest configurations by a fit on the others.

    An ``rmsle`` near ``residual_rms`` is an extrapolation as good as the
    fit. The band is that of the fitted law, not of single runs, so it holds
    few held-out runs when the scatter of single runs about the law dominates.

    Attributes
    ----------
    k : int
        Configurations held out (all their rows), the largest by size.
    x : array of shape (m, d)
        Inputs of the held-out rows, columns in the order of ``fit.x_names``.
    y : array of shape (m,)
        Their observed outputs.
    predicted : array of shape (m,)
        The fit's prediction at ``x``.
    lo, hi : array of shape (m,)
        The bootstrap percentile band of the prediction at the fit's level
        (:meth:`~normscale.scaling.fit.ScalingFit.band`).
    log_error : array of shape (m,)
        log(predicted / y) per held-out row (natural log; > 0 over-predicts).
    inside : array of bool, shape (m,)
        Whether y lies in [lo, hi].
    rmsle : float
        sqrt(mean(log_error^2)) over the held-out rows.
    residual_rms : float
        The same root mean square of log(yhat / y) over the rows the fit
        was fitted on: the scatter of single runs about the law.
    fit : ScalingFit
        The fit, with its bootstrap, on the rows kept.
    """

    k: int
    x: np.ndarray
    y: np.ndarray
    predicted: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    log_error: np.ndarray
    inside: np.ndarray
    rmsle: float
    residual_rms: float
    fit: ScalingFit

    def to_dict(self) -> dict:
        names = self.fit.x_names
        points = [{**{n: float(v) for n, v in zip(names, xi, strict=True)}, "y": float(yi),
                   "predicted": float(p), "lo": float(lo), "hi": float(hi),
                   "log_error": float(e), "inside": bool(i)}
                  for xi, yi, p, lo, hi, e, i in zip(self.x, self.y, self.predicted, self.lo,
                                                    self.hi, self.log_error, self.inside,
                                                    strict=True)]
        return {"k": self.k, "rmsle": self.rmsle, "residual_rms": self.residual_rms,
                "n_inside": int(self.inside.sum()),
                "points": points, "fit": self.fit.to_dict()}


def split_largest(x: np.ndarray, k: int, size: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the rows of the ``k`` largest configurations (by ``size``, or prod x)."""
    x = np.asarray(x, dtype=float)
    x = x.reshape(len(x), -1) if x.ndim == 1 else x
    size = np.prod(x, axis=1) if size is None else np.asarray(size, dtype=float)
    g = config_index(x)
    n_configs = int(g.max()) + 1
    if not 1 <= k < n_configs:
        raise ParameterError(f"The 'holdout' parameter must be an int in [1, {n_configs - 1}] "
                             f"(the table has {n_configs} configurations). Got {k} instead.")
    config_size = np.full(n_configs, -np.inf)
    np.maximum.at(config_size, g, size)
    held = np.argsort(config_size)[::-1][:k]
    return np.isin(g, held)


def holdout(form: str, x: np.ndarray, y: np.ndarray, *, k: int,
            size: np.ndarray | None = None, delta: float | None = 1e-3, n_boot: int = 1000,
            seed: int = 0, level: float = 0.95, starts: np.ndarray | int | None = None,
            x_names: tuple[str, ...] | None = None, y_name: str = "y",
            method: str | None = None) -> Holdout:
    """Fit ``form`` on all but the ``k`` largest configurations and predict those.

    Parameters are those of :func:`~normscale.scaling.fit.fit_form` and
    :func:`~normscale.scaling.fit.bootstrap_fit`, plus ``k`` (configurations
    held out) and ``size`` (n,), the size that ranks them (default: the
    product of the inputs).
    """
    x = np.asarray(x, dtype=float)
    x = x.reshape(len(x), -1) if x.ndim == 1 else x
    y = np.asarray(y, dtype=float).ravel()
    held = split_largest(x, k, size)
    fit = fit_form(form, x[~held], y[~held], delta=delta, starts=starts, x_names=x_names,
                   y_name=y_name, method=method)
    fit = bootstrap_fit(fit, x[~held], y[~held], n_boot=n_boot, seed=seed, level=level)
    xh, yh = x[held], y[held]
    pred = fit.predict(xh)
    lo, hi = fit.band(xh)
    err = np.log(pred / yh)
    resid = np.log(fit.predict(x[~held]) / y[~held])
    return Holdout(k, xh, yh, pred, lo, hi, err, (yh >= lo) & (yh <= hi),
                   float(np.sqrt(np.mean(err ** 2))), float(np.sqrt(np.mean(resid ** 2))), fit)
