"""Products with the data z in a working precision lower than that of the vectors.

The fixed-norm solver (fixed.py) spends its time in passes over the (S, P, N)
tensor z: z . v, z^T w, and Gram matrices z^T diag(h) z. These passes are
memory-bound, so a float32 copy of float64 data halves their cost. Only the
passes run in the working precision: their results are cast back to the
vectors' dtype, and everything elementwise (stabilities, sigmoids, losses,
CG recurrences) stays in float64.

float32 has a narrow exponent range: at large lambda the weights
sigmoid(-2 lambda Delta) reach 1e-100 and the residuals of a converged
solve 1e-60, both 0 in float32. So every vector is divided by its largest
entry (per seed) before the cast, and the product multiplied by it after:
the relative error of a product is then float32's (about 1e-7 times sqrt of
the length) whatever the scale. When z and the vectors share a dtype, the
functions are the plain products, bit for bit.
"""

from __future__ import annotations

import torch


def _scale(v: torch.Tensor) -> torch.Tensor:
    """The largest |entry| of v over its last axis (1 where v is 0), keepdim."""
    c = v.abs().amax(-1, keepdim=True)
    return torch.where(c > 0, c, torch.ones_like(c))


def matvec(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """z . v per seed: z (S, K, N), v (S, N) -> (S, K) in v's dtype."""
    if z.dtype == v.dtype:
        return torch.einsum("skn,sn->sk", z, v)
    c = _scale(v)
    return torch.einsum("skn,sn->sk", z, (v / c).to(z.dtype)).to(v.dtype) * c


def rmatvec(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """z^T w per seed: z (S, K, N), w (S, K) -> (S, N) in w's dtype."""
    if z.dtype == w.dtype:
        return torch.einsum("skn,sk->sn", z, w)
    c = _scale(w)
    return torch.einsum("skn,sk->sn", z, (w / c).to(z.dtype)).to(w.dtype) * c


def half_copies(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """z and z^T in float16 (S, P, N) and (S, N, P), for data that float16 holds exactly.

    The caller vouches for exactness (binary inputs: z = +-1); None off the
    CPU, where float16 products are not the memory-bound ones measured here.
    The transpose is copied in blocks of rows (4x faster than one strided copy).
    """
    if z.device.type != "cpu":
        return None
    zh = z.to(torch.float16)
    zh_t = torch.empty(zh.shape[0], zh.shape[2], zh.shape[1], dtype=zh.dtype)
    for i in range(0, zh.shape[1], 512):
        zh_t[:, :, i:i + 512] = zh[:, i:i + 512].transpose(1, 2)
    return zh, zh_t


def hessvec_half(half: tuple[torch.Tensor, torch.Tensor], h: torch.Tensor,
                 v: torch.Tensor) -> torch.Tensor:
    """z^T diag(h) z v per seed from the float16 copies of ``half_copies``; in v's dtype.

    Both products read 2 bytes per entry of z (both run as matrix-vector
    products of contiguous matrices, the only float16 layout that torch runs
    fast on CPU); v and the weighted products are rounded to float16 on the
    way, so the result carries a relative error of about 3e-4: enough for a
    CG solve to a relative residual of 1e-2 and above, not for a gradient.
    """
    zh, zh_t = half
    cv = _scale(v)
    vh = (v / cv).to(torch.float16)
    out = torch.empty_like(v)
    for s in range(zh.shape[0]):
        u = torch.mv(zh[s], vh[s]).to(v.dtype) * h[s]
        cu = u.abs().amax().clamp_min(torch.finfo(v.dtype).tiny)
        out[s] = torch.mv(zh_t[s], (u / cu).to(torch.float16)).to(v.dtype) * cu
    return out * cv


def gram(z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z^T diag(h) z / c per seed in z's dtype, and the scale c (S, 1, 1) in h's dtype.

    h >= 0 has shape (S, K). With a lower working precision, c is the
    largest h of each seed (so the matrix has entries of order K); with the
    same precision, c = 1.
    """
    c = _scale(h) if z.dtype != h.dtype else torch.ones_like(h[:, :1])
    hw = (h / c).to(z.dtype)
    if z.device.type == "cpu" and z.dtype in _SYRK:
        return _syrk(z, hw), c[..., None]
    return torch.bmm((z * hw[..., None]).transpose(1, 2), z), c[..., None]  # (S, N, N)


_SYRK = {torch.float32: "ssyrk", torch.float64: "dsyrk"}


def _syrk(z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """z^T diag(h) z by BLAS syrk: half the flops of a matrix product (1.6-1.8x faster here).

    torch has no syrk, so scipy's BLAS computes the lower triangle, on as
    many threads as torch uses, and it is mirrored.
    """
    from scipy.linalg import blas  # imported here: only a preconditioner build needs it
    from threadpoolctl import threadpool_limits

    syrk = getattr(blas, _SYRK[z.dtype])
    out = torch.empty(z.shape[0], z.shape[2], z.shape[2], dtype=z.dtype)
    with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
        for s in range(z.shape[0]):
            zs = (z[s] * h[s].sqrt()[:, None]).numpy()  # (K, N), C order: zs.T is Fortran
            out[s] = torch.from_numpy(syrk(1.0, zs.T, lower=1))  # zs.T zs, lower triangle
    return out.tril() + out.tril(-1).transpose(1, 2)
