"""Free-norm gradient descent on the logistic loss (docs/science.md 1.3), batched over seeds.

w(t+1) = w(t) - lr * grad L(w(t)),  L(w) = (1/P) sum_mu log(1 + exp(-2 Delta_mu)),
Delta_mu = z_mu . w, with w = u / sqrt(N) so that the norm of docs/science.md 1.1
is lambda(t) = |w(t)| = |u(t)| / sqrt(N), and the stability of the unit
direction is Delta_mu / lambda. On separable data lambda(t) grows (like
log t at late times) and the direction tends to maximal stability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from normscale._validation import POSITIVE, POSITIVE_INT, check_param
from normscale.perceptron.data import PerceptronData, _generator, generalization_error, overlap
from normscale.perceptron.fixed import softplus

_INIT = 2  # stream id of the initial condition inside one seed


@dataclass(frozen=True)
class GDPath:
    """A gradient-descent trajectory sampled at log-spaced steps.

    Arrays have shape (S, K) (seeds, recorded steps) except ``steps`` (K,).

    Attributes
    ----------
    steps : ndarray of int, shape (K,)
        The recorded steps, increasing (0 = the initial condition).
    lam : ndarray of shape (S, K)
        The norm lambda(t) = |w(t)| = |u(t)| / sqrt(N).
    r : ndarray of shape (S, K)
        R, the overlap of w(t)'s direction with the teacher.
    eps : ndarray of shape (S, K)
        The generalisation error arccos(R) / pi.
    train_loss : ndarray of shape (S, K)
        The training loss of the unit direction at norm lambda(t), as in
        fixed mode: (1/P) sum_mu log(1 + exp(-2 Delta_mu)) / lambda(t).
    train_error : ndarray of shape (S, K)
        The fraction of training examples with Delta_mu <= 0.
    lr : float
        The learning rate used (:func:`default_lr` unless given).
    """

    steps: np.ndarray
    lam: np.ndarray
    r: np.ndarray
    eps: np.ndarray
    train_loss: np.ndarray
    train_error: np.ndarray
    lr: float


def default_lr(*, alpha: float) -> float:
    """1 / (1 + 1/sqrt(alpha))^2: the inverse of the Marchenko-Pastur edge of x^T x / P.

    The Hessian of L is at most x^T x / P, whose top eigenvalue tends to
    (1 + 1/sqrt(alpha))^2, so this is the classic 1/L step, stable with room.
    """
    check_param("default_lr", "alpha", alpha, POSITIVE)
    return float(1.0 / (1.0 + 1.0 / np.sqrt(alpha)) ** 2)


def record_steps(*, steps: int, n_record: int) -> np.ndarray:
    """Step 0 and about n_record log-spaced steps from 1 to ``steps``, unique and sorted."""
    check_param("record_steps", "steps", steps, POSITIVE_INT)
    check_param("record_steps", "n_record", n_record, POSITIVE_INT)
    at = np.unique(np.round(np.geomspace(1, steps, n_record)).astype(int))
    return np.concatenate([[0], at])


def gradient_descent(data: PerceptronData, *, steps: int = 10_000, lr: float | None = None,
                     init_norm: float = 1e-3, n_record: int = 60) -> GDPath:
    """Run free-norm gradient descent from a small random start (docs/science.md 1.3).

    Parameters
    ----------
    data : PerceptronData
    steps : int
        Number of full-batch gradient steps.
    lr : float, optional
        Learning rate; :func:`default_lr` by default.
    init_norm : float
        lambda(0): the start is a random direction (drawn from the seed) of this norm.
    n_record : int
        About this many log-spaced steps are recorded, plus step 0.

    Returns
    -------
    GDPath
    """
    owner = "gradient_descent"
    check_param(owner, "steps", steps, POSITIVE_INT)
    check_param(owner, "init_norm", init_norm, POSITIVE)
    lr = default_lr(alpha=data.alpha) if lr is None else check_param(owner, "lr", lr, POSITIVE)
    at = record_steps(steps=steps, n_record=n_record)
    z = data.z
    p = z.shape[1]
    w = torch.stack([torch.randn(data.n, generator=_generator(s, _INIT), dtype=torch.float64)
                     for s in data.seeds]).to(z)
    w *= init_norm / w.norm(dim=-1, keepdim=True)
    rec = {k: [] for k in ("lam", "r", "train_loss", "train_error")}
    j = 0
    for t in range(steps + 1):
        delta = torch.einsum("spn,sn->sp", z, w)  # (S, P)
        if t == at[j]:
            lam = w.norm(dim=-1)
            rec["lam"].append(lam)
            rec["r"].append(overlap(w, data.teacher))
            rec["train_loss"].append(softplus(-2.0 * delta).mean(-1) / lam)
            rec["train_error"].append((delta <= 0).to(z.dtype).mean(-1))
            j += 1
            if j == len(at):
                break
        s = torch.sigmoid(-2.0 * delta)
        w = w + (2.0 * lr / p) * torch.einsum("spn,sp->sn", z, s)
    arr = {k: torch.stack(v, dim=1).cpu().numpy() for k, v in rec.items()}
    return GDPath(steps=at, eps=generalization_error(arr["r"]), lr=lr, **arr)
