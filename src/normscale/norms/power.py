"""Spectral norm by (Krylov-accelerated) power iteration, warm-started, with a convergence test."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from scipy.linalg.lapack import dstev

from normscale._validation import POSITIVE, POSITIVE_INT, Interval, check_param


@dataclass(frozen=True)
class PowerResult:
    """Largest singular value of a matrix and the state to warm-start the next call.

    Attributes
    ----------
    sigma : float
        The estimate of ||A||_sigma (a lower bound that increases every step).
    v : torch.Tensor of shape (cols,)
        The right singular vector estimate; pass it as ``v0`` next time.
    n_iter : int
        Products with A done (each paired with one product with A^T).
    converged : bool
        Whether the residual test passed before ``max_iter`` products.
    """

    sigma: float
    v: torch.Tensor
    n_iter: int
    converged: bool


def power_iteration(a: torch.Tensor, v0: torch.Tensor | None = None, *, tol: float = 1e-10,
                    max_iter: int = 300, krylov: int = 20, seed: int = 0) -> PowerResult:
    """Largest singular value of ``a`` by Krylov-accelerated power iteration.

    Restarted Golub-Kahan-Lanczos bidiagonalisation: from ``v0``, alternate
    products with A and A^T, orthogonalised, build bases U, V of up to
    ``krylov`` vectors with ``A V = U B`` (B upper bidiagonal), and take the
    top singular triplet of the small B; restart from its Ritz vector. Its
    first step *is* one power-iteration step, so a good warm start stops
    after one product with A and one with A^T; from a cold start the Krylov
    space needs far fewer products than plain power iteration when the top
    singular values are close (random-like weights at initialisation).

    Parameters
    ----------
    a : torch.Tensor of shape (rows, cols)
        The matrix (float64 for the measures of docs/science.md 2.1).
    v0 : torch.Tensor of shape (cols,), optional
        Starting vector, e.g. the ``v`` of the previous call (warm start);
        a seeded random vector when None or unusable.
    tol : float, default 1e-10
        Stop when ``r^2 / (2 sigma^2) <= tol``, r = ||A^T u - sigma v|| the
        residual of the Ritz pair (A v = sigma u holds exactly). For a single
        power step this is the relative gap of the two estimates ||A v|| and
        ||A^T u||. The error of sigma is quadratic in r: about ``tol``
        relative divided by the relative gap of the two top singular values.
    max_iter : int, default 300
        Most products with A (each paired with one with A^T).
    krylov : int, default 20
        Largest Krylov dimension before a restart (>= 2).
    seed : int, default 0
        Seed of the random start vector.

    Returns
    -------
    PowerResult
        ``n_iter`` counts products with A.
    """
    check_param("power_iteration", "tol", tol, POSITIVE)
    check_param("power_iteration", "max_iter", max_iter, POSITIVE_INT)
    check_param("power_iteration", "krylov", krylov, Interval(Integral, 2, None, closed="left"))
    rows, cols = a.shape
    if v0 is None or v0.shape != (cols,) or not torch.isfinite(v0).all() or v0.norm() == 0:
        g = torch.Generator(device="cpu").manual_seed(seed)
        v0 = torch.randn(cols, generator=g, dtype=torch.float64).to(a.device)
    m = min(krylov, rows, cols)
    # the bases, one vector per row, allocated once, updated in place with fused
    # BLAS-2 calls (the small layers' cost is the number of torch calls); the
    # small bidiagonal B in numpy (see _top_pair)
    vb, ub = a.new_empty(m + 1, cols), a.new_empty(m, rows)
    torch.div(v0.to(a.dtype), torch.linalg.vector_norm(v0).item(), out=vb[0])
    at = a.T
    alphas, betas = np.zeros(m), np.zeros(m)  # B: alphas on the diagonal, betas above
    n, beta = 0, 0.0
    while True:
        for j in range(m):
            p = torch.mv(a, vb[j])
            if j > 0:  # three-term recurrence, then full reorthogonalisation
                p.sub_(ub[j - 1], alpha=beta)
                p = torch.addmv(p, ub[:j].T, torch.mv(ub[:j], p), alpha=-1)
            n += 1
            alpha = torch.linalg.vector_norm(p).item()
            if alpha == 0.0:  # A v_j = 0: the Krylov space is exhausted
                if j == 0:  # A = 0 on the start vector: A = 0 unless unlucky
                    return PowerResult(sigma=0.0, v=vb[0].clone(), n_iter=n,
                                       converged=bool(a.abs().max() == 0))
                break
            torch.div(p, alpha, out=ub[j])
            q = torch.mv(at, ub[j]).sub_(vb[j], alpha=alpha)
            q = torch.addmv(q, vb[:j + 1].T, torch.mv(vb[:j + 1], q), alpha=-1)
            alphas[j], betas[j] = alpha, torch.linalg.vector_norm(q).item()
            beta = betas[j]
            sigma, right = _top_pair(alphas[:j + 1], betas[:j])
            # ||A^T u - sigma v|| of the Ritz pair; u = B y / sigma ends in alpha_j y_j / sigma
            residual = abs(beta * alpha * right[-1]) / sigma
            converged = residual * residual / (2 * sigma * sigma) <= tol
            if converged or n >= max_iter or beta == 0.0:
                return PowerResult(sigma=sigma, v=_ritz(vb[:j + 1], right), n_iter=n,
                                   converged=converged or beta == 0.0)
            torch.div(q, beta, out=vb[j + 1])
        k = j + 1 if alpha != 0.0 else j  # restart from the Ritz vector
        vb[0] = _ritz(vb[:k], right[:k])
        beta = 0.0


def _top_pair(alphas: np.ndarray, betas: np.ndarray) -> tuple[float, np.ndarray]:
    """Top singular value and right singular vector of the upper bidiagonal B (alphas, betas).

    From the tridiagonal B^T B (diagonal alpha_i^2 + beta_(i-1)^2, off-diagonal
    alpha_i beta_i) by LAPACK's dstev: a third of the cost of numpy's SVD at
    these sizes, where the call overhead is the cost.
    """
    if len(alphas) == 1:
        return float(alphas[0]), np.ones(1)
    diag = alphas * alphas
    diag[1:] += betas * betas
    w, z, info = dstev(diag, alphas[:-1] * betas, compute_v=1)
    if info != 0:  # not seen; the SVD is the safe way
        _, svals, right_h = np.linalg.svd(np.diag(alphas) + np.diag(betas, 1))
        return float(svals[0]), right_h[0]
    return float(np.sqrt(max(w[-1], 0.0))), z[:, -1]


def refine(a: torch.Tensor, result: PowerResult) -> PowerResult:
    """A result of iterating on a low-precision copy of ``a``, with sigma = ||A v|| in its dtype.

    Iterating on a float32 copy of a float64 ``a`` halves the memory traffic
    of each product. Rounding in the copy only perturbs the Ritz vector v,
    and ||A v|| errs by the square of that perturbation (a Rayleigh
    quotient): for float32 about 1e-14 relative, far below any useful
    ``tol``. ``n_iter`` and ``converged`` are those of ``result``.

    Examples
    --------
    >>> refine(a, power_iteration(a.float(), tol=1e-8))  # doctest: +SKIP
    """
    v = result.v.to(a.dtype)
    v = v / torch.linalg.vector_norm(v)
    return PowerResult(sigma=float(torch.linalg.vector_norm(torch.mv(a, v))), v=v,
                       n_iter=result.n_iter, converged=result.converged)


def _ritz(basis: torch.Tensor, coefficients: np.ndarray) -> torch.Tensor:
    v = torch.from_numpy(np.ascontiguousarray(coefficients)).to(basis) @ basis
    return v / v.norm()


def exact_spectral_norm(a: torch.Tensor) -> float:
    """Largest singular value by a full SVD (``torch.linalg.matrix_norm(ord=2)``)."""
    return float(torch.linalg.matrix_norm(a, ord=2))
