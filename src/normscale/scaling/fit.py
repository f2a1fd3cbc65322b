"""Fit a classic form by multi-start, with every start kept, and bootstrap it.

:func:`fit_form` searches by variable projection by default
(:mod:`normscale.scaling.projection`: a grid of exponents ranked by the
linear fit of the coefficients, the best few refined by the engine), or
runs the engine (:mod:`normscale.scaling.engine`) from a full grid of
starts in all parameters (``method="grid"``, the check: both reach the
same objective); either way each refined start's outcome is kept. Multi-start fits of these
forms are known to land in local minima and to report convergence they did
not reach (Besiroglu et al. 2024 end their replication of Hoffmann et al.
2022 with an optimiser's ``success: False``), so the result says how many
starts reached the best objective and warns (:class:`ScalingWarning`) when
only one did or when the best start did not converge.

:func:`bootstrap_fit` resamples whole configurations (all rows that share
their inputs: the seeds of one (N, P) go together) with replacement and
refits every replicate from the best point and the next distinct local
minima of the fit (of its refined starts, by projection), all replicates
in batches of the engine (a replicate is a row of data weights, its
resampling counts; blocks of replicates keep the memory bounded). Its intervals
are BCa percentiles by default (Efron and Tibshirani 1993), with the
acceleration from a jackknife over configurations.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from normscale.errors import ParameterError
from normscale.scaling import projection
from normscale.scaling.engine import Batch, fit_batch
from normscale.scaling.forms import Form, get_form

#: how the minimum is searched (see :func:`fit_form`)
METHODS = ("projection", "grid")

#: starts whose objective is within this relative distance of the best one "reached the best"
BEST_RTOL = 1e-6
#: distinct local minima of the full fit that also start every bootstrap replicate
BOOT_STARTS = 3
#: two end points are the same minimum when no LSE parameter differs by more than this
SAME_MINIMUM = 1e-3
#: bytes that a block of bootstrap or jackknife weights (replicates x rows) may take: 64 MiB
MEMORY = 2 ** 26
#: convergence of the bootstrap and jackknife refits (relative objective change, relative
#: parameter change): replicates spread by 1e-2 relative and more, so 1e-6 is four orders
#: below what they measure; it saves 10 to 30% of their iterations against the fit's 1e-10, 1e-7
BOOT_FTOL, BOOT_XTOL = 1e-9, 1e-6


class ScalingWarning(UserWarning):
    """A fit whose result needs care: one start at the best, no convergence, failed replicates."""


@dataclass(frozen=True)
class Starts:
    """Every start of a multi-start fit: where it began, where it ended, how.

    One row per refined start: S starts, p parameters of the form in LSE
    form (:mod:`normscale.scaling.forms`: prefactors and floors as logs).

    Attributes
    ----------
    theta0 : array of shape (S, p)
        Where each start began: a point of the full start grid
        (``method="grid"``), or a ranked grid point of exponents with its
        projected coefficients (``method="projection"``).
    theta : array of shape (S, p)
        Where each start ended, in LSE parameters.
    objective : array of shape (S,)
        The objective at the end point, sum_i rho(log yhat_i - log y_i) with
        rho the Huber or squared loss of the fit
        (:func:`~normscale.scaling.engine.objective`); ``inf`` where it was
        not finite.
    converged : array of bool, shape (S,)
        Whether the engine's convergence test passed for the start
        (:mod:`normscale.scaling.engine`: relative objective and parameter
        change, gradient, or a stall at float64's floor).
    n_iter : array of int, shape (S,)
        Levenberg-Marquardt iterations the start used.
    at_best : array of bool, shape (S,)
        Converged with an objective within ``BEST_RTOL`` (relative) of the
        best start's: the starts that "reached the best".
    """

    theta0: np.ndarray
    theta: np.ndarray
    objective: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    at_best: np.ndarray


@dataclass(frozen=True)
class Bootstrap:
    """Spread of the parameters over ``n_ok`` converged replicates out of ``n_boot``.

    Replicates resample the ``n_configs`` configurations with replacement;
    their deviations from the fit are scaled by sqrt(n_configs/(n_configs -
    p)) (the degrees-of-freedom correction of HC1, MacKinnon and White
    1985). With fewer than 2 converged replicates ``se``, ``intervals`` and
    ``cov`` are NaN.

    Attributes
    ----------
    n_boot : int
        Bootstrap replicates drawn.
    n_ok : int
        Replicates whose refit converged (from at least one of its starts);
        the others are left out of every statistic below.
    n_configs : int
        Distinct configurations (rows with equal inputs: the seeds of one
        (P, N)) that each replicate resamples, with replacement.
    level : float
        Level of ``intervals`` (and of the prediction band of
        :meth:`ScalingFit.band`), e.g. 0.95.
    method : str
        How ``intervals`` are read off the replicates: ``"bca"``
        (bias-corrected and accelerated percentiles, the acceleration from
        a jackknife over configurations) or ``"percentile"``.
    names : tuple of str
        The natural parameters, in the order of the columns of ``samples``
        and of ``cov`` (the form's ``natural``: ``E, A, B, alpha, beta`` for
        ``joint``).
    samples : array of shape (n_ok, p)
        Natural parameters of the converged replicates, after the HC1
        scaling of their deviations from the fit.
    theta : array of shape (n_ok, p)
        The same replicates in LSE parameters (what the prediction band
        evaluates).
    se : dict of str to float
        Standard deviation (ddof 1) of each natural parameter over ``samples``.
    intervals : dict of str to (float, float)
        The (lower, upper) interval of each natural parameter at ``level``
        by ``method``.
    cov : array of shape (p, p)
        Covariance of ``samples``, rows and columns in the order of ``names``.
    """

    n_boot: int
    n_ok: int
    n_configs: int
    level: float
    method: str
    names: tuple[str, ...]
    samples: np.ndarray
    theta: np.ndarray
    se: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    cov: np.ndarray

    def to_dict(self) -> dict:
        return {"n_boot": self.n_boot, "n_ok": self.n_ok, "n_configs": self.n_configs,
                "level": self.level, "method": self.method, "se": self.se,
                "intervals": {k: list(v) for k, v in self.intervals.items()},
                "cov": {"names": list(self.names), "matrix": self.cov.tolist()}}


@dataclass(frozen=True)
class ScalingFit:
    """A classic form fitted to a table.

    A best reached from one start only, or a best start that did not
    converge, is in ``warnings`` and was raised as a :class:`ScalingWarning`.

    Attributes
    ----------
    form : str
        The form's name: ``"power"``, ``"joint"`` or ``"broken"``
        (:mod:`normscale.scaling.forms`).
    equation : str
        The form's equation in its own symbols, e.g.
        ``y = E + A N^-alpha + B P^-beta``.
    x_names : tuple of str
        The input columns in the form's order: (P,) for ``power`` and
        ``broken``, (P, N), data size first, for ``joint``.
    y_name : str
        The output column (a loss or a test error).
    params : dict of str to float
        The natural parameters at the best objective (prefactors and floors
        as themselves, not logs), keyed by the form's ``natural`` names.
    theta : array of shape (p,)
        The same point in LSE parameters.
    objective : float
        The best objective, sum_i rho(log yhat_i - log y_i) over the rows.
    loss : str
        ``"huber"`` (rho the Huber loss of threshold ``delta`` on log y) or
        ``"squared"`` (rho(r) = r^2/2).
    delta : float or None
        The Huber threshold on log y; None for the squared loss.
    n_points : int
        Rows fitted.
    n_configs : int
        Distinct input rows (configurations) among them.
    n_starts : int
        Starts refined: every start of the grid (``method="grid"``), or the
        best-ranked grid points (``method="projection"``).
    n_converged : int
        Starts that converged.
    n_at_best : int
        Converged starts within ``BEST_RTOL`` of the best objective.
    converged : bool
        Whether the best start converged (False: its parameters are not a
        minimum).
    starts : Starts
        Every refined start's begin and end point, objective and status.
    warnings : tuple of str
        The :class:`ScalingWarning` messages of the fit.
    bootstrap : Bootstrap or None
        The bootstrap of the parameters; None until :func:`bootstrap_fit`
        adds it.
    x_range : tuple of (float, float)
        (min, max) of each input column over the fitted rows, in the order
        of ``x_names`` (the default budgets of
        :func:`~normscale.scaling.allocation.compute_optimal` come from it).
    method : str
        How the minimum was searched: ``"projection"`` (exponents on a grid
        ranked by the linear fit of the coefficients, the best refined) or
        ``"grid"`` (the engine from every start of a grid in all parameters).
    n_ranked : int
        Exponent grid points ranked by the linear fit (``"projection"``); 0
        for ``"grid"``.
    """

    form: str
    equation: str
    x_names: tuple[str, ...]
    y_name: str
    params: dict[str, float]
    theta: np.ndarray
    objective: float
    loss: str
    delta: float | None
    n_points: int
    n_configs: int
    n_starts: int
    n_converged: int
    n_at_best: int
    converged: bool
    starts: Starts
    warnings: tuple[str, ...] = ()
    bootstrap: Bootstrap | None = None
    x_range: tuple[tuple[float, float], ...] = field(default=())
    method: str = "grid"
    n_ranked: int = 0

    @property
    def roles(self) -> dict[str, str]:
        """The user's column of each input: ``data`` (P, D) and, for ``joint``, ``model`` (N)."""
        return dict(zip(("data", "model"), self.x_names, strict=False))

    @property
    def named_equation(self) -> str:
        """The equation in the user's column names (``loss = E + A N^-alpha + B D^-beta``)."""
        names = {"y": self.y_name, "x": self.x_names[0], "P": self.x_names[0]}
        if len(self.x_names) > 1:
            names["N"] = self.x_names[1]
        return re.sub(r"\b(y|x|P|N)\b", lambda m: names.get(m.group(1), m.group(1)),
                      self.equation)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The fitted y at inputs ``x`` of shape (n, d), in the order of ``x_names``."""
        return get_form(self.form).predict(self.params, x)

    def band(self, x: np.ndarray, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the prediction at ``x`` over the bootstrap replicates."""
        if self.bootstrap is None or self.bootstrap.n_ok < 2:
            p = self.predict(x)
            return np.full_like(p, np.nan), np.full_like(p, np.nan)
        level = self.bootstrap.level if level is None else level
        form = get_form(self.form)
        x = np.asarray(x, dtype=float).reshape(len(x), -1)
        f, _ = form.evaluate(self.bootstrap.theta, np.log(x), jacobian=False)
        tail = 50 * (1 - level)
        lo, hi = np.percentile(np.exp(f), [tail, 100 - tail], axis=0)
        return lo, hi

    def to_dict(self) -> dict:
        out = {"form": self.form, "equation": self.equation,
               "named_equation": self.named_equation, "roles": self.roles,
               "x": list(self.x_names),
               "y": self.y_name, "params": self.params, "objective": self.objective,
               "loss": self.loss, "delta": self.delta, "n_points": self.n_points,
               "n_configs": self.n_configs, "n_starts": self.n_starts,
               "n_converged": self.n_converged, "n_at_best": self.n_at_best,
               "converged": self.converged, "method": self.method,
               "n_ranked": self.n_ranked, "warnings": list(self.warnings)}
        if self.bootstrap is not None:
            out["bootstrap"] = self.bootstrap.to_dict()
        return out


def _check_data(form: Form, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    x = x.reshape(len(x), -1) if x.ndim == 1 else x
    y = np.asarray(y, dtype=float).ravel()
    if x.shape[1] != form.n_x:
        raise ParameterError(f"The form '{form.name}' takes {form.n_x} input column(s) "
                             f"({', '.join(form.x_names)}). Got {x.shape[1]} instead.")
    if len(x) != len(y):
        raise ParameterError(f"x has {len(x)} rows and y has {len(y)}; they must match.")
    for name, v in (("x", x), ("y", y)):
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            raise ParameterError(f"The '{name}' values must be finite and > 0 (the forms are "
                                 f"fitted in logs). Got {v[bad].ravel()[0]:g} instead.")
    for j, name in enumerate(form.x_names):
        if np.ptp(x[:, j]) == 0:
            raise ParameterError(f"The input '{name}' takes one value ({x[0, j]:g}) in every row: "
                                 "its exponent cannot be fitted.")
    if np.ptp(y) == 0:
        raise ParameterError(f"The 'y' values are all equal ({y[0]:g}): there is no scaling "
                             "law to fit.")
    n_configs = len(np.unique(x, axis=0))
    if n_configs <= len(form.params):
        raise ParameterError(f"The form '{form.name}' has {len(form.params)} parameters and "
                             f"needs more configurations than that. Got {n_configs} instead.")
    return x, y


def _loss_name(delta: float | None) -> str:
    if delta is not None and not (np.isfinite(delta) and delta > 0):
        raise ParameterError(f"The 'delta' parameter must be a float > 0 or None. Got {delta}.")
    return "squared" if delta is None else "huber"


def _same_minima(theta: np.ndarray, order: np.ndarray, k: int) -> list[int]:
    """Up to ``k`` starts, in ``order``, whose end points are distinct minima."""
    chosen: list[int] = []
    for i in order:
        if all(np.abs(theta[i] - theta[j]).max() > SAME_MINIMUM for j in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return chosen


def fit_form(form: str, x: np.ndarray, y: np.ndarray, *, delta: float | None = 1e-3,
             starts: np.ndarray | int | None = None, x_names: tuple[str, ...] | None = None,
             y_name: str = "y", max_iter: int | None = None,
             method: str | None = None) -> ScalingFit:
    """Fit ``form`` to (x, y) by variable projection, or from every start of a full grid.

    Parameters
    ----------
    form : {"power", "joint", "broken"}
    x : array-like of shape (n,) or (n, d)
        Inputs, > 0: (P,) for ``power`` and ``broken``, (P, N) for ``joint``.
    y : array-like of shape (n,)
        Outputs, > 0 (a loss or a test error).
    delta : float or None, default 1e-3
        Huber threshold on log y (Besiroglu et al. 2024 use 1e-3); None for
        the squared loss on log y.
    starts : array of shape (S, p) or int, optional
        Starts of ``method="grid"`` in the form's LSE parameters; the form's
        grid by default, or every k-th start of it for an int k.
    x_names, y_name : names of the columns, for reports.
    max_iter : int, optional
        Iteration cap per start (the engine's default otherwise).
    method : {"projection", "grid"}, optional
        ``"projection"`` (the default without ``starts``): the exponents
        searched on a grid ranked by the linear fit of the coefficients, the
        best ``N_REFINE`` refined (:mod:`normscale.scaling.projection`);
        ``"grid"`` (the default with ``starts``): the engine from every
        start of a grid in all parameters. Both minimise the same objective.

    Returns
    -------
    ScalingFit
        The best start's parameters, every start's outcome, the count at the
        best and the warnings.
    """
    f = get_form(form)
    loss = _loss_name(delta)
    x, y = _check_data(f, x, y)
    lx, logy = np.log(x), np.log(y)
    method = ("grid" if starts is not None else "projection") if method is None else method
    if method not in METHODS:
        raise ParameterError(f"The 'method' parameter must be one of {', '.join(METHODS)}. "
                             f"Got {method!r} instead.")
    kw = {} if max_iter is None else {"max_iter": max_iter}
    n_ranked = 0
    if method == "projection":
        if starts is not None:
            raise ParameterError("The 'starts' parameter is a grid of method='grid'; "
                                 "method='projection' searches its own exponent grid.")
        search = projection.search(f, lx, logy, delta=delta, **kw)
        theta0, batch, n_ranked = search.theta0, search.batch, len(search.grid)
    else:
        if starts is None or isinstance(starts, int | np.integer):
            if starts is not None and starts < 1:
                raise ParameterError(f"An int 'starts' is a stride >= 1. Got {starts}.")
            theta0 = f.starts(lx, logy)[::1 if starts is None else int(starts)]
        else:
            theta0 = np.atleast_2d(np.asarray(starts, dtype=float))
        if theta0.shape[1] != len(f.params):
            raise ParameterError(f"The 'starts' of form '{form}' must have {len(f.params)} "
                                 f"columns ({', '.join(f.params)}). Got {theta0.shape[1]} "
                                 "instead.")
        batch: Batch = fit_batch(f, theta0, lx, logy, delta=delta, **kw)
    obj = np.where(np.isfinite(batch.objective), batch.objective, np.inf)
    if not np.isfinite(obj).any():
        raise ParameterError(f"No start of the form '{form}' gave a finite objective: "
                             "check that y is positive and the inputs are in range.")
    ok = batch.converged & np.isfinite(obj)
    best = int(np.argmin(np.where(ok, obj, np.inf))) if ok.any() else int(np.argmin(obj))
    # a non-converged start with a lower objective than every converged one is still the best
    if obj.min() < obj[best] * (1 - BEST_RTOL):
        best = int(np.argmin(obj))
    at_best = ok & (obj <= obj[best] * (1 + BEST_RTOL) + 1e-300)
    notes = []
    if not batch.converged[best]:
        notes.append(f"the best start of form '{form}' did not converge "
                     f"(gradient {batch.grad_max[best]:.2g} after {batch.n_iter[best]} "
                     "iterations): its parameters are not a minimum")
    n_best = int(at_best.sum())
    if n_best == 1:
        notes.append(f"the best objective of form '{form}' was reached from 1 of "
                     f"{len(obj)} starts only: it may be a lucky or spurious minimum "
                     "(widen the start grid, check the data)")
    for n in notes:
        warnings.warn(n, ScalingWarning, stacklevel=2)
    natural = f.to_natural(batch.theta[best])
    return ScalingFit(
        form=form, equation=f.equation,
        x_names=tuple(x_names) if x_names else f.x_names, y_name=y_name,
        params={k: float(v) for k, v in zip(f.natural, natural, strict=True)},
        theta=batch.theta[best].copy(), objective=float(obj[best]), loss=loss, delta=delta,
        n_points=len(y), n_configs=len(np.unique(x, axis=0)), n_starts=len(obj),
        n_converged=int(batch.converged.sum()), n_at_best=n_best,
        converged=bool(batch.converged[best]),
        starts=Starts(theta0, batch.theta, obj, batch.converged, batch.n_iter, at_best),
        warnings=tuple(notes),
        x_range=tuple((float(c.min()), float(c.max())) for c in x.T),
        method=method, n_ranked=n_ranked)


def config_index(x: np.ndarray) -> np.ndarray:
    """The configuration of each row: rows with the same inputs share one index."""
    x = np.asarray(x, dtype=float)
    x = x.reshape(len(x), -1) if x.ndim == 1 else x
    return np.unique(x, axis=0, return_inverse=True)[1].ravel()


def _jackknife(f: Form, fit: ScalingFit, lx, logy, g, n_configs) -> np.ndarray | None:
    """Natural parameters with each configuration left out in turn, (n_configs, p)."""
    out = np.empty((n_configs, len(fit.theta)))
    size = max(1, MEMORY // (8 * len(g)))
    for j0 in range(0, n_configs, size):           # blocks of weights under MEMORY bytes
        j = np.arange(j0, min(n_configs, j0 + size))
        w = (g[None, :] != j[:, None]).astype(float)    # row i leaves out configuration j[i]
        batch = fit_batch(f, np.tile(fit.theta, (len(j), 1)), lx, logy, delta=fit.delta,
                          weights=w, coarse=False, ftol=BOOT_FTOL, xtol=BOOT_XTOL)
        if not batch.converged.all():
            return None
        out[j] = batch.theta
    return f.to_natural(out)


def _intervals(samples: np.ndarray, estimate: np.ndarray, level: float,
               jack: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals, bias-corrected and accelerated (BCa) when ``jack`` is given.

    BCa (Efron 1987; Efron and Tibshirani 1993, ch. 14): the percentiles
    Phi(z0 + (z0 + z)/(1 - acc (z0 + z))) for z = Phi^-1 of the two tails,
    with z0 = Phi^-1(fraction of replicates below the estimate) and the
    acceleration acc from the jackknife's skewness.
    """
    from scipy.stats import norm

    tail = (1 - level) / 2
    if jack is None:
        lo, hi = np.percentile(samples, [100 * tail, 100 * (1 - tail)], axis=0)
        return lo, hi
    frac = (samples < estimate).mean(axis=0) + 0.5 * (samples == estimate).mean(axis=0)
    z0 = norm.ppf(np.clip(frac, 1.0 / len(samples), 1 - 1.0 / len(samples)))
    d = jack.mean(axis=0) - jack
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (d ** 3).sum(axis=0) / (6.0 * ((d ** 2).sum(axis=0)) ** 1.5)
    acc = np.where(np.isfinite(acc), acc, 0.0)        # no spread: no acceleration
    lo, hi = np.empty(samples.shape[1]), np.empty(samples.shape[1])
    for i in range(samples.shape[1]):
        z = norm.ppf([tail, 1 - tail])
        q = norm.cdf(z0[i] + (z0[i] + z) / (1 - acc[i] * (z0[i] + z)))
        q = np.where(np.isfinite(q), q, [tail, 1 - tail])
        lo[i], hi[i] = np.percentile(samples[:, i], 100 * np.clip(q, 0, 1))
    return lo, hi


def bootstrap_fit(fit: ScalingFit, x: np.ndarray, y: np.ndarray, *, n_boot: int = 1000,
                  seed: int = 0, level: float = 0.95, method: str = "bca") -> ScalingFit:
    """``fit`` with its :class:`Bootstrap`: configurations resampled, every replicate refitted.

    Parameters
    ----------
    fit : ScalingFit
        The fit of :func:`fit_form` on the same ``x`` and ``y``.
    x, y : the data of the fit.
    n_boot : int, default 1000
        Replicates (Besiroglu et al. 2024 use 4,000).
    seed : int
        Seed of the resampling.
    level : float in (0, 1)
        Level of the intervals.
    method : {"bca", "percentile"}
        Intervals: bias-corrected and accelerated percentiles (the
        acceleration from a jackknife over configurations, one more batch of
        n_configs refits), or plain percentiles. On the synthetic designs of
        the tests BCa covers the true parameters more often (docs/scaling.md).

    Returns
    -------
    ScalingFit
        A copy of ``fit`` with ``bootstrap`` set.
    """
    from dataclasses import replace

    if not (isinstance(n_boot, int | np.integer) and n_boot >= 2):
        raise ParameterError(f"The 'n_boot' parameter must be an int >= 2. Got {n_boot!r}.")
    if not 0 < level < 1:
        raise ParameterError(f"The 'level' parameter must be in (0, 1). Got {level!r}.")
    if not (isinstance(seed, int | np.integer) and seed >= 0):
        raise ParameterError(f"The 'seed' parameter must be an int >= 0. Got {seed!r}.")
    if method not in ("bca", "percentile"):
        raise ParameterError(f"The 'method' parameter must be 'bca' or 'percentile'. "
                             f"Got {method!r} instead.")
    f = get_form(fit.form)
    x, y = _check_data(f, x, y)
    lx, logy = np.log(x), np.log(y)
    g = config_index(x)
    n_configs = int(g.max()) + 1
    s = fit.starts
    order = np.argsort(np.where(s.converged, s.objective, np.inf))
    picks = _same_minima(s.theta, order[np.isfinite(s.objective[order])], BOOT_STARTS)
    theta0 = s.theta[picks]                                               # (K, p)
    K = len(picks)
    # replicates in blocks whose (replicates x rows) weights stay under MEMORY bytes; the
    # counts are drawn block after block from one generator: the same as drawn at once
    rng = np.random.default_rng(seed)
    size = max(1, MEMORY // (8 * len(y) * K))
    obj, ends = np.empty((n_boot, K)), np.empty((n_boot, K, len(fit.theta)))
    for b0 in range(0, n_boot, size):
        b = min(size, n_boot - b0)
        counts = rng.multinomial(n_configs, np.full(n_configs, 1.0 / n_configs), size=b)
        batch = fit_batch(f, np.tile(theta0, (b, 1)), lx, logy, delta=fit.delta,
                          weights=np.repeat(counts[:, g].astype(float), K, axis=0),
                          coarse=False, ftol=BOOT_FTOL, xtol=BOOT_XTOL)
        obj[b0:b0 + b] = np.where(batch.converged, batch.objective, np.inf).reshape(b, K)
        ends[b0:b0 + b] = batch.theta.reshape(b, K, -1)
    pick = np.argmin(obj, axis=1)
    ok = np.isfinite(obj[np.arange(n_boot), pick])
    theta = ends[np.arange(n_boot), pick][ok]
    # degrees of freedom: resampling n configurations spreads a p-parameter fit by about
    # sqrt((n - p)/n) too little (the pairs bootstrap estimates the HC0 covariance; HC1,
    # MacKinnon and White 1985, rescales it by n/(n - p)); replicates are spread back out
    scale = np.sqrt(n_configs / (n_configs - len(f.params)))
    theta = fit.theta + (theta - fit.theta) * scale
    samples = f.to_natural(theta)
    n_ok = int(ok.sum())
    if n_ok < n_boot:
        warnings.warn(f"{n_boot - n_ok} of {n_boot} bootstrap replicates of form '{fit.form}' "
                      "did not converge and were left out", ScalingWarning, stacklevel=2)
    names = f.natural
    if n_ok >= 2:
        se = {k: float(v) for k, v in zip(names, samples.std(axis=0, ddof=1), strict=True)}
        jack = _jackknife(f, fit, lx, logy, g, n_configs) if method == "bca" else None
        lo, hi = _intervals(samples, f.to_natural(fit.theta), level, jack)
        intervals = {k: (float(a), float(b)) for k, a, b in zip(names, lo, hi, strict=True)}
        cov = np.cov(samples, rowvar=False)
    else:
        se = dict.fromkeys(names, float("nan"))
        intervals = dict.fromkeys(names, (float("nan"), float("nan")))
        cov = np.full((len(names), len(names)), np.nan)
    boot = Bootstrap(n_boot, n_ok, n_configs, level, method, names, samples, theta, se,
                     intervals, cov)
    return replace(fit, bootstrap=boot)
