"""Exact operator norm of a convolution on a given input size (circular padding).

The paper measures a convolution by the spectral norm of its kernel reshaped
to (out, in/groups * prod(kernel)) (docs/science.md 2.1). The linear map the
layer applies to an input of spatial size n is a different, larger matrix;
with circular padding it is block-circulant, so the 2-D (or N-D) Fourier
transform over the spatial axes block-diagonalises it (Sedghi, Gupta, Long,
"The singular values of convolutional layers", ICLR 2019): its singular
values are those of the (out, in) matrices ``K_hat[:, :, f]``, one per
spatial frequency f. A stride s is handled exactly by the polyphase
decomposition: a stride-s convolution on size n is a stride-1 convolution
on size n/s of the s^d phases of the input, stacked as channels.
**(normscale)**
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from normscale.errors import ParameterError


def conv_operator_norm(weight: torch.Tensor, *, input_size: Sequence[int],
                       stride: Sequence[int] | int = 1, dilation: Sequence[int] | int = 1,
                       groups: int = 1) -> float:
    """Spectral norm of the circular convolution ``weight`` on inputs of ``input_size``.

    Parameters
    ----------
    weight : torch.Tensor of shape (out, in/groups, k_1, ..., k_d)
        The kernel (any float dtype; computed in float64).
    input_size : sequence of d ints
        Spatial size (n_1, ..., n_d) of the layer's input; each n_j must be
        a multiple of the stride s_j.
    stride, dilation : int or sequence of d ints, default 1
    groups : int, default 1

    Returns
    -------
    float
        max over frequencies f of ||K_hat(f)||_sigma: the exact operator
        norm of the layer's linear map (padding only shifts the output
        circularly, an isometry, so it does not enter).
    """
    w = weight.detach().to(torch.float64)
    out_ch, in_per_group = w.shape[:2]
    kernel = tuple(w.shape[2:])
    d = len(kernel)
    n = _as_tuple(input_size, d, "input_size")
    s = _as_tuple(stride, d, "stride")
    dil = _as_tuple(dilation, d, "dilation")
    for nj, sj in zip(n, s, strict=True):
        if nj < 1 or sj < 1 or nj % sj:
            raise ParameterError(
                f"The 'input_size' parameter of conv_operator_norm must hold multiples of the "
                f"stride {s}. Got {tuple(n)} instead.")
    # groups: the full (out, in) kernel is block diagonal over the groups
    if groups > 1:
        full = w.new_zeros(out_ch, in_per_group * groups, *kernel)
        per_out = out_ch // groups
        for g in range(groups):
            full[g * per_out:(g + 1) * per_out, g * in_per_group:(g + 1) * in_per_group] = \
                w[g * per_out:(g + 1) * per_out]
        w = full
    in_ch = w.shape[1]
    m = tuple(nj // sj for nj, sj in zip(n, s, strict=True))  # size of each phase
    # polyphase kernel: tap t = k * dilation = s * q + r reads phase r at offset q (mod m)
    poly = w.new_zeros(out_ch, in_ch, *s, *m)
    for k in itertools.product(*(range(kj) for kj in kernel)):
        t = [kj * dj for kj, dj in zip(k, dil, strict=True)]
        r = tuple(tj % sj for tj, sj in zip(t, s, strict=True))
        q = tuple((tj // sj) % mj for tj, sj, mj in zip(t, s, m, strict=True))
        poly[(slice(None), slice(None), *r, *q)] += w[(slice(None), slice(None), *k)]
    poly = poly.reshape(out_ch, in_ch * math.prod(s), *m)
    spectrum = torch.fft.fftn(poly, dim=tuple(range(2, 2 + d)))  # (out, in * s^d, *m)
    blocks = spectrum.reshape(out_ch, in_ch * math.prod(s), -1).permute(2, 0, 1)
    return float(torch.linalg.matrix_norm(blocks, ord=2).max())


def conv_input_sizes(model: nn.Module, input_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Spatial input size of every convolution of ``model`` for one input of ``input_shape``.

    Runs one forward pass (evaluation mode, no gradient, a zero input of
    shape ``(1, *input_shape)``) with hooks; the training mode is restored.
    """
    sizes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, _ConvNd):
            def hook(mod, inputs, output, name=name):
                sizes[name] = tuple(inputs[0].shape[2:])
            hooks.append(module.register_forward_hook(hook))
    param = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape, dtype=param.dtype if param is not None else torch.float32,
                    device=param.device if param is not None else "cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except RuntimeError as exc:
        raise ParameterError(
            f"The 'input_shape' parameter does not fit the model: {tuple(input_shape)} "
            f"gave {str(exc).splitlines()[0]}") from None
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return sizes


def _as_tuple(value: Sequence[int] | int, d: int, name: str) -> tuple[int, ...]:
    t = (int(value),) * d if isinstance(value, int) else tuple(int(v) for v in value)
    if len(t) != d:
        raise ParameterError(
            f"The {name!r} parameter of conv_operator_norm must have {d} entries. Got {t} instead.")
    return t
