"""The power-law random-feature model (PLRF): data, teacher and features, in two conventions.

Data x in R^v with independent coordinates x_j = j^-alpha z_j, z ~ N(0, I), so
the covariance is D = diag(j^-2alpha); the teacher is y = <x, b> + noise with
b_j = j^-beta and Gaussian label noise of standard deviation ``noise``; the
student predicts <W^T x, theta> with a fixed random projection W in
R^(v x d), W_ij ~ N(0, 1/d) (Paquette, Paquette, Xiao, Pennington 2024).
``d=None`` stands for the limit d -> infinity, where W W^T -> I: the student
is then linear regression on x itself (identity features, N = v).

The same model in the convention of Maloney, Roberts, Sully (2022) and
Bordelon, Atanasov, Pehlevan (2024): the spectrum decays as k^-b and the
target power per mode, b_k^2 lambda_k, as k^-a, so

    b = 2 alpha,    a = 2 alpha + 2 beta      (alpha = b/2, beta = (a - b)/2).

Conditional on W the features f = W^T x and the clean label <x, b> are
jointly Gaussian: f ~ N(0, K) with K = W^T D W (d x d). Everything the
training algorithms need is in the eigenbasis of K = V diag(lambda) V^T
(:class:`Features`): the eigenvalues, the best student theta* in that basis,
and its risk R* (the part of the target no student of these features can
reach). Randomness is a pure function of ``(seed, purpose, index)``
(:func:`rng`): a curve does not depend on which other curves were drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
from scipy.special import zeta

from normscale._validation import NONNEGATIVE, POSITIVE, POSITIVE_INT, Interval, check_param
from normscale.errors import ParameterError

#: purposes of the random streams (the second entry of the seed sequence)
PURPOSES = {"features": 1, "data": 2, "sgd": 3}

#: an eigenvalue of K below this fraction of the largest, times max(v, d), is a zero mode
#: (K has rank min(v, d); the rest are rounding errors of size eps * |K|)
ZERO_MODE_RTOL = 4 * np.finfo(float).eps

#: largest input dimension v: K and W are dense (v x d); a bound on memory, not on the science
MAX_V = 200_000


def rng(seed: int, purpose: str, index: int = 0) -> np.random.Generator:
    """The random stream of ``(seed, purpose, index)``: the same numbers whatever ran before."""
    return np.random.default_rng([int(seed), PURPOSES[purpose], int(index)])


@dataclass(frozen=True, kw_only=True)
class PowerLawModel:
    """The PLRF model of Paquette et al. (2024), keyword-only and validated.

    Attributes
    ----------
    alpha : float > 0
        Data exponent: x_j = j^-alpha z_j, covariance eigenvalues j^-2alpha.
    beta : float
        Target exponent: b_j = j^-beta. The risk of the zero student,
        sum_j j^(-2 alpha - 2 beta), stays finite as v -> infinity only when
        2 alpha + 2 beta > 1, which is required.
    v : int >= 1
        Input dimension (the number of modes of the data).
    d : int >= 1 or None
        Number of random features N; None: identity features (the d -> infinity
        limit, N = v).
    noise : float >= 0, default 0
        Standard deviation sigma of the label noise of the training labels.
        The test loss is the error against the clean teacher (the excess
        risk over the noise floor sigma^2).
    tail : bool, default False
        Identity features only: x has infinitely many modes and the student
        sees the first v. The modes it cannot see carry the target power
        sum_{k>v} k^-a (a Hurwitz zeta value), which enters R* and acts as
        label noise in training. While the modes being learned are far below
        v, the risk is then that of the infinite model (without ``tail`` it
        falls short by that constant, which bends a power law near its end).
    a, b : float
        The Bordelon-Atanasov-Pehlevan exponents a = 2 alpha + 2 beta, b = 2 alpha.
    n_features : int
        N: ``d``, or ``v`` for identity features.
    """

    alpha: float
    beta: float
    v: int
    d: int | None = None
    noise: float = 0.0
    tail: bool = False

    def __post_init__(self) -> None:
        owner = "PowerLawModel"
        check_param(owner, "alpha", self.alpha, POSITIVE)
        check_param(owner, "beta", self.beta, Interval(Real, None, None))
        check_param(owner, "v", self.v, Interval(Integral, 1, MAX_V, closed="both"))
        if self.d is not None:
            check_param(owner, "d", self.d, Interval(Integral, 1, MAX_V, closed="both"))
        check_param(owner, "noise", self.noise, NONNEGATIVE)
        if self.tail and self.d is not None:
            raise ParameterError("PowerLawModel: tail=True is for identity features (d=None); "
                                 f"got d={self.d}")
        if not np.isfinite(self.beta) or not 2 * self.alpha + 2 * self.beta > 1:
            raise ParameterError(
                f"PowerLawModel needs 2 alpha + 2 beta > 1 (a > 1: a target of finite power); "
                f"got alpha={self.alpha:g}, beta={self.beta:g} (2 alpha + 2 beta = "
                f"{2 * self.alpha + 2 * self.beta:g}): raise alpha or beta")

    @classmethod
    def from_ab(cls, *, a: float, b: float, v: int, d: int | None = None,
                noise: float = 0.0, tail: bool = False) -> PowerLawModel:
        """The model with spectrum k^-b and target power k^-a per mode (a > 1, b > 0)."""
        check_param("PowerLawModel.from_ab", "a", a, Interval(Real, 1, None, closed="neither"))
        check_param("PowerLawModel.from_ab", "b", b, POSITIVE)
        return cls(alpha=b / 2, beta=(a - b) / 2, v=v, d=d, noise=noise, tail=tail)

    @property
    def a(self) -> float:
        return 2 * self.alpha + 2 * self.beta

    @property
    def b(self) -> float:
        return 2 * self.alpha

    @property
    def n_features(self) -> int:
        return self.v if self.d is None else self.d

    def data_variances(self) -> np.ndarray:
        """D_jj = j^-2alpha, shape (v,)."""
        return np.arange(1, self.v + 1, dtype=float) ** (-2 * self.alpha)

    def teacher(self) -> np.ndarray:
        """b_j = j^-beta, shape (v,)."""
        return np.arange(1, self.v + 1, dtype=float) ** (-self.beta)

    def null_risk(self) -> float:
        """Risk of the zero student, sum_j D_jj b_j^2 = sum_j j^-a."""
        return float(np.sum(self.data_variances() * self.teacher() ** 2))

    def tail_risk(self) -> float:
        """sum_{k>v} k^-a: the target power beyond the v modes (0 unless ``tail``)."""
        return float(zeta(self.a, self.v + 1)) if self.tail else 0.0

    def describe(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta, "a": self.a, "b": self.b,
                "v": self.v, "N": self.n_features, "noise": self.noise, "tail": self.tail}


@dataclass(frozen=True)
class Features:
    """One draw of the random features W, seen through the eigenbasis of K = W^T D W.

    Attributes
    ----------
    model : PowerLawModel
        The model whose features these are.
    lam : ndarray of shape (N,)
        Eigenvalues of K, descending (exact zeros for the d - v zero modes when d > v).
    theta_star : ndarray of shape (N,)
        The best student V^T theta* in the eigenbasis: theta* = K^+ W^T D b
        (0 on zero modes).
    risk_star : float
        R* = E(<f, theta*> - <x, b>)^2, the clean risk no student of these
        features can go below (0 for identity features).
    W : ndarray of shape (v, N) or None
        The projection (None for identity features).
    V : ndarray of shape (N, N) or None
        Eigenvectors of K as columns (None for identity features: V = I).
    """

    model: PowerLawModel
    lam: np.ndarray
    theta_star: np.ndarray
    risk_star: float
    W: np.ndarray | None = field(default=None, repr=False)
    V: np.ndarray | None = field(default=None, repr=False)

    @property
    def label_variance(self) -> float:
        """Variance of the label given the features' best prediction: R* + sigma^2."""
        return self.risk_star + self.model.noise ** 2

    def risk(self, theta: np.ndarray) -> np.ndarray:
        """Clean test risk of students ``theta`` (..., N) given in the eigenbasis:
        R* + sum_j lam_j (theta_j - theta*_j)^2 (exact, from the population covariance)."""
        e = np.asarray(theta) - self.theta_star
        return self.risk_star + np.einsum("...j,j,...j->...", e, self.lam, e)


def draw_features(model: PowerLawModel, *, seed: int = 0) -> Features:
    """Draw W for ``seed`` and diagonalise K = W^T D W (one d x d eigendecomposition).

    Parameters
    ----------
    model : PowerLawModel
    seed : int >= 0

    Returns
    -------
    Features
        For ``model.d is None``: lam = D, theta* = b, R* = the tail risk (0 without
        ``tail``); no randomness.

    Notes
    -----
    theta* = K^+ W^T D b is the population least-squares student; its risk is
    computed as sum_j D_jj (W theta* - b)_j^2, without the cancellation of
    b^T D b - c^T K^+ c.
    """
    check_param("draw_features", "seed", seed, Interval(Integral, 0, None, closed="left"))
    D, b = model.data_variances(), model.teacher()
    if model.d is None:
        return Features(model, D.copy(), b.copy(), model.tail_risk())
    W = rng(seed, "features").standard_normal((model.v, model.d)) / np.sqrt(model.d)  # (v, d)
    G = np.sqrt(D)[:, None] * W                                                         # (v, d)
    K = G.T @ G                      # (d, d) = W^T D W; numpy runs a.T @ a as one rank-k update
    lam, V = np.linalg.eigh(K)
    lam, V = lam[::-1].copy(), V[:, ::-1].copy()
    zero = lam <= ZERO_MODE_RTOL * max(model.v, model.d) * max(lam[0], 0.0)
    lam[zero] = 0.0
    c = V.T @ (W.T @ (D * b))                                                           # (d,)
    theta_star = np.where(zero, 0.0, c / np.where(zero, 1.0, lam))
    residual = W @ (V @ theta_star) - b                                                 # (v,)
    return Features(model, lam, theta_star, float(np.sum(D * residual ** 2)), W, V)


def check_positive_int(owner: str, name: str, value) -> int:
    check_param(owner, name, value, POSITIVE_INT)
    return int(value)
