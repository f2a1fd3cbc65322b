"""Fit the dynamical scaling laws (gamma1, gamma2, gamma_pred vs gamma_meas) on learning curves.

Input: a CSV or Parquet table with columns P (or alpha), norm (or lam),
test_error (or eps), optional seed and grouping columns. Output: the
exponents with errors, the automatic gamma1 window, the collapse quality and
a back-test per group; with --out, figures (PNG, PDF) and tables (md, csv,
tex, json).
"""

from __future__ import annotations

import argparse

from normscale.cli import _common

HELP = "fit gamma1, gamma2, gamma_pred and gamma_meas on a table of learning curves"


def _window(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (2, 3):
        raise argparse.ArgumentTypeError(
            f"--window must be 'lo,hi' or 'lo,hi,P_min' (lo, hi in units of "
            f"lambda/lambda_opt); got {text!r}")
    if not (0 < values[0] < values[1]) or (len(values) == 3 and not values[2] > 0):
        raise argparse.ArgumentTypeError(f"--window needs 0 < lo < hi and P_min > 0; got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("curves", help="CSV or Parquet table of curves")
    parser.add_argument("--group-by", default="",
                        help="comma-separated grouping columns, e.g. model,dataset")
    parser.add_argument("--error", default="test_error",
                        help="error column to fit (default test_error)")
    parser.add_argument("--gamma1-method", choices=("common", "rescaled"), default="common",
                        help="units of the automatic gamma1 window: 'common' (absolute norm, "
                             "default) or 'rescaled' (lambda/lambda_opt, the paper's)")
    parser.add_argument("--window", type=_window, default=None,
                        help="fix the gamma1 window by hand: 'lo,hi' in lambda/lambda_opt "
                             "(the paper's units), or 'lo,hi,P_min' to fit only P >= P_min "
                             "(the paper's CNN/MNIST: 1e-3,1e-2,24000)")
    parser.add_argument("--n-boot", type=int, default=200,
                        help="bootstrap replicates over seeds (0: off)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument("--level", type=float, default=0.95,
                        help="level of the reported intervals (*_ci), in (0, 1); default 0.95")
    parser.add_argument("--strict-minimum", action="store_true",
                        help="refuse curves whose minimum is their last point")
    parser.add_argument("--out", default=None, help="folder for figures and tables")


def run(args: argparse.Namespace) -> _common.Result:
    from normscale.laws import fit_laws, load_curves, write_report
    from normscale.laws.tables import markdown

    group_by = [g.strip() for g in args.group_by.split(",") if g.strip()]
    table = load_curves(args.curves)
    n_groups = table.groupby(group_by).ngroups if group_by else 1
    total = args.n_boot * n_groups if "seed" in table.columns else 0
    with _common.progress(args, total, "bootstrap") as bar:
        fits = fit_laws(table, group_by=group_by, error=args.error, window=args.window,
                        n_boot=args.n_boot, seed=args.seed, level=args.level,
                        strict_minimum=args.strict_minimum,
                        gamma1_method=args.gamma1_method, on_step=bar.update)
    for f in fits:
        if f.n_edge_minima:
            label = ", ".join(f"{k}={v}" for k, v in f.group.items()) or "curves"
            _common.log(args, f"{label}: {f.n_edge_minima} seed-averaged curve(s) have their "
                              "minimum at their last point (lambda_opt is a lower bound there)")
    if args.out:
        paths = write_report(fits, args.out)
        _common.log(args, f"wrote {len(paths)} files in {args.out}")
    data = [f.to_dict() for f in fits]
    return _common.Result(data=data if group_by else data[0], text=markdown(fits).rstrip())
