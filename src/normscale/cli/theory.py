"""The N -> infinity replica theory of the fixed-norm perceptron (docs/science.md 1.4, 1.5).

Examples::

    normscale theory --alpha 5 --lam 2.5              # R and eps at one point
    normscale theory --alpha 5 --lam 0.01:300:50      # the learning curve
    normscale theory --alpha 5 --opt                  # lambda_opt(alpha) and references
    normscale theory --laws --alpha 3.1:100:12 --lam 0.01:300:60 --out results/theory \\
        [--sim results/perceptron/runs.csv]
"""

from __future__ import annotations

import argparse
import json

from normscale.cli import _common
from normscale.errors import NormscaleError

#: the loss families of ``normscale.theory.losses.FAMILIES``, named here so that building the
#: parser (``normscale --help``) does not import scipy (a test ties the two together)
LOSS_FAMILIES = ("hinge", "linear", "logistic", "square")

HELP = "replica theory of the fixed-norm perceptron: eps(alpha, lambda), lambda_opt, laws"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alpha", type=_common.grid_type("--alpha"), required=True,
                        help="P/N: a value, a list a,b,c or lo:hi:n (log-spaced)")
    parser.add_argument("--lam", type=_common.grid_type("--lam"), default=None,
                        help="norm lambda = |w|/sqrt(N): a value, list or lo:hi:n")
    parser.add_argument("--loss", choices=LOSS_FAMILIES, default="logistic",
                        help="loss family of a student of norm lambda (default: logistic)")
    parser.add_argument("--opt", action="store_true",
                        help="lambda_opt(alpha) by scalar search, with the Bayes, Hebb and "
                             "maximal-stability errors")
    parser.add_argument("--laws", action="store_true",
                        help="the paper's perceptron analysis (gamma1, gamma2, collapse, figures)")
    parser.add_argument("--out", default=None, help="output folder for --laws")
    parser.add_argument("--sim", default=None,
                        help="perceptron-lab CSV (alpha,lam,eps_hat,...) drawn on figure (a)")


def run(args: argparse.Namespace) -> _common.Result:
    from normscale.theory.curves import ALPHA_MAX, ALPHA_MIN, LAM_MAX

    if args.alpha.min() < ALPHA_MIN or args.alpha.max() > ALPHA_MAX:
        bad = args.alpha.min() if args.alpha.min() < ALPHA_MIN else args.alpha.max()
        raise NormscaleError(f"--alpha {bad:g} is outside [{ALPHA_MIN:g}, {ALPHA_MAX:g}], the "
                             "range the solver resolves")
    if args.lam is not None and args.lam.max() > LAM_MAX:
        raise NormscaleError(f"--lam {args.lam.max():g} is beyond {LAM_MAX:g}, the largest "
                             "lambda the solver resolves (eps(lambda) is flat to 1e-4 there)")
    if args.laws:
        return _run_laws(args)
    if args.opt:
        return _run_opt(args)
    if args.lam is None:
        raise NormscaleError("give --lam (or --opt, or --laws)")
    return _run_points(args)


def _run_points(args) -> _common.Result:
    from normscale.theory.curves import learning_curve

    points = []
    with _common.progress(args, len(args.alpha), "theory") as bar:
        for a in args.alpha:
            points.extend(learning_curve(alpha=float(a), lams=args.lam, loss=args.loss).points)
            bar.update()
    rows = [_point_dict(p) for p in points]
    lines = [f"{'alpha':>8} {'lambda':>10} {'R':>12} {'eps':>10} {'eps_hat':>8} "
             f"{'train_err':>9} {'converged':>9}"]
    lines += [f"{p.alpha:8.4g} {p.lam:10.4g} {p.R:12.9f} {p.eps:10.6f} {p.eps_hat:8.4f} "
              f"{p.train_error:9.4f} {'yes' if p.converged else 'NO':>9}" for p in points]
    bad = [p for p in points if not p.converged]
    for p in bad:
        _common.log(args, f"warning: no convergence at alpha={p.alpha:g}, lambda={p.lam:g} "
                          f"(residual {p.residual:.2g}): the numbers of that row are not valid")
    data = rows[0] if len(rows) == 1 else rows
    return _common.Result(data, "\n".join(lines), exit_code=1 if bad else 0)


def _point_dict(p) -> dict:
    d = _common.to_jsonable(p)
    d["x"] = p.x if p.x != float("inf") else None
    return d


def _run_opt(args) -> _common.Result:
    from normscale.theory.closed_forms import bayes, hebb_error, max_stability
    from normscale.theory.curves import lambda_opt

    rows = []
    for a in args.alpha:
        o = lambda_opt(alpha=float(a), loss=args.loss)
        rows.append({"alpha": o.alpha, "lam_opt": o.lam_opt, "eps_opt": o.eps_opt,
                     "eps_hat_opt": o.eps_hat_opt, "eps_hebb": hebb_error(alpha=float(a)),
                     "eps_bayes": bayes(alpha=float(a)).eps,
                     "eps_max_stability": max_stability(alpha=float(a)).eps,
                     "converged": o.converged})
    lines = [f"{'alpha':>8} {'lam_opt':>10} {'eps_opt':>10} {'eps_hat_opt':>11} {'Bayes':>10} "
             f"{'Hebb':>10} {'max-stab':>10}"]
    lines += [f"{r['alpha']:8.4g} {r['lam_opt']:10.5g} {r['eps_opt']:10.6f} "
              f"{r['eps_hat_opt']:11.5f} {r['eps_bayes']:10.6f} {r['eps_hebb']:10.6f} "
              f"{r['eps_max_stability']:10.6f}" for r in rows]
    return _common.Result(rows[0] if len(rows) == 1 else rows, "\n".join(lines))


def _run_laws(args) -> _common.Result:
    import pandas as pd

    from normscale.theory.analysis import perceptron_laws
    from normscale.theory.figures import plot_laws

    if args.out is None:
        raise NormscaleError("--laws needs --out FOLDER")
    if args.lam is None:
        raise NormscaleError("--laws needs --lam lo:hi:n")
    if len(args.alpha) < 3:
        raise NormscaleError(f"--laws needs 3 alphas or more; got {len(args.alpha)}")
    sim = None
    if args.sim is not None:
        try:
            sim = pd.read_csv(args.sim)
        except (OSError, ValueError) as exc:
            raise NormscaleError(f"cannot read the simulation CSV '{args.sim}': {exc}") from None
        missing = {"alpha", "lam", "eps_hat"} - set(sim.columns)
        if missing:
            raise NormscaleError(f"the simulation CSV '{args.sim}' lacks the columns "
                                 f"{sorted(missing)}")
    out = _common.output_dir(args.out, mkdir=args.mkdir)
    _common.log(args, f"theory: {len(args.alpha)} curves of {len(args.lam)} points")
    laws = perceptron_laws(alphas=args.alpha, lams=args.lam, loss=args.loss)
    summary = laws.summary()
    (out / "theory_laws.json").write_text(json.dumps(_common.to_jsonable(summary), indent=1))
    pd.DataFrame([_point_dict(p) for c in laws.curves for p in c.points]).to_csv(
        out / "theory_curves.csv", index=False)
    files = plot_laws(laws, out, sim=sim)
    summary["files"] = [str(out / "theory_laws.json"), str(out / "theory_curves.csv"),
                        *map(str, files)]
    w = laws.window
    text = "\n".join([
        f"gamma1     = {laws.gamma1:.4f} +- {w.gamma1_err:.4f}  (window {w.lo:.3g}..{w.hi:.3g})",
        f"gamma2     = {laws.gamma2:.4f} +- {laws.lambda_law.exponent_err:.4f}  "
        f"(lambda_opt = {laws.lambda_law.prefactor:.3g} alpha^gamma2)",
        f"gamma_pred = {laws.gamma_pred:.4f}   gamma_meas = {laws.gamma_meas:.4f} "
        f"+- {laws.eps_law.exponent_err:.4f}",
        f"collapse rms spread of ln(eps/eps_opt) = {laws.collapse.rms_spread:.4f}",
        f"wrote {len(summary['files'])} files to {out}",
    ])
    return _common.Result(summary, text)
