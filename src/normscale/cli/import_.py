"""Import curves logged by other tools as the long-format table that `normscale fit` reads.

Sources:

- tensorboard LOGDIR: event files, e.g. from the Lightning callback's
  TensorBoard logger (tags norms/<kind>) or any run that logs a norm;
- csv FILE: a W&B or MLflow export, one row per (run, step), through a map
  of its columns (--column norm=..., --column test_error=..., ...).

Each run needs its training-set size P and its seed: a constant (--P,
--seed), a column (csv), or, for TensorBoard, hparams:KEY or a regular
expression on the run's folder (--P-from 'P=(\\d+)').

Examples:
  normscale import tensorboard lightning_logs --norm-tag norms/spectral_complexity
      --error-tag val_error --P-from hparams:P --model cnn --out curves.csv
  normscale import csv wandb.csv --column norm=norms/spectral_complexity
      --column test_error=val_error --column P=P --column seed=seed
      --column step=_step --column run=Name --out curves.csv
"""

from __future__ import annotations

import argparse

from normscale import safeio
from normscale.cli import _common
from normscale.errors import NormscaleError

HELP = "import curves from TensorBoard event files or a W&B/MLflow CSV export, for `fit`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="source", metavar="SOURCE", parser_class=type(parser))
    sub.required = True
    tb = sub.add_parser("tensorboard", help="TensorBoard event files (searched recursively)",
                        description="Each folder holding event files is one run.")
    tb.add_argument("logdir", help="the TensorBoard log directory")
    tb.add_argument("--norm-tag", action="append", required=True, metavar="TAG",
                    help="scalar tag of a norm (repeat for several kinds), e.g. "
                         "norms/spectral_complexity")
    tb.add_argument("--error-tag", required=True, metavar="TAG",
                    help="scalar tag of the error fitted as test_error, e.g. val_error")
    tb.add_argument("--loss-tag", metavar="TAG", help="scalar tag of the loss (test_loss)")
    tb.add_argument("--epoch-tag", default="norms/epoch", metavar="TAG",
                    help="scalar tag of the epoch (default norms/epoch, as the normscale "
                         "callbacks log it)")
    tb.add_argument("--step-tag", default="norms/step", metavar="TAG",
                    help="scalar tag of the optimizer step of each point, where logged "
                         "(default norms/step, as the normscale callbacks log it)")
    tb.add_argument("--P", type=_common.positive_int("--P"), help="P of every run")
    tb.add_argument("--P-from", metavar="SPEC",
                    help="P of each run: hparams:KEY (its hparams.yaml) or a regular "
                         "expression with one group on its folder, e.g. 'P=(\\d+)'")
    tb.add_argument("--seed", type=_common.nonnegative_int("--seed"),
                    help="seed of every run (default 0)")
    tb.add_argument("--seed-from", metavar="SPEC", help="as --P-from, for the seed")
    _common_options(tb)

    csv = sub.add_parser("csv", help="a CSV export (W&B, MLflow) with a column map",
                         description="One row per (run, step); rows of one run and step are "
                                     "merged (history exports spread metrics over rows).")
    csv.add_argument("file", help="the CSV file")
    csv.add_argument("--column", action="append", default=[], metavar="NAME=COLUMN",
                     help="map a column: norm, test_error (required), P, seed, step, epoch, "
                          "test_loss, model, dataset, run; e.g. --column test_error=val/error")
    csv.add_argument("--norm-kind", default="norm",
                     help="norm_kind of the rows, e.g. spectral_complexity (default norm)")
    csv.add_argument("--P", type=_common.positive_int("--P"), help="P of every row")
    csv.add_argument("--seed", type=_common.nonnegative_int("--seed"),
                     help="seed of every row (default 0 when no column is mapped)")
    _common_options(csv)


def _common_options(p: argparse.ArgumentParser) -> None:
    # --json and --quiet after the source too (SUPPRESS: not given leaves the command's value)
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print the result as JSON on stdout")
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no logs, no progress bar")
    p.add_argument("--model", help="the model column of every row")
    p.add_argument("--dataset", help="the dataset column of every row")
    p.add_argument("--log10", action="store_true",
                   help="the norm is logged as log10 (float32 loggers and R_A > 3e38)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the long table (.csv or .parquet) for `normscale fit`")


def run(args: argparse.Namespace) -> _common.Result:
    from normscale.store import write_table

    if args.source == "csv":  # an input first: --out naming it is refused before any work
        safeio.check_input(args.file, "the file")
    out = _common.writable_file(args.out, "--out", mkdir=getattr(args, "mkdir", False))
    if args.source == "tensorboard":
        from normscale.integrations.tensorboard import read_curves

        table = read_curves(args.logdir, norm_tags=args.norm_tag, error_tag=args.error_tag,
                            loss_tag=args.loss_tag, epoch_tag=args.epoch_tag,
                            step_tag=args.step_tag, P=args.P,
                            P_from=args.P_from, seed=args.seed, seed_from=args.seed_from,
                            model=args.model, dataset=args.dataset, log10=args.log10)
        source = args.logdir
    else:
        import pandas as pd

        from normscale.integrations.tables import from_columns, parse_column_map

        path = safeio.check_input(args.file, "the file")  # a regular file, and an input
        try:
            raw = pd.read_csv(path, low_memory=False)
        except (OSError, ValueError, OverflowError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise NormscaleError(f"cannot read '{path}' as CSV ({first})") from None
        columns = parse_column_map(args.column)
        constants = {k: v for k, v in (("P", args.P), ("seed", args.seed), ("model", args.model),
                                       ("dataset", args.dataset)) if v is not None}
        if "seed" not in columns:
            constants.setdefault("seed", 0)
        table = from_columns(raw, columns, constants=constants, norm_kind=args.norm_kind,
                             log10=args.log10, where=f"'{path}'")
        source = args.file
    write_table(table, out)
    n_runs = table.groupby(["run", "P", "seed"], dropna=False).ngroups if len(table) else 0
    kinds = sorted(table["norm_kind"].unique().tolist())
    return _common.Result(
        data={"out": str(out), "source": str(source), "rows": len(table), "runs": n_runs,
              "norm_kinds": kinds},
        text=f"wrote {len(table)} rows ({n_runs} runs, norm kinds: {', '.join(kinds)}) to {out}")
