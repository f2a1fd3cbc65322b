"""Reference learning rules: the two limits of the fixed-norm perceptron (docs/science.md 1.2).

- lambda -> 0: Hebb's rule w ~ sum_mu y_mu x_mu, with the closed form
  R_Hebb = sqrt(2 alpha / (2 alpha + pi)) for N -> infinity;
- lambda -> infinity: the maximal-stability perceptron, the solution of the
  quadratic programme  min |w|^2  subject to  y_mu w . x_mu >= 1, solved
  exactly (finite termination) as a least-distance programme by the
  Lawson-Hanson non-negative least squares algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import nnls

from normscale._validation import POSITIVE, check_param
from normscale.perceptron.data import PerceptronData, generalization_error, overlap


def hebb_overlap(*, alpha: float) -> float:
    """R_Hebb = sqrt(2 alpha / (2 alpha + pi)), the N -> infinity overlap of Hebb's rule."""
    check_param("hebb_overlap", "alpha", alpha, POSITIVE)
    return float(np.sqrt(2 * alpha / (2 * alpha + np.pi)))


def hebb_error(*, alpha: float) -> float:
    """eps_0 = arccos(R_Hebb)/pi (docs/science.md 1.2): the lambda -> 0 error for N -> infinity."""
    return float(generalization_error(hebb_overlap(alpha=alpha)))


def hebb(data: PerceptronData) -> torch.Tensor:
    """Hebb's rule w = sum_mu y_mu x_mu for each seed, normalised to |w|^2 = N; shape (S, N)."""
    w = data.z.sum(1)
    return w * (np.sqrt(data.n) / w.norm(dim=-1, keepdim=True))


@dataclass(frozen=True)
class MaxStability:
    """The maximal-stability perceptrons of S seeds.

    Attributes
    ----------
    weights : Tensor of shape (S, N)
        The maximal-stability weights of each seed, normalised to |w|^2 = N.
    r : ndarray of shape (S,)
        R, the overlap with the teacher.
    eps : ndarray of shape (S,)
        The generalisation error arccos(R) / pi.
    kappa : ndarray of shape (S,)
        The maximal stability min_mu Delta_mu, Delta_mu = z_mu . w / sqrt(N)
        for the normalised w.
    n_support : ndarray of shape (S,)
        Support vectors: examples with a positive multiplier in the NNLS
        solution.
    kkt_violation : ndarray of shape (S,)
        max over mu of (1 - y w.x) for the unnormalised solution (0 up to
        rounding when solved exactly).
    """

    weights: torch.Tensor
    r: np.ndarray
    eps: np.ndarray
    kappa: np.ndarray
    n_support: np.ndarray
    kkt_violation: np.ndarray


def max_stability(data: PerceptronData) -> MaxStability:
    """The maximal-stability (max-margin) perceptron, solved exactly per seed.

    Parameters
    ----------
    data : PerceptronData

    Returns
    -------
    MaxStability

    Notes
    -----
    The lambda -> infinity limit of docs/science.md 1.2. The quadratic programme
    min |w|^2 s.t. z w >= 1 is a least-distance programme; with
    E = [z^T; 1^T] of shape (N+1, P) and f = (0, ..., 0, 1), the
    non-negative least squares solution u of min |E u - f| gives the
    residual r = E u - f and w = -r[:N] / r[N] (Lawson and Hanson, *Solving
    Least Squares Problems*, 1974, ch. 23). The active-set NNLS algorithm
    terminates in finitely many steps; its cost grows like N^2 times the
    number of support vectors squared (seconds at N = 400, about 20 s at
    N = 1000, alpha = 5).
    """
    z = data.z.detach().cpu().numpy().astype(np.float64)
    weights, kappas, supports, viol = [], [], [], []
    for zs in z:
        p, n = zs.shape
        e = np.vstack([zs.T, np.ones(p)])
        f = np.zeros(n + 1)
        f[-1] = 1.0
        u, _ = nnls(e, f, maxiter=50 * p)
        r = e @ u - f
        w = -r[:n] / r[n]
        margins = zs @ w
        viol.append(float(np.max(1.0 - margins)))
        supports.append(int(np.count_nonzero(u > 0)))
        w = w * (np.sqrt(n) / np.linalg.norm(w))
        kappas.append(float(np.min(zs @ w) / np.sqrt(n)))
        weights.append(w)
    w = torch.as_tensor(np.stack(weights), dtype=data.z.dtype, device=data.z.device)
    r = overlap(w, data.teacher).cpu().numpy()
    return MaxStability(weights=w, r=r, eps=generalization_error(r), kappa=np.array(kappas),
                        n_support=np.array(supports), kkt_violation=np.array(viol))
