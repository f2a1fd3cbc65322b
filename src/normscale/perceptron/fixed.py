"""The fixed-norm perceptron: the logistic loss minimised on a sphere (SCIENCE.md 1.1).

For each lambda of a grid and each seed, find

    d*(lambda) = argmin over |d| = 1 of  L(d) = (1/P) sum_mu V_lambda(Delta_mu),
    Delta_mu = z_mu . d,   V_lambda(D) = (1/lambda) log(1 + exp(-2 lambda D)),

which is the minimiser of sum_mu log(1 + exp(-2 y u . x / sqrt N)) over
|u| = lambda sqrt(N) (u = lambda sqrt(N) d). The solver is a Riemannian
Newton method on the sphere: the Newton system is solved by truncated
conjugate gradients with Hessian-vector products, a step is retracted onto
the sphere by normalisation and accepted by Armijo backtracking. Seeds are
solved in lock-step on one (S, P, N) tensor, each with its own stopping
test; lambdas are visited in increasing order, each warm-started from the
previous solution and the first from Hebb's rule (the lambda -> 0 limit).

Stopping test: |grad_R L| <= gtol * |grad L|, i.e. the sine of the angle
between the Euclidean gradient and the normal of the sphere. Because the
Riemannian Hessian is bounded below by -(grad L . d) = |grad L| cos(angle)
at the solution (the curvature of the sphere), the distance of d to the
exact minimiser is then at most about gtol, and so is the error on R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from normscale._validation import POSITIVE, POSITIVE_INT, Interval, check_array, check_param
from normscale.perceptron.data import PerceptronData, generalization_error, overlap

_ARMIJO = 1e-4  # sufficient-decrease constant of the line search
_MAX_HALVINGS = 40
_FORCING = 0.1  # largest relative CG residual of a Newton step
_ROUNDING = 1e-13  # relative resolution of the loss in the line search
# rows whose Hessian weight is below _DROP * the largest are left out of the
# Hessian (the gradient stays exact: this changes Newton's rate, not the solution)
_DROP = 1e-8
# flops of a dense (BLAS-3) solve run about 10x faster than those of the
# memory-bound matrix-vector products of CG (measured on CPU)
_DENSE_SPEEDUP = 10.0


@dataclass(frozen=True)
class FixedNormPath:
    """Fixed-norm minimisers along a lambda grid, one row per seed.

    Arrays have shape (S, L) (seeds, lambdas) except ``lams`` (L,), sorted
    in increasing order.

    Attributes
    ----------
    lams : ndarray of shape (L,)
    r : overlap R with the teacher
    eps : generalisation error arccos(R)/pi
    train_loss : mean V_lambda(Delta) over the training set
    train_error : fraction of training examples with Delta <= 0
    converged : bool, the stopping test |grad_R L| <= gtol |grad L| was met
    grad_norm : the final |grad_R L| / |grad L|
    n_iter : Newton iterations spent at this lambda
    n_cg : conjugate-gradient iterations spent at this lambda
    directions : Tensor of shape (S, N), the unit minimisers at the last lambda
    """

    lams: np.ndarray
    r: np.ndarray
    eps: np.ndarray
    train_loss: np.ndarray
    train_error: np.ndarray
    converged: np.ndarray
    grad_norm: np.ndarray
    n_iter: np.ndarray
    n_cg: np.ndarray
    directions: torch.Tensor


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)) without the cut-off of torch's softplus (which returns x for x > 20)."""
    return x.clamp_min(0) + torch.log1p(torch.exp(-x.abs()))


def _stabilities(z: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Delta = z . d per seed and example; shape (S, P). One pass over z."""
    return torch.einsum("spn,sn->sp", z, d)


def _loss_of(delta: torch.Tensor, lam: float) -> torch.Tensor:
    """L = (1/P) sum V_lambda(Delta) per seed; shape (S,)."""
    return softplus(-2.0 * lam * delta).mean(-1) / lam


def _loss(z: torch.Tensor, d: torch.Tensor, lam: float) -> torch.Tensor:
    """L(d) per seed: (1/P) sum V_lambda(z . d); shape (S,)."""
    return _loss_of(_stabilities(z, d), lam)


def _grad_of(z: torch.Tensor, delta: torch.Tensor, lam: float):
    """Euclidean gradient of L (one pass over z) and the per-example Hessian weights."""
    s = torch.sigmoid(-2.0 * lam * delta)
    p = z.shape[1]
    g = -(2.0 / p) * torch.einsum("spn,sp->sn", z, s)  # (S, N)
    h = (4.0 * lam / p) * s * (1.0 - s)  # (S, P): Hess = z^T diag(h) z
    return g, h


def _grad(z: torch.Tensor, d: torch.Tensor, lam: float):
    """Euclidean gradient of L at d and the per-example Hessian weights."""
    return _grad_of(z, _stabilities(z, d), lam)


def _active_rows(z: torch.Tensor, h: torch.Tensor):
    """The rows of z that matter in H v (weights above _DROP * max), padded per seed."""
    keep = h > _DROP * h.amax(-1, keepdim=True)
    k = int(keep.sum(-1).max())
    if k > 0.7 * z.shape[1]:
        return z, h
    h_top, idx = torch.topk(h, max(k, 1), dim=-1)
    z_top = torch.gather(z, 1, idx[..., None].expand(-1, -1, z.shape[-1]))  # (S, k, N)
    return z_top, h_top


def _tangent(v: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return v - (v * d).sum(-1, keepdim=True) * d


def _cg_direction(z_act, h_act, d, rg, shift, tol, max_cg):
    """Truncated CG for the Riemannian Newton system  Hess_R eta = -rg  (per seed).

    Hess_R v = P_d(z^T diag(h) z v) + shift * v on the tangent space of d,
    with shift = -(grad . d). Stops on the residual tolerance ``tol`` (S,)
    or on non-positive curvature (then the steepest-descent direction is
    used if no step was taken yet). Returns the direction, the iterations
    spent and whether every seed stopped before ``max_cg``.
    """
    def hess(v):
        return _tangent(torch.einsum("skn,sk->sn", z_act,
                                     h_act * torch.einsum("skn,sn->sk", z_act, v)), d) + shift * v

    eta = torch.zeros_like(rg)
    r = -rg.clone()
    p = r.clone()
    rr = (r * r).sum(-1)
    active = rr.sqrt() > tol
    it = 0
    while bool(active.any()) and it < max_cg:
        hp = hess(p)
        php = (p * hp).sum(-1)
        neg = active & (php <= 0)
        if bool(neg.any()):
            first = neg & (eta.abs().sum(-1) == 0)
            eta = torch.where(first[:, None], -rg, eta)
            active = active & ~neg
        a = torch.where(active, rr / torch.where(active, php, torch.ones_like(php)),
                        torch.zeros_like(rr))
        eta = eta + a[:, None] * p
        r = r - a[:, None] * hp
        rr_new = (r * r).sum(-1)
        beta = torch.where(active, rr_new / rr.clamp_min(1e-300), torch.zeros_like(rr))
        p = torch.where(active[:, None], r + beta[:, None] * p, p)
        rr = torch.where(active, rr_new, rr)
        active = active & (rr.sqrt() > tol)
        it += 1
    return _tangent(eta, d), it, not bool(active.any())


def _direct_direction(z_act, h_act, d, rg, shift):
    """Newton direction from the dense Riemannian Hessian (Cholesky), per seed.

    Solves (P_d H P_d + shift P_d + shift d d^T) eta = -rg; the matrix maps
    the tangent space to itself, so eta is tangent. Seeds whose matrix is not
    positive definite get the steepest-descent direction -rg.
    """
    n = d.shape[-1]
    hess = torch.einsum("skn,sk,skm->snm", z_act, h_act, z_act)  # (S, N, N)
    proj = torch.eye(n, dtype=d.dtype, device=d.device) - d[:, :, None] * d[:, None, :]
    a = proj @ hess @ proj + shift[:, :, None] * torch.eye(n, dtype=d.dtype, device=d.device)
    chol, info = torch.linalg.cholesky_ex(a)
    eta = -torch.cholesky_solve(rg[:, :, None], chol)[..., 0]
    return torch.where((info == 0)[:, None], _tangent(eta, d), -rg)


def _solve_one(z, d, lam, gtol, max_iter, max_cg, direct):
    """Riemannian Newton at one lambda from the start d; returns d and status tensors.

    ``direct`` (bool) starts with the dense Newton system; otherwise truncated
    CG is tried first, with a budget of CG iterations worth one dense solve,
    and the dense system takes over (for this and the following lambdas)
    when the budget does not suffice.
    """
    s_count, _, n = z.shape
    stalled = torch.zeros(s_count, dtype=torch.bool, device=z.device)
    n_iter = torch.zeros(s_count, dtype=torch.long, device=z.device)
    n_cg = 0
    delta = _stabilities(z, d)  # carried along: each step costs two passes over z
    for _ in range(max_iter + 1):
        g, h = _grad_of(z, delta, lam)
        gd = (g * d).sum(-1)
        rg = g - gd[:, None] * d
        rel = rg.norm(dim=-1) / g.norm(dim=-1).clamp_min(1e-300)
        done = rel <= gtol
        todo = ~done & ~stalled
        if not bool(todo.any()) or int(n_iter.max()) >= max_iter:
            break
        z_act, h_act = _active_rows(z, h)
        shift = (-gd).clamp_min(0)[:, None]
        if not direct:
            k = z_act.shape[1]
            dense_cost = (k * n * n + n ** 3 / 3) / _DENSE_SPEEDUP
            budget = min(max_cg, max(5, int(dense_cost / (2 * k * n))))
            forcing = torch.minimum(torch.full_like(rel, _FORCING), rel.sqrt())
            tol = torch.where(todo, forcing * rg.norm(dim=-1), torch.full_like(rel, float("inf")))
            eta, cg_it, cg_ok = _cg_direction(z_act, h_act, d, rg, shift, tol, budget)
            n_cg += cg_it
            direct = not cg_ok
        if direct:
            eta = _direct_direction(z_act, h_act, d, rg, shift)
        slope = (rg * eta).sum(-1)  # < 0 for a descent direction
        eta = torch.where((slope < 0)[:, None], eta, -rg)
        slope = torch.where(slope < 0, slope, -(rg * rg).sum(-1))
        # Armijo backtracking along the retraction (d + t eta)/|d + t eta|: its
        # stabilities are (Delta + t z.eta)/|d + t eta|, so one pass serves all t
        zeta = _stabilities(z, eta)
        f0 = _loss_of(delta, lam)
        slack = _ROUNDING * f0.abs()  # the loss cannot resolve smaller decreases
        t = torch.ones_like(f0)
        accepted = ~todo
        d_new, delta_new = d.clone(), delta.clone()
        for _ in range(_MAX_HALVINGS):
            norm = (d + t[:, None] * eta).norm(dim=-1, keepdim=True)
            trial_delta = (delta + t[:, None] * zeta) / norm
            ok = ~accepted & (_loss_of(trial_delta, lam) <= f0 + _ARMIJO * t * slope + slack)
            d_new = torch.where(ok[:, None], (d + t[:, None] * eta) / norm, d_new)
            delta_new = torch.where(ok[:, None], trial_delta, delta_new)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            t = torch.where(accepted, t, 0.5 * t)
        stalled = stalled | (todo & ~accepted)
        n_iter = n_iter + todo.long()
        d, delta = d_new, delta_new
    return d, done, rel, n_iter, n_cg, direct


def fixed_norm_path(data: PerceptronData, *, lams, gtol: float = 1e-8, max_iter: int = 100,
                    max_cg: int = 500, start: torch.Tensor | None = None) -> FixedNormPath:
    """Minimise the logistic loss on the sphere |u| = lambda sqrt(N) along a lambda grid.

    Parameters
    ----------
    data : PerceptronData
        Training sets of S seeds.
    lams : array-like of shape (L,)
        Norms lambda = |u|/sqrt(N) > 0; visited in increasing order.
    gtol : float
        Stopping test |grad_R L| <= gtol |grad L| (see the module notes).
    max_iter : int
        Newton iterations allowed per lambda; a seed that needs more is
        reported with ``converged = False``.
    max_cg : int
        Conjugate-gradient iterations allowed per Newton step.
    start : Tensor of shape (S, N), optional
        Starting directions for the first lambda; Hebb's rule by default.

    Returns
    -------
    FixedNormPath

    Notes
    -----
    Implements the fixed-norm problem of SCIENCE.md 1.1 with
    V_lambda(Delta) = (1/lambda) log(1 + exp(-2 lambda Delta)); eps =
    arccos(R)/pi. As lambda -> 0 the minimiser tends to Hebb's rule, as
    lambda -> infinity to the maximal-stability perceptron (SCIENCE.md 1.2).
    """
    owner = "fixed_norm_path"
    lams = np.sort(check_array(owner, "lams", lams, POSITIVE))
    check_param(owner, "gtol", gtol, Interval(float, 0, 1, closed="neither"))
    check_param(owner, "max_iter", max_iter, POSITIVE_INT)
    check_param(owner, "max_cg", max_cg, POSITIVE_INT)
    z = data.z
    d = z.sum(1) if start is None else start.to(z)
    d = d / d.norm(dim=-1, keepdim=True)
    cols = {k: [] for k in ("r", "train_loss", "train_error", "converged", "grad_norm",
                            "n_iter", "n_cg")}
    direct = False
    for lam in lams:
        d, done, rel, n_iter, n_cg, direct = _solve_one(z, d, float(lam), gtol, max_iter, max_cg,
                                                        direct)
        delta = torch.einsum("spn,sn->sp", z, d)
        cols["r"].append(overlap(d, data.teacher))
        cols["train_loss"].append(softplus(-2.0 * lam * delta).mean(-1) / lam)
        cols["train_error"].append((delta <= 0).to(z.dtype).mean(-1))
        cols["converged"].append(done)
        cols["grad_norm"].append(rel)
        cols["n_iter"].append(n_iter)
        cols["n_cg"].append(torch.full_like(n_iter, n_cg))
    arr = {k: torch.stack(v, dim=1).cpu().numpy() for k, v in cols.items()}
    return FixedNormPath(lams=lams, eps=generalization_error(arr["r"]), directions=d, **arr)
