"""Exact convolution operator norm against the explicit dense matrix of the layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from normscale.errors import ParameterError
from normscale.norms import NormTracker, conv_input_sizes, conv_operator_norm, layers


def dense_norm(conv: nn.Module, input_size: tuple[int, ...]) -> float:
    """Largest singular value of the layer's map, built column by column from basis inputs."""
    conv = conv.double()
    n_in = conv.in_channels * int(torch.tensor(input_size).prod())
    basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, conv.in_channels, *input_size)
    with torch.no_grad():
        cols = (conv(basis) - conv(0 * basis)).reshape(n_in, -1)  # row j: image of basis j
    return torch.linalg.svdvals(cols.T)[0].item()


CASES = [  # (module, input size)
    (nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", bias=False), (5, 6)),
    (nn.Conv2d(2, 4, 3, stride=2, padding=1, padding_mode="circular", bias=False), (6, 8)),
    (nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, padding_mode="circular", bias=False),
     (6, 6)),
    (nn.Conv2d(2, 3, 5, stride=2, padding=2, padding_mode="circular", bias=False), (4, 4)),
    (nn.Conv1d(3, 2, 3, stride=3, padding=1, padding_mode="circular", bias=False), (9,)),
    (nn.Conv3d(1, 2, 3, padding=1, padding_mode="circular", bias=False), (4, 3, 4)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_fft_operator_norm_equals_the_dense_circular_convolution(case):
    torch.manual_seed(case)
    conv, size = CASES[case]
    got = conv_operator_norm(conv.weight, input_size=size, stride=conv.stride,
                             dilation=conv.dilation, groups=conv.groups)
    assert got == pytest.approx(dense_norm(conv, size), rel=1e-10)


def test_patch_embedding_operator_norm_equals_the_reshape_norm():
    # kernel = stride: non-overlapping patches, the map is block diagonal in the reshape
    conv = nn.Conv2d(3, 5, 4, stride=4)
    got = conv_operator_norm(conv.weight, input_size=(8, 12), stride=4)
    reshaped = torch.linalg.svdvals(conv.weight.double().reshape(5, -1))[0].item()
    assert got == pytest.approx(reshaped, rel=1e-12)


def test_input_size_must_be_a_multiple_of_the_stride():
    conv = nn.Conv2d(1, 1, 3, stride=2)
    with pytest.raises(ParameterError, match="'input_size'"):
        conv_operator_norm(conv.weight, input_size=(5, 6), stride=2)


def test_tracker_operator_mode_uses_each_layer_input_size():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                          nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, stride=2, padding=1, padding_mode="circular"),
                          nn.Flatten(), nn.Linear(16, 3))
    assert conv_input_sizes(model, (1, 8, 8)) == {"0": (8, 8), "3": (4, 4)}
    rows = layers(model, conv="operator", input_shape=(1, 8, 8), frame=False)
    assert rows[0].spectral_norm == pytest.approx(dense_norm(model[0], (8, 8)), rel=1e-10)
    assert rows[1].spectral_norm == pytest.approx(dense_norm(model[3], (4, 4)), rel=1e-10)
    reshape = layers(model, frame=False)
    assert rows[2].spectral_norm == reshape[2].spectral_norm  # the Linear is unchanged
    assert rows[0].two_one == reshape[0].two_one  # (2,1) terms stay on the reshape
    with pytest.raises(ParameterError, match="'input_shape'"):
        NormTracker(model, conv="operator")
