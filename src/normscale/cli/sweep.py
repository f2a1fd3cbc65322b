"""Run a sweep (a TOML file or a shipped preset) into a run store, locally or on Ray.

Finished and diverged runs are skipped, interrupted and failed ones are run
again (resuming from their checkpoints); the driver is the store's single
writer. `--list` shows the presets.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from normscale.cli import _common
from normscale.cli._common import Result, log, positive_int, progress
from normscale.errors import NormscaleError

HELP = "run many training runs (a sweep file or preset) on this machine or a Ray cluster"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", nargs="?", help="a sweep TOML file or a preset such as cpu/cnn-mnist")
    p.add_argument("--list", action="store_true", help="list the shipped presets and exit")
    p.add_argument("--store", default="runs.db", help="the run store (SQLite file)")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=positive_int("--workers", maximum=_common.MAX_THREADS),
                   default=None,
                   help="runs at a time (default: CPU cores)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join ('auto' or HOST:PORT); default: a local instance")
    p.add_argument("--data-root", default=None, help="folder with the data set files")
    p.add_argument("--download", action="store_true", help="fetch missing data set files")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--threads-per-run",
                   type=positive_int("--threads-per-run", maximum=_common.MAX_THREADS), default=1,
                   help="CPU threads (and Ray CPUs) per run")
    p.add_argument("--gpus-per-run", type=_common.nonnegative_float("--gpus-per-run", maximum=1024),
                   default=0.0,
                   help="GPUs per run on Ray (fractions share a GPU)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="where workers keep checkpoints (default: STORE.checkpoints)")
    p.add_argument("--force", action="store_true", help="run finished runs again")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")


def run(args: argparse.Namespace) -> Result:
    from normscale.store import Store
    from normscale.sweep import list_presets, load_spec, run_sweep

    if args.list:
        names = list_presets()
        return Result(names, "\n".join(names))
    if args.sweep is None:
        raise NormscaleError("name a sweep file or a preset (see --list)")
    spec = load_spec(args.sweep)
    configs = spec.configs()
    if args.dry_run:
        rows = [{"run_id": c.run_id, **c.to_dict()} for c in configs]
        text = "\n".join(f"{r['run_id']}  {r['model']} {r['dataset']} P={r['P']} seed={r['seed']}"
                         for r in rows)
        return Result(rows, text)
    # every option and the data are checked here, once, not by each run
    if args.address is None:  # the runs train on this machine: its devices
        _common.torch_device(args.device)
    if Path(args.store).is_dir():
        raise NormscaleError(f"--store '{args.store}' is a folder, not a file")
    if args.address is None:  # on a cluster the data live on its nodes
        _check_data(configs, args)
    _common.make_parent(args.store, "--store", mkdir=args.mkdir)
    if args.checkpoint_dir is not None:
        _common.output_dir(args.checkpoint_dir, "--checkpoint-dir", mkdir=args.mkdir)
    log(args, f"sweep {spec.name}: {len(configs)} runs -> {args.store} ({args.executor})")
    with Store(args.store) as store, progress(args, len(configs), spec.name) as bar:
        plain = not args.quiet and not sys.stderr.isatty()
        last = [-1]

        def on_progress(done: int, running: int, failed: int, total: int) -> None:
            bar.done = done
            bar.update(0, status=f"running {running} failed {failed}")
            if plain and done != last[0]:  # a log file gets a line per finished run
                last[0] = done
                log(args, f"sweep {spec.name}: {done}/{total} runs done, {running} running, "
                          f"{failed} failed")

        summary = run_sweep(spec, store=store, executor=args.executor, workers=args.workers,
                            address=args.address, data_root=args.data_root,
                            download=args.download, device=args.device,
                            checkpoint_dir=args.checkpoint_dir, force=args.force,
                            threads_per_run=args.threads_per_run,
                            gpus_per_run=args.gpus_per_run, on_progress=on_progress)
    text = summary.line()
    for run_id, error in summary.failures:
        log(args, f"failed {run_id}: {error}")
    for run_id in summary.plateau:
        log(args, f"run {run_id} stopped on its initial plateau (its training loss never moved "
                  "in normscale.train.stop.PLATEAU_STEPS steps): a larger init factor trains")
    return Result({"sweep": spec.name, **summary.__dict__}, text,
                  exit_code=1 if summary.failed else 0)


def _check_data(configs, args: argparse.Namespace) -> None:
    """Load (or, with --download, fetch) each data set the sweep still needs, once,
    before the store is created.

    A missing data set stops the sweep here with the message `normscale train`
    gives, instead of failing every run.
    """
    from normscale import data
    from normscale.store import Store
    from normscale.sweep.driver import TERMINAL

    done: set[str] = set()
    if not args.force and Path(args.store).is_file() and Path(args.store).stat().st_size:
        with Store(args.store, readonly=True) as store:
            done = {r.run_id for r in store.runs() if r.status in TERMINAL}
    needed = sorted({c.dataset for c in configs if c.run_id not in done})
    for name in needed:
        if name not in data.DATASETS:
            raise NormscaleError(f"sweep {args.sweep}: unknown dataset {name!r}; use "
                                 + ", ".join(data.DATASETS))
        for split in ("train", "test"):
            data.load_dataset(name, root=args.data_root, download=args.download, split=split,
                              verify=False)
