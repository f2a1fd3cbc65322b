"""The run store (SQLite, WAL) and `normscale export`: records round trip, idempotent
re-logging, concurrent writers, corruption, the long-format table `normscale fit` reads."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from normscale.errors import NormscaleError, ParameterError
from normscale.store import Record, Store, long_table, write_table
from normscale.store.export import LEADING_COLUMNS


def rec(step: int, *, test_error: float = 0.5, norms: dict | None = None) -> Record:
    return Record(epoch=step / 4, step=step, test_error=test_error, test_loss=1.0 + step,
                  train_error=0.1, train_loss=0.2 / step, wall_time=0.01 * step,
                  norms={"spectral_complexity": 10.0 * step, "log10_spectral_complexity":
                         math.log10(10.0 * step), "l2": 2.0 + step} if norms is None else norms)


def config(P: int, seed: int, **kw) -> dict:
    return {"model": "cnn", "dataset": "digits", "optimizer": "adam", "weight_decay": 0.0,
            "lr": 1e-3, "batch_size": 128, "P": P, "seed": seed, **kw}


def test_records_round_trip_and_relogging_a_step_replaces_it(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        store.start_run("r1", config(100, 0), ensemble_id="ens")
        nan_rec = Record(epoch=1.0, step=4, test_error=0.3, test_loss=math.nan,
                         train_error=0.2, train_loss=math.inf, wall_time=0.5,
                         norms={"l2": math.nan, "spectral_complexity": 1e58})
        assert store.add_records("r1", [rec(8), nan_rec]) == 2
        got = store.records("r1")
        assert [r.step for r in got] == [4, 8]  # step order
        assert got[1] == rec(8)
        assert math.isnan(got[0].test_loss) and got[0].train_loss == math.inf
        assert math.isnan(got[0].norms["l2"]) and got[0].norms["spectral_complexity"] == 1e58
        store.add_records("r1", [rec(8, test_error=0.25)])  # a resume logs step 8 again
        got = store.records("r1")
        assert len(got) == 2 and got[1].test_error == 0.25
        run = store.run("r1")
        assert (run.status, run.n_records, run.ensemble_id) == ("running", 2, "ens")
        assert run.config == config(100, 0) and run.versions["normscale"]


def test_run_status_and_filters(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        for i, status in enumerate(("finished", "diverged", "failed")):
            store.start_run(f"r{i}", config(100, i), ensemble_id="e" if i < 2 else None)
            store.finish_run(f"r{i}", status=status, error=None if i == 0 else "why",
                             wall_time=1.5)
        store.start_run("r3", config(100, 3))
        assert [r.run_id for r in store.runs(status="finished")] == ["r0"]
        assert {r.run_id for r in store.runs(ensemble_id="e")} == {"r0", "r1"}
        assert store.run("r1").error == "why" and store.run("r0").finished_at is not None
        assert store.run("nope") is None
        with pytest.raises(ParameterError, match="'status' parameter"):
            store.finish_run("r3", status="running")
        with pytest.raises(NormscaleError, match="no run 'ghost'"):
            store.finish_run("ghost", status="finished")
        with pytest.raises(NormscaleError, match="call start_run first"):
            store.add_records("ghost", [rec(1)])
        store.add_records("r0", [rec(1)])
        store.start_run("r0", config(100, 0), fresh=True)  # --force: old records go
        assert store.records("r0") == [] and store.run("r0").status == "running"
        assert store.run("r0").ensemble_id == "e"  # kept when not given again


def test_a_corrupt_or_foreign_file_gives_one_line_naming_it(tmp_path, cli):
    bad = tmp_path / "runs.db"
    bad.write_bytes(b"\x13garbage that is not sqlite" * 200)
    with pytest.raises(NormscaleError, match="runs.db' is not a normscale run store"):
        Store(bad)
    r = cli("export", "--store", bad, "--out", tmp_path / "c.csv")
    assert r.code == 2 and str(bad) in r.err and len(r.err.strip().splitlines()) == 1
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    with pytest.raises(NormscaleError, match="schema version 99"):
        Store(other)
    with pytest.raises(NormscaleError, match="is a folder"):
        Store(tmp_path)


WRITER = """
import sys
from normscale.store import Record, Store
path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(path)
store.start_run(who, {"writer": who})
for step in range(1, n + 1):  # one transaction per record: the worst case for contention
    store.add_records(who, [Record(epoch=step, step=step, test_error=0.5, test_loss=1.0,
                                   train_error=0.1, train_loss=0.2, wall_time=0.0,
                                   norms={"l2": float(step)})])
store.finish_run(who, status="finished", wall_time=1.0)
"""


def test_four_processes_writing_one_store_lose_nothing(tmp_path):
    db = tmp_path / "runs.db"
    n = 60
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), f"w{i}", str(n)],
                              stderr=subprocess.PIPE) for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    with Store(db) as store:
        runs = store.runs(status="finished")
        assert sorted(r.run_id for r in runs) == ["w0", "w1", "w2", "w3"]
        for r in runs:
            assert r.n_records == n
            assert [x.norms["l2"] for x in store.records(r.run_id)] == list(range(1, n + 1))


@pytest.fixture
def filled(tmp_path):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        for P in (100, 200):
            for seed in (0, 1):
                rid = f"P{P}s{seed}"
                store.start_run(rid, config(P, seed))
                store.add_records(rid, [rec(s, test_error=1 / (s * P)) for s in (4, 8, 12)])
                store.finish_run(rid, status="finished", wall_time=1.0)
        store.start_run("bad", config(300, 0))
        store.add_records("bad", [rec(4)])
        store.finish_run("bad", status="diverged", error="nan")
    return db


def test_long_table_has_one_row_per_point_and_norm_kind(filled):
    with Store(filled) as store:
        table = long_table(store)
        assert list(table.columns[:len(LEADING_COLUMNS)]) == list(LEADING_COLUMNS)
        # 4 finished runs x 3 points x 2 kinds (the log10 duplicate is left out)
        assert len(table) == 4 * 3 * 2
        assert set(table["norm_kind"]) == {"spectral_complexity", "l2"}
        row = table[(table.P == 200) & (table.seed == 1) & (table.step == 8)
                    & (table.norm_kind == "spectral_complexity")].iloc[0]
        assert row["norm"] == 80.0 and row["test_error"] == 1 / 1600
        assert row["epoch"] == 2.0 and row["run_id"] == "P200s1" and row["model"] == "cnn"
        assert row["test_loss"] == 9.0 and row["status"] == "finished"
        one = long_table(store, norm="l2")
        assert set(one["norm_kind"]) == {"l2"} and len(one) == 12
        everything = long_table(store, status=None)
        assert 300 in set(everything["P"]) and len(everything) == 26
        with pytest.raises(NormscaleError, match="no norm kind 'l7'"):
            long_table(store, norm="l7")


def test_export_cli_writes_csv_and_parquet_that_fit_can_read(filled, tmp_path, cli):
    out = tmp_path / "curves.csv"
    r = cli("export", "--store", filled, "--out", out, "--norm", "spectral_complexity",
            "--json")
    assert r.code == 0, r.err
    assert r.json() == {"out": str(out), "format": "csv", "rows": 12, "runs": 4,
                        "norm_kinds": ["spectral_complexity"]}
    csv = pd.read_csv(out)
    assert len(csv) == 12 and list(csv.columns[:3]) == ["model", "dataset", "optimizer"]
    r = cli("export", "--store", filled, "--out", tmp_path / "default.csv")
    assert r.code == 0 and "12 rows" in r.out  # the default: the paper's norm only
    assert set(pd.read_csv(tmp_path / "default.csv")["norm_kind"]) == {"spectral_complexity"}
    r = cli("export", "--store", filled, "--out", tmp_path / "curves.parquet", "--norm", "all")
    assert r.code == 0 and "24 rows" in r.out
    pq = pd.read_parquet(tmp_path / "curves.parquet")
    assert len(pq) == 24 and pq["P"].dtype.kind == "i"
    try:
        from normscale.laws.load import load_curves
    except ImportError:
        return
    loaded = load_curves(out)
    assert {"P", "norm", "test_error", "seed"} <= set(loaded.columns) and len(loaded) == 12


def test_export_bad_input_exits_2(filled, tmp_path, cli):
    r = cli("export", "--store", tmp_path / "missing.db")
    assert r.code == 2 and "missing.db' does not exist" in r.err
    assert not (tmp_path / "missing.db").exists()  # export never creates a store
    r = cli("export", "--store", filled, "--norm", "l7", "--out", tmp_path / "x.csv")
    assert r.code == 2 and "no norm kind 'l7'" in r.err
    r = cli("export", "--store", filled, "--format", "xlsx")
    assert r.code == 2


def test_write_table_is_atomic_and_checks_the_format(tmp_path):
    table = pd.DataFrame({"P": [1, 2], "norm": [1.0, 2.0]})
    path = write_table(table, tmp_path / "sub" / "t.csv")
    assert pd.read_csv(path).equals(table)
    assert not list((tmp_path / "sub").glob(".*"))
    with pytest.raises(ParameterError, match="'fmt' parameter of write_table"):
        write_table(table, tmp_path / "t.xlsx")


def test_a_store_written_before_run_claims_is_read_and_upgraded(tmp_path):
    """Issue 23 added runs.owner; an older store is read as it is and upgraded by a writer."""
    db = tmp_path / "old.db"
    with Store(db) as store:
        store.start_run("a", config(100, 0))
        store.add_records("a", [rec(1), rec(2)])
        store.finish_run("a", status="finished")
    with sqlite3.connect(db) as conn:  # the runs table as it was before the owner column
        conn.executescript("""
            CREATE TABLE old (run_id TEXT PRIMARY KEY, config TEXT NOT NULL,
                status TEXT NOT NULL, error TEXT, ensemble_id TEXT, created_at REAL NOT NULL,
                updated_at REAL NOT NULL, finished_at REAL, wall_time REAL,
                versions TEXT NOT NULL, host TEXT NOT NULL, stop_reason TEXT);
            INSERT INTO old SELECT run_id, config, status, error, ensemble_id, created_at,
                updated_at, finished_at, wall_time, versions, host, stop_reason FROM runs;
            DROP TABLE runs;
            ALTER TABLE old RENAME TO runs;""")
    before = db.read_bytes()
    with Store(db, readonly=True) as store:
        assert [r.step for r in store.records("a")] == [1, 2]
    assert db.read_bytes() == before
    with Store(db) as store:
        store.start_run("b", config(200, 0), owner="host:1:claim")
        assert {r.run_id for r in store.runs()} == {"a", "b"}
