"""One fitting engine for every form: robust loss on log y, many starts at once.

The objective of a start is sum_i w_i rho(log yhat_i - log y_i), with rho the
Huber loss of threshold ``delta`` (rho(r) = r^2/2 for |r| <= delta, delta
(|r| - delta/2) beyond; Besiroglu et al. 2024 use delta = 1e-3 on log loss) or
the squared loss r^2/2 (``delta=None``), and w_i the data weights (bootstrap
counts). All starts move together as one batch of shape (M, p):

- Levenberg-Marquardt on iteratively reweighted least squares. The Huber
  loss is majorised at the current residuals by the quadratic of weights
  psi(r)/r = min(1, delta/|r|), so the Gauss-Newton step of that weighted
  problem, damped by mu diag(H), is a descent direction of the true
  objective; a step is kept only where the objective decreases, mu shrinks
  after a kept step and grows after a refused one. Gradients and Jacobians
  are analytic (:mod:`normscale.scaling.forms`); the p x p systems are
  solved for all starts in one ``numpy.linalg.solve``.
- A start is converged when a kept step changes its objective by at most
  ``FTOL`` relative and moves no parameter by more than ``XTOL`` (relative),
  or when its gradient is below ``GTOL``, or when no damping gives a
  decrease any more and its gradient is below ``STALL_GTOL`` (the floor of
  float64 arithmetic). Anything else (the iteration cap, a stall with a
  large gradient, a non-finite objective) is reported as not converged.

Starts work in a pool of ``BLOCK`` (small enough for the cache), refilled from
the waiting starts as others finish. On large tables the path from a far
start is first walked on every ``COARSE``-th point (4x cheaper an
iteration), then the full data takes over: on Epoch's grid and data this
halves the time, with the same best objective; every start's reported
outcome is the full-data one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale.scaling.forms import Form

#: relative objective change of a kept step below which a start has converged
FTOL = 1e-10
#: relative parameter change (max over parameters) below which a kept step is converged
XTOL = 1e-7
#: gradient (max abs, objective units) below which a start has converged outright
GTOL = 1e-12
#: gradient, relative to the objective, that still counts as converged when a start stalls
#: (no damping decreases the objective: float64 cannot resolve a better point)
STALL_GTOL = 1e-6
#: damping: initial value (relative to diag(H)) and the cap beyond which a start has stalled
MU0, MU_MAX = 1e-3, 1e10
#: iteration cap per start (one Jacobian per iteration)
MAX_ITER = 400
#: coarse-to-fine: with at least COARSE_MIN_POINTS points, starts first move on every
#: COARSE-th point for up to COARSE_ITER iterations, then on all points until converged
COARSE, COARSE_MIN_POINTS, COARSE_ITER = 4, 100, 60
#: starts per block: small enough that a block's (block, n) temporaries stay in cache
#: (256 x 240 points: 0.5 MB; 4096 runs 3x slower per start on the Chinchilla data)
BLOCK = 256
#: bytes that a pool's (starts x points) temporaries may take (the pool shrinks below BLOCK
#: on tables with many rows, so memory stays bounded whatever the size): 256 MiB
MEMORY = 2 ** 28


def rho(r: np.ndarray, delta: float | None) -> np.ndarray:
    """The loss of residuals ``r``: Huber of threshold ``delta``, or r^2/2 when None."""
    if delta is None:
        return 0.5 * r * r
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _psi_and_weight(r: np.ndarray, delta: float | None) -> tuple[np.ndarray, np.ndarray]:
    """rho'(r) and the IRLS weight rho'(r)/r."""
    if delta is None:
        return r, np.ones_like(r)
    a = np.abs(r)
    return np.clip(r, -delta, delta), np.where(a <= delta, 1.0, delta / np.maximum(a, delta))


@dataclass(frozen=True)
class Batch:
    """The outcome of every start: end point, objective, gradient, status.

    One row per start of the batch: M starts, p LSE parameters of the form.

    Attributes
    ----------
    theta : array of shape (M, p)
        End points, in LSE parameters.
    objective : array of shape (M,)
        The objective at each end point, sum_i w_i rho(log yhat_i - log y_i)
        (:func:`objective`).
    grad_max : array of shape (M,)
        The largest absolute component of the objective's gradient in theta
        at each end point (objective units).
    converged : array of bool, shape (M,)
        Whether the start met a convergence test (module notes: ``FTOL`` and
        ``XTOL``, ``GTOL``, or a stall below ``STALL_GTOL``); False after the
        iteration cap, a stall with a large gradient or a non-finite
        objective.
    n_iter : array of int, shape (M,)
        Levenberg-Marquardt iterations used (coarse and full-data ones
        together).
    """

    theta: np.ndarray
    objective: np.ndarray
    grad_max: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray


def objective(form: Form, theta: np.ndarray, lx: np.ndarray, logy: np.ndarray,
              delta: float | None, weights: np.ndarray | None = None) -> np.ndarray:
    """The objective of each row of ``theta`` (M, p): sum_i w_i rho(log yhat_i - log y_i)."""
    f, _ = form.evaluate(np.atleast_2d(theta), lx, jacobian=False)
    w = np.ones_like(logy) if weights is None else weights
    return (w * rho(f - logy, delta)).sum(axis=-1)


def _evaluate(form, theta, lx, logy, w, delta):
    """Objective (M,), gradient (M, p), IRLS matrix and Huber Gauss-Newton matrix (M, p, p)."""
    f, J = form.evaluate(theta, lx)
    r = f - logy
    psi, irls = _psi_and_weight(r, delta)
    obj = (w * rho(r, delta)).sum(axis=-1)
    grad = (J @ (w * psi)[..., None])[..., 0]                      # (M, p)
    Jt = np.swapaxes(J, 1, 2)                                      # (M, n, p)
    H_irls = (J * (w * irls)[:, None, :]) @ Jt                     # (M, p, p)
    if delta is None:
        return obj, grad, H_irls, H_irls
    inside = (np.abs(r) <= delta) * w
    return obj, grad, H_irls, (J * inside[:, None, :]) @ Jt


def _trial_objective(form, theta, lx, logy, w, delta):
    f, _ = form.evaluate(theta, lx, jacobian=False)
    return (w * rho(f - logy, delta)).sum(axis=-1)


def _fit_pool(form, theta0, lx, logy, w, delta, max_iter, ftol=FTOL, xtol=XTOL):
    """Levenberg-Marquardt on a pool of at most ``BLOCK`` starts, refilled as starts finish."""
    M, p = theta0.shape
    theta = theta0.copy()
    obj = np.full(M, np.inf)
    grad = np.zeros((M, p))
    H = np.zeros((M, p, p))
    G = np.zeros((M, p, p))
    mu = np.full(M, MU0)
    nu = np.full(M, 2.0)
    n_iter = np.zeros(M, dtype=int)
    converged = np.zeros(M, dtype=bool)
    pool = np.zeros(0, dtype=int)
    queue = 0                                   # next start to admit
    # about 4 (p + 4) floats per start and point live at once (Jacobian, products, trials)
    block = max(1, min(BLOCK, MEMORY // (len(logy) * 4 * (p + 4) * 8)))
    eye = np.eye(p)
    two = delta is not None

    def rows(i):
        return w if w.ndim == 1 else w[i]

    while True:
        if pool.size < block and queue < M:     # admit waiting starts
            new = np.arange(queue, min(M, queue + block - pool.size))
            queue = new[-1] + 1
            obj[new], grad[new], H[new], G[new] = _evaluate(form, theta[new], lx, logy,
                                                            rows(new), delta)
            fine = np.isfinite(obj[new]) & np.all(np.isfinite(grad[new]), axis=1)
            pool = np.concatenate([pool, new[fine]])
        if pool.size == 0:
            break
        idx = pool
        gs, th, ob = grad[idx], theta[idx], obj[idx]
        d = np.einsum("mpp->mp", H[idx])
        d = np.maximum(d, 1e-12 * d.max(axis=1, keepdims=True) + 1e-300)
        damp = (mu[idx, None] * d)[:, :, None] * eye
        # two candidate steps: the IRLS one (a descent step of the majoriser) and the
        # Gauss-Newton one of the Huber curvature itself (Newton on the points inside delta)
        A = np.concatenate([H[idx] + damp, G[idx] + damp]) if two else H[idx] + damp
        rhs = np.concatenate([gs, gs]) if two else gs
        try:
            steps = -np.linalg.solve(A, rhs[:, :, None])[..., 0]
        except np.linalg.LinAlgError:
            steps = -np.einsum("mpq,mq->mp", np.linalg.pinv(A), rhs)
        k = idx.size
        o_new = _trial_objective(form, th + steps[:k], lx, logy, rows(idx), delta)
        o_new = np.where(np.isfinite(o_new), o_new, np.inf)
        step, Hm = steps[:k], H[idx]
        if two:
            o2 = _trial_objective(form, th + steps[k:], lx, logy, rows(idx), delta)
            pick2 = np.isfinite(o2) & (o2 < o_new)
            step = np.where(pick2[:, None], steps[k:], step)
            o_new = np.where(pick2, o2, o_new)
            Hm = np.where(pick2[:, None, None], G[idx], Hm)
        n_iter[idx] += 1
        ok = o_new <= ob
        # gain ratio: actual over predicted decrease (the quadratic model of the picked step)
        pred = -(np.einsum("mp,mp->m", gs, step)
                 + 0.5 * np.einsum("mp,mpq,mq->m", step, Hm, step))
        gain = (ob - o_new) / np.maximum(pred, 1e-300)
        small = (ob - o_new <= ftol * np.maximum(np.abs(ob), 1e-300)) & (
            np.abs(step).max(axis=1) <= xtol * (1.0 + np.abs(th).max(axis=1)))
        acc = idx[ok]
        if acc.size:
            theta[acc] += step[ok]
            obj[acc], grad[acc], H[acc], G[acc] = _evaluate(form, theta[acc], lx, logy,
                                                            rows(acc), delta)
            # Nielsen's update: mu shrinks by up to 3x after a good step, grows ever faster
            # after refused ones
            mu[acc] *= np.maximum(1.0 / 3.0, 1.0 - (2.0 * np.minimum(gain[ok], 1.0) - 1.0) ** 3)
            mu[acc] = np.maximum(mu[acc], 1e-12)
            nu[acc] = 2.0
        rej = idx[~ok]
        mu[rej] *= nu[rej]
        nu[rej] *= 2.0
        gmax = np.abs(grad[idx]).max(axis=1)
        done_ok = (ok & small) | (gmax <= GTOL)
        stalled = mu[idx] > MU_MAX
        done_stall = stalled & ~done_ok & (gmax <= STALL_GTOL * np.maximum(np.abs(obj[idx]), 1e-12))
        converged[idx[done_ok | done_stall]] = True
        pool = idx[~(done_ok | stalled | (n_iter[idx] >= max_iter))]
    return Batch(theta, obj, np.abs(grad).max(axis=1), converged, n_iter)


def fit_batch(form: Form, theta0: np.ndarray, lx: np.ndarray, logy: np.ndarray, *,
              delta: float | None, weights: np.ndarray | None = None,
              max_iter: int = MAX_ITER, coarse: bool = True, ftol: float = FTOL,
              xtol: float = XTOL) -> Batch:
    """Minimise the objective from every row of ``theta0`` at once.

    Parameters
    ----------
    form : Form
    theta0 : array of shape (M, p)
        Starts, in the form's LSE parameters.
    lx : array of shape (n, d)
        Log inputs.
    logy : array of shape (n,)
        Log outputs.
    delta : float or None
        Huber threshold on log y; None for the squared loss.
    weights : array of shape (n,) or (M, n), optional
        Data weights, one row per start (bootstrap counts) or shared.
    max_iter : int
        Iteration cap per start (of the fine stage).
    coarse : bool
        Walk first on every ``COARSE``-th point (with at least
        ``COARSE_MIN_POINTS`` points): for far starts; starts already near a
        minimum (bootstrap replicates) skip it.
    ftol, xtol : float
        The convergence test of a kept step (relative change of the objective,
        largest relative change of a parameter); ``FTOL`` and ``XTOL`` by
        default.

    Returns
    -------
    Batch
        Every start's end point, objective, gradient and status.
    """
    theta0 = np.atleast_2d(np.asarray(theta0, dtype=float))
    w = np.ones_like(logy) if weights is None else np.asarray(weights, dtype=float)
    # far trial steps overflow exp(): their objective is inf and the step is refused
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if not coarse or len(logy) < COARSE_MIN_POINTS:
            return _fit_pool(form, theta0, lx, logy, w, delta, max_iter, ftol, xtol)
        # coarse to fine: the long path from a far start is walked on every COARSE-th
        # point (COARSE times cheaper), then the full data takes over from where it ended
        sub = slice(None, None, COARSE)
        ws = w[sub] if w.ndim == 1 else w[:, sub]
        first = _fit_pool(form, theta0, lx[sub], logy[sub], ws, delta, COARSE_ITER)
        ok = np.all(np.isfinite(first.theta), axis=1) & np.isfinite(first.objective)
        mid = np.where(ok[:, None], first.theta, theta0)
        out = _fit_pool(form, mid, lx, logy, w, delta, max_iter, ftol, xtol)
    return Batch(out.theta, out.objective, out.grad_max, out.converged,
                 out.n_iter + first.n_iter)
