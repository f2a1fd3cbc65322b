"""Norm-based complexity measures from per-layer numbers (docs/science.md 2.1).

Everything here is float64 and pure: the per-layer quantities (spectral
norm, (2,1) term, l1, squared Frobenius) come in, the totals go out. The
spectral complexity is assembled in log space, so a ViT's R_A ~ 1e58, or a
product of norms beyond float64's 1e308, keeps a finite log10.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from normscale._validation import Options, check_param

#: The measures :func:`normscale.norms.measure` and ``NormTracker.measure``
#: return, in this order (the one list of names: stores take their columns
#: from here). ``distance_from_init`` is NaN when no reference is given.
MEASURES: tuple[str, ...] = (
    "spectral_complexity",
    "log10_spectral_complexity",
    "max_expansion",
    "effective_rank_factor",
    "spectral_product",
    "log10_spectral_product",
    "l1",
    "l2",
    "group_2_1",
    "distance_from_init",
)


@dataclass(frozen=True)
class LayerNorms:
    """The norms of one weight matrix A_i (float64).

    Attributes
    ----------
    name, kind : str
        As in :class:`~normscale.norms.discovery.LayerSpec`.
    shape : tuple of int
        (rows, cols) of A_i.
    spectral_norm : float
        ||A_i||_sigma (reshape) or the exact operator norm (``conv="operator"``).
    two_one : float
        Bartlett's term ||A_i^T - M_i^T||_{2,1}: sum over rows of A_i of the
        l2 norm of (A_i - M_i), M_i the reference (0 when none is given).
    two_one_weights : float
        ||A_i^T||_{2,1} (M = 0), the term of the group norm G_{2,1}.
    l1 : float
        sum |A_i|.
    frobenius : float
        ||A_i||_F.
    distance : float
        ||A_i - M_i||_F (NaN without a reference).
    rho : float
        Lipschitz constant of the activation after layer i.
    n_iter : int
        Power iterations spent on ||A_i||_sigma (0 for an exact value).
    converged : bool
        False when power iteration did not converge and no fallback was used.
    """

    name: str
    kind: str
    shape: tuple[int, int]
    spectral_norm: float
    two_one: float
    two_one_weights: float
    l1: float
    frobenius: float
    distance: float
    rho: float
    n_iter: int
    converged: bool


@dataclass(frozen=True)
class Complexity:
    """The totals of docs/science.md 2.1 over the counted layers; fields = :data:`MEASURES`.

    Attributes
    ----------
    spectral_complexity : float
        R_A = (prod_i rho_i ||A_i||_sigma) * (sum_i (||A_i^T - M_i^T||_{2,1}
        / ||A_i||_sigma)^(2/3))^(3/2) (Bartlett, Foster, Telgarsky 2017);
        ``inf`` when it exceeds float64, see the log10.
    log10_spectral_complexity : float
        log10 of ``spectral_complexity``, summed in logs so it stays finite
        where the product overflows.
    max_expansion : float
        prod_i rho_i ||A_i||_sigma.
    effective_rank_factor : float
        (sum_i (||A_i^T - M_i^T||_{2,1} / ||A_i||_sigma)^(2/3))^(3/2).
    spectral_product, log10_spectral_product : float
        prod_i ||A_i||_sigma (without the rho_i).
    l1 : float
        sum of |entries| of all counted matrices.
    l2 : float
        Frobenius norm of all counted matrices together.
    group_2_1 : float
        G_{2,1} = sum_i ||A_i^T||_{2,1} (weights themselves, M = 0).
    distance_from_init : float
        Frobenius norm of all (A_i - M_i) together (NaN without a reference).
    """

    spectral_complexity: float
    log10_spectral_complexity: float
    max_expansion: float
    effective_rank_factor: float
    spectral_product: float
    log10_spectral_product: float
    l1: float
    l2: float
    group_2_1: float
    distance_from_init: float

    def as_dict(self, kinds: Sequence[str] | None = None) -> dict[str, float]:
        """The measures named in ``kinds`` (all of :data:`MEASURES` when None)."""
        names = check_kinds(kinds)
        return {k: float(getattr(self, k)) for k in names}


assert tuple(f.name for f in fields(Complexity)) == MEASURES


def check_kinds(kinds: Sequence[str] | None) -> tuple[str, ...]:
    """Validate a selection of measure names; None means all of :data:`MEASURES`."""
    if kinds is None:
        return MEASURES
    if isinstance(kinds, str):
        kinds = (kinds,)
    for k in kinds:
        check_param("measure", "kinds", k, Options(MEASURES))
    return tuple(kinds)


def two_one_norm(a: torch.Tensor, reference: torch.Tensor | None = None) -> float:
    """Bartlett's ||A^T - M^T||_{2,1}: sum over rows of A of the l2 norm of A - M."""
    return float(two_one_norms(a, reference))


def two_one_norms(a: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`two_one_norm` of each matrix of a stack ``a`` of shape (..., rows, cols)."""
    d = a if reference is None else a - reference
    return torch.linalg.vector_norm(d, dim=-1).sum(-1)


def matrix_norms(a: torch.Tensor, reference: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every norm of :class:`LayerNorms` but the spectral one, for a matrix or a stack of them.

    From the row norms of A and of A - M (the (2,1) terms are their sums,
    the Frobenius norms the root of their sums of squares) and one l1 pass:
    three passes over the weights instead of six.

    Parameters
    ----------
    a : torch.Tensor of shape (..., rows, cols), float64
    reference : torch.Tensor of the same shape, optional
        M; without it ``two_one`` equals ``two_one_weights`` and ``distance``
        is NaN.

    Returns
    -------
    dict of str to torch.Tensor of shape (...)
        ``two_one``, ``two_one_weights``, ``l1``, ``frobenius``, ``distance``.
    """
    rows = torch.linalg.vector_norm(a, dim=-1)
    out = {"two_one_weights": rows.sum(-1), "frobenius": rows.square().sum(-1).sqrt(),
           "l1": torch.linalg.vector_norm(a, 1, dim=(-2, -1))}
    if reference is None:
        out["two_one"] = out["two_one_weights"]
        out["distance"] = torch.full_like(out["frobenius"], math.nan)
    else:
        rows = torch.linalg.vector_norm(a - reference, dim=-1)
        out["two_one"], out["distance"] = rows.sum(-1), rows.square().sum(-1).sqrt()
    return out


def log_spectral_complexity(sigmas: Sequence[float], two_ones: Sequence[float],
                            rhos: Sequence[float]) -> tuple[float, float, float]:
    """Natural logs of R_A, of its max-expansion and of its effective-rank factor.

    ``log R_A = sum_i log(rho_i sigma_i) + 3/2 log sum_i exp(2/3 (log b_i -
    log sigma_i))`` with a log-sum-exp, so no intermediate overflows. A layer
    with sigma_i = 0 gives a max expansion of 0, an infinite effective-rank
    factor and R_A = NaN.
    """
    s = np.asarray(sigmas, dtype=np.float64)
    b = np.asarray(two_ones, dtype=np.float64)
    r = np.asarray(rhos, dtype=np.float64)
    if s.size == 0:
        return -math.inf, -math.inf, -math.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        log_expansion = float(np.sum(np.log(r)) + np.sum(np.log(s)))
        terms = (2.0 / 3.0) * (np.log(b) - np.log(s))
        top = np.max(terms)
        if np.isfinite(top):
            log_sum = top + math.log(float(np.sum(np.exp(terms - top))))
        else:
            log_sum = float(top)  # -inf (all b_i = 0) or +inf (a sigma_i = 0)
        log_rank = 1.5 * log_sum
    return log_expansion + log_rank, log_expansion, log_rank


def complexity(layers: Sequence[LayerNorms], *, has_reference: bool) -> Complexity:
    """Assemble the totals of docs/science.md 2.1 from per-layer norms."""
    sig = [lay.spectral_norm for lay in layers]
    log_ra, log_exp, log_rank = log_spectral_complexity(
        sig, [lay.two_one for lay in layers], [lay.rho for lay in layers])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_prod = float(np.sum(np.log(np.asarray(sig, dtype=np.float64)))) if sig else -math.inf
    return Complexity(
        spectral_complexity=_exp(log_ra),
        log10_spectral_complexity=log_ra / math.log(10),
        max_expansion=_exp(log_exp),
        effective_rank_factor=_exp(log_rank),
        spectral_product=_exp(log_prod),
        log10_spectral_product=log_prod / math.log(10),
        l1=math.fsum(lay.l1 for lay in layers),
        l2=math.sqrt(math.fsum(lay.frobenius ** 2 for lay in layers)),
        group_2_1=math.fsum(lay.two_one_weights for lay in layers),
        distance_from_init=(math.sqrt(math.fsum(lay.distance ** 2 for lay in layers))
                            if has_reference else math.nan),
    )


def _exp(x: float) -> float:
    if math.isnan(x):
        return math.nan
    return math.inf if x > 709.0 else math.exp(x)
