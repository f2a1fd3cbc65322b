"""Issue 23, data integrity: trackers own their runs, damaged stores and logs are one line,
and inputs that claim huge sizes are refused before they are allocated."""

from __future__ import annotations

import io
import json
import math
import os
import socket
import sqlite3
import struct
import zlib
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from normscale.errors import DataError, NormscaleError, ParameterError
from normscale.integrations import RunTracker
from normscale.store import Record, Store, long_table

pytestmark = pytest.mark.usefixtures("one_thread")


def one_line_error(r, *needles: str) -> str:
    assert r.code == 2, (r.code, r.out, r.err)
    assert "Traceback" not in r.err
    lines = [line for line in r.err.splitlines() if ": error: " in line]
    assert len(lines) == 1, r.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def mlp(width: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 3))


def tracker(store, model=None, **kw) -> RunTracker:
    return RunTracker(model or mlp(), model_name="mlp", P=100, seed=0, store=store,
                      schedule=1, **kw)


def steps_in(db: Path) -> list[int]:
    with Store(db, readonly=True) as store:
        run, = store.runs()
        return [r.step for r in store.records(run.run_id)]


# -- the tracker owns its run --------------------------------------------------------------------

def test_log_after_the_with_block_raises_instead_of_storing_nothing(tmp_path):
    db = tmp_path / "runs.db"
    with tracker(db) as t:
        t.log(1, epoch=1.0, test_error=0.5)
    with pytest.raises(ParameterError, match="is finished"):
        t.log(2, epoch=2.0, test_error=0.4)
    with pytest.raises(ParameterError, match="is finished"):
        t.finish()
    assert steps_in(db) == [1]
    u = tracker(None)
    u.close()
    with pytest.raises(ParameterError, match="is closed"):
        u.log(1, epoch=1.0)


def test_a_second_live_writer_of_one_run_is_refused_by_name(tmp_path):
    db = tmp_path / "runs.db"
    a, b = tracker(db), tracker(db)
    for step in range(1, 21):
        a.log(step, epoch=float(step), test_error=1.0 / step)
        if step == 1:
            with pytest.raises(NormscaleError, match=f"run {a.run_id} .* is being written by"):
                b.log(step, epoch=float(step), test_error=0.9)
    a.finish()
    assert steps_in(db) == list(range(1, 21))  # none of the 20 points lost
    b.close()


def test_a_tracker_dropped_unclosed_frees_its_run(tmp_path):
    """A notebook cell rerun: the first tracker raised mid-loop and was never closed."""
    db = tmp_path / "runs.db"
    t = tracker(db)
    t.log(1, epoch=1.0, test_error=0.5)
    t = tracker(db)  # the old one is gone: its claim with it
    t.log(1, epoch=1.0, test_error=0.4)
    t.finish()
    assert steps_in(db) == [1]


def test_the_claim_of_a_dead_process_does_not_block_its_resume(tmp_path):
    db = tmp_path / "runs.db"
    t = tracker(db)
    host = socket.gethostname()
    with Store(db) as store:  # a writer that was killed: its pid is gone
        store.start_run(t.run_id, t.config, owner=f"{host}:{2**22 + 12345}:dead")
    t.log(1, epoch=1.0, test_error=0.5)  # taken over
    t.finish()
    live = tracker(db)
    with Store(db) as store:  # a writer that lives (this test's parent process)
        store.start_run(t.run_id, t.config, owner=f"{host}:{os.getppid()}:live")
    with pytest.raises(NormscaleError, match="is being written by"):
        live.log(1, epoch=1.0, test_error=0.5)
    live.close()


def test_a_rerun_of_a_finished_config_replaces_it_and_a_resume_continues_it(tmp_path):
    db = tmp_path / "runs.db"
    with tracker(db) as t:
        for step in range(1, 31):
            t.log(step, epoch=float(step), test_error=0.5)
    with tracker(db) as t:  # the same config again, shorter: a new run, not a mix
        for step in range(1, 6):
            t.log(step, epoch=float(step), test_error=0.25)
    assert steps_in(db) == [1, 2, 3, 4, 5]
    with Store(db, readonly=True) as store:
        assert {r.test_error for r in store.records(store.runs()[0].run_id)} == {0.25}
    with pytest.raises(RuntimeError), tracker(db):  # a rerun that fails before its 1st point
        raise RuntimeError("crashed at start-up")
    assert steps_in(db) == [1, 2, 3, 4, 5]  # the finished run is not replaced by nothing
    first = tracker(db)
    for step in range(1, 4):
        first.log(step, epoch=float(step), test_error=0.5)
    state = first.state_dict()
    first.close()  # killed: not finished
    resumed = tracker(db)
    resumed.load_state_dict(state)
    for step in range(4, 7):
        resumed.log(step, epoch=float(step), test_error=0.5)
    resumed.finish()
    assert steps_in(db) == [1, 2, 3, 4, 5, 6]


def test_a_malformed_or_foreign_tracker_state_is_refused_before_use():
    t = tracker(None)
    t.log(1, epoch=1.0)
    good = t.state_dict()
    for bad, needle in (({}, "belongs to run"), ([1, 2], "takes the dict"),
                        ({**good, "last_step": -1}, "last_step"),
                        ({**good, "last_step": "3"}, "last_step"),
                        ({**good, "wall_time": math.inf}, "wall_time"),
                        ({**good, "norms": None}, "norms"),
                        ({**good, "norms": {**good["norms"], "vectors": [1, 2]}}, "vectors"),
                        ({**good, "norms": {**good["norms"], "layers": ["x"]}},
                         "other matrices")):
        with pytest.raises(ParameterError, match=needle):
            t.load_state_dict(bad)
    wide = tracker(None, model=mlp(width=16))  # the same names, another architecture
    with pytest.raises(ParameterError, match="another model"):
        wide.load_state_dict({**t.state_dict(), "run_id": wide.run_id})
    assert wide.last_step == 0
    wide.load_state_dict({**wide.state_dict(), "last_step": 7})
    assert wide.last_step == 7


# -- damaged stores: one line naming the run and the column -------------------------------------

@pytest.fixture
def small_store(tmp_path) -> Path:
    db = tmp_path / "runs.db"
    with Store(db) as store:
        for P in (100, 200):
            run = f"run{P}"
            store.start_run(run, {"model": "m", "dataset": "d", "P": P, "seed": 0})
            store.add_records(run, [Record(epoch=float(s), step=s, test_error=0.5 / s,
                                           test_loss=1.0, train_error=0.1, train_loss=0.1,
                                           wall_time=1.0, norms={"spectral_complexity": 1.0 * s})
                                    for s in (1, 2, 3)])
            store.finish_run(run, status="finished")
    return db


@pytest.mark.parametrize("sql, needle", [
    ("UPDATE runs SET config = 'not json' WHERE run_id = 'run100'", "the config of run 'run100'"),
    ("UPDATE runs SET config = '[1, 2]' WHERE run_id = 'run100'", "the config of run 'run100'"),
    ("UPDATE runs SET versions = '{' WHERE run_id = 'run100'", "the versions of run 'run100'"),
    ("UPDATE records SET norms = 'x' WHERE run_id = 'run200'", "the norms of run 'run200'"),
    ("UPDATE records SET norms = '{\"spectral_complexity\": \"big\"}'", "not a number"),
    ("UPDATE records SET norms = '{\"step\": 3}'", "fixed column"),
    ("UPDATE records SET epoch = 'abc' WHERE step = 2", "not a number"),
    ("UPDATE runs SET created_at = 'yesterday'", "not a number"),
])
@pytest.mark.parametrize("command", ["export", "table"])
def test_malformed_store_columns_are_one_line(cli, tmp_path, small_store, sql, needle, command):
    with sqlite3.connect(small_store) as conn:
        conn.execute(sql)
    before = small_store.read_bytes()
    extra = ["--out", tmp_path / "c.csv"] if command == "export" else ["--n-boot", "0"]
    one_line_error(cli(command, "--store", small_store, *extra), str(small_store), needle)
    assert small_store.read_bytes() == before
    assert not (tmp_path / "c.csv").exists()


def test_tracker_configs_with_lists_export_and_table_without_traceback(cli, tmp_path):
    db = tmp_path / "runs.db"
    for P in (100, 200, 400):
        with RunTracker(mlp(), model_name="mlp", P=P, store=db, schedule=1,
                        config={"layers": [64, 64], "opts": {"beta": 0.9},
                                "optimizer": ["adam", {"lr": 0.1}]}) as t:
            for step in range(1, 6):
                t.log(step, epoch=float(step), test_error=1.0 / (step * P) ** 0.3)
    r = cli("export", "--store", db, "--out", tmp_path / "c.csv")
    assert r.code == 0, r.err
    from normscale.report.study import stop_reasons

    with Store(db, readonly=True) as store:  # a group's value is the list's JSON text
        group = {"model": "mlp", "optimizer": long_table(store)["optimizer"].iloc[0]}
        assert stop_reasons(store, group) == {"unknown": 3}
    for group_by in ("model,dataset", "model,dataset,optimizer,weight_decay,norm_kind"):
        r = cli("table", "--store", db, "--n-boot", "0", "--group-by", group_by)
        assert r.code in (0, 2) and "Traceback" not in r.err, r.err
        r = cli("report", "--store", db, "--n-boot", "0", "--group-by", group_by,
                "--out", tmp_path / "rep")
        assert r.code in (0, 2) and "Traceback" not in r.err, r.err


# -- import tensorboard: damaged logs --------------------------------------------------------------

def _events(folder: Path, steps=(1, 2, 4), step_values=None) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(folder) as w:
        for i, step in enumerate(steps):
            w.add_scalar("norms/spectral_complexity", 2.0 * step, step)
            w.add_scalar("val_error", 1.0 / step, step)
            if step_values is not None:
                w.add_scalar("norms/step", step_values[i], step)


TB = ["--norm-tag", "norms/spectral_complexity", "--error-tag", "val_error"]


@pytest.mark.parametrize("content, needle", [
    (b"a: [1, 2\nb: : :\n", "not plain YAML"),
    (bytes(range(256)) * 4, "not a UTF-8 text file"),
    (b"P: !!python/object/apply:os.system ['touch ran']\n", "not plain YAML"),
    (b"- 1\n- 2\n", "has no key"),
])
def test_import_tensorboard_refuses_a_bad_hparams_yaml_in_one_line(cli, tmp_path, content,
                                                                    needle):
    pytest.importorskip("tensorboard")
    _events(tmp_path / "tb" / "run")
    (tmp_path / "tb" / "run" / "hparams.yaml").write_bytes(content)
    os.chdir(tmp_path)
    one_line_error(cli("import", "tensorboard", tmp_path / "tb", *TB, "--P-from", "hparams:P",
                       "--out", tmp_path / "c.csv"), needle)
    assert not (tmp_path / "ran").exists() and not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize("values", [[1, math.inf, 4], [1, 1e30, 4], [1, 2.5, 4]])
def test_import_tensorboard_refuses_steps_that_are_not_steps(cli, tmp_path, values):
    pytest.importorskip("tensorboard")
    _events(tmp_path / "tb" / "run", step_values=values)
    one_line_error(cli("import", "tensorboard", tmp_path / "tb", *TB, "--P", "10",
                       "--out", tmp_path / "c.csv"), "step must be an integer")
    assert not (tmp_path / "c.csv").exists()


def test_import_tensorboard_reads_a_repeated_tag_once_and_a_damaged_file_is_one_line(
        cli, tmp_path):
    pytest.importorskip("tensorboard")
    _events(tmp_path / "tb" / "run")
    out = tmp_path / "c.csv"
    r = cli("import", "tensorboard", tmp_path / "tb", *TB, "--norm-tag",
            "norms/spectral_complexity", "--P", "10", "--out", out, "--json")
    assert r.code == 0, r.err
    assert r.json()["rows"] == 3 and len(pd.read_csv(out)) == 3
    one_line_error(cli("import", "tensorboard", tmp_path / "tb", *TB, "--norm-tag",
                       "other/spectral_complexity", "--P", "10", "--out", out), "--norm-tag")
    event, = (tmp_path / "tb" / "run").glob("*tfevents*")
    event.write_bytes(event.read_bytes()[:40] + b"\xff" * 64)  # a damaged record
    r = cli("import", "tensorboard", tmp_path / "tb", *TB, "--P", "10", "--out",
            tmp_path / "d.csv")
    assert r.code in (0, 2) and "Traceback" not in r.err, r.err
    if r.code == 2:
        one_line_error(r)
    os.mkfifo(tmp_path / "tb" / "run" / "events.out.tfevents.pipe")  # never opened: no hang
    r = cli("import", "tensorboard", tmp_path / "tb", *TB, "--P", "10", "--out",
            tmp_path / "e.csv")
    assert r.code in (0, 2) and "Traceback" not in r.err, r.err


# -- sizes refused before they are allocated ----------------------------------------------------

def _png_claiming(width: int, height: int) -> bytes:
    """A valid 8x8 PNG whose header claims ``width`` x ``height`` pixels."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    ihdr = bytearray(raw[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return bytes(raw)


def test_a_png_header_claiming_60000_squared_pixels_is_refused_before_decoding(tmp_path):
    from normscale.data.imagefolder import load_imagefolder

    for split in ("train", "test"):
        (tmp_path / "imgs" / split / "cat").mkdir(parents=True)
        (tmp_path / "imgs" / split / "cat" / "1.png").write_bytes(_png_claiming(60000, 60000))
    with pytest.raises(DataError, match="pixels"):
        load_imagefolder(root=tmp_path / "imgs", split="train", use_cache=False)


def test_a_sweep_file_with_100000_nested_arrays_is_one_line(cli, tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("[base]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n")
    one_line_error(cli("sweep", deep, "--dry-run"), str(deep), "nests")
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (2**20 + 10) + "\n")
    one_line_error(cli("sweep", big, "--dry-run"), str(big), "bytes")


@pytest.mark.parametrize("argv, flag", [
    (["sweep", "cpu/cnn-digits", "--threads-per-run", "1000000"], "--threads-per-run"),
    (["sweep", "cpu/cnn-digits", "--workers", "1000000"], "--workers"),
    (["table", "--n-boot", "1000000000"], "--n-boot"),
    (["norms", "x.pt", "--image-size", "1000000"], "--image-size"),
])
def test_numeric_options_have_an_upper_bound(cli, argv, flag):
    one_line_error(cli(*argv), flag)


def test_a_checkpoint_config_with_a_huge_model_is_refused_before_building(cli, tmp_path):
    from normscale.train.checkpoint import save_checkpoint

    ck = tmp_path / "c.pt"
    save_checkpoint(ck, {"model_state": {"w": torch.ones(1)}, "optimizer_state": {},
                         "rng_state": {"torch": torch.get_rng_state()}, "epoch": 0.0,
                         "step": 0, "config": {"model": "cnn", "in_channels": 1,
                                               "image_size": 10**6, "num_classes": 10}})
    one_line_error(cli("norms", ck), "image_size")
    assert json.loads(json.dumps({"ok": True}))  # the process is alive and well


def test_a_log_spaced_schedule_is_bounded_and_its_next_step_is_immediate():
    from normscale.integrations import LogSpaced
    from normscale.integrations.schedule import MAX_PER_DECADE

    with pytest.raises(ParameterError, match="per_decade"):
        LogSpaced(10**15)  # would search ~1e8 grid points for the step after 1e6
    finest = LogSpaced(MAX_PER_DECADE)
    for step in (1, 430, 10**6, 10**12):
        nxt = finest.next_after(step)
        grid = {round(10 ** (j / MAX_PER_DECADE)) for j in range(
            math.floor(MAX_PER_DECADE * math.log10(step)) - 3,
            math.ceil(MAX_PER_DECADE * math.log10(nxt)) + 3)}  # brute force, nearby
        assert nxt in grid and nxt > step
        assert not any(step < g < nxt for g in grid)  # the first grid point after step
