"""`normscale train` with a run store: idempotent runs, --force, --resume after SIGKILL,
divergence, bad input (exit code 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from normscale.errors import NormscaleError
from normscale.store import Store
from normscale.train import TrainConfig, train

TINY = ["--model", "cnn", "--dataset", "digits", "--P", "100", "--batch-size", "25",
        "--width", "0.125", "--lr", "3e-3", "--init-factor", "1", "--augment", "none"]


pytestmark = pytest.mark.usefixtures("one_thread")


def config(**overrides) -> TrainConfig:
    """The TrainConfig that TINY plus --epochs/--n-log/--seed describe."""
    kw = dict(model="cnn", dataset="digits", P=100, seed=0, epochs=3, batch_size=25, n_log=3,
              lr=3e-3, width=0.125, init_factor=1.0, optimizer="adam", augment="none")
    kw.update(overrides)
    return TrainConfig(**kw)


def test_train_writes_a_run_and_running_it_again_is_a_no_op(cli, tmp_path):
    db = tmp_path / "runs.db"
    first = cli("train", *TINY, "--epochs", "3", "--n-log", "3", "--store", db, "--json")
    assert first.code == 0, first.err
    out = first.json()
    assert out["run_id"] == config().run_id and out["status"] == "finished"
    assert not out["skipped"] and len(out["records"]) == 3
    with Store(db) as store:
        run = store.run(out["run_id"])
        assert run.status == "finished" and run.n_records == 3 and run.wall_time > 0
        assert {k: v for k, v in run.config.items()
                if k not in ("N", "train_eval_images")} == config().to_dict()
        assert [r.step for r in store.records(run.run_id)] == [4, 8, 12]
    assert (tmp_path / "runs.db.ckpt" / f"{out['run_id']}.pt").is_file()

    again = cli("train", *TINY, "--epochs", "3", "--n-log", "3", "--store", db, "--json")
    assert again.code == 0 and again.json()["skipped"]
    assert again.json()["records"] == out["records"]

    forced = cli("train", *TINY, "--epochs", "3", "--n-log", "3", "--store", db, "--force",
                 "--json")
    assert forced.code == 0 and not forced.json()["skipped"]
    with Store(db) as store:
        assert store.run(out["run_id"]).n_records == 3  # replaced, not duplicated
    text = cli("train", *TINY, "--epochs", "3", "--n-log", "3", "--store", db)
    assert "already in the store" in text.out and "test_err" in text.out


def test_an_unfinished_run_needs_resume_or_force(cli, tmp_path):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        store.start_run(config().run_id, config().to_dict())
    r = cli("train", *TINY, "--epochs", "3", "--n-log", "3", "--store", db)
    assert r.code == 2 and "--resume" in r.err and "--force" in r.err
    r = cli("train", *TINY, "--epochs", "3", "--n-log", "3", "--store", db, "--resume", "--json")
    assert r.code == 0 and r.json()["status"] == "finished"  # no checkpoint: from the start


def test_divergence_is_a_status_not_a_crash(cli, tmp_path):
    db = tmp_path / "runs.db"
    r = cli("train", *TINY, "--epochs", "3", "--optimizer", "sgd", "--lr", "1e12",
            "--store", db, "--json")
    assert r.code == 0, r.err
    assert r.json()["status"] == "diverged" and "diverged" in r.err
    with Store(db) as store:
        (run,) = store.runs()
        assert run.status == "diverged" and ("nan" in run.error or "inf" in run.error)


@pytest.mark.parametrize(("argv", "needle"), [
    (["--P", "0"], "--P must be an int >= 1"),
    (["--P", "5000"], "--P must be at most the 1437"),
    (["--dataset", "nosuchdata"], "nosuchdata"),
    (["--lr", "-1"], "--lr must be a float > 0"),
    (["--epochs", "2", "--steps", "3"], "not allowed with argument"),
    (["--resume"], "--resume needs a checkpoint"),
    (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "tpu"],
     "device"),
])
def test_bad_input_exits_2_with_one_line(cli, argv, needle):
    r = cli("train", *TINY, "--epochs", "1", "--quiet", *argv)
    assert r.code == 2
    assert needle in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_a_corrupt_store_is_named(cli, tmp_path):
    db = tmp_path / "runs.db"
    db.write_bytes(b"this is not sqlite" * 100)
    r = cli("train", *TINY, "--epochs", "1", "--store", db)
    assert r.code == 2 and str(db) in r.err and "corrupt" in r.err


def test_a_run_killed_mid_training_resumes_to_the_uninterrupted_records(cli, tmp_path):
    """SIGKILL a `normscale train` subprocess mid-run, resume it: the store then holds
    exactly the records of an uninterrupted run, none twice."""
    db = tmp_path / "runs.db"
    argv = [*TINY, "--P", "25", "--epochs", "100", "--n-log", "9", "--store", str(db),
            "--quiet"]
    cfg = config(P=25, epochs=100, n_log=9)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = ("import sys, torch; torch.set_num_threads(1); from normscale.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "train", *argv], env=env,
                            stderr=subprocess.PIPE)
    killed_after = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if db.is_file():
            with Store(db) as store:
                killed_after = len(store.records(cfg.run_id))
            if killed_after >= 4:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    with Store(db) as store:
        assert store.run(cfg.run_id).status == "running"  # nobody got to say otherwise
        assert 4 <= len(store.records(cfg.run_id)) < 9

    resumed = cli("train", *argv[:-1], "--resume", "--json")
    assert resumed.code == 0, resumed.err
    assert resumed.json()["resumed_from"] is not None

    uninterrupted = train(cfg)
    with Store(db) as store:
        stored = store.records(cfg.run_id)
        assert store.run(cfg.run_id).status == "finished"
    assert len(stored) == len(uninterrupted.records) == 9
    for a, b in zip(stored, uninterrupted.records, strict=True):
        assert (a.step, a.epoch, a.test_error, a.train_error) == \
               (b.step, b.epoch, b.test_error, b.train_error)
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-12)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-12)
        for k, v in b.norms.items():
            assert a.norms[k] == pytest.approx(v, rel=1e-6), k
    assert Path(f"{db}.ckpt").is_dir()


def test_a_run_that_never_leaves_its_plateau_is_flagged(cli):
    """A tiny init keeps the network on its initial plateau (training loss ln 10): the run
    finishes, says so on stderr and in the JSON; a run that trains is not flagged."""
    i = TINY.index("--init-factor") + 1
    flat_args = [*TINY[:i], "1e-4", *TINY[i + 1:]]
    flat = cli("train", *flat_args, "--epochs", "3", "--n-log", "3", "--json")
    assert flat.code == 0, flat.err
    out = flat.json()
    assert out["status"] == "finished" and out["stayed_on_plateau"]
    assert all(abs(r["train_loss"] - 2.302585) < 0.01 for r in out["records"])
    assert "never left its initial plateau" in flat.err
    trained = cli("train", *TINY, "--epochs", "3", "--n-log", "3", "--json")
    assert trained.code == 0 and not trained.json()["stayed_on_plateau"]
    assert "plateau" not in trained.err


def test_a_run_records_N_and_the_export_reads_it_without_building_a_model(
        cli, tmp_path, monkeypatch):
    from normscale import nets
    from normscale.store.export import long_table

    db = tmp_path / "runs.db"
    r = cli("train", "--model", "cnn", "--dataset", "digits", "--P", "60", "--steps", "2",
            "--n-log", "1", "--width", "0.25", "--store", db, "--quiet")
    assert r.code == 0, r.err
    # an independent count: the model built on the CPU, its parameters' sizes summed
    model = nets.build("cnn", in_channels=1, image_size=8, num_classes=10, width=0.25,
                       dataset="digits")
    want = sum(p.numel() for p in model.parameters())

    def no_build(*args, **kwargs):
        raise AssertionError("the export built a model")

    monkeypatch.setattr(nets, "build", no_build)
    with Store(db) as store:
        assert store.runs()[0].config["N"] == want
        assert set(long_table(store)["N"]) == {want}
        run_id = store.runs()[0].run_id
        store.start_run("other", {"model": "cnn", "dataset": "digits", "P": 5, "N": "many"})
        store.add_records("other", store.records(run_id))
        store.finish_run("other", status="finished")
        with pytest.raises(NormscaleError, match="N = 'many'"):
            long_table(store)


# -- issue 23: no input destroyed, no run lost ----------------------------------------------
@pytest.mark.parametrize("until", [["--epochs", "3"], ["--until", "optimum", "--max-epochs", "3"]])
def test_an_absurd_learning_rate_is_stored_diverged_not_failed(cli, tmp_path, until):
    """lr = 1e308 makes the weights infinite after one Adam step: the norms of such weights
    are undefined (an SVD of inf), so the run is diverged there, not a LinAlgError."""
    db = tmp_path / "runs.db"
    r = cli("train", *TINY, *until, "--lr", "1e308", "--store", db, "--json")
    assert r.code == 0, r.err
    assert r.json()["status"] == "diverged" and r.json()["stop_reason"] == "diverged"
    with Store(db) as store:
        (run,) = store.runs()
        assert run.status == "diverged" and run.error


def test_an_unrelated_file_at_the_checkpoint_path_is_refused_not_deleted(cli, tmp_path):
    notes = tmp_path / "n.txt"
    notes.write_text("my notes\n")
    r = cli("train", *TINY, "--epochs", "1", "--checkpoint", notes)
    assert r.code == 2 and "--checkpoint" in r.err and "not a normscale checkpoint" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert notes.read_text() == "my notes\n"
    # a checkpoint normscale wrote is replaced by a new run
    ckpt = tmp_path / "run.pt"
    assert cli("train", *TINY, "--epochs", "1", "--checkpoint", ckpt).code == 0
    again = cli("train", *TINY, "--epochs", "2", "--checkpoint", ckpt, "--json")
    assert again.code == 0 and again.json()["step"] == 8


def _fail_after(real, n: int, error: BaseException):
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n:
            raise error
        return real(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize("where", ["checkpoint", "store"])
def test_a_full_disk_stops_the_run_in_one_line_and_resume_finishes_it(
        cli, tmp_path, monkeypatch, where):
    import errno
    import sqlite3

    import normscale.train.loop as loop

    db = tmp_path / "runs.db"
    argv = [*TINY, "--epochs", "4", "--n-log", "4", "--store", db]
    if where == "checkpoint":
        monkeypatch.setattr(loop, "save_checkpoint", _fail_after(
            loop.save_checkpoint, 2, OSError(errno.ENOSPC, "No space left on device")))
        needle = "No space left on device"
    else:
        monkeypatch.setattr(Store, "add_records", _fail_after(
            Store.add_records, 2, sqlite3.OperationalError("database or disk is full")))
        needle = "disk is full"
    r = cli("train", *argv)
    assert r.code == 2 and needle in r.err and "--resume" in r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 2  # start line + error
    with Store(db) as store:
        (run,) = store.runs()
        assert run.status == "failed" and needle in run.error
    monkeypatch.undo()
    resumed = cli("train", *argv, "--resume", "--json")
    assert resumed.code == 0, resumed.err
    assert resumed.json()["resumed_from"] is not None
    want = train(config(epochs=4, n_log=4))
    with Store(db) as store:
        assert store.run(want.run_id).status == "finished"
        assert [r.step for r in store.records(want.run_id)] == [r.step for r in want.records]
