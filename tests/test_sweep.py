"""Sweep files, presets, the local and Ray executors, and resuming a killed driver."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from normscale.errors import NormscaleError
from normscale.store import Store
from normscale.sweep import list_presets, load_spec, run_sweep
from normscale.sweep.spec import parse_spec
from normscale.train import train

TINY = """
name = "tiny"
[base]
model = "cnn"
dataset = "digits"
width = 0.125
steps = 12
n_log = 3
batch_size = 32
[grid]
P = [60, 120, 240]
seed = {range = [0, 2]}
"""


def _tiny(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def _snapshot(store: Store) -> dict[str, tuple]:
    """run_id -> (status, records without wall time)."""
    out = {}
    for info in store.runs():
        recs = tuple((r.step, r.test_error, r.train_loss,
                      round(r.norms["log10_spectral_complexity"], 6))
                     for r in store.records(info.run_id))
        out[info.run_id] = (info.status, recs)
    return out


def test_grid_expansion_and_validation(tmp_path):
    spec = load_spec(_tiny(tmp_path))
    configs = spec.configs()
    assert [(c.P, c.seed) for c in configs] == [(P, s) for P in (60, 120, 240) for s in (0, 1)]
    assert len({c.run_id for c in configs}) == 6
    geo = parse_spec({"base": {"model": "cnn", "dataset": "digits", "epochs": 1},
                      "grid": {"P": {"geomspace": [100, 1000, 3]}}}, name="g")
    assert [c.P for c in geo.configs()] == [100, 316, 1000]
    linked = parse_spec({"base": {"model": "cnn", "dataset": "digits"},
                         "grid": {"seed": [0, 1], "cells": [{"P": 250, "epochs": 400},
                                                            {"P": 8000, "epochs": 40.0}]}},
                        name="linked")
    assert [(c.seed, c.P, c.epochs) for c in linked.configs()] == [
        (0, 250, 400), (0, 8000, 40), (1, 250, 400), (1, 8000, 40)]
    bad = [({"base": {"model": "cnn", "dataset": "digits", "epochs": 1, "colour": 1}}, "colour"),
           ({"base": {"model": "cnn", "dataset": "digits", "epochs": 1}, "grid": {"P": []}},
            "empty"),
           ({"base": {"model": "mlp", "dataset": "digits", "epochs": 1, "P": 5}}, "mlp"),
           ({"base": {"model": "cnn", "dataset": "digits", "epochs": 1, "P": 5},
             "grid": {"P": [1, 2]}}, "twice"),
           ({"base": {"model": "cnn", "dataset": "digits", "epochs": 1},
             "grid": {"cells": [{"P": 5, "epochs": 2}]}}, "twice"),
           ({"base": {"model": "cnn", "dataset": "digits", "epochs": 1},
             "grid": {"cells": [{"P": 5, "colour": 2}]}}, "colour"),
           ({"base": {"model": "cnn", "dataset": "digits", "epochs": 1},
             "grid": {"cells": []}}, "non-empty")]
    for data, word in bad:
        with pytest.raises(NormscaleError, match=word):
            parse_spec(data, name="bad")
    (tmp_path / "broken.toml").write_text("[base\nmodel=")
    with pytest.raises(NormscaleError, match="broken.toml"):
        load_spec(tmp_path / "broken.toml")
    with pytest.raises(NormscaleError, match="no sweep file or preset"):
        load_spec("paper/no-such-row")


def test_presets_cover_the_papers_rows():
    names = set(list_presets())
    for model in ("cnn", "resnet", "vit"):
        for data in ("mnist", "cifar10", "cifar100"):
            assert f"paper/{model}-{data}" in names and f"cpu/{model}-{data}" in names
    paper = load_spec("paper/cnn-mnist").configs()
    assert len(paper) == 11 * 31 and {c.P for c in paper} >= {375, 48000}
    # the paper's init and its T = 500 epochs, as the cap of the stop rule
    assert all(c.init_factor == 0.05 and c.epochs == 500 and c.until == "optimum"
               for c in paper)
    # the norms ablation analyses the very same runs: nothing trains twice
    norms = load_spec("paper/cnn-mnist-norms").configs()
    assert {c.run_id for c in norms} == {c.run_id for c in paper}
    cpu = load_spec("cpu/cnn-mnist").configs()
    assert {c.P for c in cpu} == {250, 500, 1000, 2000, 4000}
    epochs = {c.P: c.epochs for c in cpu}
    assert epochs[250] > epochs[4000]  # small P get higher caps to pass their optimum
    assert len({c.seed for c in cpu}) >= 2
    assert all(c.init_factor == 1.0 for c in cpu)  # defaults that learn, not the paper's 0.05
    for name in names:  # every preset parses and validates; every study stops past its optimum
        configs = load_spec(name).configs()
        assert configs and all(c.until == "optimum" for c in configs), name


def test_local_sweep_is_idempotent_and_records_failures(tmp_path):
    text = TINY.replace("seed = {range = [0, 2]}", 'seed = [0]\nlr = [1e-3, 1e9]')
    spec = load_spec(_tiny(tmp_path, text))
    with Store(tmp_path / "runs.db") as store:
        first = run_sweep(spec, store=store, workers=2)
        assert first.total == 6 and first.skipped == 0
        assert first.finished + first.diverged == 6 and first.failed == 0
        statuses = {info.config["lr"]: set() for info in store.runs()}
        for info in store.runs():
            statuses[info.config["lr"]].add(info.status)
            assert info.n_records >= 1 or info.status == "diverged"
        assert statuses[1e-3] == {"finished"} and "diverged" in statuses[1e9]
        before = _snapshot(store)
        again = run_sweep(spec, store=store, workers=2)
        assert again.skipped == 6 and again.finished == again.failed == 0
        assert _snapshot(store) == before
        # a run that cannot start is recorded as failed with its error, the rest go on
        broken = parse_spec({"base": {"model": "cnn", "dataset": "imagefolder", "steps": 1},
                             "grid": {"P": [10]}}, name="broken")
        summary = run_sweep(broken, store=store, workers=1)
        assert summary.failed == 1 and summary.failures[0][1]
        assert store.run(broken.configs()[0].run_id).status == "failed"


def _finished_runs(db: Path) -> int:
    """Finished runs in a store, read-only (the driver is writing it)."""
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True,
                                                timeout=5)) as conn:
            return conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'finished'"
                                ).fetchone()[0]
    except sqlite3.Error:  # the schema is not there yet
        return 0


@pytest.mark.slow
def test_ray_sweep_survives_a_killed_driver(tmp_path, one_thread):
    pytest.importorskip("ray")  # this test alone needs Ray
    # runs of a second or more each, so that the kill lands while most are still to do
    spec_path = _tiny(tmp_path, TINY.replace("steps = 12", "steps = 400"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "normscale", "sweep", str(spec_path), "--executor", "ray",
           "--workers", "2", "--quiet", "--store"]
    killed_db = tmp_path / "killed.db"
    driver = subprocess.Popen([*cmd, str(killed_db)], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        done = 0
        while time.monotonic() < deadline and driver.poll() is None and done < 1:
            time.sleep(0.2)
            done = _finished_runs(killed_db)
        assert driver.poll() is None, "the sweep ended before it could be killed"
        driver.send_signal(signal.SIGKILL)  # halfway: some runs done, the others not
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert 1 <= _finished_runs(killed_db) < 6
    with Store(killed_db) as s:
        assert any(info.status == "running" for info in s.runs())
    rerun = subprocess.run([*cmd, str(killed_db)], env=env, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    # the records of uninterrupted runs, trained here
    clean_db = tmp_path / "clean.db"
    with Store(clean_db) as clean:
        for cfg in load_spec(spec_path).configs():
            clean.start_run(cfg.run_id, cfg.to_dict())
            result = train(cfg)
            clean.add_records(cfg.run_id, result.records)
            clean.finish_run(cfg.run_id, status=result.status)
    with Store(killed_db) as killed, Store(clean_db) as clean:
        assert len(killed.runs()) == 6
        got, want = _snapshot(killed), _snapshot(clean)
        assert got.keys() == want.keys()
        for run_id, (status, recs) in want.items():
            assert got[run_id][0] == status == "finished"
            assert [r[0] for r in got[run_id][1]] == [r[0] for r in recs]  # once each
            for a, b in zip(got[run_id][1], recs, strict=True):
                assert all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)
                           for x, y in zip(a, b, strict=True))
