"""Fit a classic scaling law (power, joint, broken) to a table, with its uncertainty.

Input: a CSV or Parquet table with one row per run. Columns are named by
role: --data (the data size: P, D, tokens; B and beta of the joint form
belong to it) and --model (the model size N; A and alpha). The older --x
P,N (data size first) still works, and an order whose names say the
opposite (--x N,D) is refused. The form is fitted on log y with a Huber
loss (--delta, default 1e-3) by variable projection (the exponents searched
on a grid ranked by the linear fit of the coefficients, the best few
refined; --method grid: the engine from a full grid of starts in all
parameters, the check); the result says how many starts reached the best
objective and warns when one only did or when it did not converge. Errors come from a bootstrap
over configurations (rows with the same inputs together). A joint fit gives
the compute-optimal allocation (C = 6 N P, or --cost); --holdout K checks
the extrapolation to the K largest configurations. Hoffmann et al.'s
Chinchilla data as replicated by Epoch AI:

  normscale scaling chinchilla_epoch.csv --form joint --data D --model N --y loss \
      --exclude-top 5

A run store (runs.db, from `normscale sweep`) is read as one row per run
with its best test error eps_opt, P, its parameter count N and width:

  normscale scaling runs.db --form joint --data P --model N --y eps_opt
"""

from __future__ import annotations

import argparse

from normscale.cli import _common

HELP = "fit power, joint (N, P) or broken power laws with bootstrap, frontier and holdout"


def _columns(text: str) -> tuple[str, ...]:
    cols = tuple(c.strip() for c in text.split(",") if c.strip())
    if not 1 <= len(cols) <= 2:
        raise argparse.ArgumentTypeError(f"--x must be 'P' or 'P,N'; got {text!r}")
    if len(set(cols)) != len(cols):
        raise argparse.ArgumentTypeError(f"--x names the column '{cols[0]}' twice; got {text!r}")
    return cols


def _level(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"--level must be a float in (0, 1); got {text!r}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="CSV or Parquet table, one row per run, or a run "
                                      "store (.db: columns eps_opt, P, N, width, seed)")
    parser.add_argument("--form", choices=("power", "joint", "broken"), default="power",
                        help="power: y = a P^-alpha + c; joint: y = E + A N^-alpha + B P^-beta; "
                             "broken: a smoothly broken power law (Caballero et al. 2022)")
    parser.add_argument("--data", default=None, metavar="COL",
                        help="the data-size column (P, D, tokens): B and beta of joint; the "
                             "input of power and broken")
    parser.add_argument("--model", default=None, metavar="COL",
                        help="the model-size column (N) of joint: A and alpha")
    parser.add_argument("--x", type=_columns, default=None,
                        help="input column(s) in the form's order, instead of --data/--model: "
                             "'P', or 'P,N' for joint (data size first; an order whose names "
                             "say the opposite is refused)")
    parser.add_argument("--y", default="loss", help="output column (default loss)")
    parser.add_argument("--cost", default=None,
                        help="cost column (FLOP, seconds) for the joint frontier; "
                             "default C = 6 N P")
    parser.add_argument("--holdout", type=_common.nonnegative_int("--holdout"), default=0,
                        metavar="K", help="fit without the K largest configurations and "
                                          "report the prediction error on them")
    parser.add_argument("--exclude-top", type=_common.nonnegative_int("--exclude-top"),
                        default=0, metavar="K", help="leave out the K rows of highest y")
    parser.add_argument("--loss", choices=("huber", "squared"), default="huber",
                        help="loss on log y (default huber)")
    parser.add_argument("--delta", type=_common.positive_float("--delta"), default=1e-3,
                        help="Huber threshold on log y (default 1e-3)")
    parser.add_argument("--method", choices=("projection", "grid"), default=None,
                        help="projection (default): the exponents searched on a grid ranked "
                             "by the linear fit, the best 4 refined; grid: the engine from "
                             "every start of --grid (the check: the same objective)")
    parser.add_argument("--grid", choices=("default", "coarse", "epoch"), default=None,
                        help="start grid of --method grid (implies it): the form's (scaled to "
                             "the data; 4,500 starts for joint), 'coarse' (every 10th of "
                             "those), or, for joint, Epoch AI's 4,500 starts")
    parser.add_argument("--n-boot", type=_common.positive_int("--n-boot"), default=1000,
                        help="bootstrap replicates (default 1000)")
    parser.add_argument("--seed", type=_common.nonnegative_int("--seed"), default=0,
                        help="seed of the bootstrap")
    parser.add_argument("--level", type=_level, default=0.95,
                        help="level of the intervals (default 0.95)")
    parser.add_argument("--interval", choices=("bca", "percentile"), default="bca",
                        help="bootstrap intervals: bias-corrected and accelerated (default) "
                             "or plain percentiles")
    parser.add_argument("--out", default=None, help="folder for figures, JSON and starts.csv")


def analysis_text(a) -> str:
    fit = a.fit
    b = fit.bootstrap
    roles = (f"data size {fit.x_names[0]}: B, beta; model size {fit.x_names[1]}: A, alpha"
             if fit.form == "joint" else f"input {fit.x_names[0]}")
    search = (f"variable projection: {fit.n_ranked} exponent points ranked by the linear fit, "
              f"the best {fit.n_starts} refined" if fit.method == "projection"
              else f"{fit.n_starts} starts")
    lines = [f"{fit.form}: {fit.named_equation}   ({roles}; "
             f"{fit.n_points} points, {fit.n_configs} configurations"
             + (f", {a.n_excluded} highest left out" if a.n_excluded else "") + ")",
             f"loss {fit.loss}" + (f" (delta {fit.delta:g})" if fit.delta else "")
             + f" on log {fit.y_name}: objective {fit.objective:.6g}; {search}: "
             f"{fit.n_at_best} reached it, {fit.n_converged} converged",
             "", f"| parameter | value | s.e. | {round(100 * b.level)}% interval |",
             "|---|---|---|---|"]
    for k, v in fit.params.items():
        lo, hi = b.intervals[k]
        lines.append(f"| {k} | {v:.6g} | {b.se[k]:.3g} | [{lo:.4g}, {hi:.4g}] |")
    lines.append(f"\nbootstrap: {b.n_ok} of {b.n_boot} replicates converged "
                 f"(resampling {b.n_configs} configurations)")
    if a.allocation is not None:
        al = a.allocation
        P, N = fit.x_names
        cost = (f"C = 6 {N} {P}" if not al.cost.fitted else
                f"C = {al.cost.k:.3g} {N}^{al.cost.u:.3f} {P}^{al.cost.v:.3f} (fitted, "
                f"rms {al.cost.rms:.3g} in log)")
        lines.append(f"compute-optimal ({cost}): {fit.x_names[1]}_opt ~ C^{al.a:.4f} "
                     f"[{al.a_ci[0]:.4f}, {al.a_ci[1]:.4f}], {fit.x_names[0]}_opt ~ "
                     f"C^{al.b:.4f} [{al.b_ci[0]:.4f}, {al.b_ci[1]:.4f}]")
    elif a.allocation_note:
        lines.append(f"no compute-optimal allocation: {a.allocation_note}")
    if a.holdout is not None:
        h = a.holdout
        lines.append(f"held out the {h.k} largest configurations ({len(h.y)} rows): RMSLE "
                     f"{h.rmsle:.4g} (the fit's own rms log residual: {h.residual_rms:.4g}), "
                     f"{int(h.inside.sum())} of {len(h.y)} inside the band of the law")
    for w in fit.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> _common.Result:
    from normscale.errors import ParameterError
    from normscale.scaling import analyse, epoch_grid, load_table, write_figures

    if args.grid == "epoch" and args.form != "joint":
        raise ParameterError(f"--grid epoch is a grid for the joint form; got --form {args.form}")
    if args.grid is not None and args.method == "projection":
        raise ParameterError(f"--grid {args.grid} is a start grid of --method grid; "
                             "--method projection searches its own exponent grid")
    method = args.method or ("grid" if args.grid is not None else "projection")
    if args.out:
        _common.output_dir(args.out, mkdir=args.mkdir)
    table = load_table(args.table)
    starts = None
    if args.grid == "epoch":
        starts = epoch_grid()
    elif args.grid == "coarse":
        starts = 10
    data, model = args.data, args.model
    if args.x is None and data is None and model is None:
        data = "P"                                   # the default input column
        model = "N" if args.form == "joint" else None
    a = analyse(table, form=args.form, x=args.x, data=data, model=model, y=args.y,
                cost=args.cost, holdout_k=args.holdout, exclude_top=args.exclude_top,
                delta=None if args.loss == "squared" else args.delta, n_boot=args.n_boot,
                seed=args.seed, level=args.level, interval=args.interval,
                starts=starts, method=method)
    if args.out:
        paths = write_figures(a, args.out)
        _common.log(args, f"wrote {len(paths)} files in {args.out}")
    return _common.Result(data=a.to_dict(), text=analysis_text(a))
