"""Fit the dynamical scaling laws (gamma1, gamma2, gamma_pred vs gamma_meas) on learning curves.

Input: a CSV or Parquet table with columns P (or alpha), norm (or lam),
test_error (or eps), optional seed, stop_reason and grouping columns.

Two methods. ``auto`` (default): gamma1 from the local-slope profile, the
optima with their own errors, one test of gamma_pred = gamma_meas on the P
whose curves reached their minimum, and a verdict per group (consistent,
tension, inconclusive or untestable, with its reasons), printed as the
closing line. ``paper``: the paper's own analysis with its hand choices
(--window lo,hi,P_min, --gamma2-p-min, --optima), to reproduce its numbers.
With --out, figures (PNG, PDF) and tables (md, csv, tex, json).
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
    if len(values) not in (2, 3) or not all(v == v and abs(v) != float("inf") for v in values):
        raise argparse.ArgumentTypeError(
            f"--window must be 'lo,hi' or 'lo,hi,P_min' (lo, hi in units of "
            f"lambda/lambda_opt); got {text!r}")
    if not (0 <= values[0] < values[1]) or (len(values) == 3 and not values[2] > 0):
        raise argparse.ArgumentTypeError(
            f"--window needs 0 <= lo < hi (lo = 0 only with --method paper) and P_min > 0; "
            f"got {text!r}")
    return values


def _p_min(flag: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value >= 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{flag} must be a number >= 0; got {text!r}")
        return value
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("curves", help="CSV or Parquet table of curves")
    parser.add_argument("--method", choices=("auto", "paper"), default="auto",
                        help="'auto' (default): automatic analysis with a verdict; 'paper': the "
                             "paper's own analysis with its hand choices (needs --window)")
    parser.add_argument("--group-by", default="",
                        help="comma-separated grouping columns, e.g. model,dataset")
    parser.add_argument("--error", default="test_error",
                        help="error column to fit (default test_error)")
    parser.add_argument("--window", type=_window, default=None,
                        help="the gamma1 window by hand: 'lo,hi' in lambda/lambda_opt, or "
                             "'lo,hi,P_min' to fit only P >= P_min (the paper's CNN/MNIST: "
                             "1e-3,1e-2,24000); with --method paper lo may be 0 (no lower cut)")
    parser.add_argument("--optima", default=None,
                        help="table P,lambda_opt[,n_seeds] of the mean over seeds of each seed's "
                             "own optimum (the paper's released rows come with one); both modes "
                             "use it for lambda_opt (default: from the curves)")
    parser.add_argument("--gamma2-p-min", type=_p_min("--gamma2-p-min"), default=0.0,
                        help="paper mode: fit gamma2 on P >= this (default: all P)")
    parser.add_argument("--gamma-meas-p-min", type=_p_min("--gamma-meas-p-min"), default=0.0,
                        help="paper mode: fit gamma_meas on P >= this (default: all P)")
    parser.add_argument("--n-boot", type=_common.nonnegative_int("--n-boot",
                                                                 maximum=_common.MAX_BOOT),
                        default=0,
                        help="auto mode: bootstrap replicates over seeds, reported beside the "
                             "analytic errors as a check (default 0: off)")
    parser.add_argument("--seed", type=_common.nonnegative_int("--seed"), default=0,
                        help="seed of the bootstrap")
    parser.add_argument("--level", type=float, default=0.95,
                        help="level of the reported intervals (*_ci), in (0, 1); default 0.95")
    parser.add_argument("--strict-minimum", action="store_true",
                        help="refuse curves whose minimum is their last point")
    parser.add_argument("--out", default=None, help="folder for figures and tables")


def _run_paper(args: argparse.Namespace, table, group_by) -> _common.Result:
    from normscale.errors import NormscaleError
    from normscale.laws.paper import PaperChoices, fit_paper, paper_markdown

    if args.window is None:
        raise NormscaleError("--method paper needs --window lo,hi[,P_min] (the paper's "
                             "hand window in lambda/lambda_opt)")
    lo, hi, *rest = args.window
    choices = PaperChoices(lo, hi, rest[0] if rest else 0.0, args.gamma2_p_min,
                           args.gamma_meas_p_min)
    fits = fit_paper(table, choices=choices, optima=args.optima, group_by=group_by,
                     error=args.error)
    text = paper_markdown(fits)
    if args.out:
        import json

        out = _common.output_dir(args.out, mkdir=args.mkdir)
        from normscale import safeio

        safeio.write_text(out / "paper.md", text, "the paper-mode table")
        safeio.write_text(out / "paper.json", json.dumps(
            _common.to_jsonable([f.to_dict() for f in fits]), indent=1), "the paper-mode JSON")
        _common.log(args, f"wrote paper.md and paper.json in {args.out}")
    data = [f.to_dict() for f in fits]
    return _common.Result(data=data if group_by else data[0], text=text.rstrip())


def run(args: argparse.Namespace) -> _common.Result:
    from normscale.errors import NormscaleError
    from normscale.laws import fit_laws, load_curves, write_report
    from normscale.laws.summary import compact, markdown

    group_by = [g.strip() for g in args.group_by.split(",") if g.strip()]
    table = load_curves(args.curves)
    missing = [c for c in group_by if c not in table.columns]
    if missing:
        raise NormscaleError(f"--group-by {missing[0]!r}: no such column in '{args.curves}'; "
                             f"its columns are {', '.join(table.columns)}")
    if args.method == "paper":
        return _run_paper(args, table, group_by)
    if args.window is not None and args.window[0] == 0:
        raise NormscaleError("--window lo = 0 (no lower cut) is for --method paper; "
                             "give lo > 0")
    n_groups = table.groupby(group_by).ngroups if group_by else 1
    total = args.n_boot * n_groups if "seed" in table.columns else 0
    with _common.progress(args, total, "bootstrap") as bar:
        fits = fit_laws(table, group_by=group_by, error=args.error, window=args.window,
                        n_boot=args.n_boot, seed=args.seed, level=args.level,
                        strict_minimum=args.strict_minimum, optima=args.optima,
                        on_step=bar.update)
    for f in fits:
        if f.n_edge_minima:
            label = ", ".join(f"{k}={v}" for k, v in f.group.items()) or "curves"
            _common.log(args, f"{label}: {f.n_edge_minima} seed-averaged curve(s) have their "
                              "minimum at their last point (lambda_opt is a lower bound there)")
    if args.out:
        paths = write_report(fits, _common.output_dir(args.out, mkdir=args.mkdir))
        _common.log(args, f"wrote {len(paths)} files in {args.out}")
    if args.json:  # the closing line goes to stderr beside the JSON
        for f in fits:
            _common.log(args, "verdict: " + f.verdict_line())
    data = [f.to_dict() for f in fits]
    head = compact(fits) + "\n" if len(fits) > 1 else ""
    text = head + markdown(fits).rstrip() + "\n\n" + "\n".join(
        "verdict: " + f.verdict_line() for f in fits)
    return _common.Result(data=data if group_by else data[0], text=text)
