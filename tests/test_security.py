"""Issue 23, security: no file runs code, no output replaces what it must not, no foreign
store is written, and no text cell runs as a spreadsheet formula."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pandas as pd
import pytest
import torch

from normscale import safeio
from normscale.errors import NormscaleError
from normscale.store import Record, Store, long_table, write_table
from normscale.train.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--model", "cnn", "--dataset", "digits", "--P", "50", "--batch-size", "25",
        "--width", "0.125", "--epochs", "1", "--n-log", "1", "--augment", "none", "--quiet"]


class Planted:
    """A pickle whose ``__reduce__`` creates the file ``marker`` when it is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant(path: Path, marker: Path, *, checkpoint: bool = True) -> Path:
    """A file that runs code when loaded: a checkpoint-shaped dict (or a bare object)
    holding :class:`Planted`; checked to work against an unrestricted ``torch.load``."""
    payload = {"model_state": {}, "optimizer_state": {}, "rng_state": {"torch": Planted(marker)},
               "config": {}, "epoch": 0, "step": 0, "run_id": "x"} if checkpoint \
        else Planted(marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    probe = path.with_name(path.name + ".probe")  # the pickle really would run
    probe_marker = Path(str(marker) + ".probe")
    torch.save(Planted(probe_marker), probe)
    torch.load(probe, weights_only=False)
    assert probe_marker.exists()
    probe_marker.unlink()
    probe.unlink()
    return path


def one_line_error(r, *needles: str) -> str:
    assert r.code == 2, (r.code, r.out, r.err)
    assert "Traceback" not in r.err
    lines = [line for line in r.err.splitlines() if ": error: " in line]
    assert len(lines) == 1, r.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 1. a planted checkpoint runs no code -----------------------------------------------------

def test_load_checkpoint_refuses_a_planted_pickle_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = plant(tmp_path / "c.pt", marker)
    with pytest.raises(NormscaleError, match="objects other than tensors and plain values"):
        load_checkpoint(path)
    assert not marker.exists()


def test_train_resume_from_a_planted_checkpoint_runs_nothing(cli, tmp_path):
    marker = tmp_path / "ran"
    path = plant(tmp_path / "c.pt", marker)
    one_line_error(cli("train", *TINY, "--checkpoint", path, "--resume"), str(path))
    assert not marker.exists()


def test_train_store_resume_from_a_planted_store_checkpoint_runs_nothing(cli, tmp_path):
    db = tmp_path / "runs.db"
    first = cli("train", *TINY, "--store", db, "--json")
    assert first.code == 0, first.err
    run_id = first.json()["run_id"]
    marker = tmp_path / "ran"
    path = plant(Path(f"{db}.ckpt") / f"{run_id}.pt", marker)
    one_line_error(cli("train", *TINY, "--store", db, "--resume"), str(path))
    assert not marker.exists()


def test_a_sweep_worker_resuming_a_planted_checkpoint_runs_nothing(tmp_path):
    from normscale.sweep.worker import run_one
    from normscale.train import TrainConfig

    cfg = TrainConfig(model="cnn", dataset="digits", P=50, batch_size=25, width=0.125,
                      epochs=1, n_log=1, augment="none")
    marker = tmp_path / "ran"
    plant(tmp_path / "ck" / f"{cfg.run_id}.pt", marker)  # the name `sweep --dry-run` prints
    result = run_one(cfg.to_dict(), checkpoint_dir=str(tmp_path / "ck"))
    assert result["status"] == "failed"
    assert "objects other than tensors" in result["error"]
    assert not marker.exists()


def test_norms_and_the_hf_state_refuse_planted_pickles(cli, tmp_path):
    marker = tmp_path / "ran"
    path = plant(tmp_path / "m.pt", marker, checkpoint=False)
    one_line_error(cli("norms", path), str(path), "could run code")
    with pytest.raises(NormscaleError, match="could run code"):
        safeio.load_torch(path, "the tracker state")
    assert not marker.exists()


def test_a_checkpoint_round_trips_under_weights_only_and_refuses_other_objects(tmp_path):
    state = {"model_state": {"w": torch.ones(2)}, "optimizer_state": {"state": {},
             "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0]}]},
             "rng_state": {"torch": torch.get_rng_state()}, "config": {"model": "cnn", "P": 5},
             "epoch": 1.0, "step": 2, "wall_time": 0.5, "run_id": "ab",
             "records": [{"epoch": 1.0, "step": 2, "l2": float("nan")}]}
    got = load_checkpoint(save_checkpoint(tmp_path / "c.pt", state))
    assert torch.equal(got["rng_state"]["torch"], state["rng_state"]["torch"])
    assert got["optimizer_state"]["param_groups"][0]["betas"] == (0.9, 0.99)
    with pytest.raises(NormscaleError, match="holds a PosixPath"):
        save_checkpoint(tmp_path / "d.pt", {**state, "config": {"root": Path("x")}})
    assert not (tmp_path / "d.pt").exists()
    torch.save({**state, "step": -3}, tmp_path / "e.pt")
    with pytest.raises(NormscaleError, match="'step' is -3"):
        load_checkpoint(tmp_path / "e.pt")
    torch.save({**state, "rng_state": {"torch": [1, 2]}}, tmp_path / "f.pt")
    with pytest.raises(NormscaleError, match="rng_state"):
        load_checkpoint(tmp_path / "f.pt")


def test_is_checkpoint_tells_a_checkpoint_from_an_unrelated_file(tmp_path):
    """What `train --checkpoint n.txt` asks before it replaces n.txt."""
    from normscale.train.checkpoint import is_checkpoint

    notes = tmp_path / "n.txt"
    notes.write_text("my notes\n")
    marker = tmp_path / "ran"
    state = {"model_state": {}, "optimizer_state": {}, "step": 0, "epoch": 0.0,
             "rng_state": {"torch": torch.get_rng_state()}, "config": {}}
    assert not is_checkpoint(notes) and notes.read_text() == "my notes\n"
    assert not is_checkpoint(plant(tmp_path / "p.pt", marker)) and not marker.exists()
    assert is_checkpoint(save_checkpoint(tmp_path / "c.pt", state))
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    assert not is_checkpoint(tmp_path / "other.pt")


# -- 2. outputs: regular files or nothing, never an input -------------------------------------

@pytest.fixture
def curves_csv(tmp_path) -> Path:
    path = tmp_path / "w.csv"
    path.write_text("P,norm,test_error\n100,2,0.5\n100,3,0.4\n")
    return path


IMPORT = ["--column", "P=P", "--column", "norm=norm", "--column", "test_error=test_error"]


def test_dev_full_stays_a_device(cli, curves_csv):
    before = os.stat("/dev/full")
    one_line_error(cli("import", "csv", curves_csv, *IMPORT, "--out", "/dev/full"),
                   "/dev/full", "a device")
    after = os.stat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_a_named_pipe_is_neither_replaced_nor_read(cli, tmp_path, curves_csv):
    fifo = tmp_path / "p.csv"
    os.mkfifo(fifo)
    one_line_error(cli("import", "csv", curves_csv, *IMPORT, "--out", fifo), "a named pipe")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    one_line_error(cli("import", "csv", fifo, *IMPORT, "--out", tmp_path / "o.csv"),
                   "a named pipe")  # read, it would block for ever
    assert not (tmp_path / "o.csv").exists()


def test_a_symbolic_link_output_is_refused_and_its_target_kept(cli, tmp_path, curves_csv):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "out.csv"
    link.symlink_to(target)
    one_line_error(cli("import", "csv", curves_csv, *IMPORT, "--out", link),
                   "symbolic link", "give the path of its target")
    assert link.is_symlink() and target.read_text() == "keep me\n"


def test_no_command_overwrites_its_own_input(cli, tmp_path, curves_csv):
    before = digest(curves_csv)
    one_line_error(cli("import", "csv", curves_csv, *IMPORT, "--out", curves_csv),
                   "also an input")
    assert digest(curves_csv) == before
    # a hard link is the same file under another name
    os.link(curves_csv, tmp_path / "alias.csv")
    one_line_error(cli("import", "csv", curves_csv, *IMPORT, "--out", tmp_path / "alias.csv"),
                   "also an input")
    assert digest(curves_csv) == before
    from normscale import nets

    model = nets.build("cnn", in_channels=1, image_size=8, num_classes=10, width=0.125,
                       dataset="digits")
    ck = tmp_path / "c.pt"
    save_checkpoint(ck, {"model_state": model.state_dict(), "optimizer_state": {},
                         "rng_state": {"torch": torch.get_rng_state()}, "step": 0,
                         "epoch": 0.0, "config": {"model": "cnn", "in_channels": 1,
                                                  "image_size": 8, "num_classes": 10,
                                                  "width": 0.125, "dataset": "digits"}})
    ck_before = digest(ck)
    one_line_error(cli("norms", ck, "--csv", ck), "--csv", "also an input")
    one_line_error(cli("norms", ck, "--reference", curves_csv), str(curves_csv))
    assert digest(ck) == ck_before


def test_export_over_its_own_store_is_refused(cli, tmp_path):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        store.start_run("r", {"model": "m", "P": 1, "seed": 0})
        store.finish_run("r", status="finished")
    before = digest(db)
    one_line_error(cli("export", "--store", db, "--out", db, "--format", "csv"), "also an input")
    assert digest(db) == before


def test_a_checkpoint_over_the_store_of_the_same_command_is_refused(tmp_path):
    """The class fix behind `train --store S --checkpoint S`: within one command, a store
    opened is an input, and the checkpoint writer refuses to replace it."""
    db = tmp_path / "runs.db"
    state = {"model_state": {}, "optimizer_state": {}, "rng_state": {"torch":
             torch.get_rng_state()}, "config": {}, "epoch": 0.0, "step": 0}
    with safeio.command(), Store(db) as store:
        store.start_run("r", {"model": "m"})
        before = digest(db)
        with pytest.raises(NormscaleError, match="also an input"):
            save_checkpoint(db, state)
        assert digest(db) == before
    save_checkpoint(tmp_path / "elsewhere.pt", state)  # outside the command: no such input
    with safeio.command():  # a resumed run replaces the checkpoint it loaded
        load_checkpoint(tmp_path / "elsewhere.pt")
        save_checkpoint(tmp_path / "elsewhere.pt", {**state, "step": 5})
    assert load_checkpoint(tmp_path / "elsewhere.pt")["step"] == 5
    with Store(db, readonly=True) as store:
        assert [r.run_id for r in store.runs()] == ["r"]


def test_report_follows_no_link_planted_among_its_outputs(cli, tmp_path):
    """A link planted where `report` writes a table is refused, its target untouched."""
    from laws_synthetic import synthetic_curves
    from normscale.train import TrainConfig

    db = tmp_path / "runs.db"
    curves = synthetic_curves(P=(500, 1000, 2000), n_seeds=1, n_points=10, noise=0.02)
    with Store(db) as store:
        for (P, seed), c in curves.groupby(["P", "seed"]):
            cfg = TrainConfig(model="cnn", dataset="digits", P=int(P), seed=int(seed), epochs=10)
            store.start_run(cfg.run_id, cfg.to_dict())
            store.add_records(cfg.run_id, [
                Record(epoch=i + 1.0, step=i + 1, test_error=float(e), test_loss=1.0,
                       train_error=0.0, train_loss=0.1, wall_time=1.0,
                       norms={"spectral_complexity": float(n)})
                for i, (n, e) in enumerate(zip(c["norm"], c["test_error"], strict=True))])
            store.finish_run(cfg.run_id, status="finished")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    (tmp_path / "rep" / "figures").mkdir(parents=True)
    stem, = safeio.file_stems(["cnn_digits_adam_0.0_spectral_complexity"])  # its one group
    link = tmp_path / "rep" / "figures" / f"fit_{stem}.png"  # the first file report writes
    link.symlink_to(precious)
    one_line_error(cli("report", "--store", db, "--n-boot", "0", "--out", tmp_path / "rep"),
                   "symbolic link")
    assert precious.read_text() == "keep me\n" and link.is_symlink()


def test_temp_files_are_removed_on_any_error(tmp_path, monkeypatch):
    import errno

    table = pd.DataFrame({"P": [1, 2], "norm": [1.0, 2.0]})
    out = tmp_path / "t.csv"
    out.write_text("old\n")

    def full(self, path, **kw):
        Path(path).write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(NormscaleError) as info:
        write_table(table, out)
    assert "disk is full" in str(info.value) and "\n" not in str(info.value)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]

    def interrupted(self, path, **kw):
        Path(path).write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_table(table, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_a_full_disk_leaves_no_temp_file_and_the_old_file(cli, tmp_path, small_tmpfs,
                                                          curves_csv):
    """On a real full file system (a 64 KiB tmpfs, mounted when this runs as root)."""
    out = small_tmpfs / "curves.csv"
    out.write_text("old\n")
    (small_tmpfs / "filler").write_bytes(b"\0" * (small_tmpfs_free(small_tmpfs) - 512))
    big = tmp_path / "big.csv"
    big.write_text("P,norm,test_error\n" + "100,2.5,0.25\n" * 20000)
    line = one_line_error(cli("import", "csv", big, *IMPORT, "--out", out), str(out))
    assert "disk is full" in line
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["curves.csv", "filler"]
    assert out.read_text() == "old\n"


def test_a_checkpoint_on_a_full_disk_is_one_line_and_keeps_the_last_one(small_tmpfs):
    state = {"model_state": {"w": torch.zeros(4)}, "optimizer_state": {}, "step": 1,
             "rng_state": {"torch": torch.get_rng_state()}, "config": {}, "epoch": 1.0}
    path = save_checkpoint(small_tmpfs / "c.pt", state)
    before = digest(path)
    big = {**state, "model_state": {"w": torch.zeros(100_000)}, "step": 2}  # 400 kB > 64 KiB
    with pytest.raises(NormscaleError) as info:
        save_checkpoint(path, big)
    assert "disk is full" in str(info.value) and "\n" not in str(info.value)
    assert digest(path) == before and load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["c.pt"]


def small_tmpfs_free(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def small_tmpfs(tmp_path):
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the simulated full disk is "
                    "test_temp_files_are_removed_on_any_error")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


# -- 3. only an empty file or a normscale store is written --------------------------------------

@pytest.fixture
def history_db(tmp_path) -> Path:
    """A browser-history-style SQLite file: a `meta` table of its own and others."""
    path = tmp_path / "History.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key LONGVARCHAR NOT NULL UNIQUE PRIMARY KEY, "
                     "value LONGVARCHAR)")
        conn.execute("INSERT INTO meta VALUES ('version', '42')")
        conn.execute("CREATE TABLE urls (id INTEGER PRIMARY KEY, url LONGVARCHAR)")
        conn.execute("INSERT INTO urls VALUES (1, 'https://example.org')")
    return path


def test_a_foreign_sqlite_file_with_a_meta_table_is_never_written(cli, tmp_path, history_db):
    before = digest(history_db)
    with pytest.raises(NormscaleError, match="not a normscale run store"):
        Store(history_db)
    one_line_error(cli("train", *TINY, "--store", history_db), "not a normscale run store")
    assert digest(history_db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["History.db"]  # no -wal, no -shm
    with sqlite3.connect(f"file:{history_db}?mode=ro", uri=True) as conn:
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master")} >= {"meta", "urls"}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal"


def test_a_read_only_store_says_read_only_and_leaves_no_wal(tmp_path):
    """A store on a read-only file system (root writes any file, so a read-only mount is
    the case that holds for everyone) or, for other users, a read-only file."""
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True).returncode == 0
    db = folder / "runs.db"
    with Store(db) as store:
        store.start_run("r", {"model": "m"})
    try:
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            os.chmod(db, 0o444)
            if os.access(db, os.W_OK):
                pytest.skip("root without mount: no file is read-only here")
        with pytest.raises(NormscaleError, match="read-only"):
            Store(db)
        assert sorted(p.name for p in folder.iterdir()) == ["runs.db"]
        with Store(db, readonly=True) as store:  # readers still read it
            assert [r.run_id for r in store.runs()] == ["r"]
        assert sorted(p.name for p in folder.iterdir()) == ["runs.db"]
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], capture_output=True)
        else:
            os.chmod(db, 0o644)


def test_a_store_on_a_device_or_pipe_is_refused(tmp_path):
    with pytest.raises(NormscaleError, match="not a regular file"):
        Store("/dev/full")
    fifo = tmp_path / "p.db"
    os.mkfifo(fifo)
    with pytest.raises(NormscaleError, match="not a regular file"):
        Store(fifo)
    with pytest.raises(NormscaleError, match="not a regular file"):
        Store(fifo, readonly=True)


# -- 4. formulas in exported text cells ----------------------------------------------------------

def test_exported_text_cells_cannot_run_as_formulas_and_numbers_stay(cli, tmp_path):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        for i, model in enumerate(['=HYPERLINK("http://x","y")', "+1", "@SUM(A1)", "-cmd",
                                   "cnn"]):
            run = f"r{i}"
            store.start_run(run, {"model": model, "dataset": "d", "P": 10 * (i + 1), "seed": 0})
            store.add_records(run, [Record(epoch=1.0, step=1, test_error=0.5, test_loss=-1.5,
                                           train_error=0.1, train_loss=0.2, wall_time=1.0,
                                           norms={"spectral_complexity": 2.0})])
            store.finish_run(run, status="finished")
    out = tmp_path / "c.csv"
    r = cli("export", "--store", db, "--out", out)
    assert r.code == 0, r.err
    got = pd.read_csv(out)
    assert sorted(got["model"]) == sorted(["'=HYPERLINK(\"http://x\",\"y\")", "'+1",
                                           "'@SUM(A1)", "'-cmd", "cnn"])
    assert (got["test_loss"] == -1.5).all()  # a negative number is a number, not a formula
    with Store(db, readonly=True) as store:
        assert got["P"].tolist() == long_table(store)["P"].tolist()


# -- names from data: no two groups share a file ------------------------------------------------

def test_group_values_become_distinct_safe_file_names():
    names = ["cnn_mnist_adam_0.0005", "cnn_mnist_adam_0.0001", "a/b", "a-b", "../../etc/x",
             "x" * 300, "-rf", "", "é"]
    stems = safeio.file_stems(names)
    assert len(set(stems)) == len(names)
    for s in stems:
        assert s and s == s.strip("-") or s.startswith("x")
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in s)
        assert len(s) <= safeio.MAX_STEM + 9
    assert safeio.file_stems(names) == stems  # the same name, the same file, every run
    assert len(set(safeio.file_stems(["a", "a"]))) == 2


def test_plot_labels_are_not_mathtext(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw = "model=$\\frac{"  # an unbalanced mathtext: savefig raises on it as it is
    for text, ok in ((raw, False), (safeio.plot_label(raw), True)):
        fig, _ = plt.subplots()
        fig.suptitle(text + " and $x")
        try:
            fig.savefig(tmp_path / "f.png")
            saved = True
        except ValueError:
            saved = False
        plt.close(fig)
        assert saved == ok
    assert safeio.plot_label("a\nb") == "a?b"
