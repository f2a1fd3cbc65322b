"""The plain-PyTorch tracker, its schedules, and the CSV import (no optional library)."""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest
import torch
from torch import nn

from conftest import run_cli
from integration_checks import assert_norms_equal, one_thread  # noqa: F401
from laws_synthetic import synthetic_curves
from normscale.errors import ParameterError
from normscale.integrations import Every, LogSpaced, RunTracker, Steps
from normscale.integrations.tables import from_columns
from normscale.integrations.tracker import run_id_of
from normscale.norms import MEASURES, layers, measure
from normscale.store import Store, long_table

pytestmark = pytest.mark.usefixtures("one_thread")


def test_log_spaced_schedule_is_the_rounded_geometric_grid():
    sched = LogSpaced(per_decade=20)
    grid = sorted({round(10 ** (k / 20)) for k in range(0, 121)})  # up to 1e6
    for step in (0, 1, 5, 9, 10, 11, 99, 100, 101, 12345, 99999):
        want = next(g for g in grid if g > step)
        assert sched.next_after(step) == want, step
    assert grid[:11] == list(range(1, 12))  # every step up to 11, then log-spaced
    assert Every(5).next_after(10) == 15 and Steps((3, 9)).next_after(9) is None
    # due: a scheduled step in (last, step]: validation every 7 steps records when one passed
    assert sched.due(14, last=12) and not Steps((20,)).due(19, last=0)


def test_plain_loop_records_measure_of_the_same_weights_and_exports(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    db = tmp_path / "runs.db"
    snapshots = {}
    with RunTracker(model, model_name="mlp", P=64, seed=3, store=db, schedule=[1, 2, 5, 10],
                    config={"optimizer": "sgd", "lr": 0.1}) as tracker:
        for step in range(1, 11):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            if tracker.due(step):
                err = float((model(x).argmax(1) != y).float().mean())
                tracker.log(step, epoch=step, test_error=err)
                snapshots[step] = {k: v.clone() for k, v in model.state_dict().items()}
    probe = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    for rec in tracker.records:
        probe.load_state_dict(snapshots[rec.step])
        assert_norms_equal(rec.norms, measure(probe, reference=init))
    with Store(db) as store:
        run, = store.runs()
        table = long_table(store, norm="spectral_complexity")
    assert run.status == "finished" and run.run_id == tracker.run_id
    assert run.config == {"model": "mlp", "dataset": "custom", "P": 64, "seed": 3,
                          "optimizer": "sgd", "lr": 0.1, "N": 10 * 16 + 16 + 16 * 3 + 3}
    assert table["step"].tolist() == [1, 2, 5, 10]
    assert (table["P"] == 64).all() and (table["optimizer"] == "sgd").all()


def test_tracker_rejects_bad_input_with_the_parameter_named():
    model = nn.Linear(3, 2)
    with pytest.raises(ParameterError, match="'P' parameter of RunTracker"):
        RunTracker(model, model_name="m", P=0)
    with pytest.raises(ParameterError, match="sets 'seed'"):
        RunTracker(model, model_name="m", P=5, config={"seed": 1})
    with pytest.raises(ParameterError, match="'schedule'"):
        RunTracker(model, model_name="m", P=5, schedule="often")
    with pytest.raises(ParameterError, match="needs the epoch"):
        RunTracker(model, model_name="m", P=5).log(1, test_error=0.5)
    assert RunTracker(model, model_name="m", P=5, steps_per_epoch=4).log(2).epoch == 0.5
    other = RunTracker(nn.Linear(3, 2), model_name="other", P=5)
    with pytest.raises(ParameterError, match="belongs to run"):
        RunTracker(model, model_name="m", P=5).load_state_dict(other.state_dict())


def test_tracker_records_N_the_trainable_parameters_as_normscale_train_does(tmp_path):
    """N is in the stored config when the run is created (not rebuilt at export), counts only
    trainable parameters, and stays outside the run id, as in ``normscale train``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten(), nn.Linear(3 * 4 * 4, 5),
                          nn.ReLU(), nn.Linear(5, 2, bias=False))
    model[0].requires_grad_(False)  # a frozen layer is not part of N
    want = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert want == 3 * 4 * 4 * 5 + 5 + 5 * 2  # by hand: the two linear layers
    db = tmp_path / "runs.db"
    with RunTracker(model, model_name="cnn", P=32, store=db, schedule=[1, 2]) as tracker:
        assert tracker.n_params == want
        with Store(db) as store:
            assert store.runs() == []  # nothing stored before the first point
        for step in (1, 2):
            tracker.log(step, epoch=step, test_error=0.5)
            with Store(db) as store:
                assert store.run(tracker.run_id).config["N"] == want
    with Store(db) as store:
        table = long_table(store, norm="spectral_complexity")
    assert len(table) == 2 and (table["N"] == want).all()
    # N does not enter the run id: the id is the hash of the config the user gave
    assert tracker.run_id == run_id_of({"model": "cnn", "dataset": "custom", "P": 32, "seed": 0})
    with pytest.raises(ParameterError, match="sets 'N'"):
        RunTracker(model, model_name="cnn", P=32, config={"N": 7})


def test_layers_frame_has_one_row_per_matrix_with_stable_rank():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    table = layers(model)
    assert table["name"].tolist() == ["0", "2"] and table["kind"].tolist() == ["conv2d", "linear"]
    assert table[["rows", "cols"]].values.tolist() == [[4, 9], [5, 144]]
    for row, a in zip(table.itertuples(), (model[0].weight.detach().reshape(4, -1),
                                           model[2].weight.detach()),
                      strict=True):
        s = torch.linalg.svdvals(a.double())
        assert row.spectral_norm == pytest.approx(float(s[0]), rel=1e-12)
        assert row.frobenius == pytest.approx(float(s.square().sum().sqrt()), rel=1e-12)
        assert row.stable_rank == pytest.approx(float(s.square().sum() / s[0] ** 2), rel=1e-12)
        assert row.two_one == pytest.approx(float(a.double().norm(dim=1).sum()), rel=1e-12)
    assert table.attrs["totals"] == pytest.approx(measure(model), rel=1e-12, nan_ok=True)
    assert list(table.attrs["totals"]) == list(MEASURES)


def test_norms_cli_writes_the_layer_table_as_csv(tmp_path):
    from normscale import nets

    model = nets.build("cnn", in_channels=1, image_size=8, num_classes=10, width=0.25,
                       dataset="digits")
    path = tmp_path / "cnn.pt"
    torch.save({"model_state": model.state_dict(),
                "config": {"model": "cnn", "in_channels": 1, "image_size": 8,
                           "num_classes": 10, "width": 0.25, "dataset": "digits"}}, path)
    res = run_cli("norms", path, "--csv", tmp_path / "layers.csv")
    assert res.code == 0, res.err
    got = pd.read_csv(tmp_path / "layers.csv")
    want = layers(model)
    assert got["name"].tolist() == want["name"].tolist()
    assert got["stable_rank"].to_numpy() == pytest.approx(want["stable_rank"].to_numpy())
    assert "stable rank" in res.out


def _wandb_like(curves: pd.DataFrame) -> pd.DataFrame:
    """A history export: one run per (P, seed), the norm and the error on separate rows."""
    rows = []
    for (p, s), g in curves.groupby(["P", "seed"]):
        for i, r in enumerate(g.itertuples()):
            name = f"run-P{p}-s{s}"
            rows.append({"Name": name, "_step": 10 * (i + 1), "cfg.P": p, "cfg.seed": s,
                         "norms/log10_R": math.log10(r.norm), "val/error": None})
            rows.append({"Name": name, "_step": 10 * (i + 1), "cfg.P": p, "cfg.seed": s,
                         "norms/log10_R": None, "val/error": r.test_error})
    return pd.DataFrame(rows)


def test_csv_import_merges_history_rows_and_round_trips_the_curves(tmp_path):
    curves = synthetic_curves(P=(500, 1000, 2000), n_seeds=2, n_points=12)
    path = tmp_path / "wandb.csv"
    _wandb_like(curves).to_csv(path, index=False)
    out = tmp_path / "curves.csv"
    res = run_cli("import", "csv", path, "--column", "norm=norms/log10_R", "--column",
                  "test_error=val/error", "--column", "P=cfg.P", "--column", "seed=cfg.seed",
                  "--column", "step=_step", "--column", "run=Name", "--log10", "--norm-kind",
                  "spectral_complexity", "--model", "toy", "--out", out, "--json")
    assert res.code == 0, res.err
    assert res.json()["rows"] == len(curves) and res.json()["runs"] == 6
    got = pd.read_csv(out).sort_values(["P", "seed", "step"], ignore_index=True)
    want = curves.sort_values(["P", "seed", "norm"], ignore_index=True)
    assert got["norm"].to_numpy() == pytest.approx(want["norm"].to_numpy(), rel=1e-12)
    assert got["test_error"].to_numpy() == pytest.approx(want["test_error"].to_numpy())
    assert (got["norm_kind"] == "spectral_complexity").all() and (got["model"] == "toy").all()
    # and `normscale fit` reads it
    fit = run_cli("fit", out, "--n-boot", "0", "--json")
    assert fit.code == 0, fit.err


def test_csv_import_names_what_is_missing(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"a": [1.0], "b": [0.1]}).to_csv(path, index=False)
    res = run_cli("import", "csv", path, "--column", "norm=a", "--column", "test_error=c",
                  "--P", "10", "--out", tmp_path / "o.csv")
    assert res.code == 2 and "no column 'c'" in res.err
    res = run_cli("import", "csv", path, "--column", "norm=a", "--column", "test_error=b",
                  "--out", tmp_path / "o.csv")
    assert res.code == 2 and "no P" in res.err
    with pytest.raises(Exception, match="cannot map 'lr'"):
        from_columns(pd.DataFrame({"a": [1]}), {"lr": "a"})


def test_core_imports_no_optional_library():
    code = ("import sys, normscale, normscale.integrations, normscale.norms, normscale.store, "
            "normscale.cli.import_; "
            "bad = [m for m in ('lightning', 'transformers', 'tensorboard', 'mkdocs') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_tensorboard_import_takes_P_and_seed_from_folders_or_hparams(tmp_path):
    pytest.importorskip("tensorboard", reason="needs the extra normscale[tensorboard]")
    from torch.utils.tensorboard import SummaryWriter

    runs = {"P=100_seed=1": 100, "P=200_seed=0": 200}
    for name, p in runs.items():
        with SummaryWriter(tmp_path / "tb" / name) as w:
            for step in (1, 2, 4, 8):
                w.add_scalar("norms/log10_spectral_complexity", math.log10(p * step), step)
                w.add_scalar("val_error", 1.0 / step, step)
                w.add_scalar("val_error", 0.5 / step, step)  # logged twice: the latest counts
        (tmp_path / "tb" / name / "hparams.yaml").write_text(f"data:\n  P: {p}\n")
    out = tmp_path / "c.csv"
    for how in (["--P-from", r"P=(\d+)"], ["--P-from", "hparams:data.P"]):
        res = run_cli("import", "tensorboard", tmp_path / "tb", "--norm-tag",
                      "norms/log10_spectral_complexity", "--error-tag", "val_error", *how,
                      "--seed-from", r"seed=(\d+)", "--log10", "--out", out, "--json")
        assert res.code == 0, res.err
        got = pd.read_csv(out)
        assert res.json()["runs"] == 2 and len(got) == 8
        for row in got.itertuples():
            assert row.norm == pytest.approx(row.P * row.step, rel=1e-6)  # float32 events
            assert row.test_error == pytest.approx(0.5 / row.step)
            assert row.seed == (1 if row.P == 100 else 0)
    res = run_cli("import", "tensorboard", tmp_path / "tb", "--norm-tag", "norms/x",
                  "--error-tag", "val_error", "--P", "5", "--out", out)
    assert res.code == 2 and "norms/x" in res.err
    res = run_cli("import", "tensorboard", tmp_path / "tb", "--norm-tag",
                  "norms/log10_spectral_complexity", "--error-tag", "val_error",
                  "--P-from", r"Q=(\d+)", "--out", out)
    assert res.code == 2 and "does not match the run 'P=100_seed=1'" in res.err
