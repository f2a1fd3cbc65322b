"""Seed ensembles through the CLI and sweeps: the store holds K ordinary runs sharing an
ensemble id, with the records of runs trained alone; re-running skips them."""

from __future__ import annotations

import pytest

from normscale.store import Store
from normscale.sweep import driver
from normscale.sweep.spec import parse_spec
from normscale.train import TrainConfig, train
from normscale.train.seed_groups import ensemble_id, seed_groups

TINY = dict(model="cnn", dataset="digits", steps=3, batch_size=25, n_log=2, width=0.125)
ARGS = ["--model", "cnn", "--dataset", "digits", "--P", "60", "--steps", "3", "--n-log", "2",
        "--width", "0.125", "--batch-size", "25"]


def close_records(got, want):
    assert [r.step for r in got] == [r.step for r in want]
    for x, y in zip(got, want, strict=True):
        assert x.test_loss == pytest.approx(y.test_loss, rel=1e-4)
        assert x.train_loss == pytest.approx(y.train_loss, rel=1e-4)
        assert x.test_error == pytest.approx(y.test_error, abs=2 / 360)  # float32: a flip or two
        for k in y.norms:
            assert x.norms[k] == pytest.approx(y.norms[k], rel=1e-4), k


def test_cli_ensemble_writes_one_run_per_seed_and_skips_them_next_time(cli, tmp_path):
    db = tmp_path / "runs.db"
    first = cli("train", *ARGS, "--seeds", "1:3", "--ensemble", "--store", db, "--json")
    assert first.code == 0, first.err
    out = first.json()
    with Store(db) as store:
        runs = store.runs()
        assert sorted(r.config["seed"] for r in runs) == [1, 2]
        assert {r.ensemble_id for r in runs} == {out["ensemble_id"]}
        assert all(r.status == "finished" and r.n_records == 2 for r in runs)
        for r in runs:
            config = TrainConfig.from_dict(r.config)
            assert r.run_id == config.run_id
            close_records(store.records(r.run_id), train(config).records)
    again = cli("train", *ARGS, "--seeds", "1:3", "--ensemble", "--store", db, "--json")
    assert again.code == 0 and all(r["skipped"] for r in again.json()["runs"])


@pytest.mark.parametrize("extra", [["--seeds", "0:2"], ["--ensemble"],
                                   ["--seeds", "0:2", "--ensemble", "--resume"]])
def test_cli_rejects_incomplete_ensemble_options(cli, extra, tmp_path):
    r = cli("train", *ARGS, *extra, "--store", tmp_path / "x.db")
    assert r.code == 2 and "ensemble" in r.err and "Traceback" not in r.err


def test_cli_rejects_a_bad_seed_range(cli):
    r = cli("train", *ARGS, "--seeds", "3:1", "--ensemble")
    assert r.code == 2 and "--seeds" in r.err


def test_sweep_switch_groups_seeds_and_stays_idempotent(tmp_path):
    spec = parse_spec({"ensemble": True, "base": TINY, "grid": {"P": [40, 60], "seed": [0, 1]}},
                      name="ens")
    assert spec.ensemble
    assert parse_spec({"base": {**TINY, "ensemble": True}, "grid": {"P": [40]}},
                      name="b").ensemble
    assert [[c.seed for c in g] for g in seed_groups(spec.configs())] == [[0, 1], [0, 1]]
    with Store(tmp_path / "s.db") as store:
        summary = driver.run_sweep(spec, store=store, workers=1)
        assert (summary.total, summary.finished, summary.failed) == (4, 4, 0)
        runs = store.runs()
        by_p = {}
        for r in runs:
            by_p.setdefault(r.config["P"], set()).add(r.ensemble_id)
        assert all(len(ids) == 1 for ids in by_p.values()) and len(set().union(*by_p.values())) == 2
        lone = TrainConfig(**TINY, P=40, seed=1)
        assert next(iter(by_p[40])) == ensemble_id([TrainConfig(**TINY, P=40, seed=s)
                                                    for s in (0, 1)])
        close_records(store.records(lone.run_id), train(lone).records)
        again = driver.run_sweep(spec, store=store, workers=1)
        assert (again.skipped, again.finished) == (4, 0)
