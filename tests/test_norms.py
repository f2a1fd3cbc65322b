"""normscale.norms: discovery and measures against direct numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normscale.errors import ParameterError
from normscale.norms import (
    MEASURES,
    NormTracker,
    discover,
    layers,
    log_spectral_complexity,
    measure,
)

# ---------------------------------------------------------------- test models


class BasicBlock(nn.Module):
    """A ResNet BasicBlock with BatchNorm and a 1x1 downsample on the skip path."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                   nn.BatchNorm2d(c_out))
                     if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.down(x))


def make_resnet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Sequential(BasicBlock(4, 4, 1), BasicBlock(4, 8, 2)),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


RESNET_WEIGHTS = ["0.weight", "3.0.conv1.weight", "3.0.conv2.weight", "3.1.conv1.weight",
                  "3.1.conv2.weight", "3.1.down.0.weight", "6.weight"]


class TinyViT(nn.Module):
    """Patch embedding, class token, positions, one pre-LN block with nn.MultiheadAttention."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.patch = nn.Conv2d(1, dim, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 5, dim))
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, 3)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.ln2(x))
        return self.head(x[:, 0])


def make_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1,
                         groups=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1,
                         groups=2, stride=2), nn.Flatten(), nn.Linear(16, 5), nn.ReLU(),
                         nn.Linear(5, 3))


def make_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 2))


def vit_matrices(state) -> list[np.ndarray]:
    w = state["attn.in_proj_weight"]
    return [state["patch.weight"].reshape(8, -1), w[:8], w[8:16], w[16:],
            state["attn.out_proj.weight"], state["mlp.0.weight"], state["mlp.2.weight"],
            state["head.weight"]]


# each model with the hand-listed matrices a correct discovery must find
MODELS = {
    "mlp": (make_mlp, lambda s: [s[k] for k in ("0.weight", "2.weight", "4.weight")]),
    "cnn": (make_cnn, lambda s: [s[k].reshape(s[k].shape[0], -1)
                                 for k in ("0.weight", "2.weight", "5.weight", "7.weight",
                                           "9.weight")]),
    "resnet": (make_resnet, lambda s: [s[k].reshape(s[k].shape[0], -1) for k in RESNET_WEIGHTS]),
    "vit": (TinyViT, vit_matrices),
}


def numpy_state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}


def numpy_measures(mats, refs=None) -> dict[str, float]:
    """docs/science.md 2.1 computed directly: full SVDs, explicit products and sums."""
    refs = refs if refs is not None else [np.zeros_like(a) for a in mats]
    sig = np.array([np.linalg.svd(a, compute_uv=False)[0] for a in mats])
    b = np.array([np.linalg.norm(a - m, axis=1).sum() for a, m in zip(mats, refs, strict=True)])
    rank = np.sum((b / sig) ** (2 / 3)) ** 1.5
    return {"spectral_complexity": np.prod(sig) * rank,
            "log10_spectral_complexity": np.log10(np.prod(sig) * rank),
            "max_expansion": np.prod(sig), "effective_rank_factor": rank,
            "spectral_product": np.prod(sig), "log10_spectral_product": np.log10(np.prod(sig)),
            "l1": sum(np.abs(a).sum() for a in mats),
            "l2": np.sqrt(sum((a ** 2).sum() for a in mats)),
            "group_2_1": sum(np.linalg.norm(a, axis=1).sum() for a in mats),
            "distance_from_init": np.sqrt(sum(((a - m) ** 2).sum()
                                              for a, m in zip(mats, refs, strict=True)))}


# ---------------------------------------------------------------- measures vs numpy


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("with_reference", [False, True])
def test_measures_match_direct_numpy(name, with_reference):
    make, matrices = MODELS[name]
    torch.manual_seed(1)
    model, init = make(), make()
    got = measure(model, reference=init if with_reference else None)
    assert tuple(got) == MEASURES
    mats = matrices(numpy_state(model))
    want = numpy_measures(mats, matrices(numpy_state(init)) if with_reference else None)
    for key in MEASURES:
        if key == "distance_from_init" and not with_reference:
            assert math.isnan(got[key])
        else:
            assert got[key] == pytest.approx(want[key], rel=1e-10), key


@pytest.mark.parametrize("name", sorted(MODELS))
def test_layers_lists_exactly_the_hand_listed_matrices(name):
    make, matrices = MODELS[name]
    model = make()
    rows = layers(model, frame=False)
    mats = matrices(numpy_state(model))
    assert [r.shape for r in rows] == [a.shape for a in mats]
    for r, a in zip(rows, mats, strict=True):
        assert r.spectral_norm == pytest.approx(np.linalg.norm(a, 2), rel=1e-12)
        assert r.two_one == pytest.approx(np.linalg.norm(a, axis=1).sum(), rel=1e-12)


def test_kinds_selects_measures_and_rejects_unknown_names():
    model = make_mlp()
    got = measure(model, kinds=["l1", "l2"])
    assert list(got) == ["l1", "l2"]
    assert got["l1"] == pytest.approx(measure(model)["l1"], rel=1e-14)
    with pytest.raises(ParameterError, match="'kinds'.*'frobenius'"):
        measure(model, kinds=["frobenius"])


def test_rho_multiplies_the_max_expansion():
    model = make_mlp()
    base = measure(model)
    got = measure(model, rho=2.0)
    assert got["max_expansion"] == pytest.approx(8 * base["max_expansion"], rel=1e-12)
    assert got["spectral_product"] == pytest.approx(base["spectral_product"], rel=1e-12)
    one = measure(model, rho={"2": 3.0})
    assert one["spectral_complexity"] == pytest.approx(3 * base["spectral_complexity"], rel=1e-12)
    with pytest.raises(ParameterError, match="'rho'"):
        measure(model, rho=-1.0)
    with pytest.raises(ParameterError, match="'nope'"):
        measure(model, rho={"nope": 2.0})


def test_reference_init_gives_zero_two_one_terms_and_distance():
    model = make_mlp()
    tracker = NormTracker(model, reference="init", spectral="exact")
    got = tracker.measure()
    assert got["effective_rank_factor"] == 0.0 and got["distance_from_init"] == 0.0
    with torch.no_grad():
        model[2].weight[1, 3] += 0.5
    got = tracker.measure()
    assert got["distance_from_init"] == pytest.approx(0.5, rel=1e-12)
    # one row moved by 0.5 in one layer: (2,1) term = 0.5, R_A = prod sigma * 0.5 / sigma_2
    rows = tracker.layers()
    assert got["spectral_complexity"] == pytest.approx(
        got["max_expansion"] * 0.5 / rows[1].spectral_norm, rel=1e-12)


def test_bad_reference_is_rejected():
    with pytest.raises(ParameterError, match="'reference'"):
        NormTracker(make_mlp(), reference="start")
    with pytest.raises(ParameterError, match="shape"):
        NormTracker(make_mlp(), reference=nn.Sequential(nn.Linear(6, 10), nn.ReLU(),
                                                       nn.Linear(10, 7), nn.ReLU(),
                                                       nn.Linear(7, 2)))


# ---------------------------------------------------------------- spectral complexity by hand


def test_spectral_complexity_of_a_two_layer_net_by_hand():
    # diagonal weights: sigma and the (2,1) norms are read off by eye
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
        model[2].weight.copy_(torch.tensor([[6.0, 8.0]]))
    got = measure(model)
    # sigma = 4, 10; (2,1) = 3 + 4 = 7, 10; R_A = 40 * ((7/4)^(2/3) + 1)^(3/2)
    assert got["spectral_complexity"] == pytest.approx(40 * ((7 / 4) ** (2 / 3) + 1) ** 1.5,
                                                       rel=1e-14)
    assert got["l1"] == 21.0 and got["l2"] == pytest.approx(math.sqrt(125), rel=1e-15)
    assert got["group_2_1"] == 17.0


def test_log_space_agrees_with_direct_and_survives_overflow():
    rng = np.random.default_rng(0)
    sig, b = rng.uniform(0.5, 5, 12), rng.uniform(1, 50, 12)
    log_ra, log_exp, log_rank = log_spectral_complexity(sig, b, np.ones(12))
    direct_rank = np.sum((b / sig) ** (2 / 3)) ** 1.5
    assert math.exp(log_ra) == pytest.approx(np.prod(sig) * direct_rank, rel=1e-12)
    assert math.exp(log_exp) == pytest.approx(np.prod(sig), rel=1e-12)
    assert math.exp(log_rank) == pytest.approx(direct_rank, rel=1e-12)
    # 40 layers of sigma = 1e10: the direct product overflows float64, the log does not
    big = np.full(40, 1e10)
    with np.errstate(over="ignore"):
        assert np.isinf(np.prod(big) * np.prod(big))
    log_ra, _, _ = log_spectral_complexity(big, big * 3, np.ones(40))
    assert log_ra / math.log(10) == pytest.approx(400 + 1.5 * math.log10(40 * 3 ** (2 / 3)),
                                                  rel=1e-12)


def test_vit_scaled_by_100_has_finite_log10_spectral_complexity():
    torch.manual_seed(0)
    model = TinyViT().double()  # float64: x100 is exact up to 1e-16
    base = measure(model)["log10_spectral_complexity"]
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(100)
    got = measure(model)
    # 8 matrices, all scaled: product x 100^8, (2,1)/sigma ratios unchanged
    assert math.isfinite(got["log10_spectral_complexity"])
    assert got["log10_spectral_complexity"] == pytest.approx(base + 16, rel=1e-12)


# ---------------------------------------------------------------- discovery


def test_every_conv_and_linear_of_a_resnet_is_visited():
    model = make_resnet()
    found = discover(model)
    n_modules = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules())
    assert len(found.layers) == n_modules == 7
    # only BatchNorm parameters and the head's bias are left out
    assert all(".bn" in k or k.startswith("1.") or "down.1" in k or k == "6.bias"
               for k in found.ignored)
    assert len(found.ignored) == 2 * 6 + 1


def test_changing_a_weight_inside_a_residual_block_changes_spectral_complexity():
    model = make_resnet()
    before = measure(model)["spectral_complexity"]
    with torch.no_grad():
        model[3][1].conv2.weight[0, 0, 1, 1] += 1.0
    assert measure(model)["spectral_complexity"] != pytest.approx(before, rel=1e-6)


def test_multihead_attention_split_reproduces_the_module_output():
    torch.manual_seed(0)
    e, h, t = 8, 2, 5
    mha = nn.MultiheadAttention(e, h, batch_first=True)
    found = discover(mha, bias=True)
    assert [s.name for s in found.layers] == ["q", "k", "v", "out_proj"]
    tensors = dict(mha.named_parameters())
    (wq, wk, wv, wo) = [s.matrix(tensors) for s in found.layers]  # (E, E + 1) with bias
    x = torch.randn(3, t, e, dtype=torch.float64)

    def heads(z):  # (B, T, E) -> (B, H, T, E / H)
        return z.view(3, t, h, e // h).transpose(1, 2)

    def affine(w, z):
        return z @ w[:, :-1].T + w[:, -1]

    q, k, v = heads(affine(wq, x)), heads(affine(wk, x)), heads(affine(wv, x))
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(e // h), -1) @ v
    want = affine(wo, att.transpose(1, 2).reshape(3, t, e))
    got = mha.double()(x, x, x, need_weights=False)[0]
    assert torch.allclose(got, want, atol=1e-12)
    assert found.ignored == ()


def test_packed_qkv_linear_is_split_and_the_rows_reassemble():
    block = nn.Module()
    block.qkv = nn.Linear(6, 18)
    block.proj = nn.Linear(6, 6)
    found = discover(block, bias=True)
    assert [s.name for s in found.layers] == ["qkv.q", "qkv.k", "qkv.v", "proj"]
    tensors = dict(block.named_parameters())
    stacked = torch.cat([s.matrix(tensors) for s in found.layers[:3]])
    packed = torch.cat([block.qkv.weight, block.qkv.bias[:, None]], 1).double()
    assert torch.equal(stacked, packed)
    assert [s.name for s in discover(block, split_qkv=False).layers] == ["qkv", "proj"]


@pytest.mark.parametrize("conv_then_bn", [
    lambda: (nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3), nn.BatchNorm2d(6),
             torch.randn(2, 3, 7, 7)),
    lambda: (nn.Conv1d(2, 4, 3, bias=False), nn.BatchNorm1d(4), torch.randn(2, 2, 9)),
    lambda: (nn.Linear(5, 4), nn.BatchNorm1d(4), torch.randn(3, 5)),
])
def test_batchnorm_folding_equals_the_folded_layer_output(conv_then_bn):
    torch.manual_seed(0)
    layer, bn = conv_then_bn()[:2]
    x = conv_then_bn()[2].double()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(-2, 2)
        bn.bias.uniform_(-1, 1)
    model = nn.Sequential(layer, bn).double().eval()
    spec, = discover(model, norm_layers="fold", bias=True).layers
    assert spec.kind.endswith("+bn")
    m = spec.matrix(dict(model.state_dict()))
    w, b = m[:, :-1].reshape(layer.weight.shape), m[:, -1]
    if isinstance(layer, nn.Linear):
        folded = F.linear(x, w, b)
    else:
        conv = {1: F.conv1d, 2: F.conv2d}[x.dim() - 2]
        folded = conv(x, w, b, stride=layer.stride, padding=layer.padding, groups=layer.groups)
    assert torch.allclose(folded, model(x), atol=1e-12)
    # without biases the folded matrix is the scaled weight alone
    spec, = discover(model, norm_layers="fold").layers
    assert torch.allclose(spec.matrix(dict(model.state_dict())), m[:, :-1], atol=0)


def test_resnet_folding_keeps_one_matrix_per_conv_and_counts_every_bn():
    model = make_resnet()
    found = discover(model, norm_layers="fold")
    assert len(found.layers) == 7
    assert sum(s.kind.endswith("+bn") for s in found.layers) == 6
    # without biases the BatchNorm shifts do not enter: they are reported as not counted
    assert sorted(found.ignored) == ["1.bias", "3.0.bn1.bias", "3.0.bn2.bias", "3.1.bn1.bias",
                                     "3.1.bn2.bias", "3.1.down.1.bias", "6.bias"]
    assert discover(model, norm_layers="fold", bias=True).ignored == ()


def test_diagonal_normalisation_layers():
    torch.manual_seed(0)
    bn, ln = nn.BatchNorm1d(4), nn.LayerNorm(3)
    with torch.no_grad():
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(-2, 2)
        ln.weight.copy_(torch.tensor([0.5, -3.0, 2.0]))
    model = nn.Sequential(nn.Linear(3, 4), bn, nn.Linear(4, 3), ln)
    rows = layers(model, norm_layers="diagonal", frame=False)
    assert [r.kind for r in rows] == ["linear", "batchnorm1d.diagonal", "linear",
                                      "layernorm.diagonal"]
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    assert rows[1].spectral_norm == pytest.approx(float(scale.abs().max()), rel=1e-12)
    assert rows[1].two_one == pytest.approx(float(scale.abs().sum()), rel=1e-12)
    assert rows[3].spectral_norm == pytest.approx(3.0, rel=1e-12)
    # a BatchNorm in eval mode *is* this diagonal affine map
    spec = discover(model, norm_layers="diagonal", bias=True).layers[1]
    m = spec.matrix(dict(model.state_dict()))
    x = torch.randn(5, 4, dtype=torch.float64)
    assert torch.allclose(bn.double().eval()(x), x @ m[:, :-1].T + m[:, -1], atol=1e-12)


def test_biases_and_embeddings_on_request():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3))
    assert [s.name for s in discover(model).layers] == ["1"]
    specs = discover(model, bias=True, embeddings=True).layers
    tensors = dict(model.named_parameters())
    emb, lin = (s.matrix(tensors) for s in specs)
    assert emb.shape == (4, 10) and torch.equal(emb, model[0].weight.double().T)
    assert torch.equal(lin, torch.cat([model[1].weight, model[1].bias[:, None]], 1).double())
    assert discover(model, bias=True, embeddings=True).ignored == ()


def test_bad_norm_layers_option():
    with pytest.raises(ParameterError, match="'norm_layers'.*'merge'"):
        discover(make_mlp(), norm_layers="merge")
