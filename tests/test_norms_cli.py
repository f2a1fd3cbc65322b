"""The ``normscale norms`` command on checkpoints of the model zoo."""

from __future__ import annotations

import math

import pytest
import torch

from normscale import nets
from normscale.norms import MEASURES, measure

SHAPE = {"in_channels": 1, "image_size": 8, "num_classes": 3}


def small(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return nets.build(arch, **SHAPE, width=0.125, depth=0.5)


@pytest.mark.parametrize("arch", ["cnn", "resnet", "vit"])
def test_checkpoint_rebuilds_the_model_and_prints_its_measures(arch, cli, tmp_path):
    model = small(arch)
    config = {"model": arch, "dataset": "mnist", **SHAPE, "preset": "paper", "width": 0.125,
              "depth": 0.5}
    path = tmp_path / "run.pt"
    torch.save({"model_state": model.state_dict(), "config": config, "epoch": 3}, path)
    run = cli("norms", path, "--json")
    assert run.code == 0, run.err
    got = run.json()
    want = measure(model)
    assert list(got["totals"]) == list(MEASURES)
    for key in MEASURES:
        if math.isnan(want[key]):
            assert got["totals"][key] is None
        else:
            assert got["totals"][key] == pytest.approx(want[key], rel=1e-12)
    n_matrices = sum(isinstance(m, torch.nn.Conv2d | torch.nn.Linear) for m in model.modules())
    assert len(got["layers"]) == n_matrices


def test_bare_state_dict_needs_its_architecture(cli, tmp_path):
    model = small("resnet")
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    run = cli("norms", path)
    assert run.code == 2 and "--arch" in run.err and "Traceback" not in run.err
    args = ["norms", path, "--arch", "resnet", "--in-channels", "1", "--image-size", "8",
            "--num-classes", "3", "--width", "0.125", "--depth", "0.5"]
    run = cli(*args)
    assert run.code == 0, run.err
    assert "log10_spectral_complexity" in run.out and "stages.3.0.shortcut.0" in run.out
    # a reference equal to the weights: every (2,1) term and the distance vanish
    run = cli(*args, "--reference", path, "--json")
    totals = run.json()["totals"]
    assert totals["distance_from_init"] == 0.0 and totals["effective_rank_factor"] == 0.0
    wrong = cli(*args[:-4], "--width", "0.25", "--depth", "0.5")
    assert wrong.code == 2 and "do not fit" in wrong.err


def test_operator_mode_and_folding_from_the_cli(cli, tmp_path):
    model = small("resnet")
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    base = ["norms", path, "--arch", "resnet", "--in-channels", "1", "--image-size", "8",
            "--num-classes", "3", "--width", "0.125", "--depth", "0.5", "--json"]
    op = cli(*base, "--conv", "operator", "--norm-layers", "fold")
    assert op.code == 0, op.err
    rows = op.json()["layers"]
    assert all(r["kind"].endswith("+bn") for r in rows if r["kind"].startswith("conv"))


@pytest.mark.parametrize("content", [None, b"not a checkpoint", "list"])
def test_missing_or_corrupt_file_exits_2_naming_it(content, cli, tmp_path):
    path = tmp_path / "bad.pt"
    if content == "list":
        torch.save([1, 2], path)
    elif content is not None:
        path.write_bytes(content)
    run = cli("norms", path)
    assert run.code == 2 and str(path) in run.err and "Traceback" not in run.err
