"""One pass of the analysis on a set of curves: minima, the two laws, gamma_pred, gamma_meas.

This is what the bootstrap repeats on resampled seeds and what the
back-test runs on all but the largest P (docs/science.md, introduction, laws 1,
2 and 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale.errors import NormscaleError
from normscale.laws.basin import Basin, find_basin
from normscale.laws.curves import CurveMinimum, CurveSet, curve_minimum
from normscale.laws.fits import PowerLaw, fit_power_law
from normscale.laws.profile import Gamma1, profile_gamma1
from normscale.laws.window import Window, find_window, fit_window


@dataclass(frozen=True)
class Optimum:
    """The minimum over training at one P.

    ``lambda_opt`` is the geometric mean over seeds of each seed's basin
    centre (:func:`normscale.laws.basin.find_basin`: the centre, in log
    norm, of the points within the noise of the minimum), and
    ``lambda_opt_err`` the uncertainty of its log10 (the seeds' spread and
    the basins' half-widths over sqrt(n_seeds)); ``eps_opt`` the minimum of
    the seed-averaged curve; ``basin_lo``, ``basin_hi`` the basin of the
    seed-averaged curve; ``basin_censored`` whether the basins of more than
    half the seeds (of the curve, with one seed) reach their last logged
    point (or the runs were stopped by a cap), ``still_falling`` whether
    more than half were still falling there;
    ``lambda_opt_mean_curve`` the norm at that minimum; ``lambda_opt_seed_sd``
    the standard deviation over seeds of ln lambda_opt; ``at_edge`` whether
    the seed-averaged curve has its minimum at its last point; ``flat_lo``,
    ``flat_hi`` the norms around the minimum of the seed-averaged curve where
    its error stays within 2 noise levels of the minimum (its basin)
    (:func:`normscale.laws.curves.flat_range`): a wide range, or one that
    reaches the end of the curve, means lambda_opt is ill-defined.
    """

    P: float
    lambda_opt: float
    eps_opt: float
    lambda_opt_mean_curve: float
    lambda_opt_seed_sd: float
    eps_opt_seed_mean: float
    n_seeds: int
    at_edge: bool
    n_seed_edges: int
    flat_lo: float
    flat_hi: float
    lambda_opt_err: float = float("nan")
    basin_lo: float = float("nan")
    basin_hi: float = float("nan")
    basin_censored: bool = False
    still_falling: bool = False

    @property
    def censored(self) -> bool:
        """Whether lambda_opt is only a lower bound: the basins of more than half the seeds reach
        their last logged point (training stopped before the minimum, or inside its basin), or
        the runs were stopped by a cap."""
        return bool(self.basin_censored or (self.n_seeds == 1 and self.at_edge))

    @property
    def flat_decades(self) -> float:
        """Width of the flat range in decades of the norm."""
        return float(np.log10(self.flat_hi / self.flat_lo))


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
    """Point estimates of one pass."""

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


#: gamma1 method -> units of its automatic window: "profile" (default) reads gamma1 off the
#: local-slope profile (:mod:`normscale.laws.profile`), the others search a window of one power
#: law (:mod:`normscale.laws.window`)
GAMMA1_METHODS = {"profile": "lambda/lambda_opt", "common": "norm",
                  "rescaled": "lambda/lambda_opt"}


@dataclass(frozen=True)
class SeedMinimum:
    """One seed's minimum: its grid/parabola minimum and its basin."""

    minimum: CurveMinimum
    basin: Basin


def seed_minimum(curve) -> SeedMinimum:
    """The minimum and the basin of one seed's curve."""
    return SeedMinimum(curve_minimum(curve), find_basin(curve))


def optimum(cs: CurveSet, *, strict_minimum: bool = False,
            seed_minima: tuple[SeedMinimum, ...] | None = None) -> Optimum:
    """The :class:`Optimum` of one P from its seeds and their average.

    ``seed_minima`` (the minima of ``cs.seeds``, in order) skips their
    search when they are known already, as in the bootstrap.
    """
    mean_min = curve_minimum(cs.mean)
    seed_mins = (list(seed_minima) if seed_minima is not None
                 else [seed_minimum(c) for c in cs.seeds])
    mean_basin = find_basin(cs.mean)
    if strict_minimum and (mean_min.at_edge or any(m.minimum.at_edge for m in seed_mins)):
        raise NormscaleError(
            f"the curve for P={cs.P:g} has its minimum at its largest norm: no minimum inside its "
            "range (train longer, or drop --strict-minimum to use the last point)")
    log10_lam = np.log10([m.basin.lambda_opt for m in seed_mins])
    halves = np.array([m.basin.log10_err for m in seed_mins])
    n = log10_lam.size
    sd = float(log10_lam.std(ddof=1)) if n > 1 else 0.0
    lam_err = (float(np.sqrt(sd ** 2 + np.mean(halves ** 2)) / np.sqrt(n)) if n > 1
               else mean_basin.log10_err)
    n_cens = sum(m.basin.censored for m in seed_mins)
    return Optimum(
        P=cs.P,
        lambda_opt=float(10 ** log10_lam.mean()) if n > 1 else mean_basin.lambda_opt,
        eps_opt=float(np.min(cs.mean.error)),
        lambda_opt_mean_curve=mean_min.lambda_opt,
        lambda_opt_seed_sd=float(np.log(10) * sd) if n > 1 else float("nan"),
        eps_opt_seed_mean=float(np.mean([m.minimum.eps_opt for m in seed_mins])),
        n_seeds=n,
        at_edge=mean_min.at_edge,
        n_seed_edges=sum(m.minimum.at_edge for m in seed_mins),
        flat_lo=mean_basin.lo,  # the flat range is the basin of the seed-averaged curve
        flat_hi=mean_basin.hi,
        lambda_opt_err=lam_err,
        basin_lo=mean_basin.lo,
        basin_hi=mean_basin.hi,
        # with seeds, each seed's own basin decides: the seed average stops where its shortest
        # seed stops, so its basin would reach its end whenever the seeds ran for different times
        basin_censored=bool(2 * n_cens > n if n > 1 else mean_basin.censored),
        still_falling=bool(2 * sum(m.basin.still_falling for m in seed_mins) > n if n > 1
                           else mean_basin.still_falling),
    )


def gamma1_in(sets: list[CurveSet], optima, *, window: tuple[float, ...] | None,
              gamma1_method: str) -> tuple[Window | None, str, Gamma1 | None]:
    """gamma1's window on ``sets`` with their ``optima``: (window or None, reason, profile).

    ``window`` None: automatic, by ``gamma1_method``; ``"profile"`` never
    raises (an undefined gamma1 comes back as None and its reason), the
    window searches raise :class:`NormscaleError` when no window exists.
    """
    means = [cs.mean for cs in sets]
    lam = np.array([o.lambda_opt for o in optima])
    if window is not None:
        return fit_window(means, lam, window), "", None
    if gamma1_method == "profile":
        g = profile_gamma1(means, lam)
        return g.window, g.reason, g
    censored = np.array([o.censored for o in optima])
    return (find_window(means, lam, units=GAMMA1_METHODS[gamma1_method], censored=censored),
            "", None)


def estimate(sets: list[CurveSet], *, window: tuple[float, ...] | None = None,
             strict_minimum: bool = False, gamma1_method: str = "profile",
             seed_minima: list[tuple[SeedMinimum, ...]] | None = None,
             optima: tuple[Optimum, ...] | None = None) -> Estimates:
    """Run one pass: optima per P, the early law in its window, the laws in P.

    ``window`` None finds gamma1 automatically by ``gamma1_method``
    (:data:`GAMMA1_METHODS`): ``"profile"`` from the local-slope profile
    (undefined rather than an error when the curves show no early law),
    the others by a window search; in rescaled units the curves with a
    censored lambda_opt (:attr:`Optimum.censored`) are left out of that
    search (:func:`normscale.laws.window.find_window`). A pair fixes the
    window in lambda/lambda_opt (a triple adds P_min: :func:`fit_window`).
    ``seed_minima`` gives the per-seed minima of each set, ``optima`` the
    optima themselves (both skip work already done).
    """
    if len(sets) < 3:
        raise NormscaleError(
            f"the scaling laws need curves for at least 3 distinct P; got {len(sets)}")
    if optima is None:
        mins = seed_minima if seed_minima is not None else [None] * len(sets)
        optima = tuple(optimum(cs, strict_minimum=strict_minimum, seed_minima=m)
                       for cs, m in zip(sets, mins, strict=True))
    win, reason, prof = gamma1_in(sets, optima, window=window, gamma1_method=gamma1_method)
    P = np.array([o.P for o in optima])
    lambda_law = fit_power_law(P, np.array([o.lambda_opt for o in optima]), what="lambda_opt(P)")
    eps_law = fit_power_law(P, np.array([o.eps_opt for o in optima]), what="eps_opt(P)")
    return Estimates(optima, win, lambda_law, eps_law, reason, prof)
