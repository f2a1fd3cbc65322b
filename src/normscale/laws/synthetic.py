"""Learning curves with a known truth, for calibrating the laws' estimators and verdict.

Two ground truths, each returned as the long table :func:`normscale.laws.fit_laws`
reads (columns ``P``, ``seed``, ``norm``, ``test_error``) and a :class:`Truth`:

- :func:`master_curves`: every curve is one master curve rescaled by its
  optimum (docs/science.md, introduction, laws 1 to 4),
  eps(lambda, P) = eps_opt(P) Phi(lambda / lambda_opt(P)), with
  Phi(x) = (x^-g1 + (g1/beta) x^beta) / (1 + g1/beta) (:func:`master_shape`;
  its ``sharpness`` makes the join of the early law and the rise sharper),
  lambda_opt = k2 P^g2 and eps_opt ~ P^-gamma_meas. With
  gamma_meas = g1 g2 the early curve eps ~ lambda^-g1 is the same for every P
  and the laws hold exactly (the null); ``ratio`` = gamma_meas / (g1 g2) != 1
  violates them.
- :func:`perceptron_curves`: the N -> infinity perceptron's replica theory
  (:mod:`normscale.theory`), eps_hat(lambda; alpha) at P = alpha N, whose
  minima are asymmetric (a steep descent, a slow rise to the maximally stable
  perceptron).

Both add the noise of a finite test set: a logged error is
Binomial(n_test, eps) / n_test, drawn independently at every logged point
(a count of 0 is logged as 0.5 errors, so that log eps stays finite), and
``n_seeds`` independent draws per P. The logging grid is ``n_points``
log-spaced norms from ``start`` to ``stop`` times each curve's own lambda_opt,
shifted by a random fraction of a grid step per P (``random_phase``), so that
no estimator profits from the optimum sitting on a grid point.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline
from scipy.optimize import minimize_scalar

from normscale._validation import (
    POSITIVE,
    POSITIVE_INT,
    Interval,
    check_array,
    check_param,
)
from normscale.errors import ParameterError

#: sharpness of the soft plateau at chance: eps = (eps^-m + chance^-m)^(-1/m); 4 turns the
#: power law into the plateau within about half a decade of the norm, like the start of training
PLATEAU_SHARPNESS = 4.0
#: points per decade of the noiseless perceptron curves that the logging grids are interpolated
#: from (a cubic spline in log-log; 40 per decade interpolate eps to about 1e-6, relative)
THEORY_POINTS_PER_DECADE = 40
#: the norms of the perceptron curves: below 1e-3 eps_hat is 1 (the Hebb limit) to 1e-4,
#: above 1e5 the theory is not solved (normscale.theory.curves.LAM_MAX)
THEORY_LAMBDA_RANGE = (1e-3, 1e5)
#: the cached fine grid of one alpha, relative to its lambda_opt (inside THEORY_LAMBDA_RANGE):
#: the logging grids of the studies run from 0.01 to 10 lambda_opt; far above lambda_opt each
#: solve is slow (a 40-point decade above lambda = 1e3 takes seconds)
THEORY_SPAN = (1e-4, 20.0)

_UNIT = Interval(Real, 0, 1, closed="neither")
_RATIO = Interval(Real, 0, None, closed="neither")
_NTEST = Interval(Integral, 1, None, closed="left")


@dataclass(frozen=True)
class Truth:
    """The exponents and optima that a generated table obeys.

    Attributes
    ----------
    gamma1, gamma2, gamma_pred, gamma_meas : float
        Law 1's early exponent, lambda_opt ~ P^gamma2, gamma_pred = gamma1
        gamma2 and eps_opt ~ P^-gamma_meas.
    P : ndarray of shape (n_P,)
        The training-set sizes.
    lambda_opt, eps_opt : ndarray of shape (n_P,)
        The noiseless curves' exact optimum per P (the population value: with
        ``seed_scatter`` each seed's own optimum scatters around it).
    source : str
        How the truth was obtained (closed form, or theory plus fit).
    """

    gamma1: float
    gamma2: float
    gamma_pred: float
    gamma_meas: float
    P: np.ndarray
    lambda_opt: np.ndarray
    eps_opt: np.ndarray
    source: str

    def optima(self) -> pd.DataFrame:
        """The per-P optima as a table with columns P, lambda_opt, eps_opt."""
        return pd.DataFrame({"P": self.P, "lambda_opt": self.lambda_opt,
                             "eps_opt": self.eps_opt})


def master_shape(x, *, gamma1: float, beta: float, sharpness: float = 1.0) -> np.ndarray:
    """The master curve Phi(x) = [(x^(-g1 m) + (g1/beta) x^(beta m)) / (1 + g1/beta)]^(1/m).

    Parameters
    ----------
    x : array-like
        lambda / lambda_opt, > 0.
    gamma1 : float
        The early exponent g1 > 0: Phi ~ x^-g1 for x << 1.
    beta : float
        The exponent of the rise past the optimum, > 0 (small: a slow,
        asymmetric rise).
    sharpness : float
        m > 0, how sharply the early law joins the rise. m = 1 is
        Phi(x) = (x^-g1 + (g1/beta) x^beta) / (1 + g1/beta), whose local slope
        bends away from -g1 well below the optimum when beta is small (at
        x = 0.01 it is -0.44 for g1 = 0.5, beta = 0.2); a larger m keeps the
        early law clean up to near the optimum (-0.49 at x = 0.1 with m = 3).

    Returns
    -------
    ndarray
        Phi(x); its minimum is Phi(1) = 1, at x = 1: d/dx of the bracket,
        m g1 (x^(beta m - 1) - x^(-g1 m - 1)), vanishes at x = 1 only.
    """
    check_param("master_shape", "gamma1", gamma1, POSITIVE)
    check_param("master_shape", "beta", beta, POSITIVE)
    check_param("master_shape", "sharpness", sharpness, POSITIVE)
    x = np.asarray(x, dtype=float)
    m = float(sharpness)
    return ((x ** (-gamma1 * m) + gamma1 / beta * x ** (beta * m)) / (1.0 + gamma1 / beta)
            ) ** (1.0 / m)


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, Integral):
        return np.random.default_rng(rng)
    raise ParameterError(f"The 'rng' parameter must be None, an int or a numpy Generator. "
                         f"Got {rng!r} instead.")


def binomial_noise(eps, *, n_test: int | None, rng) -> np.ndarray:
    """Test errors measured on ``n_test`` independent test points: Binomial(n_test, eps)/n_test.

    A count of 0 is logged as 0.5 errors (log eps stays finite). ``n_test``
    None returns ``eps`` unchanged (no noise).
    """
    eps = np.asarray(eps, dtype=float)
    if n_test is None:
        return eps.copy()
    check_param("binomial_noise", "n_test", n_test, _NTEST)
    if np.any((eps < 0) | (eps > 1)):
        raise ParameterError("binomial_noise: every error must lie in [0, 1]; raise the "
                             "logging start, or add a plateau at chance.")
    counts = _rng(rng).binomial(n_test, eps).astype(float)
    return np.maximum(counts, 0.5) / n_test


def _grid(lam_opt: float, *, start: float, stop: float, n_points: int, phase: float
          ) -> np.ndarray:
    """n_points log-spaced norms from start to stop times lam_opt, shifted by phase steps."""
    u = np.linspace(np.log10(start), np.log10(stop), n_points)
    step = u[1] - u[0]
    return lam_opt * 10 ** (u + (phase - 0.5) * step)


def _check_grid(owner: str, start, stop, n_points) -> None:
    check_param(owner, "start", start, POSITIVE)
    check_param(owner, "stop", stop, POSITIVE)
    check_param(owner, "n_points", n_points, Interval(Integral, 3, None, closed="left"))
    if not (start < 1 < stop):
        raise ParameterError(f"The 'start' and 'stop' parameters of {owner} must bracket the "
                             f"optimum: start < 1 < stop. Got start={start!r}, stop={stop!r}.")


def master_curves(*, gamma1: float = 0.5, gamma2: float = 1.0, ratio: float = 1.0,
                  beta: float = 1.0, sharpness: float = 1.0, k2: float = 1.0,
                  eps0: float = 0.2,
                  P=(500, 1000, 2000, 4000, 8000, 16000, 32000), n_seeds: int = 5,
                  n_points: int = 30, start: float = 1e-3, stop: float = 10.0,
                  n_test: int | None = 10_000, q1: float = 0.0, plateau: float | None = 0.9,
                  seed_scatter: float = 0.0, random_phase: bool = True, rng=None
                  ) -> tuple[pd.DataFrame, Truth]:
    """Noisy learning curves on one master curve, eps = eps_opt(P) Phi(lambda / lambda_opt(P)).

    Parameters
    ----------
    gamma1 : float
        Law 1's exponent g1 > 0 (the early curve ~ lambda^-g1).
    gamma2 : float
        lambda_opt = k2 P^gamma2, > 0.
    ratio : float
        gamma_meas / (gamma1 gamma2), > 0: 1 obeys the laws (the null); 1.25,
        1.3 violate them (the early curves then shift with P as
        P^(-(ratio - 1) g1 g2)).
    beta : float
        Exponent of the rise past the optimum (:func:`master_shape`); small
        beta gives an asymmetric basin (steep left, slow right).
    k2 : float
        Prefactor of lambda_opt, > 0 (the units of the norm).
    eps0 : float
        eps_opt at the smallest P, in (0, 1); eps_opt(P) = eps0 (P / P_min)^-gamma_meas.
    P : array-like of shape (n_P,)
        Training-set sizes, > 0.
    n_seeds : int
        Independent draws of the test noise (and of ``seed_scatter``) per P.
    n_points : int
        Logged norms per curve (>= 3).
    start, stop : float
        The logging grid runs from start to stop times each P's lambda_opt.
    n_test : int or None
        Test-set size of the binomial noise; None: noiseless.
    q1 : float
        An irreducible error added to every curve, >= 0 (eps_opt then bends
        away from a power law; the truth keeps the exponents of eps - q1).
    plateau : float or None
        Chance level (default 0.9, ten classes): caps the error smoothly from
        above, eps <- (eps^-m + plateau^-m)^(-1/m), m = ``PLATEAU_SHARPNESS``:
        the start of training. None: a pure power law (the grid must then
        start where eps < 1).
    seed_scatter : float
        Standard deviation, in decades, of each seed's own lambda_opt around
        the law (seeds that train differently); 0: seeds differ only by test noise.
    random_phase : bool
        Shift each P's grid by a random fraction of a step (the optimum then
        falls anywhere between grid points).
    rng : None, int or numpy.random.Generator
        Randomness.

    Returns
    -------
    (pandas.DataFrame, Truth)
        The long table (P, seed, norm, test_error) and the truth: gamma1,
        gamma2, gamma_meas = ratio g1 g2, gamma_pred = g1 g2, and per P the
        exact optimum of the noiseless curve (found numerically, so that the
        plateau and q1 are included; without them it is (k2 P^g2, eps_opt(P))).

    Notes
    -----
    Laws 1 to 4 of docs/science.md (introduction): with ratio = 1,
    eps = eps0 P_min^gm k2^g1 (1 + g1/beta)^(-1/m) lambda^-g1 for lambda << lambda_opt,
    the same for every P.
    """
    owner = "master_curves"
    for name, value in (("gamma1", gamma1), ("gamma2", gamma2), ("beta", beta),
                        ("sharpness", sharpness), ("k2", k2)):
        check_param(owner, name, value, POSITIVE)
    check_param(owner, "ratio", ratio, _RATIO)
    check_param(owner, "eps0", eps0, _UNIT)
    check_param(owner, "n_seeds", n_seeds, POSITIVE_INT)
    check_param(owner, "q1", q1, Interval(Real, 0, 1, closed="left"))
    check_param(owner, "seed_scatter", seed_scatter, Interval(Real, 0, None, closed="left"))
    if plateau is not None:
        check_param(owner, "plateau", plateau, Interval(Real, 0, 1, closed="right"))
    if n_test is not None:
        check_param(owner, "n_test", n_test, _NTEST)
    _check_grid(owner, start, stop, n_points)
    P = np.unique(check_array(owner, "P", P, POSITIVE))
    rng = _rng(rng)
    g_meas = ratio * gamma1 * gamma2

    def curve(lam: np.ndarray, lam_opt: float, e_opt: float) -> np.ndarray:
        eps = e_opt * master_shape(lam / lam_opt, gamma1=gamma1, beta=beta, sharpness=sharpness)
        if plateau is not None:
            m = PLATEAU_SHARPNESS
            eps = (eps ** -m + plateau ** -m) ** (-1 / m)
        return eps + q1

    lam_law = k2 * P ** gamma2
    eps_law = eps0 * (P / P[0]) ** -g_meas
    lam_true, eps_true = np.empty_like(P), np.empty_like(P)
    for i, (lo, eo) in enumerate(zip(lam_law, eps_law, strict=True)):
        res = minimize_scalar(lambda u, lo=lo, eo=eo: float(curve(np.exp([u]), lo, eo)[0]),
                              bracket=(np.log(lo) - 0.5, np.log(lo), np.log(lo) + 0.5),
                              method="brent", options={"xtol": 1e-10})
        lam_true[i], eps_true[i] = np.exp(res.x), float(res.fun)
    rows = []
    for p, lo, eo in zip(P, lam_law, eps_law, strict=True):
        phase = rng.uniform() if random_phase else 0.5
        lam = _grid(lo, start=start, stop=stop, n_points=n_points, phase=phase)
        for s in range(n_seeds):
            own = lo * 10 ** (seed_scatter * rng.standard_normal()) if seed_scatter else lo
            eps = curve(lam, own, eo)
            if n_test is not None and eps.max() > 1:
                raise ParameterError(
                    f"{owner}: the error exceeds 1 at P={p:g} (at the start of the grid, "
                    f"{eps.max():.3g}); raise 'start' or set 'plateau' (e.g. 0.9).")
            rows.append(pd.DataFrame({"P": p, "seed": s, "norm": lam,
                                      "test_error": binomial_noise(eps, n_test=n_test, rng=rng)}))
    truth = Truth(gamma1=float(gamma1), gamma2=float(gamma2), gamma_pred=float(gamma1 * gamma2),
                  gamma_meas=float(g_meas), P=P, lambda_opt=lam_true, eps_opt=eps_true,
                  source="closed form (master curve)")
    return pd.concat(rows, ignore_index=True), truth


# --- the perceptron's theory curves ------------------------------------------------------


@dataclass(frozen=True)
class TheoryCurve:
    """One noiseless theory curve on the fine grid, and its exact optimum.

    The N -> infinity perceptron of docs/science.md 1.4 at one alpha, solved
    by :func:`theory_curve`; the norm is lambda = |w| / sqrt(N) (docs/science.md
    1.1).

    Attributes
    ----------
    alpha : float
        P / N, the examples per weight.
    lam : ndarray of shape (n,)
        The fine grid of norms lambda, increasing, log-spaced
        (``THEORY_POINTS_PER_DECADE`` per decade, ``THEORY_SPAN`` times
        ``lam_opt``, inside ``THEORY_LAMBDA_RANGE``).
    eps : ndarray of shape (n,)
        The absolute generalisation error eps = arccos(R) / pi at each ``lam``.
    eps0 : float
        The Hebb error eps_0 (the lambda -> 0 limit, docs/science.md 1.2), so
        that eps_hat = eps / eps0.
    lam_opt : float
        The exact lambda_opt(alpha), by Brent's method on the theory
        (:func:`normscale.theory.lambda_opt`), in the units of ``lam``.
    eps_opt : float
        The absolute error eps at ``lam_opt`` (not divided by ``eps0``).
    """

    alpha: float
    lam: np.ndarray
    eps: np.ndarray
    eps0: float
    lam_opt: float
    eps_opt: float

    def eps_at(self, lam) -> np.ndarray:
        """eps at any norms inside the fine grid (cubic spline in log-log)."""
        lam = np.asarray(lam, dtype=float)
        if np.any(lam < self.lam[0] * (1 - 1e-9)) or np.any(lam > self.lam[-1] * (1 + 1e-9)):
            raise ParameterError(
                f"theory curve at alpha={self.alpha:g}: the norms must lie in "
                f"[{self.lam[0]:.3g}, {self.lam[-1]:.3g}] (THEORY_SPAN times lambda_opt).")
        spline = CubicSpline(np.log(self.lam), np.log(self.eps))
        return np.exp(spline(np.log(np.clip(lam, self.lam[0], self.lam[-1]))))


_THEORY_CACHE: dict[tuple[float, str], TheoryCurve] = {}


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(root) / "normscale" / "theory-curves"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        path = Path(tempfile.gettempdir()) / "normscale-theory-curves"
        path.mkdir(parents=True, exist_ok=True)
    return path


def theory_curve(*, alpha: float, loss: str = "logistic") -> TheoryCurve:
    """The perceptron's noiseless curve at ``alpha`` on the fine grid, cached.

    The fine grid spans ``THEORY_SPAN`` times the exact lambda_opt with
    ``THEORY_POINTS_PER_DECADE`` points per decade. Solved once per process and
    kept in a small file (a few kB) under the user's cache directory
    (``$XDG_CACHE_HOME/normscale/theory-curves``, else the temporary
    directory), keyed by alpha, the loss and the grid; one to a few seconds to
    solve when not cached.
    """
    from normscale.theory import hebb_error, lambda_opt, learning_curve

    check_param("theory_curve", "alpha", alpha, Interval(Real, 1e-2, 1e4, closed="both"))
    key = (float(alpha), loss)
    if key in _THEORY_CACHE:
        return _THEORY_CACHE[key]
    tag = hashlib.sha1(f"{alpha!r}|{loss}|{THEORY_SPAN}|{THEORY_POINTS_PER_DECADE}|v2".encode()
                       ).hexdigest()[:16]
    file = _cache_dir() / f"{tag}.npz"
    if file.exists():
        with np.load(file) as z:
            tc = TheoryCurve(float(alpha), z["lam"], z["eps"], float(z["eps0"]),
                             float(z["lam_opt"]), float(z["eps_opt"]))
    else:
        o = lambda_opt(alpha=float(alpha), loss=loss, lam_min=1e-2,
                       lam_max=1e3 if alpha < 500 else 1e4)
        lo = max(THEORY_LAMBDA_RANGE[0], THEORY_SPAN[0] * o.lam_opt)
        hi = min(THEORY_LAMBDA_RANGE[1], THEORY_SPAN[1] * o.lam_opt)
        n = int(round(np.log10(hi / lo) * THEORY_POINTS_PER_DECADE)) + 1
        c = learning_curve(alpha=float(alpha), lams=np.geomspace(lo, hi, n), loss=loss)
        tc = TheoryCurve(float(alpha), c.lam, c.eps, hebb_error(alpha=float(alpha)),
                         o.lam_opt, o.eps_opt)
        tmp = file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, lam=tc.lam, eps=tc.eps, eps0=tc.eps0, lam_opt=tc.lam_opt,
                 eps_opt=tc.eps_opt)
        os.replace(tmp, file)
    _THEORY_CACHE[key] = tc
    return tc


def perceptron_truth_gamma1(*, alphas, N: int = 100, start: float = 1e-2, stop: float = 10.0,
                            points_per_decade: int = 40, loss: str = "logistic") -> float:
    """gamma1 of the noiseless theory curves on a fine grid, by :func:`normscale.laws.fit_laws`.

    The theory has no single early exponent (its local slope approaches 1/2
    only as alpha grows), so the truth of gamma1 is what the laws' own
    estimator finds on the noiseless curves on a fine logging grid over the
    same range: noise and a coarse grid are then the only differences
    between the noisy draws and their truth.
    """
    from normscale.laws import fit_laws

    rows = []
    for a in np.unique(np.asarray(alphas, dtype=float)):
        tc = theory_curve(alpha=float(a), loss=loss)
        n = max(int(round(np.log10(stop / start) * points_per_decade)) + 1, 3)
        lam = np.clip(tc.lam_opt * np.geomspace(start, stop, n), tc.lam[0], tc.lam[-1])
        rows.append(pd.DataFrame({"P": a * N, "seed": 0, "norm": lam,
                                  "test_error": tc.eps_at(lam) / tc.eps0}))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fit_laws(pd.concat(rows, ignore_index=True), n_boot=0)[0].gamma1)


def perceptron_curves(*, alphas=(4, 6, 9, 13, 19, 28, 42, 64, 96), N: int = 100,
                      n_seeds: int = 3, n_points: int = 30, start: float = 1e-2,
                      stop: float = 10.0, n_test: int | None = 10_000, loss: str = "logistic",
                      random_phase: bool = True, truth_gamma1: bool = True, rng=None
                      ) -> tuple[pd.DataFrame, Truth]:
    """Noisy learning curves of the N -> infinity perceptron (docs/science.md 1.4).

    Parameters
    ----------
    alphas : array-like of shape (n_alpha,)
        P / N of each curve, in [0.01, 1e4].
    N : int
        Input dimension: the table's P is alpha N (the exponents do not depend on it).
    n_seeds : int
        Independent draws of the test noise per alpha.
    n_points : int
        Logged norms per curve (>= 3), log-spaced from ``start`` to ``stop``
        times the exact lambda_opt(alpha) (clipped to the cached fine grid,
        ``THEORY_SPAN`` times lambda_opt within ``THEORY_LAMBDA_RANGE``).
    n_test : int or None
        Test-set size: the absolute error is drawn Binomial(n_test, eps) /
        n_test, then divided by eps_0(alpha) (the Hebb error): the logged
        ``test_error`` is eps_hat, whose optimum scales as alpha^-1/2 (the
        absolute eps_opt ~ alpha^-1 carries the alpha-dependence of eps_0,
        not the laws'). None: noiseless.
    loss : str
        The loss family of the theory.
    truth_gamma1 : bool
        Compute the truth's gamma1 (:func:`perceptron_truth_gamma1`, one
        noiseless fit); False leaves it NaN.
    rng : None, int or numpy.random.Generator
        Randomness.

    Returns
    -------
    (pandas.DataFrame, Truth)
        The long table and the truth: gamma2 and gamma_meas are the
        least-squares slopes of the exact log lambda_opt and log eps_hat_opt
        against log alpha (Brent's method on the theory), gamma1 the fit of
        the noiseless curves on a fine grid (:func:`perceptron_truth_gamma1`),
        gamma_pred = gamma1 gamma2. Over a finite range of alpha the theory's
        gamma_pred is not gamma_meas (the early slope reaches 1/2 only
        asymptotically): compare z with its truth
        (gamma_pred - gamma_meas) / sigma, not with 0.
    """
    owner = "perceptron_curves"
    alphas = np.unique(check_array(owner, "alphas", alphas, Interval(Real, 1e-2, 1e4)))
    check_param(owner, "N", N, POSITIVE_INT)
    check_param(owner, "n_seeds", n_seeds, POSITIVE_INT)
    if n_test is not None:
        check_param(owner, "n_test", n_test, _NTEST)
    _check_grid(owner, start, stop, n_points)
    rng = _rng(rng)
    curves = [theory_curve(alpha=float(a), loss=loss) for a in alphas]
    rows = []
    for tc in curves:
        phase = rng.uniform() if random_phase else 0.5
        lam = np.clip(_grid(tc.lam_opt, start=start, stop=stop, n_points=n_points, phase=phase),
                      tc.lam[0], tc.lam[-1])
        eps = tc.eps_at(lam)
        for s in range(n_seeds):
            rows.append(pd.DataFrame({
                "P": tc.alpha * N, "seed": s, "norm": lam,
                "test_error": binomial_noise(eps, n_test=n_test, rng=rng) / tc.eps0}))
    lam_opt = np.array([tc.lam_opt for tc in curves])
    eps_hat_opt = np.array([tc.eps_opt / tc.eps0 for tc in curves])
    g2 = float(np.polyfit(np.log(alphas), np.log(lam_opt), 1)[0])
    gm = float(-np.polyfit(np.log(alphas), np.log(eps_hat_opt), 1)[0])
    g1 = (perceptron_truth_gamma1(alphas=alphas, N=N, start=start, stop=stop, loss=loss)
          if truth_gamma1 else float("nan"))
    truth = Truth(gamma1=g1, gamma2=g2, gamma_pred=g1 * g2, gamma_meas=gm, P=alphas * N,
                  lambda_opt=lam_opt, eps_opt=eps_hat_opt,
                  source="perceptron theory (gamma2, gamma_meas exact; gamma1 fitted noiseless)")
    return pd.concat(rows, ignore_index=True), truth


__all__ = ["TheoryCurve", "Truth", "binomial_noise", "master_curves", "master_shape",
           "perceptron_curves", "perceptron_truth_gamma1", "theory_curve"]
