"""Full-batch gradient flow on P samples, exact per draw through one eigendecomposition.

The student starts at theta = 0 and follows d theta/dt = -grad of the
training loss (1/2P) |F theta - y|^2, with F (P x N) the features of the P
training inputs. With the empirical covariance S = F^T F / P = Q diag(mu) Q^T
and r = F^T y / P,

    theta(t) = Q diag((1 - exp(-mu t)) / mu) Q^T r,

each mode relaxing towards the least-squares (P > N) or minimum-norm (P <= N)
solution, reached at t = infinity (``np.inf`` is a valid time). The test risk
comes from the population covariance (:meth:`Features.risk`), not from a test
sample, and |theta(t)| = |diag(...) Q^T r| since Q has orthonormal columns.

Only (S, r) enter, and in the eigenbasis of K the features are independent
Gaussians f_j = sqrt(lam_j) g_j with labels y = <f, theta*> + e, e ~ N(0, R* +
sigma^2) independent of f. So a training set is drawn without forming x or
W^T x:

- P > N: (S, r) come from one (N+1)-dimensional Wishart draw by Bartlett's
  decomposition (cost N^3, whatever P);
- P <= N: F = G diag(sqrt(lam)) (P x N) and the eigendecomposition of the
  P x P Gram matrix F F^T / P (cost P^2 N), whose eigenvectors give those of S.

Both are exact in distribution (tests compare them with an explicit draw of
x, W^T x and <x, b>).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from normscale._validation import NONNEGATIVE, Interval, check_array, check_param
from normscale.solvable.model import Features, check_positive_int, rng

#: a mode of S with mu below this fraction of the largest (times N) is a zero mode, dropped:
#: r has no component there (r lies in the range of S) beyond rounding errors
ZERO_MU_RTOL = 8 * np.finfo(float).eps


@dataclass(frozen=True)
class TrainingSet:
    """What gradient flow needs of P samples, in the eigenbasis of S = F^T F / P.

    F (P x N) holds the features of the samples in the eigenbasis of K
    (:class:`~normscale.solvable.model.Features`), y their noisy labels. Zero
    modes of S (below ``ZERO_MU_RTOL`` relative) are dropped, so m <= min(P, N).

    Attributes
    ----------
    P : int
        The number of training samples.
    mu : ndarray of shape (m,)
        The nonzero eigenvalues of the empirical covariance S = F^T F / P.
    Q : ndarray of shape (N, m)
        Their orthonormal eigenvectors, as columns.
    c : ndarray of shape (m,)
        Q^T r with r = F^T y / P: the label-feature correlation in that basis.
    """

    P: int
    mu: np.ndarray
    Q: np.ndarray
    c: np.ndarray


def draw_training_set(features: Features, *, P: int, seed: int, index: int = 0) -> TrainingSet:
    """P noisy training samples of the model of ``features``, reduced to (S, r) and diagonalised.

    Parameters
    ----------
    features : Features
    P : int >= 1
    seed, index : the random stream ``(seed, "data", index)``.

    Returns
    -------
    TrainingSet
    """
    P = check_positive_int("draw_training_set", "P", P)
    g = rng(seed, "data", index)
    lam = features.lam
    N = lam.size
    sd = np.sqrt(lam)
    s_label = np.sqrt(features.label_variance)
    if P > N:
        # Bartlett: S_aug = (L A)(L A)^T with L the Cholesky factor of the covariance of (f, y),
        # [[diag(sqrt lam), 0], [(sqrt(lam) theta*)^T, s]], A lower triangular with
        # A_ii^2 ~ chi^2(P - i) and N(0, 1) below the diagonal
        A = np.tril(g.standard_normal((N + 1, N + 1)), -1)
        A[np.diag_indices(N + 1)] = np.sqrt(g.chisquare(P - np.arange(N + 1)))
        M_top = sd[:, None] * A[:N]                                       # (N, N+1): rows of L A
        m_y = (sd * features.theta_star) @ A[:N] + s_label * A[N]         # (N+1,)
        S = (M_top @ M_top.T) / P                                         # (N, N)
        r = (M_top @ m_y) / P                                             # (N,)
        mu, Q = np.linalg.eigh(S)
        c = Q.T @ r
    else:
        F = g.standard_normal((P, N)) * sd                                # (P, N)
        y = F @ features.theta_star + s_label * g.standard_normal(P)      # (P,)
        mu, U = np.linalg.eigh(F @ F.T / P)                               # Gram (P, P)
        pos = mu > ZERO_MU_RTOL * N * max(mu.max(), 0.0)
        mu, U = mu[pos], U[:, pos]
        Q = (F.T @ U) / np.sqrt(P * mu)                                   # (N, m) orthonormal
        c = np.sqrt(mu / P) * (U.T @ y)                                   # Q^T F^T y / P
    keep = mu > ZERO_MU_RTOL * N * max(mu.max(), 0.0)
    return TrainingSet(P, mu[keep], Q[:, keep], c[keep])


@dataclass(frozen=True)
class FlowCurve:
    """A gradient-flow learning curve: at each time, the clean test risk and |theta|.

    Attributes
    ----------
    times : ndarray of shape (T,)
        Gradient-flow times t >= 0 (``inf``: the end point, least squares or
        minimum norm).
    risk : ndarray of shape (T,)
        The clean test risk R* + sum_j lam_j (theta_j(t) - theta*_j)^2, from
        the population covariance (no test sample; the label noise not included).
    norm : ndarray of shape (T,)
        The Euclidean norm |theta(t)| of the student.
    """

    times: np.ndarray
    risk: np.ndarray
    norm: np.ndarray


def _relaxation(mu: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(1 - exp(-mu t)) / mu for every (t, mu), shape (T, m); 1/mu at t = inf."""
    t = times[:, None]
    with np.errstate(invalid="ignore"):
        out = -np.expm1(-mu * t) / mu
    return np.where(np.isinf(t), 1.0 / mu, out)


def flow_from_training_set(features: Features, data: TrainingSet, times) -> FlowCurve:
    """theta(t) of gradient flow from 0 on ``data`` at ``times``; risk and norm (docs above)."""
    times = check_array("gradient_flow", "times", times, NONNEGATIVE)
    h = _relaxation(data.mu, times) * data.c                              # (T, m)
    theta = h @ data.Q.T                                                  # (T, N)
    return FlowCurve(times, features.risk(theta), np.sqrt(np.sum(h ** 2, axis=1)))


def gradient_flow(features: Features, *, P: int, times, seed: int = 0, index: int = 0
                  ) -> FlowCurve:
    """Gradient flow on P fresh samples: the exact curve of one draw.

    Parameters
    ----------
    features : Features
        The model and its features (:func:`~normscale.solvable.model.draw_features`).
    P : int >= 1
        Training-set size.
    times : array-like of shape (T,)
        Times >= 0 (``np.inf``: the end point, least squares or minimum norm).
    seed, index : int
        The data stream ``(seed, "data", index)``.

    Returns
    -------
    FlowCurve

    Notes
    -----
    theta(t) = Q diag((1 - e^(-mu t))/mu) Q^T F^T y / P with F^T F / P = Q diag(mu) Q^T.
    """
    check_param("gradient_flow", "seed", seed, Interval(Integral, 0, None, closed="left"))
    data = draw_training_set(features, P=P, seed=seed, index=index)
    return flow_from_training_set(features, data, times)


def population_flow(features: Features, times) -> FlowCurve:
    """Gradient flow on the population loss (P -> infinity, no label noise), in closed form.

    theta_j(t) = theta*_j (1 - exp(-lam_j t)) in the eigenbasis of K, so
    L(t) = R* + sum_j lam_j theta*_j^2 exp(-2 lam_j t) and
    |theta(t)|^2 = sum_j theta*_j^2 (1 - exp(-lam_j t))^2.
    """
    times = check_array("population_flow", "times", times, NONNEGATIVE)
    lt = features.lam[None, :] * times[:, None]                           # (T, N)
    with np.errstate(invalid="ignore"):
        decay = np.where(np.isinf(lt), 0.0, np.exp(-lt))
    theta = features.theta_star * (1 - decay)
    return FlowCurve(times, features.risk(theta), np.sqrt(np.sum(theta ** 2, axis=1)))
