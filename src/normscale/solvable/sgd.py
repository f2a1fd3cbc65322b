"""One-pass SGD on the PLRF model, simulated (Monte Carlo over runs).

Every step draws a fresh batch of B samples and moves theta by -gamma times
the batch-mean gradient of (1/2)(<f, theta> - y)^2:

    theta <- theta - (gamma / B) sum_i f_i (<f_i, theta> - y_i).

Runs are simulated in the eigenbasis of K, where (:mod:`~normscale.solvable.flow`)
the features of a sample are independent Gaussians f_j = sqrt(lam_j) g_j and
its label is <f, theta*> plus an independent N(0, R* + sigma^2) residual:
exact in distribution, O(B N) per step and run, many runs at once. The clean
test risk R* + sum_j lam_j (theta_j - theta*_j)^2 and |theta| are recorded at the
logged steps; the curve is the risk's mean over runs with the standard error of
that mean, and the root mean square of |theta|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale._validation import POSITIVE, check_param
from normscale.errors import ParameterError
from normscale.solvable.model import Features, check_positive_int, rng

#: most normal draws held at once (runs x batch x N): a bound on memory (8 bytes each)
MAX_DRAWS = 4_000_000


def log_steps(steps: int, n: int = 40) -> np.ndarray:
    """About ``n`` distinct integer steps from 0 to ``steps``, log-spaced after 0."""
    steps = check_positive_int("log_steps", "steps", steps)
    grid = np.unique(np.round(np.geomspace(1, steps, max(n - 1, 1))).astype(int))
    return np.concatenate([[0], grid])


def _check_steps(steps: int, log_times) -> np.ndarray:
    steps = check_positive_int("sgd", "steps", steps)
    t = log_steps(steps) if log_times is None else np.asarray(log_times)
    if t.ndim != 1 or t.size == 0 or not np.issubdtype(t.dtype, np.integer):
        raise ParameterError("The 'log_times' parameter of sgd must be a 1-d array of ints.")
    if t.min() < 0 or t.max() > steps or np.any(np.diff(t) <= 0):
        raise ParameterError(f"The 'log_times' parameter of sgd must increase strictly within "
                             f"[0, steps={steps}]; got {t.min()}..{t.max()}.")
    return t.astype(int)


@dataclass(frozen=True)
class SGDCurve:
    """Expected clean test risk of one-pass SGD at the logged steps.

    Made by the Monte Carlo (:func:`sgd_monte_carlo`) or by the Volterra
    theory (:func:`~normscale.solvable.volterra.sgd_theory`), which gives
    the expectation exactly.

    Attributes
    ----------
    steps : ndarray of int, shape (T,)
        The logged SGD steps, increasing from 0 or later.
    mean : ndarray of shape (T,)
        The expected clean test risk R* + sum_j lam_j (theta_j - theta*_j)^2
        at each step: the mean over the runs, or the theory's value.
    se : ndarray of shape (T,)
        The standard error of ``mean`` (the runs' standard deviation, ddof 1,
        over sqrt(n_runs)); 0 for the theory.
    n_runs : int
        Independent runs averaged; 0 for the theory.
    norm : ndarray of shape (T,) or None
        The root mean square of |theta| over the runs at each step; None
        for the theory.
    """

    steps: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    n_runs: int
    norm: np.ndarray | None = None


def sgd_monte_carlo(features: Features, *, gamma: float, batch: int = 1, steps: int,
                    log_times=None, n_runs: int = 200, seed: int = 0) -> SGDCurve:
    """Simulate ``n_runs`` runs of one-pass SGD from theta = 0 and average their risk.

    Parameters
    ----------
    features : Features
        The model and its features.
    gamma : float > 0
        Step size.
    batch : int >= 1
        Batch size B (the gradient is the batch mean).
    steps : int >= 1
        Number of SGD steps.
    log_times : array of int, optional
        Steps at which the risk is recorded (default :func:`log_steps`).
    n_runs : int >= 2
        Independent runs (fresh data; the features are those of ``features``).
    seed : int
        Runs are drawn in chunks of at most ``MAX_DRAWS / (B N)``; the chunk that
        starts at run r uses the stream ``(seed, "sgd", r)``.

    Returns
    -------
    SGDCurve
    """
    check_param("sgd_monte_carlo", "gamma", gamma, POSITIVE)
    batch = check_positive_int("sgd_monte_carlo", "batch", batch)
    n_runs = check_positive_int("sgd_monte_carlo", "n_runs", n_runs)
    if n_runs < 2:
        raise ParameterError("The 'n_runs' parameter of sgd_monte_carlo must be >= 2 "
                             "(a standard error needs two runs).")
    t_log = _check_steps(steps, log_times)
    lam, sd = features.lam, np.sqrt(features.lam)
    s_label = np.sqrt(features.label_variance)
    N = lam.size
    per_chunk = max(1, MAX_DRAWS // (batch * N))
    risks = np.empty((n_runs, t_log.size))
    norms2 = np.empty((n_runs, t_log.size))
    for lo in range(0, n_runs, per_chunk):
        runs = range(lo, min(lo + per_chunk, n_runs))
        g = rng(seed, "sgd", lo)
        R = len(runs)
        e = np.tile(-features.theta_star, (R, 1))                         # (R, N): theta - theta*
        k = 0
        for t in range(t_log[-1] + 1):
            if t == t_log[k]:
                risks[lo:lo + R, k] = features.risk_star + (e ** 2) @ lam
                norms2[lo:lo + R, k] = np.sum((e + features.theta_star) ** 2, axis=1)
                k += 1
                if k == t_log.size:
                    break
            f = g.standard_normal((R, batch, N)) * sd                     # (R, B, N)
            resid = g.standard_normal((R, batch)) * s_label               # (R, B)
            err = np.einsum("rbn,rn->rb", f, e) - resid                   # (R, B)
            e -= (gamma / batch) * np.einsum("rbn,rb->rn", f, err)
    mean = risks.mean(axis=0)
    se = risks.std(axis=0, ddof=1) / np.sqrt(n_runs)
    return SGDCurve(t_log, mean, se, n_runs, np.sqrt(norms2.mean(axis=0)))
