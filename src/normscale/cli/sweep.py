"""Run a sweep (a TOML file or a shipped preset) into a run store, locally or on Ray.

Finished and diverged runs are skipped, interrupted and failed ones are run
again (resuming from their checkpoints); the driver is the store's single
writer. `--list` shows the presets.
"""

from __future__ import annotations

import argparse

from normscale.cli._common import Result, log, positive_int, progress
from normscale.errors import NormscaleError

HELP = "run many training runs (a sweep file or preset) on this machine or a Ray cluster"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", nargs="?", help="a sweep TOML file or a preset such as cpu/cnn-mnist")
    p.add_argument("--list", action="store_true", help="list the shipped presets and exit")
    p.add_argument("--store", default="runs.db", help="the run store (SQLite file)")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=positive_int("--workers"), default=None,
                   help="runs at a time (default: CPU cores)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join ('auto' or HOST:PORT); default: a local instance")
    p.add_argument("--data-root", default=None, help="folder with the data set files")
    p.add_argument("--download", action="store_true", help="fetch missing data set files")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--threads-per-run", type=positive_int("--threads-per-run"), default=1,
                   help="CPU threads (and Ray CPUs) per run")
    p.add_argument("--gpus-per-run", type=float, default=0.0,
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
    if args.gpus_per_run < 0:
        raise NormscaleError(f"--gpus-per-run must be >= 0; got {args.gpus_per_run}")
    spec = load_spec(args.sweep)
    configs = spec.configs()
    if args.dry_run:
        rows = [{"run_id": c.run_id, **c.to_dict()} for c in configs]
        text = "\n".join(f"{r['run_id']}  {r['model']} {r['dataset']} P={r['P']} seed={r['seed']}"
                         for r in rows)
        return Result(rows, text)
    log(args, f"sweep {spec.name}: {len(configs)} runs -> {args.store} ({args.executor})")
    with Store(args.store) as store, progress(args, len(configs), spec.name) as bar:
        def on_progress(done: int, running: int, failed: int, total: int) -> None:
            bar.done = done
            bar.update(0, status=f"running {running} failed {failed}")

        summary = run_sweep(spec, store=store, executor=args.executor, workers=args.workers,
                            address=args.address, data_root=args.data_root,
                            download=args.download, device=args.device,
                            checkpoint_dir=args.checkpoint_dir, force=args.force,
                            threads_per_run=args.threads_per_run,
                            gpus_per_run=args.gpus_per_run, on_progress=on_progress)
    text = (f"{summary.total} runs: {summary.skipped} already done, {summary.finished} finished, "
            f"{summary.diverged} diverged, {summary.failed} failed in {summary.wall_time:.0f} s")
    for run_id, error in summary.failures:
        log(args, f"failed {run_id}: {error}")
    return Result({"sweep": spec.name, **summary.__dict__}, text,
                  exit_code=1 if summary.failed else 0)
