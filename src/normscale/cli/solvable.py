"""Solvable models of scaling laws: linear random features on power-law data (docs/solvable.md).

Four actions:

  normscale solvable study --preset demo --out results/solvable
      the whole study (under 2 minutes): SGD theory against Monte Carlo, the
      classic laws L(t), L(P), L(N) fitted against their exponents, the
      dynamical laws with their verdict; tables, figures and, last, the table
      of predicted against fitted exponents
  normscale solvable simulate --a 1.5 --b 2 --v 1000 --noise 1 --P 100,400,1600 \\
      --times 0.1:1e7:60 --seeds 4 --out curves.csv
      gradient-flow curves in the long format of `normscale fit` / `normscale scaling`
  normscale solvable theory --alpha 1 --beta 0.7 --v 400 --d 40 --gamma 0.1 --steps 2000 --mc 400
      the exact expected risk of one-pass SGD (Volterra), optionally beside Monte Carlo
  normscale solvable exponents --a 2 --b 1.5
      the asymptotic exponents, compute-optimal allocation and norm-law predictions

The model takes --a, --b (spectrum k^-b, target power k^-a) or --alpha, --beta
(Paquette et al.: a = 2 alpha + 2 beta, b = 2 alpha), not both.
"""

from __future__ import annotations

import argparse
import math

from normscale.cli import _common
from normscale.errors import NormscaleError

HELP = "solvable random-feature models: SGD theory vs simulation, classic and norm laws"

ACTIONS = ("study", "simulate", "theory", "exponents")


def _real(flag: str):
    def convert(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{flag} must be a finite number; got {text!r}")
        return v
    convert.__name__ = flag
    return convert


#: the study presets (:data:`normscale.solvable.study.PRESETS`; a test ties the two): named here
#: so that building the parser does not import the models
PRESET_NAMES = ("demo", "smoke")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="what to do (see above)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="demo",
                        help="study: sizes ('demo': under 2 minutes; 'smoke': seconds, every "
                             "step at toy sizes)")
    parser.add_argument("--a", type=_real("--a"), default=None, help="target power k^-a (a > 1)")
    parser.add_argument("--b", type=_real("--b"), default=None, help="spectrum k^-b (b > 0)")
    parser.add_argument("--alpha", type=_real("--alpha"), default=None,
                        help="data exponent of Paquette et al. (b = 2 alpha)")
    parser.add_argument("--beta", type=_real("--beta"), default=None,
                        help="target exponent of Paquette et al. (a = 2 alpha + 2 beta)")
    parser.add_argument("--v", type=_common.positive_int("--v", maximum=200_000), default=1000,
                        help="input dimension (modes of the data; default 1000)")
    parser.add_argument("--d", type=_common.positive_int("--d", maximum=200_000), default=None,
                        help="random features N (default: identity features, N = v)")
    parser.add_argument("--tail", action="store_true",
                        help="simulate: identity features see the first v modes of an infinite "
                             "input (the rest is target power the student cannot reach)")
    parser.add_argument("--noise", type=_common.nonnegative_float("--noise"), default=0.0,
                        help="label-noise standard deviation (default 0)")
    parser.add_argument("--P", type=_common.grid_type("--P", integer=True), default=None,
                        help="simulate: training-set sizes, e.g. 100,400,1600 or 100:3200:6")
    parser.add_argument("--times", type=_common.grid_type("--times"), default=None,
                        help="simulate: gradient-flow times lo:hi:n (default 0.1:1e6:40)")
    parser.add_argument("--seeds", type=_common.positive_int("--seeds", maximum=10_000),
                        default=4, help="simulate: draws of data and features (default 4)")
    parser.add_argument("--gamma", type=_common.positive_float("--gamma"), default=None,
                        help="theory: SGD step (default 0.15 / largest eigenvalue of K)")
    parser.add_argument("--batch", type=_common.positive_int("--batch"), default=1,
                        help="theory: batch size (default 1)")
    parser.add_argument("--steps", type=_common.positive_int("--steps", maximum=10_000_000),
                        default=2000, help="theory: SGD steps (default 2000)")
    parser.add_argument("--mc", type=_common.nonnegative_int("--mc"), default=0,
                        help="theory: Monte-Carlo runs beside the theory (0: none)")
    parser.add_argument("--seed", type=_common.nonnegative_int("--seed"), default=0,
                        help="theory: seed of the features and of the Monte Carlo")
    parser.add_argument("--threads", type=_common.positive_int("--threads", maximum=256),
                        default=1, help="BLAS threads (default 1: faster on a shared machine)")
    parser.add_argument("--out", default=None,
                        help="study: output folder; simulate, theory: CSV file")


def _model_args(args: argparse.Namespace, *, need: bool = True):
    """(a, b) from --a/--b or --alpha/--beta, checked; None when neither was given."""
    ab = args.a is not None or args.b is not None
    al = args.alpha is not None or args.beta is not None
    if ab and al:
        raise NormscaleError("give --a, --b or --alpha, --beta, not both conventions")
    if ab:
        if args.a is None or args.b is None:
            raise NormscaleError("--a and --b go together")
        if not args.a > 1:
            raise NormscaleError(f"--a must be > 1 (a target of finite power); got {args.a:g}")
        if not args.b > 0:
            raise NormscaleError(f"--b must be > 0; got {args.b:g}")
        return args.a, args.b
    if al:
        if args.alpha is None or args.beta is None:
            raise NormscaleError("--alpha and --beta go together")
        if not args.alpha > 0:
            raise NormscaleError(f"--alpha must be > 0; got {args.alpha:g}")
        if not 2 * args.alpha + 2 * args.beta > 1:
            raise NormscaleError(f"--alpha, --beta need 2 alpha + 2 beta > 1; got "
                                 f"{2 * args.alpha + 2 * args.beta:g}")
        return 2 * args.alpha + 2 * args.beta, 2 * args.alpha
    if need:
        raise NormscaleError(f"{args.action} needs the model: --a, --b or --alpha, --beta")
    return None


def _table_text(df) -> str:
    return df.to_string(index=False, float_format=lambda x: f"{x:.4g}")


def _study(args: argparse.Namespace) -> _common.Result:
    from normscale.solvable.study import (
        dynamical_markdown,
        exponents_markdown,
        run_study,
        sgd_exponents_markdown,
        sgd_markdown,
        write_study,
    )

    out = _common.output_dir(args.out, mkdir=args.mkdir) if args.out else None
    st = run_study(args.preset, threads=args.threads, log=lambda s: _common.log(args, s))
    if out is not None:
        paths = write_study(st, out)
        _common.log(args, f"wrote {len(paths)} files in {out}")
    text = ("one-pass SGD, Volterra theory against Monte Carlo:\n\n" + sgd_markdown(st)
            + "\none-pass SGD at d -> infinity, local slopes of the theory:\n\n"
            + sgd_exponents_markdown(st)
            + "\ndynamical laws (gradient flow with label noise):\n\n" + dynamical_markdown(st)
            + "\npredicted against fitted exponents:\n\n" + exponents_markdown(st))
    data = {"preset": st.preset, "seconds": st.seconds,
            "exponents": st.exponents().to_dict(orient="records"),
            "sgd": [{"alpha": c.alpha, "beta": c.beta, "phase": c.phase, "max_z": c.max_z,
                     "frac_within_2se": c.frac_2se} for c in st.sgd],
            "sgd_exponents": [{"alpha": e.alpha, "beta": e.beta, "phase": e.phase,
                               "predicted": e.predicted, "slopes": list(e.slopes)}
                              for e in st.sgd_exponents],
            "dynamical": [{"a": d.a, "b": d.b, "verdict": d.fit.verdict,
                           "verdict_line": d.fit.verdict_line(),
                           "gamma1_window": d.gamma1_window} for d in st.dynamical]}
    return _common.Result(data=data, text=text.rstrip())


def _simulate(args: argparse.Namespace) -> _common.Result:
    import numpy as np
    import pandas as pd

    from normscale.solvable.experiment import COLUMNS
    from normscale.solvable.flow import gradient_flow
    from normscale.solvable.model import PowerLawModel, draw_features

    a, b = _model_args(args)
    if args.P is None:
        raise NormscaleError("simulate needs --P (training-set sizes)")
    if args.tail and args.d is not None:
        raise NormscaleError("--tail is for identity features: leave out --d")
    path = _common.writable_file(args.out, "--out", mkdir=args.mkdir) if args.out else None
    times = args.times if args.times is not None else np.geomspace(0.1, 1e6, 40)
    model = PowerLawModel.from_ab(a=a, b=b, v=args.v, d=args.d, noise=args.noise, tail=args.tail)
    from threadpoolctl import threadpool_limits

    frames = []
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for s in range(args.seeds):
            feats = draw_features(model, seed=s)
            for P in args.P:
                c = gradient_flow(feats, P=int(P), times=times, seed=s, index=int(P))
                frames.append(pd.DataFrame({
                    "law": "dynamical", "a": a, "b": b, "alpha": model.alpha, "beta": model.beta,
                    "noise": args.noise, "v": args.v, "P": int(P),
                    "N": float(model.n_features), "step": c.times, "norm": c.norm,
                    "test_error": c.risk, "seed": s}))
    table = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
    if path is not None:
        table.to_csv(path, index=False)
        _common.log(args, f"wrote {len(table)} rows to {path}")
    summary = table.groupby("P").apply(
        lambda g: g.groupby("step")[["norm", "test_error"]].mean().sort_values("test_error")
        .iloc[0], include_groups=False).reset_index()
    summary.columns = ["P", "norm_at_min", "min_test_error"]
    text = "minimum of the seed-averaged curve per P:\n" + _table_text(summary)
    return _common.Result(data={"rows": len(table), "out": str(path) if path else None,
                                "minima": summary.to_dict(orient="records")}, text=text)


def _theory(args: argparse.Namespace) -> _common.Result:
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from normscale.solvable.model import PowerLawModel, draw_features
    from normscale.solvable.sgd import log_steps, sgd_monte_carlo
    from normscale.solvable.volterra import sgd_theory

    a, b = _model_args(args)
    if args.mc == 1:
        raise NormscaleError("--mc must be 0 (no Monte Carlo) or >= 2 (a standard error)")
    path = _common.writable_file(args.out, "--out", mkdir=args.mkdir) if args.out else None
    model = PowerLawModel.from_ab(a=a, b=b, v=args.v, d=args.d, noise=args.noise)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        feats = draw_features(model, seed=args.seed)
        gamma = args.gamma if args.gamma is not None else 0.15 / float(feats.lam[0])
        steps = log_steps(args.steps)
        th = sgd_theory(feats, gamma=gamma, batch=args.batch, steps=args.steps, log_times=steps)
        table = pd.DataFrame({"step": th.steps, "theory": th.mean})
        if args.mc:
            mc = sgd_monte_carlo(feats, gamma=gamma, batch=args.batch, steps=args.steps,
                                 log_times=steps, n_runs=args.mc, seed=args.seed)
            table["mc_mean"], table["mc_se"] = mc.mean, mc.se
            with np.errstate(divide="ignore", invalid="ignore"):
                exact = mc.se <= 1e-9 * np.abs(th.mean)    # step 0: every run at the null risk
                table["z"] = np.where(exact, 0.0, (mc.mean - th.mean) / mc.se)
    if path is not None:
        table.to_csv(path, index=False)
        _common.log(args, f"wrote {len(table)} rows to {path}")
    head = (f"one-pass SGD, a={a:g} b={b:g} (alpha={b / 2:g} beta={(a - b) / 2:g}), "
            f"v={args.v}, N={model.n_features}, gamma={gamma:.4g}, batch {args.batch}, "
            f"R*={feats.risk_star:.4g}")
    return _common.Result(data={"gamma": gamma, "risk_star": feats.risk_star,
                                "curve": table.to_dict(orient="records")},
                          text=head + "\n" + _table_text(table))


def _exponents(args: argparse.Namespace) -> _common.Result:
    from normscale.solvable.exponents import (
        compute_optimal,
        dynamical_exponents,
        model_exponent,
        sgd_phase,
        sgd_time_exponent,
        size_branch,
        size_exponent,
        time_exponent,
    )

    a, b = _model_args(args)
    alpha, beta = b / 2, (a - b) / 2
    co = compute_optimal(a=a, b=b)
    dyn = dynamical_exponents(a=a, b=b)
    sgd = sgd_time_exponent(alpha=alpha, beta=beta) if alpha > 0.5 else float("nan")
    data = {"a": a, "b": b, "alpha": alpha, "beta": beta,
            "time": time_exponent(a=a, b=b), "data": size_exponent(a=a, b=b),
            "data_branch": size_branch(a=a, b=b), "model": model_exponent(a=a, b=b),
            "compute_optimal": {"N": co.n_exp, "t": co.t_exp, "loss": co.loss_exp},
            "sgd_phase": sgd_phase(alpha=alpha, beta=beta), "sgd_time": sgd,
            "gamma1": dyn.gamma1, "gamma2": dyn.gamma2, "gamma": dyn.gamma,
            "norm_laws_hold": dyn.holds, "reason": dyn.reason}
    lines = [f"a={a:g} b={b:g} (alpha={alpha:g} beta={beta:g})",
             f"L(t) ~ t^-{data['time']:.4g}   (gradient flow, P, N -> inf)",
             f"L(P) ~ P^-{data['data']:.4g}   (min(a-1, 2b), branch {data['data_branch']})",
             f"L(N) ~ N^-{data['model']:.4g}   (min(a-1, b): the PLRF feature floor)",
             f"compute-optimal (C = N t): N ~ C^{co.n_exp:.4g}, t ~ C^{co.t_exp:.4g}, "
             f"L ~ C^-{co.loss_exp:.4g}",
             f"one-pass SGD: phase {data['sgd_phase']}"
             + (f", L(t) ~ t^-{sgd:.4g}" if math.isfinite(sgd) else " (alpha <= 1/2: not covered)"),
             ("norm laws (gradient flow, label noise): gamma1 = "
              f"{dyn.gamma1:.4g}, gamma2 = {dyn.gamma2:.4g}, gamma = {dyn.gamma:.4g}")
             if dyn.holds else f"norm laws do not hold: {dyn.reason}; gamma = {dyn.gamma:.4g}"]
    return _common.Result(data=data, text="\n".join(lines))


def run(args: argparse.Namespace) -> _common.Result:
    return {"study": _study, "simulate": _simulate, "theory": _theory,
            "exponents": _exponents}[args.action](args)
