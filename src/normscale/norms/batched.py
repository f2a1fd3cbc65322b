"""Norm measures of K networks at once: the members of a seed ensemble (docs/science.md 2.1).

The members share one architecture and their weights are stacked along a
leading axis of size K (``torch.func.stack_module_state``). Layer discovery
is the one of :func:`~normscale.norms.discover`, on one member; each
:class:`~normscale.norms.discovery.LayerSpec` builds the stack of K
matrices by ``torch.func.vmap`` over its own ``matrix`` method, the
per-layer norms are computed for the whole stack at once, spectral norms by
a batched, warm-started Golub-Kahan-Lanczos iteration
(:func:`batched_power_iteration`), and each member's totals are assembled in
log space by the same :func:`~normscale.norms.measures.complexity` as a
single network's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
from torch import nn

from normscale._validation import POSITIVE, POSITIVE_INT, Interval, Options, check_param
from normscale.errors import ParameterError
from normscale.norms.discovery import Discovery, LayerSpec, discover
from normscale.norms.measures import LayerNorms, check_kinds, complexity, matrix_norms
from normscale.norms.tracker import (
    _NEEDS_SIGMA,
    SPECTRAL_METHODS,
    NormReport,
    _rhos,
    warn_unsupported,
)


@dataclass(frozen=True)
class BatchedPowerResult:
    """Largest singular values of a stack of matrices, and the vectors to warm-start from.

    Attributes
    ----------
    sigma : torch.Tensor of shape (K,), float64
        The estimates of ||A_k||_sigma.
    v : torch.Tensor of shape (K, cols)
        Right singular vector estimates; pass them as ``v0`` next time.
    n_iter : int
        Batched products with the stack (each paired with one with its transpose).
    converged : torch.Tensor of shape (K,), bool
        Whether each member passed the residual test before ``max_iter``.
    """

    sigma: torch.Tensor
    v: torch.Tensor
    n_iter: int
    converged: torch.Tensor


def _bmv(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (a @ v.unsqueeze(-1)).squeeze(-1)  # (K, rows, cols) @ (K, cols) -> (K, rows)


def _bvm(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return (u.unsqueeze(-2) @ a).squeeze(-2)  # (K, rows) @ (K, rows, cols) -> (K, cols): A^T u


def _ritz(vs: list[torch.Tensor], coefficients: torch.Tensor) -> torch.Tensor:
    v = _bmv(torch.stack(vs, -1), coefficients)  # (K, cols)
    return v / v.norm(dim=-1, keepdim=True)


def batched_power_iteration(a: torch.Tensor, v0: torch.Tensor | None = None, *,
                            tol: float = 1e-10, max_iter: int = 300, krylov: int = 20,
                            seed: int = 0) -> BatchedPowerResult:
    """Largest singular value of each matrix of a stack, by batched Krylov power iteration.

    The algorithm of :func:`~normscale.norms.power_iteration` (restarted
    Golub-Kahan-Lanczos bidiagonalisation with full reorthogonalisation) run
    on all K matrices in lockstep: one batched product per Krylov step, one
    batched SVD of the K small bidiagonal matrices. A member that passes the
    residual test keeps its estimate from that step (its later arithmetic is
    discarded), so each member gets what the single-matrix routine would give
    it, to rounding.

    Parameters
    ----------
    a : torch.Tensor of shape (K, rows, cols)
        The matrices (float64 for the measures of docs/science.md 2.1).
    v0 : torch.Tensor of shape (K, cols), optional
        Starting vectors (warm start); a member whose row is zero or not
        finite, or all of them when None, start from the seeded random vector
        :func:`~normscale.norms.power_iteration` uses for ``seed``.
    tol, max_iter, krylov, seed :
        As in :func:`~normscale.norms.power_iteration`.

    Returns
    -------
    BatchedPowerResult
    """
    owner = "batched_power_iteration"
    check_param(owner, "tol", tol, POSITIVE)
    check_param(owner, "max_iter", max_iter, POSITIVE_INT)
    check_param(owner, "krylov", krylov, Interval(Integral, 2, None, closed="left"))
    if a.ndim != 3:
        raise ParameterError(f"The 'a' parameter of {owner} must be a tensor of shape "
                             f"(K, rows, cols). Got shape {tuple(a.shape)} instead.")
    k, rows, cols = a.shape
    g = torch.Generator(device="cpu").manual_seed(seed)
    start = torch.randn(cols, generator=g, dtype=torch.float64).to(a.device, a.dtype)
    start = start.expand(k, cols)
    if v0 is None or tuple(v0.shape) != (k, cols):
        v0 = start
    else:
        bad = ~torch.isfinite(v0).all(-1) | (v0.norm(dim=-1) == 0)
        v0 = torch.where(bad[:, None], start, v0.to(a.dtype))
    v = v0 / v0.norm(dim=-1, keepdim=True)

    sigma = torch.zeros(k, dtype=torch.float64, device=a.device)
    converged = torch.zeros(k, dtype=torch.bool, device=a.device)
    done = torch.zeros(k, dtype=torch.bool, device=a.device)
    v_out = v.clone()
    n = 0
    while True:
        vs, us, alphas, betas = [v], [], [], []
        for j in range(min(krylov, rows, cols)):
            p = _bmv(a, vs[j])  # (K, rows)
            if j > 0:  # three-term recurrence, then full reorthogonalisation
                um = torch.stack(us, -1)  # (K, rows, j)
                p = p - betas[-1][:, None] * us[-1]
                p = p - _bmv(um, _bmv(um.mT, p))
            n += 1
            alpha = p.norm(dim=-1)  # (K,)
            exhausted = (alpha == 0) & ~done  # A v_j = 0: the Krylov space is exhausted
            if j == 0 and exhausted.any():  # A = 0 on the start vector: A = 0 unless unlucky
                zero = a.flatten(1).abs().amax(-1) == 0
                converged = torch.where(exhausted, zero, converged)
                v_out = torch.where(exhausted[:, None], v, v_out)
                done = done | exhausted  # sigma stays 0
            elif exhausted.any():  # keep the estimate of the previous step
                done = done | exhausted
                converged = converged | exhausted
            us.append(p / torch.where(alpha > 0, alpha, 1.0)[:, None])
            alphas.append(alpha)
            q = _bvm(us[-1], a) - alpha[:, None] * vs[j]
            vm = torch.stack(vs, -1)  # (K, cols, j + 1)
            q = q - _bmv(vm, _bmv(vm.mT, q))
            beta = q.norm(dim=-1)
            betas.append(beta)
            b = torch.diag_embed(torch.stack(alphas, -1).to(torch.float64))  # (K, j+1, j+1)
            if j > 0:
                b = b + torch.diag_embed(torch.stack(betas[:-1], -1).to(torch.float64), 1)
            left, svals, right_h = torch.linalg.svd(b)
            s_now = svals[:, 0]
            residual = (beta.to(torch.float64) * left[:, -1, 0]).abs()  # ||A^T u - sigma v||
            passed = (residual * residual <= tol * 2 * s_now * s_now) | (beta == 0)
            finish = ~done & (passed | (n >= max_iter))
            if finish.any():
                ritz = _ritz(vs, right_h[:, 0].to(a.dtype))
                sigma = torch.where(finish, s_now, sigma)
                v_out = torch.where(finish[:, None], ritz, v_out)
                converged = torch.where(finish, passed, converged)
                done = done | finish
            if bool(done.all()):
                return BatchedPowerResult(sigma=sigma, v=v_out, n_iter=n, converged=converged)
            vs.append(q / torch.where(beta > 0, beta, 1.0)[:, None])
        v = _ritz(vs[:len(alphas)], right_h[:, 0].to(a.dtype))


class BatchedNormTracker:
    """The norms of :class:`~normscale.norms.NormTracker` for K stacked networks at once.

    Parameters
    ----------
    model : torch.nn.Module
        One member (or any module of the members' architecture): the layers
        are discovered on it.
    tensors : mapping of str to torch.Tensor
        The members' live parameters and buffers, each of shape (K, ...), as
        ``torch.func.stack_module_state`` makes them; read at every
        measurement (update them in place while training).
    reference : None or "init", default "init"
        M of Bartlett's (2,1) terms and of the distance from initialisation:
        zero, or each member's weights at construction.
    rho, spectral, tol, max_iter, fallback, norm_layers, bias, embeddings, split_qkv :
        As in :class:`~normscale.norms.NormTracker` (``spectral="exact"``
        takes batched SVDs). The exact operator norm of convolutions
        (``conv="operator"``) is not offered here.
    """

    def __init__(self, model: nn.Module, tensors: Mapping[str, torch.Tensor], *,
                 reference: str | None = "init", rho: float | Mapping[str, float] = 1.0,
                 spectral: str = "power", tol: float = 1e-10, max_iter: int = 300,
                 fallback: bool = True, norm_layers: str = "ignore", bias: bool = False,
                 embeddings: bool = False, split_qkv: bool = True) -> None:
        owner = "BatchedNormTracker"
        check_param(owner, "spectral", spectral, Options(SPECTRAL_METHODS))
        check_param(owner, "tol", tol, POSITIVE)
        check_param(owner, "max_iter", max_iter, POSITIVE_INT)
        if reference is not None:
            check_param(owner, "reference", reference, Options(("init",)))
        self.tensors = tensors
        self.spectral, self.tol, self.max_iter, self.fallback = spectral, tol, max_iter, fallback
        self.discovery: Discovery = discover(model, norm_layers=norm_layers, bias=bias,
                                             embeddings=embeddings, split_qkv=split_qkv)
        warn_unsupported(self.discovery)
        missing = [k for s in self.discovery.layers for k in s.sources if k not in tensors]
        if missing:
            raise ParameterError(f"the stacked tensors have no {missing[0]!r} "
                                 "(a parameter or buffer of 'model')")
        self.size = int(next(iter(tensors.values())).shape[0])
        self.rhos = _rhos(rho, self.discovery.layers)
        self._reference = ([m.clone() for m in self._matrices()] if reference is not None
                           else None)
        self._vectors: list[torch.Tensor | None] = [None] * len(self.discovery.layers)

    @property
    def has_reference(self) -> bool:
        return self._reference is not None

    def _matrices(self) -> list[torch.Tensor]:
        """The stacked float64 matrices, one (K, rows, cols) tensor per layer."""
        return [torch.func.vmap(spec.matrix)({k: self.tensors[k] for k in _keys(spec)})
                for spec in self.discovery.layers]

    def measure(self, kinds: Sequence[str] | None = None,
                members: Sequence[int] | None = None) -> list[dict[str, float]]:
        """The measures named in ``kinds`` for each member of ``members`` (default all)."""
        return [r.complexity.as_dict(kinds) for r in self.report(kinds, members)]

    @torch.no_grad()
    def report(self, kinds: Sequence[str] | None = None,
               members: Sequence[int] | None = None) -> list[NormReport]:
        """One measurement per member of ``members`` (default all, in order).

        Leave out members whose weights are not finite (a diverged member).
        """
        need_sigma = bool(_NEEDS_SIGMA & set(check_kinds(kinds)))
        sel = torch.arange(self.size) if members is None else torch.as_tensor(
            list(members), dtype=torch.long)
        if sel.numel() and (int(sel.min()) < 0 or int(sel.max()) >= self.size):
            raise ParameterError(f"The 'members' parameter of BatchedNormTracker.report must "
                                 f"hold indices in [0, {self.size}). Got {list(members)} instead.")
        columns = []  # per layer: dict of field -> (len(sel),) values
        for i, a in enumerate(self._matrices()):
            a = a[sel.to(a.device)]  # (k, rows, cols)
            ref = self._reference[i][sel.to(a.device)] if self._reference is not None else None
            if need_sigma:
                sigma, n_iter, converged = self._spectral_norms(i, a, sel)
            else:
                sigma = torch.full((len(sel),), float("nan"), dtype=torch.float64)
                n_iter, converged = 0, torch.ones(len(sel), dtype=torch.bool)
            columns.append({**{k: v.tolist() for k, v in matrix_norms(a, ref).items()},
                            "spectral_norm": sigma.tolist(), "converged": converged.tolist(),
                            "n_iter": n_iter})
        reports = []
        for m in range(len(sel)):
            rows = tuple(
                LayerNorms(name=spec.name, kind=spec.kind, shape=spec.shape,
                           spectral_norm=c["spectral_norm"][m], two_one=c["two_one"][m],
                           two_one_weights=c["two_one_weights"][m], l1=c["l1"][m],
                           frobenius=c["frobenius"][m], distance=c["distance"][m],
                           rho=self.rhos[i], n_iter=c["n_iter"], converged=c["converged"][m])
                for i, (spec, c) in enumerate(zip(self.discovery.layers, columns, strict=True)))
            reports.append(NormReport(layers=rows,
                                      complexity=complexity(rows, has_reference=self.has_reference),
                                      ignored=self.discovery.ignored))
        return reports

    def _spectral_norms(self, i: int, a: torch.Tensor, sel: torch.Tensor
                        ) -> tuple[torch.Tensor, int, torch.Tensor]:
        if self.spectral == "exact" or len(sel) == 0:
            return (torch.linalg.matrix_norm(a, ord=2).cpu(), 0,
                    torch.ones(len(sel), dtype=torch.bool))
        stored = self._vectors[i]
        v0 = stored[sel.to(stored.device)] if stored is not None else None
        result = batched_power_iteration(a, v0, tol=self.tol, max_iter=self.max_iter, seed=i)
        if stored is None:
            stored = torch.zeros(self.size, a.shape[-1], dtype=a.dtype, device=a.device)
        stored[sel.to(stored.device)] = result.v
        self._vectors[i] = stored
        sigma, converged = result.sigma.clone(), result.converged.clone()
        if self.fallback and not bool(converged.all()):
            bad = ~converged
            sigma[bad] = torch.linalg.matrix_norm(a[bad], ord=2)
            converged[bad] = True
        return sigma.cpu(), result.n_iter, converged.cpu()



def _keys(spec: LayerSpec) -> tuple[str, ...]:
    """Every tensor ``spec.matrix`` reads (its sources, and a folded layer's whole affine)."""
    a = spec.affine
    extra = (a.weight, a.bias, a.running_mean, a.running_var) if a is not None else ()
    return tuple(dict.fromkeys(k for k in (*spec.sources, *extra) if k))
