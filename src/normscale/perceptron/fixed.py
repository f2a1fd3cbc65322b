"""The fixed-norm perceptron: the logistic loss minimised on a sphere (docs/science.md 1.1).

For each lambda of a grid and each seed, find

    d*(lambda) = argmin over |d| = 1 of  L(d) = (1/P) sum_mu V_lambda(Delta_mu),
    Delta_mu = z_mu . d,   V_lambda(D) = (1/lambda) log(1 + exp(-2 lambda D)),

which is the minimiser of sum_mu log(1 + exp(-2 y u . x / sqrt N)) over
|u| = lambda sqrt(N) (u = lambda sqrt(N) d). The solver is a Riemannian
Newton method on the sphere: the Newton system is solved by truncated
conjugate gradients with Hessian-vector products over the rows that carry
weight, a step is retracted onto the sphere by normalisation and accepted
by Armijo backtracking. Where plain CG is slow (large lambda: the Hessian's
condition number grows like lambda), CG is preconditioned by a Cholesky
factor of the Hessian, built once and reused over Newton steps and lambdas
until it goes stale. Seeds are solved in lock-step on one (S, P, N)
tensor, each with its own stopping test; lambdas are visited in increasing
order, the first started from Hebb's rule (the lambda -> 0 limit), the
next ones from a polynomial through the last two to four solutions, in log
lambda or in 1/lambda, or from the last solution (whichever has the lowest
loss at the new lambda, per seed).

Stopping test: |grad_R L| <= gtol * |grad L|, i.e. the sine of the angle
between the Euclidean gradient and the normal of the sphere. Because the
Riemannian Hessian is bounded below by -(grad L . d) = |grad L| cos(angle)
at the solution (the curvature of the sphere), the distance of d to the
exact minimiser is then at most about gtol, and so is the error on R.

Precision: the passes over z are memory-bound, so where gtol >= 1e-4 they
read a float32 copy of float64 data (half the bytes; precision.py keeps
the vectors in float64 and rescales them so that nothing underflows). At
N = 1000, alpha = 10 and gtol = 1e-3 this took the path from 8.4 s to 4.6 s
(one thread) with the same Newton and CG iterations and the same R to
1e-7; below gtol ~ 1e-5 float32 passes stall (the test's own rounding is
about 5e-6), so tighter runs keep the data's precision. On binary inputs
(z = +-1, exact in float16) the CG products that read every row use float16
copies of z and z^T (2 bytes an entry: 2.3x faster products; their 3e-4
relative error is far below the CG tolerance of 1e-2 or more that gtol >=
1e-4 asks; same Newton and CG counts; 1.45 -> 1.33 s CPU). The carried
stabilities are not recomputed: their float32 error stays at 4e-7 of their
size along the whole path (measured), it does not accumulate.

Measured at that size and not adopted (CPU time of the path, one thread):
solving 2 or 4 consecutive lambdas in lock-step, so that their passes
become one matrix-matrix product (1.6 and 1.8 s against 1.5 s: starts
extrapolated further need more Newton steps, lock-step CG runs as long as
its slowest lambda, and MKL's 4-column products cost 1.2-1.9 passes here);
the two passes of a Hessian product fused block by block through the cache
(no change); an L-BFGS preconditioner from earlier CG pairs for plain CG
(204 -> 198 CG iterations, no faster); earlier or more frequent Cholesky
builds, tighter CG forcing (fewer CG iterations or Newton steps, no
faster); reusing gathered rows across Newton steps and lambdas (no change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from normscale._validation import (
    POSITIVE,
    POSITIVE_INT,
    Interval,
    Options,
    check_array,
    check_param,
)
from normscale.perceptron.data import PerceptronData, generalization_error, overlap
from normscale.perceptron.precision import gram, half_copies, hessvec_half, matvec, rmatvec

_ARMIJO = 1e-4  # sufficient-decrease constant of the line search
_MAX_HALVINGS = 40
_FORCING = 0.1  # largest relative CG residual of a Newton step
_NEAR, _AIM = 30.0, 0.5  # within _NEAR * gtol, the CG residual aims at _AIM * gtol
_ROUNDING = 1e-13  # relative resolution of the loss in the line search
_MAX_STEP = 1.0  # longest Newton step |eta| (a rotation by 45 degrees) before the line search
# rows whose Hessian weight is below _DROP * the largest are left out of the
# Hessian products, and below _DROP_PRECOND out of the preconditioner (the
# gradient stays exact: this changes Newton's rate, not the solution)
_DROP = 1e-8
_DROP_PRECOND = 1e-5
# plain CG gets at least _PLAIN_CG iterations before a preconditioner is built
# (more where the build is dear, see _plain_budget), a factor from earlier
# steps gets _PLAIN_CG, and a solve that needs more than _STALE marks the
# factor as stale (rebuilt at the next Newton step)
_PLAIN_CG = 12
_STALE = 6
# a build (k N^2 + N^3/3 flops of BLAS-3) costs about as much as this many
# passes over the k active rows per flop-equivalent (BLAS-3 vs memory-bound
# matrix-vector products, measured on CPU), and serves about _REUSE steps
_DENSE_SPEEDUP = 10.0
_REUSE = 8
# the start at the next lambda: a polynomial in log lambda through up to _PREDICT_ORDER + 1
# earlier solutions (of degree _PREDICT_ORDER at most; each seed keeps the best degree)
_PREDICT_ORDER = 3
# ... in log lambda, and in 1/lambda (the minimiser approaches the maximal-stability one
# like 1/lambda at large lambda)
_PREDICT_VARIABLES = (math.log, lambda lam: -1.0 / lam)
_HALF = True  # float16 CG products on binary inputs where gtol >= 1e-4 (module notes)
_RIDGE = 1e-5  # smallest diagonal shift of the preconditioner, relative to its mean diagonal
_F32_GTOL = 1e-4  # smallest gtol served by float32 passes (they stall near 5e-6: 20x margin)


def copy_bytes(*, dtype: str, gtol: float, inputs: str, device: str = "cpu") -> int:
    """Bytes per input value of the working copies :func:`fixed_norm_path` makes of float64
    data beside it: a float32 copy where ``gtol >= 1e-4`` (4 bytes) and, on binary inputs on
    the CPU, float16 copies of z and its transpose (2 + 2 bytes); 0 otherwise."""
    if dtype != "float64" or gtol < _F32_GTOL:
        return 0
    return 4 + (4 if _HALF and inputs == "binary" and device == "cpu" else 0)


@dataclass(frozen=True)
class FixedNormPath:
    """Fixed-norm minimisers along a lambda grid, one row per seed.

    Arrays have shape (S, L) (seeds, lambdas) except ``lams`` (L,), sorted
    in increasing order.

    Attributes
    ----------
    lams : numpy.ndarray of shape (L,)
        The norms lambda, increasing.
    r : numpy.ndarray of shape (S, L)
        Overlap R = w . teacher / (|w| |teacher|) of each minimiser with the teacher.
    eps : numpy.ndarray of shape (S, L)
        Generalisation error arccos(R) / pi.
    train_loss : numpy.ndarray of shape (S, L)
        Mean V_lambda(Delta) over the training set at the minimiser.
    train_error : numpy.ndarray of shape (S, L)
        Fraction of training examples with stability Delta <= 0.
    converged : numpy.ndarray of bool, shape (S, L)
        The stopping test |grad_R L| <= gtol |grad L| was met.
    grad_norm : numpy.ndarray of shape (S, L)
        The final |grad_R L| / |grad L| (the tangential gradient's share).
    n_iter : numpy.ndarray of int, shape (S, L)
        Newton iterations spent at each lambda.
    n_cg : numpy.ndarray of int, shape (S, L)
        Conjugate-gradient iterations spent at each lambda.
    directions : torch.Tensor of shape (S, N)
        The unit minimisers at the last lambda.
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
    """Delta = z . d per seed and example; shape (S, P), in d's dtype. One pass over z."""
    return matvec(z, d)


def _loss_of(delta: torch.Tensor, lam: float) -> torch.Tensor:
    """L = (1/P) sum V_lambda(Delta) per seed; shape (S,)."""
    return softplus(-2.0 * lam * delta).mean(-1) / lam


def _grad_of(z: torch.Tensor, delta: torch.Tensor, lam: float):
    """Euclidean gradient of L (one pass over z) and the per-example Hessian weights."""
    s = torch.sigmoid(-2.0 * lam * delta)
    p = z.shape[1]
    g = -(2.0 / p) * rmatvec(z, s)  # (S, N)
    h = (4.0 * lam / p) * s * (1.0 - s)  # (S, P): Hess = z^T diag(h) z
    return g, h


def _active_rows(z: torch.Tensor, h: torch.Tensor, drop: float):
    """The rows of z that matter in H v (weights above ``drop`` * max), padded per seed."""
    keep = h > drop * h.amax(-1, keepdim=True)
    k = int(keep.sum(-1).max())
    if k > 0.7 * z.shape[1]:
        return z, h
    h_top, idx = torch.topk(h, max(k, 1), dim=-1)
    seed = torch.arange(z.shape[0], device=z.device)[:, None]
    return z[seed, idx], h_top  # (S, k, N): whole rows, copied as blocks


def _tangent(v: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return v - (v * d).sum(-1, keepdim=True) * d


class _Preconditioner:
    """The exact inverse of a Riemannian Hessian on the tangent space, kept for later steps.

    Built from A = z^T diag(h) z + shift I at some point (Cholesky, one
    (k, N) x (N, N) product); applied at the current d as

        M r = A^-1 r - w (d . A^-1 r) / (d . w),   w = A^-1 d,

    which is the pseudo-inverse of P_d A P_d: symmetric, positive definite on
    the tangent space of d, and exact while A is the current Euclidean
    Hessian plus shift. As lambda and d move on, it goes on serving as the
    preconditioner of CG until CG needs more than _STALE iterations.
    Seeds whose factorisation fails get the identity.
    """

    def __init__(self, z_act, h_act, shift):
        a, c = gram(z_act, h_act)  # (S, N, N) in z's dtype: A / c (CG ignores the scale)
        diag = a.diagonal(dim1=1, dim2=2)
        # a ridge where the shift is 0 (far from the solution, or with fewer
        # active rows than N): a preconditioner needs to be definite, not exact
        diag.add_(torch.maximum((shift / c[..., 0]).to(a.dtype),
                                _RIDGE * diag.mean(-1, keepdim=True)))
        chol, info = torch.linalg.cholesky_ex(a)
        self.ok = info == 0
        eye = torch.eye(a.shape[-1], dtype=chol.dtype, device=chol.device)
        self.chol = torch.where(self.ok[:, None, None], chol, eye)
        self.stale = False

    def _solve(self, v):
        if self.chol.dtype == v.dtype:
            return torch.cholesky_solve(v[..., None], self.chol)[..., 0]
        c = v.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(v.dtype).tiny)
        x = torch.cholesky_solve((v / c).to(self.chol.dtype)[..., None], self.chol)[..., 0]
        return x.to(v.dtype) * c

    def at(self, d: torch.Tensor):
        """The map r -> M r on the tangent space of d (identity for failed seeds)."""
        w = self._solve(d)
        dw = (d * w).sum(-1, keepdim=True)

        def apply(r):
            x = self._solve(r)
            return torch.where(self.ok[:, None], x - w * (d * x).sum(-1, keepdim=True) / dw, r)
        return apply


def _cg_direction(hess, rg, tol, max_cg, precond=None):
    """Truncated (preconditioned) CG for the Riemannian Newton system  Hess_R eta = -rg.

    ``hess`` maps tangent vectors v (S, N) to (Hess_R v, z_act . v), the
    second being the products with the rows it reads; ``precond``, when
    given, is the map r -> M r of ``_Preconditioner.at``. Stops per seed on
    the residual tolerance ``tol`` (S,) or on non-positive curvature (then
    the steepest-descent direction is used if no step was taken yet).
    Returns the direction, z_act . eta accumulated from the products (None
    where a seed fell back to steepest descent), the iterations spent and
    whether every seed stopped before ``max_cg``.
    """
    eta = torch.zeros_like(rg)
    zeta, fallback = 0.0, False
    r = -rg.clone()
    y = r if precond is None else precond(r)
    p = y.clone()
    ry = (r * y).sum(-1)
    active = r.norm(dim=-1) > tol
    it = 0
    while bool(active.any()) and it < max_cg:
        hp, zp = hess(p)
        php = (p * hp).sum(-1)
        neg = active & (php <= 0)
        if bool(neg.any()):
            first = neg & (eta.abs().sum(-1) == 0)
            eta = torch.where(first[:, None], -rg, eta)
            fallback = fallback or bool(first.any())
            active = active & ~neg
        a = torch.where(active, ry / torch.where(active, php, torch.ones_like(php)),
                        torch.zeros_like(ry))
        eta = eta + a[:, None] * p
        zeta = zeta + a[:, None] * zp
        r = r - a[:, None] * hp
        y = r if precond is None else precond(r)
        ry_new = (r * y).sum(-1)
        beta = torch.where(active, ry_new / ry.clamp_min(1e-300), torch.zeros_like(ry))
        p = torch.where(active[:, None], y + beta[:, None] * p, p)
        ry = torch.where(active, ry_new, ry)
        active = active & (r.norm(dim=-1) > tol)
        it += 1
    zeta = None if fallback or it == 0 else zeta
    return eta, zeta, it, not bool(active.any())


def _plain_budget(k: int, n: int) -> int:
    """Plain CG iterations worth one preconditioner build over its expected reuse.

    A CG iteration reads the k active rows twice (2 k N); a build costs
    (k N^2 + N^3/3) / _DENSE_SPEEDUP in the same units.
    """
    build = (k * n * n + n ** 3 / 3) / _DENSE_SPEEDUP
    return max(_PLAIN_CG, int(build / (2 * k * n * _REUSE)))


def _newton_direction(z, h, d, rg, shift, tol, max_cg, precond, half=None):
    """The Newton direction at d, building or refreshing the preconditioner when CG is slow.

    The products and the factor are in z's precision (the working copy of
    ``fixed_norm_path``), the CG vectors in d's. Returns the direction, z .
    eta where CG read every row (else None: a pass computes it), the CG
    iterations spent and the preconditioner to carry to the next step (or
    None).
    """
    z_act, h_act = _active_rows(z, h, _DROP)
    every_row = z_act is z

    def hess(v):
        zv = matvec(z_act, v)
        return _tangent(rmatvec(z_act, h_act * zv), d) + shift * v, zv

    if every_row and half is not None and _HALF:
        # float16 copies (binary inputs, loose gtol); z.eta from them would be too coarse
        every_row = False

        def hess(v):  # noqa: F811 (the float16 products replace the working ones)
            return _tangent(hessvec_half(half, h_act, v), d) + shift * v, 0.0

    def build():
        return _Preconditioner(*_active_rows(z, h, _DROP_PRECOND), shift)

    n_cg = 0
    if precond is None:
        eta, zeta, n_cg, ok = _cg_direction(hess, rg, tol,
                                            min(_plain_budget(*z_act.shape[1:]), max_cg))
        if ok:
            return eta, zeta if every_row else None, n_cg, None
        precond = build()
    elif precond.stale:
        precond = build()
    else:  # a factor from earlier steps: a short budget, then a fresh one
        eta, zeta, n_cg, ok = _cg_direction(hess, rg, tol, min(_PLAIN_CG, max_cg),
                                            precond.at(d))
        if ok:
            precond.stale = n_cg > _STALE
            return eta, zeta if every_row else None, n_cg, precond
        precond = build()
    eta, zeta, it, _ = _cg_direction(hess, rg, tol, max_cg, precond.at(d))
    precond.stale = it > _STALE
    return eta, zeta if every_row else None, n_cg + it, precond


def _solve_one(z, d, delta, lam, gtol, max_iter, max_cg, precond, half=None):
    """Riemannian Newton at one lambda from the start d (stabilities ``delta`` = z . d).

    Returns d, its stabilities, the status tensors, the CG iterations spent
    and the preconditioner to carry on (see ``_newton_direction``).
    """
    s_count = z.shape[0]
    stalled = torch.zeros(s_count, dtype=torch.bool, device=z.device)
    n_iter = torch.zeros(s_count, dtype=torch.long, device=z.device)
    n_cg = 0
    for _ in range(max_iter + 1):  # delta is carried: each step costs two passes over z
        g, h = _grad_of(z, delta, lam)
        gd = (g * d).sum(-1)
        rg = g - gd[:, None] * d
        g_norm = g.norm(dim=-1)
        # a gradient that underflowed to 0 (float32 at large lambda on a separable
        # sample) cannot say where the minimum is: reported as inf, not converged
        rel = torch.where(g_norm > 0, rg.norm(dim=-1) / g_norm, torch.full_like(g_norm, math.inf))
        done = rel <= gtol
        todo = ~done & ~stalled
        if not bool(todo.any()) or int(n_iter.max()) >= max_iter:
            break
        shift = (-gd).clamp_min(0)[:, None]
        forcing = torch.minimum(torch.full_like(rel, _FORCING), rel.sqrt())
        # near the test, aim the step at it: a CG iteration costs less than a Newton step
        near = rel <= _NEAR * gtol
        forcing = torch.where(near, torch.minimum(forcing, _AIM * gtol / rel), forcing)
        tol = torch.where(todo, forcing * rg.norm(dim=-1), torch.full_like(rel, float("inf")))
        eta, zeta, cg_it, precond = _newton_direction(z, h, d, rg, shift, tol, max_cg, precond,
                                                      half)
        n_cg += cg_it
        slope = (rg * eta).sum(-1)  # < 0 for a descent direction
        descent = slope < 0
        eta = torch.where(descent[:, None], eta, -rg)
        # a nearly singular Hessian (far from the solution) can give a huge step
        shorten = (_MAX_STEP / eta.norm(dim=-1, keepdim=True)).clamp_max(1.0)
        eta = eta * shorten
        slope = (rg * eta).sum(-1)
        # Armijo backtracking along the retraction (d + t eta)/|d + t eta|: its
        # stabilities are (Delta + t z.eta)/|d + t eta|, so one pass serves all t;
        # where CG read every row, z.eta is already known from its products
        if zeta is None or not bool(descent.all()):
            zeta = _stabilities(z, eta)
        else:
            zeta = zeta * shorten
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
    return d, delta, done, rel, n_iter, n_cg, precond


def _predicted_start(history, lam):
    """Start at the next lambda on a polynomial through the last solutions.

    ``history`` holds (lambda, d, delta) of up to ``_PREDICT_ORDER + 1``
    solutions at distinct lambdas, latest last. d = sum_i L_i d_i (Lagrange
    weights L_i at the new lambda), normalised; its stabilities follow
    linearly from those of the d_i, so a prediction costs no pass over z.
    The polynomials run in each variable of ``_PREDICT_VARIABLES`` and
    through the last 2, 3, ... solutions; each seed keeps the candidate with
    the lowest loss at the new lambda (the latest solution included).
    """
    _, d_best, delta_best = history[-1]
    best = _loss_of(delta_best, lam)
    for var in _PREDICT_VARIABLES:
        t = var(lam)
        for m in range(2, len(history) + 1):                 # polynomials through the last m
            nodes = history[-m:]
            ts = [var(h[0]) for h in nodes]
            weights = [math.prod((t - tj) / (ti - tj) for j, tj in enumerate(ts) if j != i)
                       for i, ti in enumerate(ts)]
            v = sum(w * h[1] for w, h in zip(weights, nodes, strict=True))
            dv = sum(w * h[2] for w, h in zip(weights, nodes, strict=True))
            norm = v.norm(dim=-1, keepdim=True)
            d, delta = v / norm, dv / norm
            loss = _loss_of(delta, lam)
            better = loss < best
            d_best = torch.where(better[:, None], d, d_best)
            delta_best = torch.where(better[:, None], delta, delta_best)
            best = torch.where(better, loss, best)
    return d_best, delta_best


def fixed_norm_path(data: PerceptronData, *, lams, gtol: float = 1e-8, max_iter: int = 100,
                    max_cg: int = 500, start: torch.Tensor | None = None,
                    passes: str = "auto") -> FixedNormPath:
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
    passes : {"auto", "data"}
        The precision of the passes over z (normscale.perceptron.precision).
        ``"data"``: that of ``data.z``. ``"auto"``: float32 for float64 data
        where ``gtol >= 1e-4`` (float32 resolves the stopping test there),
        else that of ``data.z``. The vectors stay in the data's precision.
        The float32 copy takes half the memory of float64 data again, and
        on binary inputs two float16 copies for CG take as much once more.

    Returns
    -------
    FixedNormPath

    Notes
    -----
    Implements the fixed-norm problem of docs/science.md 1.1 with
    V_lambda(Delta) = (1/lambda) log(1 + exp(-2 lambda Delta)); eps =
    arccos(R)/pi. As lambda -> 0 the minimiser tends to Hebb's rule, as
    lambda -> infinity to the maximal-stability perceptron (docs/science.md 1.2).
    """
    owner = "fixed_norm_path"
    lams = np.sort(check_array(owner, "lams", lams, POSITIVE))
    check_param(owner, "gtol", gtol, Interval(float, 0, 1, closed="neither"))
    check_param(owner, "max_iter", max_iter, POSITIVE_INT)
    check_param(owner, "max_cg", max_cg, POSITIVE_INT)
    check_param(owner, "passes", passes, Options(("auto", "data")))
    z = data.z
    low = passes == "auto" and z.dtype == torch.float64 and gtol >= _F32_GTOL
    zw = z.to(torch.float32) if low else z  # the working copy that every pass reads
    half = half_copies(z) if low and data.inputs == "binary" else None
    d = z.sum(1) if start is None else start.to(z)
    d = d / d.norm(dim=-1, keepdim=True)
    cols = {k: [] for k in ("r", "train_loss", "train_error", "converged", "grad_norm",
                            "n_iter", "n_cg")}
    delta = _stabilities(zw, d)
    precond, history = None, []  # history: (lambda, d, delta) of the last solutions
    for lam in lams:
        lam = float(lam)
        if history and history[-1][0] == lam:  # a repeated lambda: its solution again
            history.pop()
        elif history:
            d, delta = _predicted_start(history, lam)
        d, delta, done, rel, n_iter, n_cg, precond = _solve_one(
            zw, d, delta, lam, gtol, max_iter, max_cg, precond, half)
        history = [*history, (lam, d, delta)][-(_PREDICT_ORDER + 1):]
        cols["r"].append(overlap(d, data.teacher))
        cols["train_loss"].append(_loss_of(delta, lam))
        cols["train_error"].append((delta <= 0).to(delta.dtype).mean(-1))
        cols["converged"].append(done)
        cols["grad_norm"].append(rel)
        cols["n_iter"].append(n_iter)
        cols["n_cg"].append(torch.full_like(n_iter, n_cg))
    arr = {k: torch.stack(v, dim=1).cpu().numpy() for k, v in cols.items()}
    return FixedNormPath(lams=lams, eps=generalization_error(arr["r"]), directions=d, **arr)
