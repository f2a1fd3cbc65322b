"""Train one network on a subset of size P and log its learning curve with norms.

At about 50 log-spaced epochs it records the test and training error and
loss and every norm measure (docs/science.md 2.2), into a run store when --store
is given. A run's identity is a hash of its config: running a finished run
again does nothing unless --force; --resume continues an interrupted one from
its last checkpoint without duplicating records. With --until optimum the run
stops once its test error is clearly past its minimum against the norm (or on
its initial plateau, or at --max-epochs), logging at log-spaced steps and on
norm growth, and records why it stopped.

Example: normscale train --model cnn --dataset mnist --data-root DIR --P 1000
--seed 0 --epochs 50 --store runs.db
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from normscale.cli import _common
from normscale.errors import NormscaleError

HELP = "train one network on P examples, logging errors and norms at log-spaced epochs"


def _seed_range(text: str) -> range:
    """``A:B``: the seeds A, A+1, ..., B-1 (Python's range, stop excluded)."""
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must be A:B with ints 0 <= A < B; "
                                         f"got {text!r}") from None
    if not 0 <= a < b:
        raise argparse.ArgumentTypeError(f"--seeds must be A:B with ints 0 <= A < B; got {text}")
    return range(a, b)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from normscale.train.config import AUGMENTATIONS, MAX_MULTIPLIER, MODELS, OPTIMIZERS, UNTIL

    g = p.add_argument_group("run")
    g.add_argument("--model", required=True, choices=MODELS)
    g.add_argument("--dataset", required=True,
                   help="mnist, fashion-mnist, cifar10, cifar100, digits or imagefolder")
    g.add_argument("--data-root", metavar="DIR", help="folder with the data set files")
    g.add_argument("--download", action="store_true", help="fetch missing data set files")
    g.add_argument("--P", type=_common.positive_int("--P"), required=True,
                   help="training-set size (class-balanced subset drawn by --seed)")
    g.add_argument("--seed", type=_common.nonnegative_int("--seed"), default=0,
                   help="controls init, subset, batch order, augmentation (default 0)")
    g.add_argument("--seeds", type=_seed_range, metavar="A:B",
                   help="with --ensemble: the seeds A..B-1, instead of --seed")
    g.add_argument("--ensemble", action="store_true",
                   help="train the --seeds as one vectorised seed ensemble (torch.func); the "
                        "store gets one ordinary run per seed, sharing an ensemble id")
    length = g.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_common.positive_int("--epochs"),
                        help="training length T in epochs (default: the paper preset's)")
    length.add_argument("--steps", type=_common.positive_int("--steps"),
                        help="training length T in optimizer steps; log points in steps")
    length.add_argument("--max-epochs", type=_common.positive_int("--max-epochs"),
                        help="with --until optimum: the cap in epochs (default: the paper "
                             "preset's length, e.g. 500 for the CNN)")
    g.add_argument("--until", choices=UNTIL, default="end",
                   help="'end': train the whole length; 'optimum': stop once the test error "
                        "is clearly past its minimum against the norm (or on the initial "
                        "plateau, or at --max-epochs), logging at log-spaced steps and on "
                        "norm growth (default end)")
    g.add_argument("--log-growth", type=_common.positive_float("--log-growth"),
                   help="also log whenever the spectral complexity grew by this factor (> 1) "
                        "since the last point (default 1.1 with --until optimum, else off)")
    g.add_argument("--n-log", type=_common.positive_int("--n-log"), default=50,
                   help="number of log-spaced logging points from 1 to T (default 50)")

    o = p.add_argument_group("model and optimizer (defaults: the paper's optimizer, lr and "
                             "augmentation; init factor 1)")
    o.add_argument("--optimizer", choices=OPTIMIZERS)
    o.add_argument("--lr", type=_common.positive_float("--lr"))
    o.add_argument("--weight-decay", type=_common.nonnegative_float("--weight-decay"), default=0.0)
    o.add_argument("--momentum", type=_common.nonnegative_float("--momentum"), default=0.9,
                   help="SGD momentum (default 0.9)")
    o.add_argument("--batch-size", type=_common.positive_int("--batch-size"), default=128)
    o.add_argument("--preset", default="paper", help="architecture preset (default paper)")
    o.add_argument("--width", type=_common.positive_float("--width", maximum=MAX_MULTIPLIER),
                   default=1.0,
                   help="width multiplier, < 1 for small CPU runs (default 1)")
    o.add_argument("--depth", type=_common.positive_float("--depth", maximum=MAX_MULTIPLIER),
                   default=1.0,
                   help="depth multiplier of ResNet/ViT blocks (default 1)")
    o.add_argument("--init-factor", type=_common.positive_float("--init-factor"), default=1.0,
                   help="scale of PyTorch's default init (default 1, which trains on every "
                        "bundled data set). The paper's values (0.05 for CNN/MNIST and "
                        "ResNet/CIFAR-10, 0.005 for the CIFAR ViTs; the paper/* sweep presets "
                        "use them) can hold a run at chance on its initial plateau for "
                        "hundreds of steps or more")
    o.add_argument("--augment", choices=AUGMENTATIONS,
                   help="augmentation of training batches (default: the paper's)")

    s = p.add_argument_group("store and checkpoints")
    s.add_argument("--store", metavar="DB", help="SQLite run store to write (e.g. runs.db)")
    s.add_argument("--checkpoint", metavar="FILE",
                   help="checkpoint file (default with --store: DB.ckpt/RUN_ID.pt)")
    s.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last checkpoint")
    s.add_argument("--force", action="store_true", help="train again a run already in the store")
    s.add_argument("--ensemble-id", help="tag shared by the runs of a seed ensemble")
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... or auto (default cpu)")


def _preset(model: str, dataset: str, preset: str) -> dict[str, Any]:
    """The paper's optimizer, lr, epochs, init factor and augmentation, when known."""
    if preset != "paper":
        return {}
    from normscale import nets

    try:
        return dict(nets.paper_preset(model, dataset))
    except (NormscaleError, KeyError, ValueError):
        return {}  # no paper row for this pair (digits, imagefolder, ...)


def config_from_args(args: argparse.Namespace):
    """The :class:`TrainConfig` of the command line, the paper's preset filling the gaps
    (optimizer, lr, length, augmentation; not its init factor)."""
    from normscale.train import TrainConfig

    paper = _preset(args.model, args.dataset, args.preset)
    epochs, steps = args.epochs, args.steps
    if args.max_epochs is not None:
        if args.until != "optimum":
            raise NormscaleError("--max-epochs is the cap of --until optimum: give --until "
                                 "optimum, or --epochs for a fixed length")
        epochs = args.max_epochs
    if args.log_growth is not None and args.log_growth <= 1:
        raise NormscaleError(f"--log-growth must be a factor > 1; got {args.log_growth:g}")
    if epochs is None and steps is None:
        epochs = paper.get("epochs")
        if epochs is None:
            raise NormscaleError(f"no paper preset gives the length of a {args.model} run on "
                                 f"{args.dataset!r}: give --epochs or --steps")
    return TrainConfig(
        model=args.model, dataset=args.dataset, P=args.P, seed=args.seed, epochs=epochs,
        steps=steps, optimizer=args.optimizer or paper.get("optimizer", "adam"),
        lr=args.lr or float(paper.get("lr", 1e-3)), weight_decay=args.weight_decay,
        momentum=args.momentum, batch_size=args.batch_size, n_log=args.n_log,
        preset=args.preset, width=args.width, depth=args.depth,
        init_factor=args.init_factor,
        augment=args.augment or paper.get("augmentation", "none"), until=args.until,
        log_growth=args.log_growth)


def _own_checkpoint(path: Path, flag: str) -> None:
    """Refuse to replace ``path`` unless it is a normscale checkpoint (a file normscale
    wrote): ``--checkpoint notes.txt`` must not delete the user's notes."""
    from normscale.train import load_checkpoint

    try:
        load_checkpoint(path)
    except NormscaleError:
        raise NormscaleError(f"{flag} '{path}' exists and is not a normscale checkpoint; "
                             "normscale replaces only its own checkpoints: give another "
                             "path") from None


def stopped(exc: BaseException, store, run_ids: list[str], where: str | None, *,
            resumable: bool) -> BaseException:
    """What a training that stopped on ``exc`` raises, once its runs are marked ``failed``.

    A failed write (a full disk, a lost folder: ``OSError`` or SQLite's
    errors) becomes one line saying that ``--resume`` continues the run from
    its last checkpoint (the store and checkpoint writers report theirs as
    one-line :class:`NormscaleError` already); marking the runs
    failed is best effort, since the store may sit on the full disk itself
    (a run left ``running`` resumes as well). An interrupt stays an
    interrupt, a bug stays a traceback.
    """
    import sqlite3

    if store is not None:
        message = "interrupted" if isinstance(exc, KeyboardInterrupt) else (
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        for run_id in run_ids:
            try:
                store.finish_run(run_id, status="failed", error=message)
            except (NormscaleError, OSError, sqlite3.Error):
                break  # the store cannot be written either: the runs stay `running`
    if not isinstance(exc, OSError | sqlite3.Error):
        return exc  # a NormscaleError is one line already
    reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else
              str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if isinstance(exc, sqlite3.Error) and where:
        reason = f"{where}: {reason}"
    hint = ("; once it can be written, --resume continues from the last checkpoint"
            if resumable else "")
    return NormscaleError(f"training stopped: {reason}{hint}")


def _device(name: str) -> str:
    return _common.torch_device(name)  # cpu, cuda, cuda:N or auto; checked before any work


def _summary(run_id: str, status: str, error: str | None, records: list, wall: float | None,
             note: str = "", stop_reason: str | None = None) -> str:
    lines = [f"run {run_id}: {status}{note}" + (f" ({error})" if error else "")
             + (f", stopped: {stop_reason}" if stop_reason else "")]
    if records:
        kind = next((k for k in ("spectral_complexity", "l2") if k in records[0].norms),
                    next(iter(records[0].norms), None))
        lines.append(f"{'epoch':>9} {'step':>8} {'test_err':>9} {'train_err':>9} "
                     f"{'test_loss':>9}" + (f" {kind:>20}" if kind else ""))
        for r in records:
            lines.append(f"{r.epoch:9.4g} {r.step:8d} {r.test_error:9.4f} {r.train_error:9.4f} "
                         f"{r.test_loss:9.4f}" + (f" {r.norms[kind]:20.6g}" if kind else ""))
    if wall is not None:
        lines.append(f"wall time {wall:.1f} s")
    return "\n".join(lines)


def _check_inputs(args: argparse.Namespace) -> None:
    """The data set name and the output paths, before anything is created or trained."""
    from normscale.data import DATASETS

    if args.dataset not in DATASETS:
        raise NormscaleError(f"unknown --dataset {args.dataset!r}: use "
                             + ", ".join(DATASETS))
    if args.store:
        _common.make_parent(args.store, "--store", mkdir=args.mkdir)
    if args.checkpoint:
        _common.writable_file(args.checkpoint, "--checkpoint", mkdir=args.mkdir)


#: OpenMP threads that sleep at a barrier instead of spinning: a 2-thread run beside a busy
#: process took 96.6 s spinning and 28.7 s passive, identical records (issue 25); on the
#: shared 2-core machine (load ~15) 200 digits steps on 2 threads took 48.0 and 46.6 s
#: passive against 161.7 and 215.8 s spinning, alternated (3.4x to 4.6x)
OMP_WAIT_POLICY = "PASSIVE"


def run(args: argparse.Namespace) -> _common.Result:
    # before torch loads OpenMP (a user's own OMP_WAIT_POLICY wins)
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    from normscale.store import Store
    from normscale.train import stored_config, train

    config = config_from_args(args)
    device = _device(args.device)
    _check_inputs(args)  # last: it may create the folder of --store or --checkpoint
    if args.ensemble or args.seeds is not None:
        from normscale.cli._train_ensemble import run_ensemble

        return run_ensemble(args, config, device=device, summary=_summary)
    run_id = config.run_id
    store = Store(args.store) if args.store else None
    checkpoint = Path(args.checkpoint) if args.checkpoint else (
        Path(f"{args.store}.ckpt") / f"{run_id}.pt" if args.store else None)
    if args.resume and checkpoint is None:
        raise NormscaleError("--resume needs a checkpoint: give --store or --checkpoint")
    if args.resume and args.force:
        raise NormscaleError("--resume and --force contradict each other: give one of them")

    if store is not None:
        known = store.run(run_id)
        if known is not None and not args.force:
            if known.status in ("finished", "diverged") and not args.resume:
                _common.log(args, f"run {run_id} is already in '{args.store}' ({known.status}); "
                                  "nothing to do (--force trains it again)")
                records = store.records(run_id)
                return _common.Result(
                    data={"run_id": run_id, "status": known.status, "error": known.error,
                          "stop_reason": known.stop_reason,
                          "skipped": True, "config": config.to_dict(),
                          "records": [r.to_row() for r in records],
                          "wall_time": known.wall_time},
                    text=_summary(run_id, known.status, known.error, records,
                                  known.wall_time, " (already in the store, skipped)",
                                  known.stop_reason))
            if known.status in ("running", "failed") and not args.resume:
                raise NormscaleError(
                    f"run {run_id} is already in '{args.store}' with status {known.status} "
                    "(interrupted, or running elsewhere): use --resume to continue it or "
                    "--force to start it over")
        store.start_run(run_id, stored_config(config, data_root=args.data_root),
                        ensemble_id=args.ensemble_id, fresh=not args.resume)
    if checkpoint is not None and not args.resume and checkpoint.exists():
        _own_checkpoint(checkpoint, "--checkpoint" if args.checkpoint else "the checkpoint")
        checkpoint.unlink()

    _common.log(args, f"run {run_id}: {config.model} on {config.dataset}, P={config.P}, "
                      f"seed={config.seed}, {config.length} {config.unit}s, {config.optimizer} "
                      f"lr={config.lr:g}, device {device}")
    try:
        with _common.progress(args, config.length, f"train {run_id[:8]}") as bar:
            result = train(config, data_root=args.data_root, download=args.download,
                           device=device, checkpoint=checkpoint, resume=args.resume,
                           callback=(lambda r: store.add_records(run_id, [r])) if store else None,
                           progress=bar.update)
    except BaseException as exc:
        raise stopped(exc, store, [run_id], f"--store {args.store}" if store else None,
                      resumable=checkpoint is not None) from None
    if store is not None:
        store.finish_run(run_id, status=result.status, error=result.error,
                         wall_time=result.wall_time, stop_reason=result.stop_reason)
        store.close()
    if result.status == "diverged":
        _common.log(args, f"run {run_id} diverged: {result.error}")
    if result.stop_reason == "plateau":
        _common.log(args, f"run {run_id} stopped on its initial plateau: the training loss "
                          f"stayed at {result.records[-1].train_loss:.4g} for {result.step} "
                          f"steps (init factor {config.init_factor:g}); raise --init-factor")
    elif result.status == "finished" and result.stayed_on_plateau:
        _common.log(args, f"run {run_id} never left its initial plateau: the training loss "
                          f"stayed at {result.records[-1].train_loss:.4g} at all "
                          f"{len(result.records)} logged points (init factor "
                          f"{config.init_factor:g}); a small init can hold a run there for "
                          "hundreds of steps: train longer or raise --init-factor")
    records = list(result.records)
    note = f" (resumed from step {result.resumed_from})" if result.resumed_from else ""
    return _common.Result(
        data={"run_id": run_id, "status": result.status, "error": result.error,
              "stop_reason": result.stop_reason, "skipped": False,
              "config": config.to_dict(), "step": result.step,
              "epoch": result.epoch, "resumed_from": result.resumed_from,
              "records": [r.to_row() for r in records], "wall_time": result.wall_time,
              "stayed_on_plateau": result.stayed_on_plateau,
              "checkpoint": str(checkpoint) if checkpoint else None},
        text=_summary(run_id, result.status, result.error, records, result.wall_time, note,
                      result.stop_reason))
