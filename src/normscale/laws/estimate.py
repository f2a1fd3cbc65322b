"""One pass of the analysis on a set of curves: minima, the two laws, gamma_pred, gamma_meas.

This is what the bootstrap repeats on resampled seeds and what the
back-test runs on all but the largest P (docs/science.md, introduction, laws 1,
2 and 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from normscale.errors import NormscaleError
from normscale.laws.basin import Basin, find_basin
from normscale.laws.curves import Curve, CurveSet, same_grid
from normscale.laws.optimum import EPS_BAND, ESTIMATORS, argmin_estimate, parabola_fit
from normscale.laws.powerlaw import PowerLaw, fit_power_law
from normscale.laws.profile import Gamma1, profile_gamma1
from normscale.laws.window import NOISE_FLOOR, Window, fit_window


@dataclass(frozen=True)
class Optimum:
    """The minimum over training at one P (law 2's lambda_opt and law 4's eps_opt).

    Attributes
    ----------
    P : float
        Training-set size.
    lambda_opt : float
        Norm at the minimum (law 2). With seeds: 10 to the mean of each
        seed's own argmin in log10 (:func:`seed_minimum`); with one curve:
        :data:`CURVE_ESTIMATOR` on it; or the user's table (``source``).
    lambda_opt_err : float
        Standard error of log10 lambda_opt: the seeds' spread over
        sqrt(n_seeds), never below the estimator's own error over
        sqrt(n_seeds), nor below the grid's rounding error when the seeds
        share one logging grid (a step over sqrt(12), averaged over the seeds
        only as far as their scatter dithers it); the estimator's own error
        with one seed; NaN for a given table (law 2's fit then weighs the P
        alike and takes its error from the scatter).
    eps_opt : float
        Error at the minimum of the seed-averaged curve (law 4): the vertex
        value of the parabola in (log norm, ln eps) through the points
        within a factor e^0.4 of its smallest error
        (:func:`normscale.laws.optimum.parabola_fit` with ``band=EPS_BAND``;
        the smallest logged error when there is no convex vertex).
    eps_opt_err : float
        Standard error of ln eps_opt: the spread of the seeds' own vertex
        values over sqrt(n_seeds), never below the vertex's delta-method
        error on the seed-averaged curve (the only error with one seed).
    n_seeds : int
        Seeds averaged at this P.
    at_edge : bool
        The seed-averaged curve's smallest error is its last logged point.
    n_seed_edges : int
        Seeds whose own smallest error is their last point.
    basin_lo, basin_hi : float
        Bounds, in norm, of the basin of the seed-averaged curve (points
        within two noise levels of its minimum).
    censored : bool
        The basins of more than half the seeds (with one seed: the curve's)
        reach their last logged point, or the runs were stopped by a cap:
        lambda_opt is a lower bound.
    still_falling : bool
        More than half the seeds still fell at their last point: lambda_opt
        is unknown, and the verdict leaves this P out.
    source : str
        ``"curves"`` (estimated here) or ``"table"`` (the user's optima).
    """

    P: float
    lambda_opt: float
    lambda_opt_err: float
    eps_opt: float
    eps_opt_err: float
    n_seeds: int
    at_edge: bool
    n_seed_edges: int
    basin_lo: float
    basin_hi: float
    censored: bool
    still_falling: bool
    source: str = "curves"

    @property
    def basin_decades(self) -> float:
        """Width of the basin in decades of the norm."""
        return float(np.log10(self.basin_hi / self.basin_lo))


class LawsInP:
    """gamma2 from ``lambda_law`` (lambda_opt ~ P^gamma2), gamma_meas from ``eps_law``
    (eps_opt ~ P^-gamma_meas) and gamma_pred = gamma1 gamma2, for any fit that has those two
    laws and a ``gamma1`` (docs/science.md, introduction)."""

    @property
    def gamma2(self) -> float:
        return self.lambda_law.exponent

    @property
    def gamma_meas(self) -> float:
        return -self.eps_law.exponent

    @property
    def gamma2_err(self) -> float:
        return self.lambda_law.exponent_err

    @property
    def gamma_meas_err(self) -> float:
        return self.eps_law.exponent_err

    @property
    def gamma_pred(self) -> float:
        return self.gamma1 * self.gamma2


class Exponents(LawsInP):
    """The four exponents of a fit that has ``window``, ``lambda_law`` and ``eps_law``:
    gamma1 from the early-training window (eps ~ lambda^-gamma1), NaN without one."""

    @property
    def gamma1(self) -> float:
        return self.window.gamma1 if self.window is not None else float("nan")


@dataclass(frozen=True)
class Estimates(Exponents):
    """Point estimates of one pass.

    Attributes
    ----------
    optima : tuple of Optimum
        One per P, sorted by P.
    window : Window or None
        gamma1's fit (eps ~ lambda^-gamma1 in lambda/lambda_opt units); None
        when gamma1 is undefined.
    lambda_law : PowerLaw
        lambda_opt = k2 P^gamma2 (law 2), weighted by the optima's errors.
    eps_law : PowerLaw
        eps_opt = k P^-gamma_meas (law 4), weighted by the optima's errors.
    gamma1_reason : str
        Why gamma1 is undefined ("" when it is defined).
    profile : Gamma1 or None
        The local-slope profile and its holding stretch (None with a window
        given by hand).
    """

    optima: tuple[Optimum, ...]
    window: Window | None  # None: gamma1 undefined, ``gamma1_reason`` says why
    lambda_law: PowerLaw  # lambda_opt = k2 P^gamma2
    eps_law: PowerLaw     # eps_opt = k P^(-gamma_meas)
    gamma1_reason: str = ""
    profile: Gamma1 | None = None  # the slope profile and its stretch ("profile" method)

    @property
    def lambda_opt(self) -> np.ndarray:
        return np.array([o.lambda_opt for o in self.optima])

    @property
    def eps_opt(self) -> np.ndarray:
        return np.array([o.eps_opt for o in self.optima])

    @property
    def P(self) -> np.ndarray:
        return np.array([o.P for o in self.optima])


#: the estimators of lambda_opt (:data:`normscale.laws.optimum.ESTIMATORS`) are chosen by their
#: bias and coverage on ground truth with asymmetric minima and by the calibration of gamma2
#: they give (docs/laws.md, "The optimum"): with seeds, each seed's own argmin
#: (:func:`seed_minimum`), averaged (the least biased on flat, asymmetric minima, and the seeds'
#: spread is its error); with one curve per P, the vertex of the parabola through the points
#: near the minimum (one noisy curve's argmin jumps between grid points by more than any error
#: it can state)
CURVE_ESTIMATOR = "band"


@dataclass(frozen=True)
class SeedMinimum:
    """One seed's minimum.

    Attributes
    ----------
    log10_lambda : float
        log10 of the seed's argmin norm (:func:`normscale.laws.optimum.argmin_estimate`).
    log10_err : float
        Its error in log10: a logging step over sqrt(12), or half the basin
        when the noise makes it wider.
    ln_eps : float
        ln eps at the vertex of the seed's band parabola (eps_opt's estimator).
    at_edge : bool
        The seed's smallest error is its last logged point.
    basin : Basin
        The seed's basin (:func:`normscale.laws.basin.find_basin`).
    """

    log10_lambda: float
    log10_err: float
    ln_eps: float
    at_edge: bool
    basin: Basin


def seed_minimum(curve: Curve) -> SeedMinimum:
    """The minimum and the basin of one seed's curve."""
    basin = find_basin(curve)
    u, err = argmin_estimate(curve, basin=basin)  # the basin found once, for both
    i = int(np.argmin(curve.error))
    ln_eps = parabola_fit(curve, basin.noise, band=EPS_BAND).ln_eps  # the basin's noise level
    return SeedMinimum(u, err, float(ln_eps), i == curve.error.size - 1, basin)


def optimum(cs: CurveSet, *, strict_minimum: bool = False,
            seed_minima: tuple[SeedMinimum, ...] | None = None,
            given_lambda_opt: float | None = None) -> Optimum:
    """The :class:`Optimum` of one P from its seeds and their average.

    ``seed_minima`` (the minima of ``cs.seeds``, in order) skips their
    search when they are known already, as in the bootstrap;
    ``given_lambda_opt`` takes lambda_opt from the user's table of optima.
    """
    i_mean = int(np.argmin(cs.mean.error))
    if i_mean == 0:
        raise NormscaleError(
            f"the curve for P={cs.P:g} has its minimum at its smallest norm "
            f"({cs.mean.norm[0]:g}): no minimum inside its range")
    at_edge = i_mean == cs.mean.error.size - 1
    seed_mins = (list(seed_minima) if seed_minima is not None
                 else [seed_minimum(c) for c in cs.seeds])
    if strict_minimum and (at_edge or any(m.at_edge for m in seed_mins)):
        raise NormscaleError(
            f"the curve for P={cs.P:g} has its minimum at its largest norm: no minimum inside its "
            "range (train longer, or drop --strict-minimum to use the last point)")
    mean_basin = find_basin(cs.mean)
    # eps_opt: the vertex value of the seed-averaged curve, whose noise level comes from the
    # seeds' scatter about their mean where they share a grid (many degrees of freedom, and
    # free of the curvature that second differences pick up on a coarse grid: with 10 points a
    # curve, those made eps_opt's error 2 to 3.4 times the spread of the estimates)
    n = len(seed_mins)
    shared = n > 1 and same_grid(cs.seeds)
    vertex = parabola_fit(cs.mean, seed_noise(cs.seeds) if shared else None, band=EPS_BAND)
    if n > 1:
        u = np.array([m.log10_lambda for m in seed_mins])
        own = float(np.sqrt(np.mean([m.log10_err ** 2 for m in seed_mins])))
        log10_lam = float(u.mean())
        lam_err = max(float(u.std(ddof=1)), own) / np.sqrt(n)
        # seeds logged at the same norms round their argmins to the same grid, and that rounding
        # (a step over sqrt(12)) averages out over the seeds only as far as their own scatter
        # s dithers it: two seeds' rounding errors correlate by about rho = exp(-4 pi^2 s^2 /
        # step^2) (the first harmonic of a Gaussian dither), so the mean keeps a variance
        # step^2 / 12 (rho + (1 - rho) / n). Distinct grids round independently. (5 P of 31
        # seeds on a shared 10-point grid covered gamma2 in 77% of draws without this floor.)
        step = float(np.median(np.diff(np.log10(cs.mean.norm))))
        if shared and step > 0:
            rho = math.exp(-4 * math.pi ** 2 * float(u.var(ddof=1)) / step ** 2)
            lam_err = max(lam_err, step / math.sqrt(12.0) * math.sqrt(rho + (1 - rho) / n))
        # the seeds' spread has n - 1 degrees of freedom (1 with 2 seeds): never below the
        # vertex's own delta-method error on the seed-averaged curve, whose noise level comes
        # from all its points
        eps_err = max(float(np.std([m.ln_eps for m in seed_mins], ddof=1) / np.sqrt(n)),
                      vertex.ln_eps_err)
        censored = 2 * sum(m.basin.censored for m in seed_mins) > n
        falling = 2 * sum(m.basin.still_falling for m in seed_mins) > n
    else:
        log10_lam, lam_err = ESTIMATORS[CURVE_ESTIMATOR](cs.mean)
        eps_err = vertex.ln_eps_err
        censored, falling = mean_basin.censored, mean_basin.still_falling
    source = "curves"
    if given_lambda_opt is not None:
        log10_lam, lam_err, source = float(np.log10(given_lambda_opt)), float("nan"), "table"
    return Optimum(
        P=cs.P, lambda_opt=float(10 ** log10_lam), lambda_opt_err=float(lam_err),
        eps_opt=float(np.exp(vertex.ln_eps)), eps_opt_err=float(eps_err), n_seeds=n,
        at_edge=bool(at_edge), n_seed_edges=sum(m.at_edge for m in seed_mins),
        basin_lo=mean_basin.lo, basin_hi=mean_basin.hi, censored=bool(censored),
        still_falling=bool(falling), source=source)


def seed_noise(seeds) -> float:
    """Noise level of ln eps on the average of seeds logged at the same norms, from their
    scatter about their mean, pooled over the points: s^2 = sum (ln eps_si - mean_s ln
    eps_i)^2 / ((n - 1) n_points) per seed, over n for the mean (at least 2 seeds)."""
    n = len(seeds)
    y = np.log(np.stack([c.error for c in seeds]))
    var = float(np.sum((y - y.mean(axis=0)) ** 2)) / ((n - 1) * y.shape[1])
    return max(math.sqrt(var / n), NOISE_FLOOR)


def gamma1_in(sets: list[CurveSet], optima, *, window: tuple[float, ...] | None
              ) -> tuple[Window | None, str, Gamma1 | None]:
    """gamma1's window on ``sets`` with their ``optima``: (window or None, reason, profile).

    ``window`` None: from the local-slope profile, which never raises (an
    undefined gamma1 comes back as None and its reason); a pair or triple
    fixes the window by hand (:func:`normscale.laws.window.fit_window`).
    """
    means = [cs.mean for cs in sets]
    lam = np.array([o.lambda_opt for o in optima])
    if window is not None:
        return fit_window(means, lam, window), "", None
    g = profile_gamma1(means, lam)
    return g.window, g.reason, g


def fit_optima(optima, what: str) -> PowerLaw:
    """Law 2 (``what="lambda_opt"``) or law 4 (``"eps_opt"``) across P, weighted by the
    optima's own errors (:func:`normscale.laws.powerlaw.fit_power_law`)."""
    P = np.array([o.P for o in optima])
    if what == "lambda_opt":
        y = np.array([o.lambda_opt for o in optima])
        err = np.array([o.lambda_opt_err for o in optima]) * np.log(10)
    else:
        y = np.array([o.eps_opt for o in optima])
        err = np.array([o.eps_opt_err for o in optima])
    return fit_power_law(P, y, what=f"{what}(P)", log_err=err)


def estimate(sets: list[CurveSet], *, window: tuple[float, ...] | None = None,
             strict_minimum: bool = False,
             seed_minima: list[tuple[SeedMinimum, ...]] | None = None,
             optima: tuple[Optimum, ...] | None = None,
             given: dict[float, float] | None = None) -> Estimates:
    """Run one pass: optima per P, the early law in its window, the laws in P.

    ``window`` None finds gamma1 from the local-slope profile (undefined
    rather than an error when the curves show no early law); a pair fixes
    the window in lambda/lambda_opt (a triple adds P_min: :func:`fit_window`).
    ``seed_minima`` gives the per-seed minima of each set, ``optima`` the
    optima themselves (both skip work already done), ``given`` a table
    P -> lambda_opt of the user's.
    """
    if len(sets) < 3:
        raise NormscaleError(
            f"the scaling laws need curves for at least 3 distinct P; got {len(sets)}")
    if optima is None:
        mins = seed_minima if seed_minima is not None else [None] * len(sets)
        given = given or {}
        optima = tuple(optimum(cs, strict_minimum=strict_minimum, seed_minima=m,
                               given_lambda_opt=given.get(cs.P))
                       for cs, m in zip(sets, mins, strict=True))
    win, reason, prof = gamma1_in(sets, optima, window=window)
    return Estimates(optima, win, fit_optima(optima, "lambda_opt"),
                     fit_optima(optima, "eps_opt"), reason, prof)
