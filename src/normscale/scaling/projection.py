"""Variable projection: the coefficients solved linearly, only the exponents searched.

Every form is separable (:meth:`~normscale.scaling.forms.Form.basis`):
y = sum_j c_j phi_j(x; omega), linear in its prefactors and floors c >= 0
once its exponents (and break) omega are fixed: (E, A, B) and (alpha, beta)
for ``joint``, (a, c) and alpha for ``power``, (a, b) and (c0, c1, d1, f1)
for ``broken``. A multi-start over all parameters (the full start grid of
:mod:`normscale.scaling.fit`, 4,500 starts for ``joint``) spends its time
walking the coefficients from far starts; variable projection (Golub and
Pereyra 1973, 2003) searches omega alone:

1. **Rank a grid of omega by the linear fit.** For each point of
   :meth:`Form.exponent_grid` (a step of 0.2 in the exponents: 225 pairs
   (alpha, beta) for ``joint``), the coefficients are the weighted
   non-negative least squares of the relative residuals,

       min over c >= 0 of  sum_i w_i (phi_i . c / y_i - 1)^2,

   which is the first Gauss-Newton step of the loss on log y from yhat = y
   (log(phi . c) - log y ~ phi . c / y - 1). With k <= 3 coefficients the
   NNLS is exact: the unconstrained solve, and where a coefficient comes out
   negative every smaller support. Each point is ranked by the true
   objective (the engine's sum_i w_i rho(log yhat_i - log y_i)) at its
   coefficients.
2. **Refine the best few.** The ``N_REFINE`` best points (three times as
   many for ``broken``'s four searched parameters) start the engine's
   Levenberg-Marquardt (:func:`~normscale.scaling.engine.fit_batch`) with
   their projected coefficients: they start in the right basin, with the
   coefficients already fitted, so the path is short (13 to 15 iterations
   on Epoch's Chinchilla data, against 50 in median from the full grid).

A search in omega alone with the coefficients re-solved at every trial
point (Kaufman's reduced Gauss-Newton, an inner Gauss-Newton NNLS per
trial) was measured too: it reaches the same objective in 6 to 17 steps but
takes 240 ms on that data, its inner solves dominating, against 20 to 40 ms
for the ranking plus the full-parameter refinement; it is not kept.

The outcome is an engine :class:`~normscale.scaling.engine.Batch` of the
refined starts, so the multi-start bookkeeping, the bootstrap and the
reports are those of the full grid, and the full grid stays available as
the check (the same objective, ``fit_form(..., method="grid")``). The
ranking works in batches whose temporaries stay under ``MEMORY`` bytes,
however many rows the table has.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from normscale.scaling.engine import MAX_ITER, Batch, fit_batch, rho
from normscale.scaling.forms import Form

#: grid points that start the local refinement, per searched parameter beyond the first
#: (at least N_REFINE): 4 for power and joint, 12 for broken's four (c0, c1, d1, f1), whose
#: landscape has more basins
N_REFINE = 4
#: bytes that one batch of the ranking's (grid points x points) temporaries may take: 128 MiB
MEMORY = 2 ** 27


def _nnls(G: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin over c >= 0 of c'Gc/2 - b'c per row, exact for small k: every support tried.

    ``G`` (M, k, k) symmetric positive semi-definite, ``b`` (M, k). The NNLS
    minimiser is the unconstrained minimiser on its support; every support's
    feasible minimiser is a feasible point, so the lowest of them is it.
    Columns are scaled to a unit diagonal first (the basis spans decades).
    """
    M, k = b.shape
    scale = np.sqrt(np.maximum(np.einsum("mkk->mk", G), 1e-300))
    Gs = G / scale[:, :, None] / scale[:, None, :]
    bs = b / scale
    ridge = 1e-13 * np.eye(k)
    try:                                               # the interior case first: one solve
        best = np.linalg.solve(Gs + ridge, bs[:, :, None])[..., 0]
    except np.linalg.LinAlgError:
        best = np.einsum("mij,mj->mi", np.linalg.pinv(Gs + ridge), bs)
    rest = np.flatnonzero(~(np.all(best >= 0, axis=1) & np.all(np.isfinite(best), axis=1)))
    if rest.size == 0:
        return best / scale
    Gs, bs = Gs[rest], bs[rest]
    sub = np.zeros((rest.size, k))
    best_q = np.zeros(rest.size)                       # c = 0
    for size in range(1, k):
        for S in itertools.combinations(range(k), size):
            S = list(S)
            A = Gs[:, S][:, :, S] + ridge[:size, :size]
            try:
                x = np.linalg.solve(A, bs[:, S, None])[..., 0]
            except np.linalg.LinAlgError:
                x = np.einsum("mij,mj->mi", np.linalg.pinv(A), bs[:, S])
            q = 0.5 * np.einsum("mi,mij,mj->m", x, Gs[:, S][:, :, S], x) - (bs[:, S] * x).sum(1)
            ok = np.all(x >= 0, axis=1) & np.isfinite(q) & (q < best_q)
            if ok.any():
                c = np.zeros((int(ok.sum()), k))
                c[:, S] = x[ok]
                sub[ok] = c
                best_q[ok] = q[ok]
    best[rest] = sub
    return best / scale


def _predict(phi: np.ndarray, c: np.ndarray) -> np.ndarray:
    """yhat = sum_j c_j phi_j, shape (M, n), one term at a time (no (M, k, n) temporary)."""
    out = phi[:, 0] * c[:, :1]
    for j in range(1, phi.shape[1]):
        out += phi[:, j] * c[:, j:j + 1]
    return out


def _gram(A: np.ndarray, B: np.ndarray, sym: bool = False) -> np.ndarray:
    """(M, a, b) products A_i . B_j over the points of A (M, a, n) and B (M, b, n).

    One row dot product per pair (a batched matmul of (a, n) by (n, b) blocks
    is several times slower for these shapes).
    """
    M, a, b = A.shape[0], A.shape[1], B.shape[1]
    out = np.empty((M, a, b))
    for i in range(a):
        for j in range(i if sym else 0, b):
            out[:, i, j] = np.einsum("mn,mn->m", A[:, i], B[:, j])
            if sym:
                out[:, j, i] = out[:, i, j]
    return out


def _objective(phi: np.ndarray, c: np.ndarray, logy: np.ndarray, w: np.ndarray,
               delta: float | None) -> np.ndarray:
    """The objective (M,) of coefficients ``c`` (M, k) on bases ``phi`` (M, k, n); inf where a
    prediction is not positive."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        obj = (w * rho(np.log(_predict(phi, c)) - logy, delta)).sum(axis=-1)
    return np.where(np.isfinite(obj), obj, np.inf)


def linear_fit(phi: np.ndarray, logy: np.ndarray, w: np.ndarray
               ) -> np.ndarray:
    """Coefficients c >= 0 of the weighted relative least squares on each basis.

    Parameters
    ----------
    phi : array of shape (M, k, n)
        One basis per row (:meth:`Form.basis`).
    logy : array of shape (n,)
    w : array of shape (n,)
        Data weights.

    Returns
    -------
    array of shape (M, k)
        argmin over c >= 0 of sum_i w_i (phi_i . c / y_i - 1)^2.
    """
    A = phi * np.exp(-logy)
    Aw = A * w
    return _nnls(_gram(Aw, A, sym=True), Aw.sum(axis=-1))


def rank(form: Form, omega: np.ndarray, lx: np.ndarray, logy: np.ndarray, *,
         delta: float | None, weights: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (S, k) of the linear fit at each grid point and the objective there (S,)."""
    w = np.ones_like(logy) if weights is None else np.asarray(weights, dtype=float)
    k = len(form.linear)
    c = np.zeros((len(omega), k))
    obj = np.full(len(omega), np.inf)
    size = max(1, MEMORY // (len(logy) * (3 * k + 4) * 8))
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        for i in range(0, len(omega), size):
            s = slice(i, i + size)
            phi, _ = form.basis(omega[s], lx, derivatives=False)
            c[s] = linear_fit(phi, logy, w)
            obj[s] = _objective(phi, c[s], logy, w, delta)
    return c, obj


@dataclass(frozen=True)
class Projection:
    """A variable-projection search: the ranked grid and the refined starts.

    Attributes
    ----------
    grid : array of shape (S, q)
        The searched (non-linear) parameters omega of each grid point
        (:meth:`~normscale.scaling.forms.Form.exponent_grid`).
    grid_objective : array of shape (S,)
        The objective of each grid point at its linear fit of the
        coefficients (:func:`rank`); ``inf`` where a prediction is not positive.
    picks : array of int, shape (K,)
        Indices into ``grid`` of the K best finite points, best first, that
        were refined (K = ``n_refine`` of :func:`search`, or fewer finite points).
    theta0 : array of shape (K, p)
        Their starting LSE parameters: the grid point with its projected
        coefficients (:meth:`~normscale.scaling.forms.Form.join`).
    batch : Batch
        The engine's refinement from each of ``theta0``, in the same order.
    """

    grid: np.ndarray
    grid_objective: np.ndarray
    picks: np.ndarray
    theta0: np.ndarray
    batch: Batch


def search(form: Form, lx: np.ndarray, logy: np.ndarray, *, delta: float | None,
           n_refine: int | None = None, max_iter: int = MAX_ITER) -> Projection:
    """Rank the form's grid of omega by the linear fit and refine the ``n_refine`` best.

    Parameters
    ----------
    form : Form
    lx : array of shape (n, d)
        Log inputs.
    logy : array of shape (n,)
        Log outputs.
    delta : float or None
        Huber threshold on log y; None for the squared loss.
    n_refine : int, optional
        Grid points refined; ``N_REFINE`` per searched parameter beyond the
        first by default (at least ``N_REFINE``).
    max_iter : int
        Iteration cap of the refinement per start.

    Returns
    -------
    Projection
    """
    grid = form.exponent_grid(lx)
    if n_refine is None:
        n_refine = N_REFINE * max(1, len(form.searched) - 1)
    c, obj = rank(form, grid, lx, logy, delta=delta)
    order = np.argsort(obj, kind="stable")
    picks = order[np.isfinite(obj[order])][:n_refine]
    theta0 = form.join(c[picks], grid[picks])
    batch = fit_batch(form, theta0, lx, logy, delta=delta, max_iter=max_iter, coarse=False)
    return Projection(grid, obj, picks, theta0, batch)
