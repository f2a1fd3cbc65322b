"""Every figure per group, the table, and an index.html (configs, environment) that opens
from the file system, for the runs of a store."""

from __future__ import annotations

import argparse

from normscale.cli._common import Result, output_dir
from normscale.cli.table import add_store_fit_arguments, fit_from_args

HELP = "figures, table and index.html for the runs of a store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_store_fit_arguments(p)
    p.add_argument("--out", default="results/report", help="output folder")
    p.add_argument("--title", default="normscale report")


def run(args: argparse.Namespace) -> Result:
    from normscale.report import write_html_report

    store, fits, failures = fit_from_args(args)
    with store:
        out = output_dir(args.out, mkdir=args.mkdir)
        page = write_html_report(store, fits, failures, out, title=args.title)
    return Result({"index": str(page), "groups": len(fits), "failed_groups": len(failures)},
                  "" if args.quiet else f"wrote {page}")
