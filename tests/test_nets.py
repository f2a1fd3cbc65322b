"""The paper's CNN, ResNet and ViT: shapes, hand-counted parameters, presets, init factor."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from normscale import nets
from normscale.errors import ParameterError

SHAPES = {"mnist": (1, 28, 10), "cifar10": (3, 32, 10), "cifar100": (3, 32, 100),
          "digits": (1, 8, 10)}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- hand counts of the paper's architectures (docs/science.md 2.2), written independently ----

def count_cnn(c, s, k, convs, pools, hidden):
    total, size = 0, s
    for i, c_out in enumerate(convs, 1):
        total += c * c_out * 9 + c_out
        c = c_out
        size //= 2 if i in pools else 1
    width = c * size * size
    for h in (*hidden, k):
        total += width * h + h
        width = h
    return total


def count_resnet(c, k, blocks, widths):
    bn = lambda ch: 2 * ch  # noqa: E731  (weight and bias; running stats are buffers)
    total = c * widths[0] * 9 + bn(widths[0])
    c_in = widths[0]
    for stage, (n, w) in enumerate(zip(blocks, widths, strict=True)):
        for b in range(n):
            total += c_in * w * 9 + bn(w) + w * w * 9 + bn(w)
            if b == 0 and (stage > 0 or c_in != w):
                total += c_in * w + bn(w)  # 1x1 projection shortcut
            c_in = w
    return total + c_in * k + k


def count_vit(c, s, k, patch, d, depth):
    tokens = (s // patch) ** 2 + 1
    block = 2 * (2 * d) + 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    return c * patch * patch * d + d + d + tokens * d + depth * block + 2 * d + d * k + k


@pytest.mark.parametrize("family", ["mnist", "cifar10", "cifar100"])
def test_paper_parameter_counts(family):
    c, s, k = SHAPES[family]
    cnn = {"mnist": ((32, 64, 128), (2,), (512,)), "cifar10": ((32, 64, 128), (2,), (512,)),
           "cifar100": ((64, 128, 256, 512), (2, 4), (1024, 512))}[family]
    res = {"mnist": ((2, 2, 2, 2), (16, 32, 64, 128)),
           "cifar10": ((2, 2, 2, 2), (64, 128, 256, 512)),
           "cifar100": ((3, 4, 6, 3), (64, 128, 256, 512))}[family]
    vit = {"mnist": (7, 128, 4), "cifar10": (4, 192, 6), "cifar100": (4, 256, 6)}[family]
    kw = {"in_channels": c, "image_size": s, "num_classes": k, "dataset": family}
    assert n_params(nets.build("cnn", **kw)) == count_cnn(c, s, k, *cnn)
    assert n_params(nets.build("resnet", **kw)) == count_resnet(c, k, *res)
    assert n_params(nets.build("vit", **kw)) == count_vit(c, s, k, *vit)


def test_resnet18_matches_the_literature():
    # the CIFAR ResNet-18 (3x3 stem, no max-pool) has 11,173,962 parameters
    assert n_params(nets.build("resnet", in_channels=3, image_size=32, num_classes=10)) == 11173962


@pytest.mark.parametrize("name", nets.MODELS)
@pytest.mark.parametrize("family", list(SHAPES))
def test_forward_shapes_at_small_width(name, family):
    c, s, k = SHAPES[family]
    torch.manual_seed(0)
    model = nets.build(name, in_channels=c, image_size=s, num_classes=k, dataset=family,
                       width=0.125, depth=0.5)
    x = torch.randn(3, c, s, s)
    out = model(x)
    assert out.shape == (3, k) and torch.isfinite(out).all()
    out.sum().backward()  # every parameter takes part in the forward pass
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert model(x).shape == (3, k)


def test_width_and_depth_multipliers():
    small = nets.build("cnn", in_channels=1, image_size=28, num_classes=10, width=0.25)
    assert [m.out_channels for m in small.modules() if isinstance(m, nn.Conv2d)] == [8, 16, 32]
    vit = nets.build("vit", in_channels=3, image_size=32, num_classes=10, width=0.5, depth=0.5)
    assert (vit.config.dim, vit.config.heads, vit.config.depth) == (96, 3, 3)
    res = nets.build("resnet", in_channels=3, image_size=32, num_classes=100, depth=0.34)
    assert res.config.blocks == (1, 1, 2, 1) and res.config.widths == (64, 128, 256, 512)


def test_vit_patch_for_other_image_sizes():
    digits = nets.build("vit", in_channels=1, image_size=8, num_classes=10)
    assert digits.config.patch_size == 2  # 4x4 patches per image, like MNIST's 28 / 7
    mnist = nets.build("vit", in_channels=1, image_size=28, num_classes=10)
    assert mnist.config.patch_size == 7


def test_init_factor_scales_conv_and_linear_weights_only():
    for name in nets.MODELS:
        torch.manual_seed(1)
        ref = nets.build(name, in_channels=3, image_size=32, num_classes=10, width=0.125)
        torch.manual_seed(1)
        scaled = nets.build(name, in_channels=3, image_size=32, num_classes=10, width=0.125,
                            init_factor=0.05)
        for (key, p), q in zip(ref.named_parameters(), scaled.parameters(), strict=True):
            module = scaled.get_submodule(key.rpartition(".")[0]) if "." in key else scaled
            factor = 0.05 if isinstance(module, nn.Conv2d | nn.Linear) and key.endswith(
                "weight") else 1.0
            assert torch.allclose(q, factor * p), key


def test_only_standard_layers_hold_weights():
    """The norms module finds every weight matrix among standard layer types."""
    allowed = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm)
    for name in nets.MODELS:
        model = nets.build(name, in_channels=3, image_size=32, num_classes=10, width=0.125)
        for module in model.modules():
            own = list(module.parameters(recurse=False))
            if own and not isinstance(module, allowed):
                assert isinstance(module, nets.ViT)  # class token and positions only
                assert {n for n, _ in module.named_parameters(recurse=False)} == {"cls", "pos"}


def test_paper_presets_follow_science_md():
    assert nets.paper_preset("cnn", "mnist")["init_factor"] == 0.05
    assert nets.paper_preset("resnet", "cifar10")["init_factor"] == 0.05
    assert nets.paper_preset("vit", "cifar100")["init_factor"] == 0.005
    assert nets.paper_preset("vit", "mnist")["init_factor"] == 1.0
    vit = nets.paper_preset("vit", "cifar10")
    assert (vit["optimizer"], vit["lr"], vit["epochs"]) == ("adamw", 3e-4, 600)
    res = nets.paper_preset("resnet", "fashion-mnist")
    assert res["family"] == "mnist" and res["augmentation"] == "affine"
    assert nets.paper_preset("cnn", "cifar100")["arch"]["dropout"] == 0.1


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ParameterError, match="The 'name' parameter of build must be one of"):
        nets.build("mlp", in_channels=1, image_size=28, num_classes=10)
    with pytest.raises(ParameterError, match="The 'width' parameter of build must be a float > 0"):
        nets.build("cnn", in_channels=1, image_size=28, num_classes=10, width=0)
    with pytest.raises(ParameterError, match="'num_classes'"):
        nets.build("cnn", in_channels=1, image_size=28, num_classes=1)


def test_model_and_augmentation_names_are_defined_once_and_work():
    """train.config takes MODELS from nets and AUGMENTATIONS from data (one definition each),
    torch-free; every name builds a model or augments a batch."""
    import subprocess
    import sys

    from normscale import data
    from normscale.train import config

    assert config.MODELS is nets.MODELS and config.AUGMENTATIONS is data.AUGMENTATIONS
    for name in nets.MODELS:
        model = nets.build(name, in_channels=1, image_size=8, num_classes=10, width=0.125)
        assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    g = torch.Generator().manual_seed(0)
    for kind in data.AUGMENTATIONS:
        assert data.augment(torch.rand(3, 1, 8, 8), kind, generator=g).shape == (3, 1, 8, 8)
    code = ("import sys, normscale.train, normscale.train.config, normscale.train.schedule, "
            "normscale.train.curve, normscale.sweep.driver; sys.exit('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr or "importing the configs imported torch"
