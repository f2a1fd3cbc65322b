"""The expected risk of one-pass SGD on the PLRF model: an exact Volterra recursion.

Conditional on the features, let e = V^T (theta - theta*) and m_j(t) =
E[e_j(t)^2]. One SGD step with batch mean over B fresh Gaussian samples
gives, by Wick's theorem for the fourth moments (docs/science.md, "Solvable
models"),

    m_j(t+1) = q_j m_j(t) + (gamma^2 / B) lam_j (P(t) + sigma^2),
    q_j = (1 - gamma lam_j)^2 + gamma^2 lam_j^2 / B,
    P(t) = R* + sum_j lam_j m_j(t)          (the clean risk),

closed on the diagonal: exact in expectation, not an approximation. Unrolled,
P is the solution of a discrete convolution Volterra equation,

    P(t) = R* + sum_j lam_j q_j^t m_j(0) + sum_{s<t} k(t-1-s) (P(s) + sigma^2),
    k(u) = (gamma^2 / B) sum_j lam_j^2 q_j^u,

the forcing term (the risk of gradient descent on the population loss,
slowed by the factor q_j) plus the SGD noise kernel.

The recursion costs O(N) per step. :func:`sgd_theory` runs it in blocks of
``block`` steps: inside a block, P solves a small triangular Toeplitz system
built from k, and the state m enters through two matrix-vector products with
the table q_j^s (s < block), the same for every block; the result is the
step-by-step recursion, up to rounding.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from normscale._validation import POSITIVE, check_param
from normscale.errors import ParameterError
from normscale.solvable.model import Features, check_positive_int
from normscale.solvable.sgd import SGDCurve, _check_steps

#: steps per block: the table q_j^s (block x N floats, 64 x 10,000 x 8 B = 5 MB, read twice
#: per block) should stay in cache while the Python overhead per block stays small against
#: its two matrix-vector products; at d = 10,000 on a shared machine 64 beat 32 by 20% and
#: 256 by 2.4x
BLOCK = 64


def noise_kernel_norm(features: Features, *, gamma: float, batch: int = 1) -> float:
    """sum_u k(u) = (gamma^2/B) sum_j lam_j^2 / (1 - q_j): the expected risk stays bounded
    only when this is < 1 (and every q_j < 1)."""
    lam = features.lam[features.lam > 0]
    q = (1 - gamma * lam) ** 2 + gamma ** 2 * lam ** 2 / batch
    if np.any(q >= 1):
        return float("inf")
    return float(gamma ** 2 / batch * np.sum(lam ** 2 / (1 - q)))


def max_stable_gamma(features: Features, *, batch: int = 1) -> float:
    """The step size at which :func:`noise_kernel_norm` reaches 1 (bisection; it grows with
    gamma): SGD's expected risk stays bounded below it."""
    lo, hi = 0.0, 2.0 / float(features.lam.max())            # q_1 >= 1 beyond hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if noise_kernel_norm(features, gamma=mid, batch=batch) < 1 else (lo, mid)
    return lo


def sgd_theory(features: Features, *, gamma: float, batch: int = 1, steps: int,
               log_times=None, block: int = BLOCK) -> SGDCurve:
    """The exact expected clean risk of one-pass SGD from theta = 0 (the recursion above).

    Parameters
    ----------
    features : Features
        The model and its features (the expectation is over data, given W).
    gamma : float > 0
        Step size; it must keep the noise kernel norm below 1
        (:func:`noise_kernel_norm`), else the expected risk diverges.
    batch : int >= 1
        Batch size B (batch-mean gradient).
    steps : int >= 1
    log_times : array of int, optional
        Steps at which the risk is returned (default: log-spaced).
    block : int >= 1
        Steps per block (speed only).

    Returns
    -------
    SGDCurve
        ``mean`` the expected risk, ``se`` zeros, ``n_runs`` 0.
    """
    check_param("sgd_theory", "gamma", gamma, POSITIVE)
    batch = check_positive_int("sgd_theory", "batch", batch)
    block = check_positive_int("sgd_theory", "block", block)
    t_log = _check_steps(steps, log_times)
    norm = noise_kernel_norm(features, gamma=gamma, batch=batch)
    if not norm < 1:
        raise ParameterError(
            f"gamma={gamma:g} is too large for batch {batch}: the SGD noise kernel has norm "
            f"{norm:.3g} >= 1 (or a mode with q_j >= 1), so the expected risk diverges; "
            f"take gamma < {max_stable_gamma(features, batch=batch):.3g}")
    P = _recursion(features, gamma, batch, int(t_log[-1]), block)
    return SGDCurve(t_log, P[t_log], np.zeros(t_log.size), 0)


def _recursion(features: Features, gamma: float, batch: int, T: int, block: int) -> np.ndarray:
    """P(t) for t = 0..T by blocks (module docstring)."""
    lam = features.lam
    s2 = features.model.noise ** 2
    g = gamma ** 2 / batch * lam                                      # (N,)
    q = (1 - gamma * lam) ** 2 + gamma ** 2 * lam ** 2 / batch        # (N,)
    tau = min(block, T + 1)
    Qpow = q[None, :] ** np.arange(tau + 1)[:, None]                  # (tau+1, N): q^s
    k = Qpow[:tau] @ (lam * g)                                        # (tau,): k(0..tau-1)
    # (I - T_k) with T_k[s, u] = k(s-1-u) for u < s: lower triangular Toeplitz
    idx = np.arange(tau)
    lag = idx[:, None] - 1 - idx[None, :]
    Tk = np.where(lag >= 0, k[np.clip(lag, 0, None)], 0.0)            # (tau, tau)
    A = np.eye(tau) - Tk
    noise_drive = s2 * Tk.sum(axis=1)                                 # sigma^2 sum_{u<s} k(s-1-u)
    # one contiguous table for both products (q^(tau-1-u) is its rows reversed): half the
    # memory traffic of two, and no copy of a reversed view inside every product
    head = np.ascontiguousarray(Qpow[:tau])                           # (tau, N): q^s
    Ainv = solve_triangular(A, np.eye(tau), lower=True, unit_diagonal=True)  # (tau, tau)
    m = features.theta_star ** 2                                      # m_j(0): theta_0 = 0
    out = np.empty(T + 1)
    t0 = 0
    while t0 <= T:
        n = min(tau, T + 1 - t0)
        f = features.risk_star + head[:n] @ (lam * m) + noise_drive[:n]
        Pb = Ainv[:n, :n] @ f         # the leading block of the inverse inverts the leading block
        out[t0:t0 + n] = Pb
        if t0 + n > T:
            break
        m = Qpow[tau] * m + g * (head.T @ (Pb[::-1] + s2))            # m(t0 + tau)
        t0 += tau
    return out


def sgd_theory_stepwise(features: Features, *, gamma: float, batch: int = 1, steps: int
                        ) -> np.ndarray:
    """The same recursion one step at a time (P(t), t = 0..steps): the plain reference."""
    lam = features.lam
    s2 = features.model.noise ** 2
    g = gamma ** 2 / batch * lam
    q = (1 - gamma * lam) ** 2 + gamma ** 2 * lam ** 2 / batch
    m = features.theta_star ** 2
    out = np.empty(steps + 1)
    for t in range(steps + 1):
        out[t] = features.risk_star + lam @ m
        m = q * m + g * (out[t] + s2)
    return out
