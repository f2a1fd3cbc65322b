"""Learning curves eps(lambda) at fixed alpha, and the optimal norm lambda_opt(alpha).

A curve is solved by continuation along the lambda grid (each point starts
from the previous solution); lambda_opt is found by Brent's method on
log(lambda), bracketed from a coarse curve (docs/science.md 1.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy.optimize import minimize_scalar

from normscale._validation import POSITIVE, Interval, Options, check_array, check_param
from normscale.errors import NormscaleError
from normscale.theory.losses import FAMILIES, loss_family
from normscale.theory.saddle import SaddlePoint, _State, solve_saddle, state_of

_CONTINUATION_RATIO = 2.0  # largest lambda ratio between consecutive continuation points
_START_LAM = 0.1  # curves starting above this are reached by continuation from here
#: the largest lambda solved. Continuation walks there from _START_LAM in steps of
#: _CONTINUATION_RATIO (20 solves for 1e5, 1000 for 1e300: minutes of one core), and beyond
#: 1e4 eps(lambda) is flat to 1e-4 (measured at alpha 0.5, 5, 50; logistic misses TOL at
#: alpha 0.5, lambda 1e5, and at alpha 5, lambda 1e6)
LAM_MAX = 1e5
LAMBDA = Interval(Real, 0, LAM_MAX, closed="right")
#: the alphas solved: at alpha 1e-300 lambda_opt's search runs for minutes, at 1e300 x
#: overflows; 1e-4 and 1e6 solve in about a second (measured)
ALPHA_MIN, ALPHA_MAX = 1e-4, 1e6
ALPHA = Interval(Real, ALPHA_MIN, ALPHA_MAX, closed="both")


@dataclass(frozen=True)
class LearningCurve:
    """eps(lambda) at one alpha: one :class:`SaddlePoint` per lambda (increasing).

    Attributes
    ----------
    alpha : float
        P / N, the examples per weight.
    loss : str
        The norm-lambda loss family: ``"logistic"``, ``"hinge"``,
        ``"square"`` or ``"linear"`` (:mod:`normscale.theory.losses`).
    points : tuple of SaddlePoint
        The saddle point at each lambda asked for, lambda increasing
        (duplicates removed); each says whether it converged.
    """

    alpha: float
    loss: str
    points: tuple[SaddlePoint, ...]

    @property
    def lam(self) -> np.ndarray:
        """The norms lambda of the points, increasing."""
        return np.array([p.lam for p in self.points])

    @property
    def eps(self) -> np.ndarray:
        """The generalisation error eps(lambda) at each point."""
        return np.array([p.eps for p in self.points])

    @property
    def eps_hat(self) -> np.ndarray:
        """eps / eps_0 at each point (eps_0: Hebb's rule)."""
        return np.array([p.eps_hat for p in self.points])

    @property
    def converged(self) -> bool:
        """Whether every point's saddle point converged."""
        return all(p.converged for p in self.points)


@dataclass(frozen=True)
class LambdaOpt:
    """The norm that minimises eps at one alpha, and the error there.

    Attributes
    ----------
    alpha : float
        P / N, the examples per weight.
    lam_opt : float
        lambda_opt(alpha): the norm at the minimum of eps(lambda), by
        Brent's method on log(lambda).
    eps_opt : float
        The generalisation error eps = arccos(R) / pi at ``lam_opt``.
    eps_hat_opt : float
        The same divided by eps_0, the error of Hebb's rule (lambda -> 0).
    n_eval : int
        Evaluations of eps (saddle-point solves) Brent's method used, after
        the coarse curve that brackets the minimum.
    converged : bool
        Whether Brent's method reported success (the saddle point at every
        evaluation converged, or a NormscaleError was raised).
    """

    alpha: float
    lam_opt: float
    eps_opt: float
    eps_hat_opt: float
    n_eval: int
    converged: bool


def _check(owner: str, alpha: float, loss: str) -> None:
    check_param(owner, "alpha", alpha, ALPHA)
    check_param(owner, "loss", loss, Options(tuple(FAMILIES)))


def _path(lams: np.ndarray) -> np.ndarray:
    """The lambdas to visit: a warm-up from _START_LAM, then lams, no ratio above the cap."""
    first = min(float(lams[0]), _START_LAM)
    knots = np.concatenate([[first], lams])
    path = [knots[0]]
    for a, b in zip(knots[:-1], knots[1:], strict=True):
        n = max(int(np.ceil(np.log(b / a) / np.log(_CONTINUATION_RATIO))), 1)
        path.extend(np.geomspace(a, b, n + 1)[1:])
    return np.array(path)


def _march(alpha: float, loss: str, lams: np.ndarray, start: _State | None = None
           ) -> list[SaddlePoint]:
    """Solve at every lambda of an increasing path, continuing from each solution."""
    make = loss_family(loss)
    out = []
    for lam in lams:
        p = solve_saddle(alpha=alpha, loss=make(float(lam)), start=start, lam=float(lam))
        if p.converged:
            start = state_of(p)
        out.append(p)
    return out


def learning_curve(*, alpha: float, lams, loss: str = "logistic") -> LearningCurve:
    """eps(lambda) of the fixed-norm perceptron at one alpha (docs/science.md 1.4).

    Parameters
    ----------
    alpha : float
        P / N, > 0.
    lams : array-like of shape (n,)
        Norms lambda > 0 (any order; the result is sorted).
    loss : {"logistic", "hinge", "square", "linear"}
        The norm-lambda loss family (:mod:`normscale.theory.losses`).

    Returns
    -------
    LearningCurve
        Check ``converged`` (per point and overall).

    Examples
    --------
    >>> c = learning_curve(alpha=5.0, lams=[0.5, 2.5])
    >>> [round(e, 4) for e in c.eps]
    [0.1243, 0.0871]
    """
    _check("learning_curve", alpha, loss)
    lams = np.unique(check_array("learning_curve", "lams", lams, LAMBDA))
    path = _path(lams)
    solved = {p.lam: p for p in _march(alpha, loss, path)}
    return LearningCurve(alpha, loss, tuple(solved[float(lam)] for lam in lams))


def solve(*, alpha: float, lam: float, loss: str = "logistic") -> SaddlePoint:
    """The saddle point at one (alpha, lambda) (continuation from small lambda built in)."""
    check_param("solve", "lam", lam, LAMBDA)
    return learning_curve(alpha=alpha, lams=[lam], loss=loss).points[0]


def lambda_opt(*, alpha: float, loss: str = "logistic", lam_min: float = 1e-2,
               lam_max: float = 1e3, n_coarse: int = 25) -> LambdaOpt:
    """The norm lambda_opt(alpha) that minimises eps, by a scalar search on the theory.

    A coarse curve on ``n_coarse`` log-spaced lambdas in [lam_min, lam_max]
    brackets the minimum; Brent's method on log(lambda) then refines it,
    each evaluation continuing from the nearest solved point.

    Raises
    ------
    NormscaleError
        If the minimum sits at an end of [lam_min, lam_max].
    """
    _check("lambda_opt", alpha, loss)
    check_param("lambda_opt", "lam_min", lam_min, POSITIVE)
    check_param("lambda_opt", "lam_max", lam_max, LAMBDA)
    coarse = learning_curve(alpha=alpha, lams=np.geomspace(lam_min, lam_max, n_coarse), loss=loss)
    if not coarse.converged:
        raise NormscaleError(f"the theory did not converge on the coarse curve at alpha={alpha:g}")
    i = int(np.argmin(coarse.eps))
    if i in (0, len(coarse.points) - 1):
        raise NormscaleError(
            f"the minimum of eps over lambda at alpha={alpha:g} is at the end of "
            f"[{lam_min:g}, {lam_max:g}]: widen lam_min/lam_max")
    make = loss_family(loss)
    log_l = np.log(coarse.lam)
    best: dict[float, SaddlePoint] = {}

    def eps_at(u: float) -> float:
        j = int(np.argmin(np.abs(log_l - u)))
        p = solve_saddle(alpha=alpha, loss=make(float(np.exp(u))),
                         start=state_of(coarse.points[j]), lam=float(np.exp(u)))
        if not p.converged:
            raise NormscaleError(f"the theory did not converge at alpha={alpha:g}, "
                                 f"lambda={np.exp(u):g}")
        best[u] = p
        return p.eps

    res = minimize_scalar(eps_at, bracket=(log_l[i - 1], log_l[i], log_l[i + 1]),
                          method="brent", options={"xtol": 1e-8})
    p = best[float(res.x)] if float(res.x) in best else solve_saddle(
        alpha=alpha, loss=make(float(np.exp(res.x))), lam=float(np.exp(res.x)))
    return LambdaOpt(alpha=alpha, lam_opt=float(np.exp(res.x)), eps_opt=p.eps,
                     eps_hat_opt=p.eps_hat, n_eval=int(res.nfev), converged=bool(res.success))
