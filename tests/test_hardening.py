"""Every bad input of issue 14 exits 2 with one line naming the flag or file (or does the
right thing), readers never write, and a SIGKILLed sweep driver leaves no process behind."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from laws_synthetic import synthetic_curves
from normscale.cli import _common
from normscale.store import Record, Store
from normscale.train import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--model", "cnn", "--dataset", "digits", "--P", "50", "--batch-size", "25",
        "--width", "0.125", "--epochs", "1", "--n-log", "1", "--augment", "none"]


def one_line_error(r, *needles: str) -> None:
    """Exit code 2, one line on stderr holding every needle, no traceback."""
    assert r.code == 2, (r.code, r.err)
    lines = [line for line in r.err.splitlines() if "error" in line]
    assert len(lines) == 1, r.err
    assert "Traceback" not in r.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def empty_db(tmp_path) -> Path:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    return path


@pytest.fixture
def foreign_db(tmp_path) -> Path:
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    return path


def _fill(store: Store, curves, **config) -> None:
    for (P, seed), c in curves.groupby(["P", "seed"]):
        cfg = TrainConfig(model="cnn", dataset="digits", P=int(P), seed=int(seed), epochs=10,
                          **config)
        store.start_run(cfg.run_id, cfg.to_dict())
        store.add_records(cfg.run_id, [
            Record(epoch=float(i + 1), step=i + 1, test_error=float(e), test_loss=1.0,
                   train_error=0.0, train_loss=0.1, wall_time=float(i),
                   norms={"spectral_complexity": float(n)})
            for i, (n, e) in enumerate(zip(c["norm"], c["test_error"], strict=True))])
        store.finish_run(cfg.run_id, status="finished", wall_time=1.0)


@pytest.fixture(scope="module")
def study_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("study") / "runs.db"
    with Store(path) as store:
        _fill(store, synthetic_curves(n_seeds=2, noise=0.02, n_points=20,
                                      rng=np.random.default_rng(3)), optimizer="adam")
    return path


@pytest.fixture(scope="module")
def one_p_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onep") / "runs.db"
    with Store(path) as store:
        _fill(store, synthetic_curves(P=(1000,), n_seeds=2, n_points=20,
                                      rng=np.random.default_rng(4)), optimizer="adam")
    return path


# -- sweep files -------------------------------------------------------------------------

SWEEP = '[base]\nmodel = "cnn"\ndataset = "digits"\nepochs = 1\n[grid]\n'


@pytest.mark.parametrize("content, needle", [
    (b"", "does not set model, dataset, P"),
    (SWEEP.encode() + b"P = {geomspace = [0, 100, 3]}\n", "geomspace"),
    (bytes(range(256)) * 4, "not a text (TOML) file"),
    (b"base = 5\n", "[base] must be a table"),
    (SWEEP.encode() + b"P = {range = [1, 100000000000]}\n", "at most"),
    (SWEEP.encode() + b"P = [inf]\n", "'P'"),
    (SWEEP.encode() + b"P = [1]\nseed = {range = [0, 3, 0]}\n", "'seed'"),
    (b'[base]\nmodel = "cnn"\ndataset = "digits"\nepochs = 1\npreset = 1979-05-27\n'
     b"[grid]\nP = [1]\n", "not valid"),
])
def test_a_bad_sweep_file_is_one_line_naming_it(cli, tmp_path, content, needle):
    path = tmp_path / "s.toml"
    path.write_bytes(content)
    r = cli("sweep", path, "--store", tmp_path / "s.db")
    one_line_error(r, needle)
    assert "'s'" in r.err or "s.toml'" in r.err  # the file's name (a sweep is named by its stem)
    assert not (tmp_path / "s.db").exists()


def test_a_folder_given_as_sweep_file_says_it_is_a_folder(cli, tmp_path):
    one_line_error(cli("sweep", tmp_path, "--dry-run"), "is a folder")


def test_sweep_checks_device_and_data_once_before_any_run(cli, tmp_path):
    spec = tmp_path / "m.toml"
    spec.write_text('[base]\nmodel = "cnn"\ndataset = "mnist"\nepochs = 1\n'
                    "[grid]\nP = [100, 200]\nseed = {range = [0, 9]}\n")
    r = cli("sweep", spec, "--device", "foo", "--store", tmp_path / "s.db")
    one_line_error(r, "--device 'foo'")
    empty = tmp_path / "no-data"
    empty.mkdir()
    r = cli("sweep", spec, "--data-root", empty, "--store", tmp_path / "s.db")
    one_line_error(r, "mnist: missing file(s)", "--data-root")
    assert not (tmp_path / "s.db").exists()  # refused before the store was created


def test_sweep_refuses_a_foreign_store_and_leaves_it_as_it_was(cli, tmp_path, foreign_db):
    spec = tmp_path / "d.toml"
    spec.write_text(SWEEP + "P = [50]\n")
    before = digest(foreign_db)
    one_line_error(cli("sweep", spec, "--store", foreign_db), str(foreign_db),
                   "not a normscale run store")
    assert digest(foreign_db) == before


# -- train ---------------------------------------------------------------------------------

def test_train_checkpoint_that_is_a_folder_leaves_no_running_run(cli, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    db = tmp_path / "runs.db"
    r = cli("train", *TINY, "--checkpoint", folder, "--store", db)
    one_line_error(r, "--checkpoint", "is a folder")
    if db.exists():
        with Store(db) as store:
            assert store.runs(status="running") == []


def test_train_checkpoint_in_an_unwritable_place_exits_2(cli, tmp_path):
    r = cli("train", *TINY, "--checkpoint", "/proc/normscale-test.pt")
    one_line_error(r, "--checkpoint", "/proc/normscale-test.pt")


def test_train_with_an_exploding_loss_is_diverged(cli):
    r = cli("train", *TINY, "--lr", "1e6", "--json", "--quiet")
    assert r.code == 0, r.err
    assert r.json()["status"] == "diverged" and "above" in r.json()["error"]


def test_train_unknown_dataset_names_the_flag(cli):
    one_line_error(cli("train", *TINY[:2], "--dataset", "foo", *TINY[4:]), "--dataset 'foo'")


def test_train_creates_no_folder_outside_cwd_without_mkdir(cli, tmp_path):
    db = tmp_path / "missing" / "deeper" / "runs.db"
    one_line_error(cli("train", *TINY, "--store", db), "--mkdir", str(db))
    assert not (tmp_path / "missing").exists()


def test_train_refuses_a_foreign_store_and_takes_an_empty_file(cli, foreign_db, empty_db):
    before = digest(foreign_db)
    one_line_error(cli("train", *TINY, "--store", foreign_db), str(foreign_db))
    assert digest(foreign_db) == before
    r = cli("train", *TINY, "--store", empty_db, "--quiet")  # a new or empty path: a store
    assert r.code == 0, r.err
    with Store(empty_db, readonly=True) as store:
        assert len(store.runs(status="finished")) == 1


# -- readers never write -------------------------------------------------------------------

READERS = [
    ("export", "--out", "c.csv"),
    ("table", "--n-boot", "0"),
    ("report", "--out", "rep", "--n-boot", "0"),
]


@pytest.mark.parametrize("reader", [*READERS, ("scaling",)], ids=lambda r: r[0])
@pytest.mark.parametrize("kind", ["empty", "foreign"])
def test_readers_refuse_empty_and_foreign_files_unchanged(cli, tmp_path, request, reader, kind):
    db = request.getfixturevalue(f"{kind}_db")
    before, files = digest(db), listing(tmp_path)
    command, *rest = reader
    rest = [str(tmp_path / a) if a in ("c.csv", "rep") else a for a in rest]
    store = [db] if command == "scaling" else ["--store", db]  # scaling reads a .db as a store
    one_line_error(cli(command, *store, *rest), str(db))
    assert digest(db) == before
    assert listing(tmp_path) == files  # no -wal, -shm, output or folder left behind


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r[0])
def test_readers_leave_a_store_byte_identical(cli, tmp_path, study_db, reader):
    before, files = digest(study_db), listing(study_db.parent)
    command, *rest = reader
    rest = [str(tmp_path / a) if a in ("c.csv", "rep") else a for a in rest]
    r = cli(command, "--store", study_db, *rest, "--quiet")
    assert r.code == 0, r.err
    assert digest(study_db) == before and listing(study_db.parent) == files


def test_readers_say_a_folder_is_a_folder(cli, tmp_path):
    for command in ("export", "table", "report"):
        one_line_error(cli(command, "--store", tmp_path), "--store", "is a folder")


def test_export_refuses_an_unknown_suffix_and_missing_folders(cli, tmp_path, study_db):
    one_line_error(cli("export", "--store", study_db, "--out", tmp_path / "c.xlsx"),
                   "--out", ".xlsx")
    assert not (tmp_path / "c.xlsx").exists()
    out = tmp_path / "nonexistent_dir2" / "c.csv"
    one_line_error(cli("export", "--store", study_db, "--out", out), "--mkdir")
    assert not out.parent.exists()
    r = cli("export", "--store", study_db, "--out", out, "--mkdir")
    assert r.code == 0 and out.is_file()
    r = cli("export", "--store", study_db, "--out", tmp_path / "c.xlsx", "--format", "csv")
    assert r.code == 0  # asked for by name


def test_n_boot_zero_is_accepted_by_fit_table_and_report(cli, tmp_path, study_db):
    assert cli("table", "--store", study_db, "--n-boot", "0", "--quiet").code == 0
    r = cli("report", "--store", study_db, "--n-boot", "0", "--out", tmp_path / "r", "--quiet")
    assert r.code == 0, r.err
    csv = tmp_path / "c.csv"
    pd.DataFrame(synthetic_curves(n_seeds=2, n_points=20)).to_csv(csv, index=False)
    r = cli("fit", csv, "--n-boot", "0", "--quiet")
    assert r.code == 0, r.err
    for command in ("table", "report"):
        one_line_error(cli(command, "--store", study_db, "--n-boot", "-1"), "--n-boot")


def test_a_one_p_store_is_refused_alike_by_table_and_report(cli, tmp_path, one_p_db):
    t = cli("table", "--store", one_p_db, "--n-boot", "0")
    r = cli("report", "--store", one_p_db, "--n-boot", "0", "--out", tmp_path / "rep")
    one_line_error(t, "no group of the store could be fitted")
    one_line_error(r, "no group of the store could be fitted")
    assert not (tmp_path / "rep").exists()


def test_report_quiet_prints_nothing(cli, tmp_path, study_db):
    r = cli("report", "--store", study_db, "--n-boot", "0", "--out", tmp_path / "rep",
            "--quiet")
    assert r.code == 0 and r.out == "" and r.err == ""
    assert (tmp_path / "rep" / "index.html").is_file()


# -- fit (cli/fit.py and normscale.laws: the lead's part of the issue) ----------------------

@pytest.fixture
def curves_csv(tmp_path) -> Path:
    csv = tmp_path / "c.csv"
    pd.DataFrame(synthetic_curves(n_seeds=2, n_points=20)).to_csv(csv, index=False)
    return csv


def test_fit_unknown_group_by_column_is_named(cli, curves_csv):
    one_line_error(cli("fit", curves_csv, "--group-by", "nonexistent"), "nonexistent")


def test_fit_negative_n_boot_names_the_flag(cli, curves_csv):
    one_line_error(cli("fit", curves_csv, "--n-boot", "-1"), "--n-boot")


def test_fit_a_folder_given_as_curves_file_says_it_is_a_folder(cli, tmp_path):
    one_line_error(cli("fit", tmp_path), "is a folder")


def test_fit_inf_in_a_csv_is_reported_as_inf(cli, curves_csv):
    csv = curves_csv
    table = pd.read_csv(csv)
    table.loc[3, "test_error"] = np.inf
    table.to_csv(csv, index=False)
    one_line_error(cli("fit", csv), "inf")


# -- grids and numbers ---------------------------------------------------------------------

@pytest.mark.parametrize("lam, needle", [
    ("10:1:5", "give lo < hi"),
    ("1,,2", "has an empty item"),
    ("-1:10:5", "--lam must hold values > 0; got -1"),
    ("-1", "--lam must hold values > 0; got -1"),
    ("-inf", "non-finite"),
    ("1:10:1000000000", "points"),
])
def test_bad_grids_are_refused_with_the_flag(cli, lam, needle):
    for command in (["theory", "--alpha", "5"], ["perceptron", "--n", "10"]):
        one_line_error(cli(*command, "--lam", lam), needle)


def test_negative_numbers_reach_their_check(cli):
    one_line_error(cli("train", *TINY, "--lr", "-1"), "--lr must be a float > 0")
    one_line_error(cli("perceptron", "--n", "-5"), "--n must be an int >= 1; got -5")


def test_perceptron_states_the_memory_it_would_need_before_allocating(cli, tmp_path):
    out = tmp_path / "o"
    r = cli("perceptron", "--alpha", "1e9", "--n", "50", "--lam", "0.1:10:5", "--out", out)
    one_line_error(r, "alpha=1e+09", "GiB", "the limit is")
    assert not out.exists()


@pytest.mark.parametrize("argv, needle", [
    (["--alpha", "5", "--lam", "1e300"], "--lam 1e+300 is beyond"),
    (["--alpha", "1e300", "--lam", "1"], "--alpha 1e+300 is outside"),
    (["--alpha", "1e-300", "--opt"], "--alpha 1e-300 is outside"),
])
def test_theory_bounds_what_the_solver_cannot_resolve(cli, argv, needle):
    one_line_error(cli("theory", *argv), needle)


def test_norms_checkpoint_folder_says_folder(cli, tmp_path):
    one_line_error(cli("norms", tmp_path), "is a folder")


# -- progress without a terminal -----------------------------------------------------------

def test_train_logs_plain_progress_lines_when_not_on_a_terminal(cli, monkeypatch):
    monkeypatch.setattr(_common, "LOG_EVERY_S", 0.0)
    argv = [a if a != "1" or i != TINY.index("--epochs") + 1 else "3"
            for i, a in enumerate(TINY)]
    r = cli("train", *argv)
    assert r.code == 0, r.err
    assert "/3 after" in r.err and "\r" not in r.err  # plain lines, no bar
    quiet = cli("train", *argv, "--quiet")
    assert quiet.code == 0 and quiet.err == ""


def test_sweep_logs_a_line_per_finished_run_when_not_on_a_terminal(cli, tmp_path):
    spec = tmp_path / "d.toml"
    spec.write_text(SWEEP + 'P = [50]\nbatch_size = [25]\nwidth = [0.125]\nn_log = [1]\n'
                    'augment = ["none"]\n')
    r = cli("sweep", spec, "--store", tmp_path / "s.db", "--workers", "1")
    assert r.code == 0, r.err
    assert "1/1 runs done" in r.err


# -- processes -----------------------------------------------------------------------------

def _children() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if fields[0] != "Z":  # a zombie has ended
                out[int(d.name)] = int(fields[1])
    return out


def _descendants(pid: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_a_sigkilled_sweep_driver_leaves_no_process_behind(tmp_path):
    spec = tmp_path / "long.toml"
    spec.write_text('[base]\nmodel = "cnn"\ndataset = "digits"\nepochs = 1000\nwidth = 0.125\n'
                    'batch_size = 25\nn_log = 2\naugment = "none"\n[grid]\nP = [1000]\n')
    driver = subprocess.Popen(
        [sys.executable, "-m", "normscale", "sweep", str(spec), "--workers", "1", "--store",
         str(tmp_path / "s.db"), "--quiet"], cwd=tmp_path, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kids: set[int] = set()
    try:
        for _ in range(600):  # until the worker and the resource tracker exist (<= 60 s)
            kids = _descendants(driver.pid)
            if len(kids) >= 2 or driver.poll() is not None:
                break
            time.sleep(0.1)
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        assert len(kids) >= 2, "no worker was started"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        alive = set(kids)
        for _ in range(300):  # the children notice their parent's death (<= 30 s)
            alive &= set(_children())
            if not alive:
                break
            time.sleep(0.1)
        assert not alive, f"orphans left: {sorted(alive)}"
    finally:
        for pid in kids & set(_children()):  # never leave a test's processes running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if driver.poll() is None:
            driver.kill()
        driver.stderr.close()


def test_library_messages_name_the_flag_typed(cli):
    one_line_error(cli("train", *TINY, "--momentum", "1.5"), "--momentum must be")
    r = cli("train", *TINY[:5], "5000", *TINY[6:])
    one_line_error(r, "--P must be at most")
    assert "TrainConfig" not in r.err and "parameter of" not in r.err


@pytest.mark.parametrize("device", ["meta", "xpu", "foo"])
def test_train_and_sweep_refuse_devices_nothing_trains_on(cli, tmp_path, device):
    one_line_error(cli("train", *TINY, "--device", device), "--device")
    spec = tmp_path / "d.toml"
    spec.write_text(SWEEP + "P = [50]\n")
    one_line_error(cli("sweep", spec, "--device", device, "--store", tmp_path / "s.db"),
                   "--device")
    assert not (tmp_path / "s.db").exists()


def test_train_creates_the_store_folder_only_after_the_other_checks(cli, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)  # under the current directory a missing folder is created
    one_line_error(cli("train", *TINY, "--device", "foo", "--store", "new/runs.db"), "--device")
    assert not (tmp_path / "new").exists()


def test_a_reader_that_leaves_early_is_no_traceback(tmp_path):
    """`normscale ... --json | head`: the closed pipe ends the output quietly."""
    p = subprocess.Popen([sys.executable, "-m", "normscale", "perceptron", "--alpha", "2",
                          "--n", "10", "--max-iter", "1", "--lam", "0.1:10:300", "--json",
                          "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=tmp_path)
    assert p.stdout.read(10) == b'[{"alpha":'
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 0 and "Traceback" not in err, err


def test_a_read_only_store_refuses_writes_by_name(study_db):
    from normscale.errors import NormscaleError

    before = digest(study_db)
    with Store(study_db, readonly=True) as store:
        assert store.runs(status="finished")
        with pytest.raises(NormscaleError, match="open read-only"):
            store.start_run("x", {"model": "cnn"})
    assert digest(study_db) == before
