"""Norms of recurrent and transposed layers (issue 24): their matrices, checked against
the layers' own arithmetic and against torch.linalg.svdvals; layers with no matrix
definition are named, and a model with nothing to measure is refused (never 0.0)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from normscale.errors import ParameterError
from normscale.norms import NormTracker, discover, layers, measure


def top_sv(m: torch.Tensor) -> float:
    return float(torch.linalg.svdvals(m.detach().double())[0])


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.RNNBase], **kw) -> None:
        super().__init__()
        self.rnn = cell(5, 6, num_layers=2, batch_first=True, **kw)
        width = (kw.get("proj_size") or 6) * (2 if kw.get("bidirectional") else 1)
        self.head = nn.Linear(width, 4)


@pytest.mark.parametrize(("cell", "kw"), [(nn.LSTM, {"bidirectional": True, "proj_size": 3}),
                                          (nn.GRU, {}), (nn.RNN, {"bidirectional": True})])
def test_recurrent_weight_matrices_are_counted_as_matrices(cell, kw):
    torch.manual_seed(0)
    model = Recurrent(cell, **kw)
    weights = {n: p.detach() for n, p in model.named_parameters() if ".weight_" in n}
    table = layers(model, frame=False)
    got = {r.name: r for r in table}
    assert set(got) == set(weights) | {"head"}
    for name, w in weights.items():
        assert got[name].spectral_norm == pytest.approx(top_sv(w), rel=1e-9)
        assert got[name].frobenius == pytest.approx(float(w.double().norm()), rel=1e-12)
    sigmas = [top_sv(w) for w in [*weights.values(), model.head.weight.detach()]]
    totals = measure(model)
    assert totals["spectral_product"] == pytest.approx(math.prod(sigmas), rel=1e-9)
    assert totals["spectral_complexity"] > 0
    # biases enter as a column of their own weight's matrix when asked
    with_bias = {s.name: s for s in discover(model, bias=True).layers}
    w_ih = next(n for n in weights if ".weight_ih_" in n)
    assert with_bias[w_ih].bias == w_ih.replace("weight_", "bias_")


@pytest.mark.parametrize(("layer", "shape"), [
    (nn.ConvTranspose2d(3, 4, kernel_size=3, stride=2), (1, 3, 1, 1)),
    (nn.ConvTranspose1d(4, 6, kernel_size=5, groups=2), (1, 4, 1)),
])
def test_a_transposed_convolution_is_the_adjoint_matrix(layer, shape):
    torch.manual_seed(1)
    model = nn.Sequential(layer)
    spec = discover(model).layers[0]
    a = spec.matrix(dict(model.state_dict()))
    w = layer.weight.detach().double()
    assert a.shape == spec.shape == (w[0].numel(), layer.in_channels)
    # on a one-pixel input the layer applies exactly this matrix (groups=1), its adjoint
    # being the convolution with the same kernel
    if layer.groups == 1:
        x = torch.randn(*shape, dtype=torch.float64)
        with torch.no_grad():
            y = nn.functional.conv_transpose2d(x, w) if x.dim() == 4 else \
                nn.functional.conv_transpose1d(x, w)
        assert torch.allclose(y.flatten(), a @ x.flatten(), rtol=1e-12, atol=1e-12)
    row = layers(model, frame=False)[0]
    assert row.spectral_norm == pytest.approx(top_sv(w.reshape(w.shape[0], -1)), rel=1e-9)
    assert row.two_one == pytest.approx(float(a.norm(dim=1).sum()), rel=1e-12)
    assert measure(model)["spectral_product"] == pytest.approx(row.spectral_norm, rel=1e-12)
    with pytest.raises(ParameterError, match="transposed convolutions 0"):
        NormTracker(model, conv="operator", input_shape=shape[1:])


def test_layers_without_a_matrix_are_named_and_nothing_measured_is_refused():
    model = nn.ModuleDict({"bil": nn.Bilinear(3, 4, 5), "out": nn.Linear(5, 2)})
    with pytest.warns(UserWarning, match=r"bil \(Bilinear\)"):
        totals = measure(model)
    assert totals["spectral_product"] == pytest.approx(top_sv(model["out"].weight), rel=1e-9)
    assert discover(model).unsupported == ("bil (Bilinear)",)
    with pytest.raises(ParameterError, match=r"no weight matrix.*bil \(Bilinear\)"):
        measure(nn.ModuleDict({"bil": nn.Bilinear(3, 4, 5)}))
    with pytest.raises(ParameterError, match="no weight matrix"):
        measure(nn.Sequential(nn.ReLU()))
