"""Property-based fuzzing of every subcommand through its CLI entry point (issue 14).

Hypothesis generates the arguments and the files: numbers (0, negative, NaN, inf, huge),
strings, paths (missing, a folder, read-only, binary, empty, outside the working folder),
CSVs with random columns and values, TOML files with random keys, and store files (empty,
foreign SQLite, junk, truncated, a real store). Every example runs in a fresh working
folder, and the property is:

- the exit code is 0 or 2 (1 only for the documented outcomes: a theory point that does
  not converge), and there is never a traceback;
- nothing is written outside the named outputs (``--out``, a writer's ``--store`` and
  checkpoints), and no folder appears outside the working folder;
- a store file given to a reader (export, table, report) is byte-identical afterwards.

Issue 23 adds the surfaces since: the integrations' API (a random sequence of tracker
calls), ``import tensorboard`` (generated event files and hparams.yaml), stores with damaged
columns, special files (a named pipe, ``/dev/full``, a symbolic link, the command's own input)
as inputs and outputs, and a full disk (a 64 KiB tmpfs, where this runs as root): the same
property, and a special file keeps its kind.

The example counts are fixed (``derandomize``: the same examples on every run) so that the
suite's time stays small, and every test runs under a time limit (a hang fails it).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import signal
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from laws_synthetic import synthetic_curves
from normscale.cli import _subcommand_modules
from normscale.store import Record, Store
from normscale.train import TrainConfig

#: seconds one fuzz test may run before it counts as hung (the suite takes about a minute)
TIME_LIMIT_S = 240 * max(1.0, float(os.environ.get("NORMSCALE_FUZZ_SCALE", "1")))
#: a folder outside every working folder that no command may create
OUTSIDE = Path(tempfile.gettempdir()) / "normscale-fuzz-outside-absent"


#: NORMSCALE_FUZZ_SCALE=10 runs ten times the examples, new ones each time (a longer hunt
#: by hand); the suite itself runs the same fixed examples on every run
SCALE = float(os.environ.get("NORMSCALE_FUZZ_SCALE", "1"))


def fuzz(n: int):
    """Hypothesis settings: ``n`` examples, the same ones on every run, no per-example clock."""
    return settings(max_examples=max(1, round(n * SCALE)), deadline=None,
                    derandomize=SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


class Hang(BaseException):  # noqa: N818 -- a BaseException so no command's handler swallows it
    """A fuzz test ran past TIME_LIMIT_S."""


@pytest.fixture(autouse=True)
def time_limit():
    def hung(signum, frame):
        raise Hang(f"the test ran past {TIME_LIMIT_S} s: a command hangs")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(int(TIME_LIMIT_S))
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def one_thread_fuzz(one_thread):
    yield


# -- the working folder and what may change in it ------------------------------------------

@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A fresh working folder as the current directory."""
    old = Path.cwd()
    root = Path(tempfile.mkdtemp(prefix="normscale-fuzz-")).resolve()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(old)
        shutil.rmtree(root, ignore_errors=True)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash (folders: "dir"; links, pipes: their
    kind and target, so that one replaced by a regular file counts as written)."""
    out = {}
    for p in root.rglob("*"):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = f"link to {os.readlink(p)}"
        elif not (p.is_file() or p.is_dir()):
            out[rel] = f"other {stat.S_IFMT(p.lstat().st_mode)}"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def check(r, root: Path, before: dict[str, str], *, outputs=(), readers=(), argv=(),
          codes=(0, 2)) -> None:
    """The property: exit code, no traceback, writes only to ``outputs``, readers unchanged."""
    where = f"normscale {' '.join(map(str, argv))}\nstdout: {r.out[-500:]}\nstderr: {r.err[-1500:]}"
    assert r.code in codes, where
    assert "Traceback" not in r.err and "Traceback" not in r.out, where
    if r.code == 2:
        errors = [line for line in r.err.splitlines() if ": error: " in line]
        assert len(errors) == 1, where
    allowed = []
    for o in outputs:
        p = Path(o) if Path(o).is_absolute() else root / o
        allowed.append(str(p.resolve() if p.exists() else p.absolute()))
    for rel in changed(before, snapshot(root)):
        path = str(root / rel)
        ok = any(path == a or path.startswith(a.rstrip("/") + "/") or path.startswith(a + ".")
                 or a.startswith(path + "/") for a in allowed)
        assert ok, f"{rel} written outside the named outputs {outputs}\n{where}"
    after = snapshot(root)
    for rel, kind in before.items():  # a link or a pipe is never replaced, even as an output
        if kind.startswith(("link to", "other")):
            assert after.get(rel) == kind, f"{rel} ({kind}) became {after.get(rel)}\n{where}"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode), f"/dev/full replaced\n{where}"
    for rel in readers:
        assert before.get(rel) == after.get(rel), f"reader changed {rel}\n{where}"
    assert not OUTSIDE.exists(), f"{OUTSIDE} was created\n{where}"


def run(root: Path, argv: list, **kw):
    argv = [str(a).replace("\x00", "") for a in argv]  # a real argv cannot hold NUL
    before = snapshot(root)
    r = run_cli(*argv)
    event(f"exit {r.code}")  # --hypothesis-show-statistics: how many examples got how far
    check(r, root, before, argv=argv, **kw)
    return r


# -- generated values ----------------------------------------------------------------------

SPECIAL = ["0", "-1", "1", "2", "3", "0.5", "-0", "1e-300", "1e300", "nan", "inf", "-inf",
           "", " ", "abc", "1,,2", "10:1:5", "-1:10:5", "1:10:3", "0:1:2", "1:10:0", "1:2",
           "9" * 30, "0x10", " 2 ", "1e9", "1.5", "2,3,5", "1e-8:1e-2:3", "--", "-"]
numbers = st.one_of(st.sampled_from(SPECIAL), st.integers(-3, 4).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr))
#: mostly valid grids, so that the fuzzing also reaches the solvers and the files they write
grids = st.one_of(st.sampled_from(["0.5", "2", "5", "1:10:3", "3,5,8", "0.1:10:4", "1e-4"]),
                  numbers)
texts = st.one_of(st.sampled_from(["", "foo", "all", "none", "model", "P", "norm_kind", "cpu",
                                   "cuda", "cuda:9", "auto", "mps", "é", "a,b", ",", "../x",
                                   "spectral_complexity", "l2", "\x00"]),
                  st.text(max_size=8))

PATH_KINDS = ["missing", "folder", "empty", "binary", "text", "csv", "foreign", "store",
              "truncated", "outside", "nested", "under_file", "proc", "dotdot"]
#: special files (issue 23): fuzzed on the commands whose reading and writing go through
#: normscale.safeio (import, export, norms, the stores)
SPECIAL_KINDS = ["fifo", "device", "symlink", "dangling"]


def make_path(kind: str, root: Path, template: Path, name: str = "f") -> str:
    """A path of the given kind in the working folder (or outside it)."""
    p = root / name
    if kind == "missing":
        return name + ".db"
    if kind == "folder":
        (root / f"{name}.d").mkdir(exist_ok=True)
        return f"{name}.d"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "binary":
        p.write_bytes(bytes(range(256)) * 8)
    elif kind == "text":
        p.write_text("hello\n")
    elif kind == "csv":
        p.write_text("P,norm,test_error\n1,2,0.5\n")
    elif kind == "foreign":
        conn = sqlite3.connect(p)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    elif kind == "store":
        shutil.copy(template, p)
    elif kind == "truncated":
        p.write_bytes(template.read_bytes()[:3000])
    elif kind == "outside":
        return str(OUTSIDE / "sub" / f"{name}.out")
    elif kind == "nested":
        return f"a/b/{name}.out"
    elif kind == "under_file":
        p.write_text("x")
        return f"{name}/inner.out"
    elif kind == "proc":
        return "/proc/normscale-fuzz/x.out"
    elif kind == "dotdot":
        return f"../normscale-fuzz-dotdot-{os.getpid()}/{name}.out"
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "device":
        return "/dev/full"
    elif kind == "symlink":
        (root / f"{name}.target").write_text("P,norm,test_error\n1,2,0.5\n")
        p.symlink_to(root / f"{name}.target")
    elif kind == "dangling":
        p.symlink_to(root / f"{name}.nowhere")
    return name


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A real store with two fittable groups and a diverged run."""
    path = tmp_path_factory.mktemp("fuzz-store") / "runs.db"
    rng = np.random.default_rng(11)
    with Store(path) as store:
        for opt in ("adam", "sgd"):
            curves = synthetic_curves(P=(500, 1000, 2000, 4000), n_seeds=2, n_points=12,
                                      noise=0.02, rng=rng)
            for (P, seed), c in curves.groupby(["P", "seed"]):
                cfg = TrainConfig(model="cnn", dataset="digits", P=int(P), seed=int(seed),
                                  epochs=10, optimizer=opt)
                store.start_run(cfg.run_id, cfg.to_dict())
                store.add_records(cfg.run_id, [
                    Record(epoch=i + 1.0, step=i + 1, test_error=float(e), test_loss=1.0,
                           train_error=0.0, train_loss=0.1, wall_time=1.0,
                           norms={"spectral_complexity": float(n), "l2": float(n) ** 0.5})
                    for i, (n, e) in enumerate(zip(c["norm"], c["test_error"], strict=True))])
                store.finish_run(cfg.run_id, status="finished", wall_time=1.0)
        store.start_run("bad", {"model": "cnn", "P": 1})
        store.finish_run("bad", status="diverged", error="nan")
    return path


def options(draw, table: dict, k: int) -> list[str]:
    """Up to ``k`` flags of ``table`` (flag -> strategy or None for a switch) with values."""
    flags = draw(st.lists(st.sampled_from(sorted(table)), max_size=k, unique=True))
    argv = []
    for f in flags:
        argv += [f] if table[f] is None else [f, draw(table[f])]
    return argv


def remove_dotdot() -> None:
    shutil.rmtree(Path(tempfile.gettempdir()) / f"normscale-fuzz-dotdot-{os.getpid()}",
                  ignore_errors=True)


# -- the subcommands -----------------------------------------------------------------------

#: every subcommand, read from the CLI itself so that a new one is fuzzed too
COMMANDS = [m.rstrip("_").replace("_", "-") for m in _subcommand_modules()]


@fuzz(80)
@given(command=st.sampled_from([*COMMANDS, "nonsense"]),
       tokens=st.lists(st.one_of(numbers, texts, st.sampled_from(
           ["--json", "--quiet", "--help", "--out", "--store", "--lam", "--alpha", "--n-boot",
            "--P", "--mkdir", "--list", "--dry-run"])), max_size=5))
def test_fuzz_any_tokens(command, tokens):
    """Random tokens after any subcommand: argparse's one-line errors, --help, or a result."""
    if command not in ("export", "table", "fit", "norms", "report") and "--help" not in tokens:
        tokens = [*tokens, "--frobnicate"]  # never a real run: those are fuzzed below
    with workspace() as root:
        run(root, [command, *tokens])


@fuzz(40)
@given(alpha=grids, data=st.data())
def test_fuzz_theory(alpha, data, template):
    table = {"--lam": grids, "--loss": st.sampled_from(["logistic", "hinge", "square",
                                                          "linear", "foo"]),
             "--opt": None, "--laws": None, "--out": st.sampled_from(PATH_KINDS),
             "--sim": st.sampled_from(PATH_KINDS)}
    with workspace() as root:
        argv = ["theory", "--alpha", alpha, *options(data.draw, table, 3)]
        for i, a in enumerate(argv):
            if argv[i - 1] in ("--out", "--sim"):
                argv[i] = make_path(a, root, template, name=argv[i - 1].strip("-"))
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        r = run(root, argv, outputs=[out] if out else [], codes=(0, 1, 2))
        assert r.code != 1 or "no convergence" in r.err, r.err
    remove_dotdot()


@fuzz(30)
@given(data=st.data())
def test_fuzz_perceptron(data, template):
    small = st.sampled_from(["1", "2", "3", "5", "0", "-1", "x", "1e3", "9" * 30])
    table = {"--alpha": grids, "--lam": grids, "--n": small, "--seeds": small,
             "--mode": st.sampled_from(["fixed", "gd", "both", "fixed,gd", "sgd", ""]),
             "--inputs": st.sampled_from(["binary", "gaussian", "x"]),
             "--dtype": st.sampled_from(["float64", "float32", "int8"]),
             "--gtol": numbers, "--max-iter": small, "--steps": small, "--n-record": small,
             "--lr": numbers, "--init-norm": numbers, "--laws": None,
             "--out": st.sampled_from(PATH_KINDS), "--fixed-csv": st.sampled_from(PATH_KINDS)}
    with workspace() as root:
        argv = ["perceptron", "--n", "8", "--max-iter", "3", "--steps", "5",
                *options(data.draw, table, 4)]
        for i, a in enumerate(argv):
            if argv[i - 1] in ("--out", "--fixed-csv"):
                argv[i] = make_path(a, root, template, name=argv[i - 1].strip("-"))
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        run(root, argv, outputs=[out] if out else [])
    remove_dotdot()


FIELDS = ["model", "dataset", "P", "seed", "epochs", "steps", "optimizer", "lr",
          "weight_decay", "momentum", "batch_size", "n_log", "preset", "width", "depth",
          "init_factor", "augment", "until", "ensemble", "colour", "cells", ""]
toml_scalars = st.one_of(
    st.integers(-3, 10), st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.sampled_from(["cnn", "vit", "resnet", "digits", "mnist", "adam", "sgd", "none", "x", ""]))


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f'"{k}" = {toml_value(x)}' for k, x in v.items()) + "}"


toml_values = st.one_of(
    toml_scalars, st.lists(toml_scalars, max_size=4),
    st.builds(lambda a: {"range": a}, st.lists(st.integers(-5, 2 ** 40), max_size=4)),
    st.builds(lambda a: {"geomspace": a}, st.lists(st.one_of(st.integers(-2, 50), st.floats()),
                                                   max_size=4)),
    st.lists(st.dictionaries(st.sampled_from(FIELDS), toml_scalars, max_size=3), max_size=3))


@st.composite
def sweep_files(draw) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))
    if draw(st.booleans()):  # a valid sweep but for one or two fuzzed entries
        grid = {"P": draw(st.sampled_from([[50, 100], {"range": [10, 40, 10]},
                                           {"geomspace": [10, 1000, 3]}])),
                "seed": {"range": [0, 2]}}
        grid.update(draw(st.dictionaries(st.sampled_from(FIELDS), toml_values, max_size=2)))
        lines = ["[base]", 'model = "cnn"', 'dataset = "digits"', "epochs = 1", "[grid]"]
        lines += [f'"{k}" = {toml_value(v)}' for k, v in grid.items()]
        return ("\n".join(lines) + "\n").encode()
    sections = {}
    for name in draw(st.lists(st.sampled_from(["base", "grid", "analysis", "extra"]),
                              max_size=3, unique=True)):
        sections[name] = draw(st.dictionaries(st.sampled_from(FIELDS), toml_values, max_size=6))
    if draw(st.booleans()):  # mostly valid base, so that the grids get exercised
        sections.setdefault("base", {}).update(model="cnn", dataset="digits", epochs=1)
    top = draw(st.dictionaries(st.sampled_from(["name", "description", "ensemble"]),
                               toml_scalars, max_size=2))
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, body in sections.items():
        lines.append(f"[{name}]")
        lines += [f'"{k}" = {toml_value(v)}' for k, v in body.items()]
    return ("\n".join(lines) + "\n").encode()


@fuzz(100)
@given(content=sweep_files(), name=st.sampled_from(["s.toml", "s", "s.txt"]),
       flags=st.lists(st.sampled_from(["--json", "--force", "--quiet"]), unique=True))
def test_fuzz_sweep_files(content, name, flags):
    with workspace() as root:
        (root / name).write_bytes(content)
        run(root, ["sweep", name, "--dry-run", "--store", "s.db", *flags])


@fuzz(20)
@given(device=texts, store=st.sampled_from([*PATH_KINDS, *SPECIAL_KINDS]),
       checkpoint_dir=st.sampled_from([None, *PATH_KINDS, *SPECIAL_KINDS]), data=st.data())
def test_fuzz_sweep_options(device, store, checkpoint_dir, data, template):
    """Options are checked before any run: mnist is absent from the data root, so no sweep
    here trains; it must stop with one line and write nothing but (at most) the store."""
    with workspace() as root:
        (root / "spec.toml").write_text('[base]\nmodel = "cnn"\ndataset = "mnist"\n'
                                        "epochs = 1\n[grid]\nP = [10, 20]\n")
        (root / "no-data").mkdir()
        argv = ["sweep", "spec.toml", "--data-root", "no-data", "--device", device,
                "--store", make_path(store, root, template, "store"),
                *options(data.draw, {"--workers": numbers, "--threads-per-run": numbers,
                                     "--gpus-per-run": numbers, "--mkdir": None}, 2)]
        if checkpoint_dir is not None:
            argv += ["--checkpoint-dir", make_path(checkpoint_dir, root, template, "ck")]
        run(root, argv, codes=(2,))
    remove_dotdot()


READER_OPTIONS = {
    "export": {"--norm": texts, "--status": st.sampled_from(["finished", "any", "failed", "x"]),
               "--format": st.sampled_from(["csv", "parquet", "xlsx"])},
    "table": {"--norm": texts, "--group-by": texts, "--n-boot": st.sampled_from(
        ["0", "1", "2", "-1", "x", "nan"]), "--seed": numbers},
    "report": {"--norm": texts, "--group-by": texts, "--n-boot": st.sampled_from(
        ["0", "1", "-1", "x"]), "--title": texts},
}


@pytest.mark.parametrize("reader, n", [("export", 60), ("table", 20), ("report", 8)])
def test_fuzz_readers(reader, n, template):
    @fuzz(n)
    @given(store=st.sampled_from([*PATH_KINDS, *SPECIAL_KINDS]),
           out=st.sampled_from([None, *PATH_KINDS, *SPECIAL_KINDS]), data=st.data())
    def one(store, out, data):
        event(f"store {store}")
        with workspace() as root:
            db = make_path(store, root, template, "runs.db")
            argv = [reader, "--store", db, *options(data.draw, READER_OPTIONS[reader], 2)]
            outputs = []
            if out is not None and reader != "table":
                target = make_path(out, root, template, "out")
                argv += ["--out", target]
                outputs = [target]
            elif reader != "table":
                outputs = ["curves.csv", "curves.parquet", "results"]  # the defaults
            readers = [str(Path(db))] if (root / db).is_file() and not Path(db).is_absolute() \
                else []
            r = run(root, argv, outputs=outputs, readers=readers)
            if out in SPECIAL_KINDS or store in SPECIAL_KINDS:
                assert special_kept(root), r.err
        remove_dotdot()

    one()


column_names = st.sampled_from(["P", "alpha", "norm", "lam", "test_error", "eps", "seed",
                                "model", "x", ""])
cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10 ** 6),
                  st.sampled_from(["", "inf", "-inf", "nan", "a", "1e999"]))


@fuzz(50)
@given(columns=st.lists(column_names, min_size=1, max_size=5),
       rows=st.integers(0, 12), data=st.data())
def test_fuzz_fit_csv(columns, rows, data, template):
    table = {"--group-by": texts, "--error": texts, "--n-boot": st.sampled_from(
        ["0", "1", "2", "-1", "x"]), "--level": numbers, "--window": numbers,
        "--gamma1-method": st.sampled_from(["common", "rescaled", "x"]), "--seed": numbers,
        "--strict-minimum": None, "--out": st.sampled_from(PATH_KINDS)}
    with workspace() as root:
        if data.draw(st.booleans()):  # real curves, a few cells and names corrupted
            curves = synthetic_curves(P=(500, 1000, 2000), n_seeds=2, n_points=8,
                                      rng=np.random.default_rng(0)).astype(object)
            for _ in range(data.draw(st.integers(0, 3))):
                curves.iat[data.draw(st.integers(0, len(curves) - 1)),
                           data.draw(st.integers(0, 3))] = data.draw(cells)
            curves.columns = [data.draw(st.sampled_from([c, c, c, "alpha", "lam", "x"]))
                              for c in curves.columns]
            curves.to_csv(root / "c.csv", index=False)
        else:
            body = [",".join(columns)]
            for _ in range(rows):
                body.append(",".join(str(data.draw(cells)) for _ in columns))
            (root / "c.csv").write_text("\n".join(body) + "\n")
        argv = ["fit", "c.csv", *options(data.draw, table, 3)]
        out = None
        if "--out" in argv:
            i = argv.index("--out") + 1
            argv[i] = out = make_path(argv[i], root, template, "out")
        run(root, argv, outputs=[out] if out else [])
    remove_dotdot()


@fuzz(12)
@given(data=st.data())
def test_fuzz_train(data, template):
    """One or two flags of a tiny run fuzzed; valid draws train one epoch of 50 digits."""
    small = st.sampled_from(["0", "1", "2", "-1", "x", "1.5", "nan", "1e9", "9" * 30])
    table = {"--P": small, "--seed": small, "--n-log": small, "--lr": numbers,
             "--weight-decay": numbers, "--momentum": numbers, "--batch-size": small,
             "--width": numbers, "--depth": numbers, "--init-factor": numbers,
             "--optimizer": st.sampled_from(["adam", "sgd", "x"]),
             "--model": st.sampled_from(["cnn", "vit", "resnet", "mlp"]),
             "--dataset": st.sampled_from(["digits", "foo", "imagefolder", ""]),
             "--device": texts, "--store": st.sampled_from(PATH_KINDS),
             "--checkpoint": st.sampled_from(PATH_KINDS), "--resume": None, "--force": None,
             "--seeds": st.sampled_from(["0:2", "2:1", "x", "0:9999999999"])}
    with workspace() as root:
        base = {"--model": "cnn", "--dataset": "digits", "--P": "50", "--batch-size": "25",
                "--width": "0.125", "--epochs": "1", "--n-log": "1", "--augment": "none"}
        extra = options(data.draw, table, 2)
        for i, a in enumerate(extra):
            if extra[i - 1] in ("--store", "--checkpoint"):
                extra[i] = make_path(a, root, template, extra[i - 1].strip("-"))
        for flag in list(base):
            if flag in extra:
                del base[flag]
        argv = ["train", *[x for kv in base.items() for x in kv], *extra, "--quiet"]
        outputs = []
        for flag in ("--store", "--checkpoint"):
            if flag in argv:
                outputs.append(argv[argv.index(flag) + 1])
        readers = []
        store = argv[argv.index("--store") + 1] if "--store" in argv else None
        if store is not None and (root / store).is_file() and (root / store).stat().st_size \
                and store != "store":  # a file that is not a store stays as it is
            readers = [store]
        run(root, argv, outputs=outputs, readers=readers)
    remove_dotdot()


@pytest.fixture(scope="module")
def state_dict(tmp_path_factory) -> Path:
    from normscale import nets

    path = tmp_path_factory.mktemp("fuzz-norms") / "cnn.pt"
    torch.manual_seed(0)
    model = nets.build("cnn", in_channels=1, image_size=8, num_classes=10, width=0.125,
                       dataset="digits")
    torch.save(model.state_dict(), path)
    return path


@fuzz(40)
@given(kind=st.sampled_from([*PATH_KINDS, *SPECIAL_KINDS, "state_dict", "state_dict",
                             "tensor", "pickle"]),
       data=st.data())
def test_fuzz_norms(kind, data, template, state_dict):
    small = st.sampled_from(["1", "8", "10", "0", "-1", "x", "9" * 30])
    table = {"--arch": st.sampled_from(["cnn", "resnet", "vit", "x"]), "--in-channels": small,
             "--image-size": small, "--num-classes": small, "--dataset": texts,
             "--width": numbers, "--depth": numbers,
             "--reference": st.sampled_from([*PATH_KINDS, *SPECIAL_KINDS, "state_dict"]),
             "--conv": st.sampled_from(["reshape", "operator", "x"]),
             "--norm-layers": st.sampled_from(["ignore", "fold", "diagonal", "x"]),
             "--bias": None,
             "--csv": st.sampled_from(["input", "missing", *PATH_KINDS, *SPECIAL_KINDS])}

    def path_of(k: str, name: str) -> str:
        if k == "state_dict":
            shutil.copy(state_dict, root / f"{name}.pt")
            return f"{name}.pt"
        if k == "tensor":
            torch.save(torch.ones(3), root / f"{name}.pt")
            return f"{name}.pt"
        if k == "pickle":  # a planted pickle: refused, and it creates no file
            torch.save(Planted(root / "ran"), root / f"{name}.pt")
            return f"{name}.pt"
        return make_path(k, root, template, name)

    with workspace() as root:
        argv = ["norms", path_of(kind, "ck"), *options(data.draw, table, 2)]
        if kind == "state_dict" and data.draw(st.integers(0, 3)):
            argv += ["--arch", "cnn", "--in-channels", "1", "--image-size", "8",
                     "--num-classes", "10", "--width", "0.125", "--dataset", "digits"]
        if "--reference" in argv:
            i = argv.index("--reference") + 1
            argv[i] = path_of(argv[i], "ref")
        outputs = []
        if "--csv" in argv:
            i = argv.index("--csv") + 1
            argv[i] = argv[1] if argv[i] == "input" else make_path(argv[i], root, template, "out")
            outputs = [] if argv[i] == argv[1] else [argv[i]]
        readers = [a for a in argv[1:] if (root / a).is_file() and a not in outputs]
        run(root, argv, outputs=outputs, readers=readers)
        assert not (root / "ran").exists()
    remove_dotdot()


class Planted:
    """A pickle whose ``__reduce__`` creates ``marker`` when it is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _table_file(draw, root: Path, template: Path, columns: list[str],
                special: bool = False) -> str:
    """A generated CSV (random columns and cells) or a path of another kind."""
    kind = draw(st.sampled_from(["csv", "csv", "csv", *PATH_KINDS,
                                 *(SPECIAL_KINDS if special else [])]))
    if kind != "csv":
        return make_path(kind, root, template, "t")
    rows = [",".join(columns)]
    for _ in range(draw(st.integers(0, 10))):
        rows.append(",".join(str(draw(cells)) for _ in columns))
    (root / "t.csv").write_text("\n".join(rows) + "\n")
    return "t.csv"


@fuzz(30)
@given(columns=st.lists(st.sampled_from(["P", "N", "loss", "eps_opt", "width", "seed", "cost",
                                         "x", ""]), min_size=1, max_size=5), data=st.data())
def test_fuzz_scaling(columns, data, template):
    table = {"--form": st.sampled_from(["power", "joint", "broken", "x"]),
             "--x": st.sampled_from(["P", "P,N", "N", "", "a,b,c"]), "--y": texts,
             "--holdout": st.sampled_from(["0", "1", "2", "-1", "x"]),
             "--n-boot": st.sampled_from(["1", "2", "0", "x"]), "--level": numbers,
             "--loss": st.sampled_from(["huber", "squared", "x"]), "--delta": numbers,
             "--grid": st.sampled_from(["default", "coarse", "epoch", "x"]),
             "--out": st.sampled_from(PATH_KINDS)}
    with workspace() as root:
        if data.draw(st.booleans()):  # a .db file is read as a run store
            source = make_path(data.draw(st.sampled_from(PATH_KINDS)), root, template,
                               "runs.db")
        else:
            source = _table_file(data.draw, root, template, columns)
        argv = ["scaling", source, "--n-boot", "2", *options(data.draw, table, 3)]
        out = None
        if "--out" in argv:
            i = argv.index("--out") + 1
            argv[i] = out = make_path(argv[i], root, template, "out")
        run(root, argv, outputs=[out] if out else [],
            readers=[source] if (root / source).is_file() else [])
    remove_dotdot()


@fuzz(30)
@given(columns=st.lists(column_names, min_size=1, max_size=5), data=st.data())
def test_fuzz_import_csv(columns, data, template):
    maps = st.sampled_from(["norm=norm", "test_error=test_error", "P=P", "seed=seed",
                            "step=x", "norm=missing", "bogus=P", "noequals", "="])
    with workspace() as root:
        source = _table_file(data.draw, root, template, columns, special=True)
        out_kind = data.draw(st.sampled_from(["missing", "input", *PATH_KINDS, *SPECIAL_KINDS]))
        out = source if out_kind == "input" else make_path(out_kind, root, template, "out.csv")
        argv = ["import", "csv", source, "--out", out]
        for m in data.draw(st.lists(maps, max_size=3)):
            argv += ["--column", m]
        argv += options(data.draw, {"--P": numbers, "--seed": numbers, "--norm-kind": texts,
                                    "--log10": None, "--model": texts}, 2)
        r = run(root, argv, outputs=[] if out == source else [out],
                readers=[source] if (root / source).is_file() else [])
        assert special_kept(root), r.err
        if out == source:
            assert r.code == 2, r.err
    remove_dotdot()


# -- issue 23: special files, damaged stores, tensorboard logs, the tracker API, full disks -----

def special_kept(root: Path) -> bool:
    """/dev/full is still a device (links and pipes in ``root``: :func:`check`)."""
    return stat.S_ISCHR(os.stat("/dev/full").st_mode)


DAMAGE = [
    "UPDATE runs SET config = {v} WHERE rowid = 1",
    "UPDATE runs SET versions = {v} WHERE rowid = 2",
    "UPDATE runs SET status = 'finished', stop_reason = {v}",
    "UPDATE runs SET wall_time = {v}",
    "UPDATE runs SET created_at = {v} WHERE rowid = 3",
    "UPDATE records SET norms = {v} WHERE rowid % 5 = 0",
    "UPDATE records SET epoch = {v} WHERE rowid = 4",
    "UPDATE records SET step = {v} WHERE rowid = 7",
    "UPDATE records SET test_error = {v} WHERE rowid % 3 = 0",
    "DELETE FROM meta",
    "DROP TABLE records",
    "UPDATE meta SET value = {v}",
]
damaged_values = st.sampled_from([
    "NULL", "'x'", "''", "'{'", "'[1, 2]'", "'{\"a\": [1]}'",
    "'{\"spectral_complexity\": \"big\"}'",
    "'{\"spectral_complexity\": null}'", "'{\"model\": [\"cnn\"], \"P\": \"many\"}'",
    "'{\"model\": {\"x\": 1}, \"P\": 1e400}'", "'{\"step\": 1}'", "1e308", "-1", "0",
    "X'00ff'", "'NaN'", "9223372036854775807", "'{\"P\": 10, \"seed\": [0]}'"])


@pytest.mark.parametrize("reader, n", [("export", 30), ("table", 12), ("report", 4)])
def test_fuzz_damaged_stores(reader, n, template):
    """A real store with one to three columns damaged by SQL: one line or a result, the
    store unchanged."""
    @fuzz(n)
    @given(damage=st.lists(st.tuples(st.sampled_from(DAMAGE), damaged_values), min_size=1,
                           max_size=3), data=st.data())
    def one(damage, data):
        with workspace() as root:
            db = root / "runs.db"
            shutil.copy(template, db)
            conn = sqlite3.connect(db)
            for sql, value in damage:
                with contextlib.suppress(sqlite3.Error):  # a CHECK may refuse the value
                    conn.execute(sql.format(v=value))
                    conn.commit()
            conn.close()
            argv = [reader, "--store", "runs.db", *options(data.draw, READER_OPTIONS[reader], 1)]
            if reader != "table":
                argv += ["--out", "out.csv" if reader == "export" else "out"]
            if reader != "export":
                argv += ["--n-boot", "0"]
            run(root, argv, outputs=["out.csv", "out"], readers=["runs.db"])

    one()


hparams_files = st.sampled_from([
    None, b"P: 100\nseed: 1\n", b"data:\n  P: 200\n", b"P: [1, 2\n", b"- 1\n- 2\n", b"",
    b"P: !!python/object/apply:os.system ['touch ran']\n", bytes(range(256)),
    b"P: 1e30\n", b"P: -5\n", b"P: 2.5\n", b"P: .inf\n", b"&a [*a]\n", b"P: ~\n"])
scalars = st.one_of(st.sampled_from([0.0, 1.0, 0.5, -1.0, 1e30, -1e30, math.inf, -math.inf,
                                     math.nan, 2.5, 1e-30]),
                    st.floats(allow_nan=True, allow_infinity=True, width=32))


@fuzz(25)
@given(runs=st.lists(st.tuples(
    st.sampled_from(["P=100_seed=0", "P=200_seed=1", "x", "P=abc", "P=0", "nested/P=50"]),
    st.lists(st.tuples(st.integers(0, 2**40), scalars, scalars, st.one_of(st.none(), scalars)),
             min_size=1, max_size=5),
    hparams_files), min_size=1, max_size=3, unique_by=lambda r: r[0]), data=st.data())
def test_fuzz_import_tensorboard(runs, data, template):
    """Generated event files (steps up to 2**40, values inf, NaN, 1e30; a norms/step tag that
    may hold anything) and hparams.yaml files (broken, binary, !!python, lists)."""
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    with workspace() as root:
        for name, points, hparams in runs:
            folder = root / "tb" / name
            with SummaryWriter(folder) as w:
                for step, norm, error, step_value in points:
                    w.add_scalar("norms/spectral_complexity", norm, step)
                    w.add_scalar("val_error", error, step)
                    if step_value is not None:
                        w.add_scalar("norms/step", step_value, step)
            if hparams is not None:
                (folder / "hparams.yaml").write_bytes(hparams)
        if data.draw(st.integers(0, 4)) == 0:
            os.mkfifo(root / "tb" / runs[0][0] / "events.out.tfevents.0.fifo")
        tags = data.draw(st.lists(st.sampled_from(["norms/spectral_complexity", "norms/x",
                                                   "other/spectral_complexity"]),
                                  min_size=1, max_size=3))
        argv = ["import", "tensorboard", "tb", "--error-tag",
                data.draw(st.sampled_from(["val_error", "val_error", "nope"]))]
        for t in tags:
            argv += ["--norm-tag", t]
        argv += data.draw(st.sampled_from([["--P", "10"], ["--P-from", "hparams:P"],
                                           ["--P-from", r"P=(\d+)"], ["--P-from", "("],
                                           ["--P-from", "hparams:data.P"], []]))
        argv += options(data.draw, {"--seed-from": st.sampled_from([r"seed=(\d+)",
                                                                    "hparams:seed", "x"]),
                                    "--log10": None, "--model": texts}, 2)
        out_kind = data.draw(st.sampled_from(["missing", "missing", *SPECIAL_KINDS, "folder"]))
        out = make_path(out_kind, root, template, "out.csv")
        r = run(root, [*argv, "--out", out], outputs=[out])
        assert special_kept(root), r.err
        assert not (root / "ran").exists()


class _Net(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(3, width), torch.nn.Linear(width, 2)


log_values = st.one_of(st.sampled_from([0.5, math.nan, math.inf, -1.0, 1e300, None, True]),
                       st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from(["0.3", "x", [1], torch.tensor(0.25)]))
tracker_calls = st.one_of(
    st.tuples(st.just("log"), st.one_of(st.integers(-2, 12), st.sampled_from([2**63, 1.5, "3",
                                                                              None, True])),
              log_values, st.one_of(st.none(), log_values)),
    st.tuples(st.just("finish"), st.sampled_from(["finished", "failed", "running", "x"])),
    st.tuples(st.just("close")),
    st.tuples(st.just("state"), st.sampled_from(["own", "other", "wide", "junk", "empty",
                                                 "negative"])),
    st.tuples(st.just("second"), st.integers(0, 3)),
    st.tuples(st.just("due"), st.one_of(st.integers(-3, 2**62), st.sampled_from([1.5, "2"]))))


@fuzz(40)
@given(calls=st.lists(tracker_calls, max_size=8), config=st.sampled_from([
    None, {"lr": 0.1}, {"layers": [64, 64]}, {"opt": {"beta": [0.9]}}]),
       schedule=st.sampled_from([1, None, 3, [1, 5], [2**70], 0, -1, "x", 2.5, [1, -2],
                                 "log:7", "log:1000000"]))
def test_fuzz_tracker_api(calls, config, schedule):
    """A random sequence of RunTracker calls: each returns or raises a NormscaleError (a
    one-line message), never another error; the store stays readable and exportable, and
    a run's stored steps are the steps its live tracker logged."""
    from normscale.errors import NormscaleError
    from normscale.integrations import RunTracker

    with workspace() as root:
        def make(width: int = 4, cfg: dict | None = config, sched=1) -> RunTracker:
            torch.manual_seed(0)
            return RunTracker(_Net(width), model_name="net", P=10, store=root / "runs.db",
                              schedule=sched, config=cfg)

        from normscale.integrations import LogSpaced

        try:  # a bad schedule is refused when the tracker is made
            t = make(sched=LogSpaced(int(schedule[4:])) if str(schedule).startswith("log:")
                     else schedule)
        except NormscaleError as exc:
            assert "\n" not in str(exc)
            t = make()
        logged = []
        for call in calls:
            try:
                if call[0] == "log":
                    epoch = None if call[3] is None else call[3]
                    rec = t.log(call[1], epoch=epoch if epoch is not None else 1.0,
                                test_error=call[2])
                    logged.append(rec.step)
                elif call[0] == "finish":
                    t.finish(call[1])
                elif call[0] == "close":
                    t.close()
                elif call[0] == "state":
                    state = {"own": t.state_dict,
                             "other": lambda: make(cfg={"z": 1}).state_dict(),
                             "wide": lambda: {**make(8).state_dict(), "run_id": t.run_id},
                             "junk": lambda: {"run_id": t.run_id, "last_step": 1, "norms": 3},
                             "empty": dict,
                             "negative": lambda: {**t.state_dict(), "last_step": -4}}[call[1]]()
                    t.load_state_dict(state)
                elif call[0] == "due":
                    assert isinstance(t.due(call[1]), bool)
                else:
                    other = make()
                    other.log(call[1] + 1, epoch=1.0, test_error=0.5)
                    other.close()
            except NormscaleError as exc:
                assert "\n" not in str(exc), str(exc)
        t.close()
        if (root / "runs.db").exists():
            with Store(root / "runs.db", readonly=True) as store:
                runs = store.runs()
                for info in runs:
                    assert [r.step for r in store.records(info.run_id)] == \
                        sorted({r.step for r in store.records(info.run_id)})
            r = run_cli("export", "--store", root / "runs.db", "--status", "any",
                        "--out", root / "c.csv")
            assert r.code == 0, r.err


@pytest.fixture
def tiny_disk(tmp_path):
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("no tmpfs mount here (needs root): the simulated full disk is in "
                    "test_security.py")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


@fuzz(15)
@given(command=st.sampled_from(["export", "import", "norms"]), fill=st.integers(0, 64),
       rows=st.sampled_from([10, 1000, 20000]))
def test_fuzz_full_disk(command, fill, rows, tiny_disk, template, state_dict):
    """Outputs on a 64 KiB file system filled to a random level: a result or one line, no
    temporary file left, an old output kept whole."""
    for p in tiny_disk.iterdir():
        p.unlink()
    with workspace() as root:
        (tiny_disk / "old.csv").write_text("old\n")
        with contextlib.suppress(OSError):
            (tiny_disk / "filler").write_bytes(b"\0" * (fill * 1024))
        if command == "export":
            argv = ["export", "--store", template, "--norm", "all", "--status", "any"]
        elif command == "import":
            (root / "w.csv").write_text("P,norm,test_error\n" + "100,2.5,0.25\n" * rows)
            argv = ["import", "csv", "w.csv", "--column", "P=P", "--column", "norm=norm",
                    "--column", "test_error=test_error"]
        else:
            argv = ["norms", state_dict, "--arch", "cnn", "--in-channels", "1", "--image-size",
                    "8", "--num-classes", "10", "--width", "0.125", "--dataset", "digits",
                    "--csv"]
        out = tiny_disk / "old.csv"
        r = run(root, [*argv] + ([str(out)] if command == "norms" else ["--out", str(out)]))
        if r.code == 2:
            assert "disk is full" in r.err or "No space" in r.err, r.err
            assert out.read_text() == "old\n"
        assert sorted(p.name for p in tiny_disk.iterdir() if p.name != "filler") == ["old.csv"]
