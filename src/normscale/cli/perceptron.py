"""The perceptron lab (docs/science.md 1.1-1.5): fixed-norm curves eps(lambda) and free-norm
gradient descent on teacher-student data, with lambda = |w|/sqrt(N) as the norm.

Writes results.csv (long format: alpha, seed, lam, eps, R, train_loss,
train_error, mode, eps_hat, eps0, converged, grad_norm, n_iter, step, n,
inputs), config.json and the figures (a) eps_hat vs lambda and (d) GD over
the fixed-norm curve. ``--laws`` also fits the dynamical laws on the
fixed-norm curves (eps_hat, P = alpha) and writes laws.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from normscale import __version__
from normscale.cli import _common
from normscale.errors import NormscaleError

if TYPE_CHECKING:  # pandas is imported where a command needs it: `--help` stays fast
    import pandas as pd

HELP = "perceptron lab: fixed-norm curves eps(lambda) and GD trajectories"
#: caps on the counts a typo can blow up (each far above any experiment of the paper)
MAX_SEEDS, MAX_ITER, MAX_STEPS, MAX_RECORDS = 10_000, 100_000, 10**8, 100_000


def _modes(text: str) -> tuple[str, ...]:
    modes = ("fixed", "gd") if text.strip() == "both" else tuple(
        m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in ("fixed", "gd")]
    if not modes or bad:
        raise argparse.ArgumentTypeError(
            f"--mode must be fixed, gd, fixed,gd or both; got {text!r}")
    return modes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = _common.grid_type
    # string defaults: argparse passes them through ``type`` only when they are used, so
    # building the parser (``--help``) parses no grid and imports no numpy
    parser.add_argument("--alpha", type=g("--alpha"), default="5",
                        help="P/N values: a value, a list a,b,c or lo:hi:n log-spaced (default 5)")
    parser.add_argument("--lam", type=g("--lam"), default="0.01:300:40",
                        help="fixed-norm lambda grid (default 0.01:300:40)")
    parser.add_argument("--n", type=_common.positive_int("--n"), default=1000,
                        help="input dimension N (default 1000)")
    parser.add_argument("--seeds",
                        type=_common.positive_int("--seeds", maximum=MAX_SEEDS),
                        default=1,
                        help="number of seeds, 0..seeds-1 (default 1)")
    parser.add_argument("--mode", type=_modes, default=("fixed",),
                        help="fixed, gd, fixed,gd or both (default fixed)")
    parser.add_argument("--inputs", choices=("binary", "gaussian"), default="binary")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="float32 halves memory but resolves gtol only down to about 1e-4 "
                             "and fails at large lambda, where the gradient underflows "
                             "(default float64)")
    parser.add_argument("--gtol", type=_common.positive_float("--gtol"), default=1e-8,
                        help="fixed mode: stop when |grad on sphere| <= gtol |grad| (default 1e-8)")
    parser.add_argument("--max-iter",
                        type=_common.positive_int("--max-iter", maximum=MAX_ITER),
                        default=100,
                        help="fixed mode: Newton iterations per lambda (default 100)")
    parser.add_argument("--steps",
                        type=_common.positive_int("--steps", maximum=MAX_STEPS),
                        default=10_000,
                        help="gd mode: gradient steps (default 10000)")
    parser.add_argument("--lr", type=_common.positive_float("--lr"), default=None,
                        help="gd mode: learning rate (default 1/(1+1/sqrt(alpha))^2)")
    parser.add_argument("--init-norm", type=_common.positive_float("--init-norm"), default=1e-3,
                        help="gd mode: lambda at step 0 (default 1e-3)")
    parser.add_argument("--n-record",
                        type=_common.positive_int("--n-record", maximum=MAX_RECORDS),
                        default=60,
                        help="gd mode: about this many log-spaced records (default 60)")
    parser.add_argument("--fixed-csv", default=None,
                        help="a results.csv with fixed-norm rows to draw under the GD rows in (d)")
    parser.add_argument("--laws", action="store_true",
                        help="fit the dynamical laws on the fixed-norm curves; write laws.md")
    parser.add_argument("--out", default=None, help="output folder (CSV, config, figures)")


def _read_fixed_csv(path: str) -> pd.DataFrame:
    import pandas as pd

    _common.input_file(path, "--fixed-csv")
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NormscaleError(f"cannot read --fixed-csv '{path}': {msg}") from None
    if not {"mode", "alpha", "lam", "eps"} <= set(df.columns) or not (df["mode"] == "fixed").any():
        raise NormscaleError(f"--fixed-csv '{path}' holds no fixed-norm rows "
                             "(columns mode, alpha, lam, eps)")
    return df


def _laws_table(df: pd.DataFrame, out) -> str:
    from normscale.laws import fit_laws, write_report

    fixed = df[df["mode"] == "fixed"]
    fits = fit_laws(fixed, error="eps_hat")
    write_report(fits, out / "laws")
    lines = ["| gamma1 | gamma2 | gamma_pred | gamma_meas | verdict |", "|---|---|---|---|---|"]
    for f in fits:
        lines.append(f"| {f.gamma1:.3f} +- {f.gamma1_err:.3f} | {f.gamma2:.3f} +- "
                     f"{f.gamma2_err:.3f} | {f.gamma_pred:.3f} | {f.gamma_meas:.3f} +- "
                     f"{f.gamma_meas_err:.3f} | {f.verdict} |")
    verdicts = "\n".join("verdict: " + f.verdict_line() for f in fits)
    text = "\n".join(lines) + "\n\n" + verdicts + "\n"
    (out / "laws.md").write_text(
        "# Dynamical laws of the fixed-norm perceptron (error: eps_hat, P: alpha)\n\n" + text)
    return text


def run(args: argparse.Namespace) -> _common.Result:
    if "torch" not in sys.modules:  # read once, when torch's OpenMP runtime starts
        # threads that wait passively: with OpenMP's active wait, on a machine shared with
        # other jobs, each small operation of the solver waited for a descheduled thread
        # (30 ms for an exp of 5,000 numbers; the whole solve 5.5x slower)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from normscale.perceptron import PerceptronConfig, run_perceptron
    from normscale.perceptron.experiment import n_blocks
    from normscale.perceptron.plots import plot_eps_hat, plot_gd_over_fixed

    if args.laws and (args.out is None or "fixed" not in args.mode or len(args.alpha) < 3):
        raise NormscaleError("--laws needs --out, --mode fixed and 3 alpha values or more; got "
                             f"out={args.out}, mode={','.join(args.mode)}, "
                             f"{len(args.alpha)} alpha value(s)")
    fixed_extra = _read_fixed_csv(args.fixed_csv) if args.fixed_csv else None
    cfg = PerceptronConfig(
        alphas=tuple(float(a) for a in args.alpha), lams=tuple(float(v) for v in args.lam),
        n=args.n, seeds=tuple(range(args.seeds)), modes=args.mode, inputs=args.inputs,
        device=args.device, dtype=args.dtype, gtol=args.gtol, max_iter=args.max_iter,
        steps=args.steps, lr=args.lr, init_norm=args.init_norm, n_record=args.n_record)
    out = _common.output_dir(args.out, mkdir=args.mkdir) if args.out else None
    with _common.progress(args, n_blocks(cfg), "perceptron") as bar:
        def on_step(msg: str) -> None:
            _common.log(args, msg)
            bar.update()

        df = run_perceptron(cfg, on_step=on_step)
    fixed = df[df["mode"] == "fixed"]
    bad = fixed[~fixed["converged"].astype(bool)]
    if len(bad):
        worst = bad.sort_values("grad_norm").iloc[-1]
        _common.log(args, f"warning: {len(bad)} of {len(fixed)} fixed-norm points did not "
                    f"converge to gtol={args.gtol:g} (worst: alpha={worst.alpha:g}, "
                    f"lam={worst.lam:.3g}, seed={worst.seed}, grad_norm={worst.grad_norm:.2g}); "
                    "see the 'converged' column")
    lines = [f"{len(df)} rows; modes {','.join(cfg.modes)}"]
    if len(fixed):
        for alpha, g in fixed.groupby("alpha"):
            m = g.groupby("lam")["eps"].mean()
            lines.append(f"alpha={alpha:g}: eps(lambda={m.index[0]:.3g})={m.iloc[0]:.4f}, "
                         f"min eps={m.min():.4f} at lambda={m.idxmin():.3g}, "
                         f"eps(lambda={m.index[-1]:.3g})={m.iloc[-1]:.4f}")
    if out is not None:
        df.to_csv(out / "results.csv", index=False)
        config = {k: v for k, v in vars(args).items() if not k.startswith("_")}
        config["normscale_version"] = __version__
        (out / "config.json").write_text(json.dumps(_common.to_jsonable(config), indent=1))
        if len(fixed):
            plot_eps_hat(df, out / "fig_a_eps_hat.png")
        gd = df[df["mode"] == "gd"]
        under = fixed if len(fixed) else fixed_extra
        if len(gd) and under is not None:
            try:
                plot_gd_over_fixed(under, gd, out / "fig_d_gd_vs_fixed.png")
            except ValueError as exc:
                _common.log(args, f"figure (d) skipped: {exc}")
        if args.laws:
            lines.append(_laws_table(df, out))
        lines.append(f"written to {out}")
    return _common.Result(data=df.replace({float("nan"): None}).to_dict(orient="records"),
                          text="\n".join(lines))
