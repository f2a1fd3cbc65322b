"""Export a run store as the long-format table that `normscale fit` reads.

One row per (run, logged point, norm kind), with the columns model, dataset,
optimizer, weight_decay, norm_kind, P, seed, epoch, norm, test_error, then
the other errors and losses, the config and the run id. Group a fit by
norm_kind to compare norms (the paper's ablation).

By default only the spectral complexity is kept (the norm of the paper's laws);
`--norm all` keeps every kind. Each row also carries its run's stop_reason
(past_optimum, max_epochs, plateau, diverged, end); `normscale fit` counts runs
stopped at max_epochs as censored minima.

Example: normscale export --store runs.db --out curves.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from normscale.cli import _common
from normscale.errors import NormscaleError

HELP = "write a run store as a long-format curves table (CSV or Parquet) for `normscale fit`"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, metavar="DB", help="the run store (runs.db)")
    p.add_argument("--out", metavar="FILE",
                   help="output file (default curves.csv or curves.parquet)")
    p.add_argument("--format", choices=("csv", "parquet"),
                   help="table format (default: from the --out suffix, else csv)")
    p.add_argument("--norm", metavar="KIND", default="spectral_complexity",
                   help="the norm kind to keep (default spectral_complexity, the norm of the "
                        "paper's laws, so `normscale fit` reads the table as it is); 'all' "
                        "keeps every kind (then fit with --group-by ...,norm_kind)")
    p.add_argument("--status", default="finished",
                   choices=("finished", "diverged", "failed", "running", "any"),
                   help="runs to export (default finished)")


#: --out suffixes and the format each means; another suffix needs --format
SUFFIXES = {"csv": "csv", "parquet": "parquet", "pq": "parquet"}


def run(args: argparse.Namespace) -> _common.Result:
    from normscale.store import Store, long_table, write_table

    _common.input_file(args.store, "--store")
    fmt = args.format
    suffix = Path(args.out).suffix.lower().lstrip(".") if args.out else ""
    if fmt is None:
        if suffix and suffix not in SUFFIXES:
            raise NormscaleError(f"--out '{args.out}': a .{suffix} file is neither CSV nor "
                                 "Parquet; name it .csv or .parquet, or give --format")
        fmt = SUFFIXES.get(suffix, "csv")
    out = Path(args.out) if args.out else Path(f"curves.{fmt}")
    with Store(args.store, readonly=True) as store:  # a reader: the store is never written
        _common.writable_file(out, "--out", mkdir=args.mkdir)
        table = long_table(store, norm=None if args.norm == "all" else args.norm,
                           status=None if args.status == "any" else args.status)
        n_runs = len(store.runs(status=None if args.status == "any" else args.status))
    write_table(table, out, fmt=fmt)
    kinds = sorted(table["norm_kind"].unique().tolist())
    if table.empty:
        _common.log(args, f"warning: no records of {args.status} runs in '{args.store}'")
    return _common.Result(
        data={"out": str(out), "format": fmt, "rows": len(table), "runs": n_runs,
              "norm_kinds": kinds},
        text=f"wrote {len(table)} rows ({n_runs} runs, norm kinds: {', '.join(kinds) or 'none'})"
             f" to {out}")
