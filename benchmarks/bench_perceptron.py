"""Fixed-norm curve: normscale's Riemannian Newton vs scikit-learn's LogisticRegression (lbfgs).

Both solve the same problems: for each lambda, the sphere minimiser of
sum_mu log(1 + exp(-2 z_mu . u / sqrt N)) with |u| = lambda sqrt N is the
solution of the L2-regularised problem 0.5 |beta|^2 + C sum_mu log(1 +
exp(-z_mu . beta)) with beta = 2 u / sqrt N and C = |beta| / |sum_mu z_mu s_mu|.
scikit-learn gets these C (from a tight normscale run), warm starts along the
grid and tol 1e-8; its accuracy is measured against the tight run (max |R -
R_ref| over the grid), and normscale runs at the loosest gtol that is at least
as accurate (chosen once, before the timed rounds).

Timing: ``--rounds`` paired rounds, each timing scikit-learn's whole grid and
normscale's whole grid back to back (the order alternating between rounds),
so that a change of the machine's load hits both; the ratio of each round and
their median are printed. Both sides get ``--threads`` threads (torch's
intra-op threads, and the BLAS threads of numpy under scikit-learn), and the
OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``, set before torch
loads unless already set): with the default active wait, on a machine shared
with other jobs, every small torch operation waited for a descheduled thread
(30 ms for an exp of 5,000 numbers, against 0.05 ms), which made the same
solve 5.5x slower.

Each time is wall-clock; the CPU seconds of the process (both threads
counted) are printed beside it, since a loaded machine stretches wall
time.

``--ablate`` also times normscale's choices one by one at the chosen gtol,
once each: the start at each lambda (the last solution alone, the parabola
in log lambda through the last three as before, the default: polynomials in
log lambda and in 1/lambda through up to the last four), the passes over z
in float64 instead of float32, CG products in float32 instead of float16,
and CG without its Cholesky preconditioner.
``--write-docs`` puts the table into docs/perceptron.md between its
``--marker`` markers (``bench_perceptron``).

    .venv/bin/python benchmarks/bench_perceptron.py            # N = 1000, alpha = 10, 40 lambdas
    .venv/bin/python benchmarks/bench_perceptron.py --n 2000 --rounds 3 --ablate --write-docs
"""

from __future__ import annotations

import argparse
import os
import sys

_THREADS = "2"
for _i, _a in enumerate(sys.argv):                  # the BLAS threads must be set before numpy
    if _a == "--threads" and _i + 1 < len(sys.argv):
        _THREADS = sys.argv[_i + 1]
    elif _a.startswith("--threads="):
        _THREADS = _a.split("=", 1)[1]
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, _THREADS)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from normscale.perceptron import fixed, fixed_norm_path, make_data, overlap  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "perceptron.md"
GTOLS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)


def _sklearn(x, y, cs, teacher):
    clf = LogisticRegression(fit_intercept=False, tol=1e-8, max_iter=100_000, warm_start=True)
    r = []
    t0, c0 = time.perf_counter(), time.process_time()
    for c in cs:
        clf.set_params(C=c)
        clf.fit(x, y)
        r.append(float(overlap(torch.as_tensor(clf.coef_[0])[None], teacher)[0]))
    return (time.perf_counter() - t0, time.process_time() - c0), np.array(r)


def _ours(data, lams, gtol, passes="auto"):
    t0, c0 = time.perf_counter(), time.process_time()
    path = fixed_norm_path(data, lams=lams, gtol=gtol, passes=passes)
    return (time.perf_counter() - t0, time.process_time() - c0), path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--n-lam", type=int, default=40)
    ap.add_argument("--lam-max", type=float, default=300.0)
    ap.add_argument("--threads", type=int, default=int(_THREADS))
    ap.add_argument("--rounds", type=int, default=3, help="paired timed rounds (median)")
    ap.add_argument("--ablate", action="store_true", help="time normscale's choices one by one")
    ap.add_argument("--write-docs", action="store_true",
                    help="write the table into docs/perceptron.md between its markers")
    ap.add_argument("--marker", default="bench_perceptron",
                    help="the name of the markers (<!-- NAME:start -->, <!-- NAME:end -->)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lams = np.geomspace(0.01, args.lam_max, args.n_lam)
    data = make_data(n=args.n, alpha=args.alpha, seeds=[0])
    z = data.z[0].numpy()

    ref = fixed_norm_path(data, lams=lams, gtol=1e-11)  # the reference, not timed
    cs = []  # C(lambda) from the reference solutions, recomputed along the grid
    d_prev = None
    for lam in lams:
        sol = fixed_norm_path(data, lams=[lam], gtol=1e-11, start=d_prev)
        d_prev = sol.directions
        d = d_prev[0].numpy()
        s = 1 / (1 + np.exp(np.clip(2 * lam * (z @ d), -700, 700)))
        cs.append(2 * lam / np.linalg.norm(z.T @ s))
    # scikit-learn needs labels: any signs y_mu with x_mu = y_mu z_mu give the same loss
    signs = np.where(np.arange(len(z)) % 2 == 0, 1.0, -1.0)
    x, y = z * signs[:, None], signs

    t_sk, r_sk = _sklearn(x, y, cs, data.teacher)            # also its accuracy
    err_sk = np.abs(r_sk - ref.r[0]).max()
    for gtol in GTOLS:                                       # the loosest gtol as accurate
        _, path = _ours(data, lams, gtol)
        err_ours = np.abs(path.r[0] - ref.r[0]).max()
        if err_ours <= err_sk:
            break
    rounds = []
    for i in range(args.rounds):
        if i % 2 == 0:
            t_sk, _ = _sklearn(x, y, cs, data.teacher)
            t_ours, _ = _ours(data, lams, gtol)
        else:
            t_ours, _ = _ours(data, lams, gtol)
            t_sk, _ = _sklearn(x, y, cs, data.teacher)
        rounds.append((t_sk, t_ours, os.getloadavg()[0]))
        print(f"round {i + 1}: scikit-learn {t_sk[0]:.2f} s (cpu {t_sk[1]:.2f}), normscale "
              f"{t_ours[0]:.2f} s (cpu {t_ours[1]:.2f}), {t_sk[0] / t_ours[0]:.2f}x, load "
              f"{rounds[-1][2]:.1f}", flush=True)
    ratios = [a[0] / b[0] for a, b, _ in rounds]
    lines = [f"N = {args.n}, alpha = {args.alpha:g} (P = {data.p}), {args.n_lam} lambdas "
             f"from 0.01 to {args.lam_max:g}, {args.threads} threads, OMP_WAIT_POLICY="
             f"{os.environ['OMP_WAIT_POLICY']}; accuracy max over the grid of |R - R_ref|: "
             f"scikit-learn (tol 1e-8) {err_sk:.1e}, normscale (gtol {gtol:.0e}) "
             f"{err_ours:.1e}", "",
             "| round | scikit-learn (CPU) | normscale (CPU) | ratio | load average |",
             "|---|---|---|---|---|"]
    lines += [f"| {i + 1} | {a[0]:.2f} s ({a[1]:.2f} s) | {b[0]:.2f} s ({b[1]:.2f} s) | "
              f"{a[0] / b[0]:.2f}x | {load:.1f} |" for i, (a, b, load) in enumerate(rounds)]
    cpu_ratio = float(np.median([a[1] / b[1] for a, b, _ in rounds]))
    lines += [f"| **median** | | | **{float(np.median(ratios)):.2f}x** (CPU {cpu_ratio:.2f}x) | |"]
    if args.ablate:
        lines += ["", f"normscale's choices at gtol {gtol:.0e}, one run each:", "",
                  "| variant | time (CPU) | Newton steps | CG iterations |", "|---|---|---|---|"]
        saved = (fixed._PREDICT_ORDER, fixed._PREDICT_VARIABLES, fixed._plain_budget,
                 fixed._HALF)
        log_only = saved[1][:1]
        variants = [  # name, prediction order, its variables, passes, float16 CG, CG budget
            ("start: the last solution", 0, saved[1], "auto", True, None),
            ("start: the parabola in log lambda through the last three (before)", 2,
             log_only, "auto", True, None),
            ("start: log lambda or 1/lambda, up to the last four (default)", saved[0],
             saved[1], "auto", True, None),
            ("default, CG products in float32, not float16", saved[0], saved[1], "auto", False,
             None),
            ("default, passes over z in float64 (before)", saved[0], saved[1], "data", True,
             None),
            ("default, CG without the Cholesky preconditioner", saved[0], saved[1], "auto",
             True, lambda k, n: 10 ** 9)]
        try:
            for name, order, variables, passes, half, budget in variants:
                fixed._PREDICT_ORDER, fixed._PREDICT_VARIABLES = order, variables
                fixed._HALF = half
                fixed._plain_budget = saved[2] if budget is None else budget
                t, path = _ours(data, lams, gtol, passes)
                lines.append(f"| {name} | {t[0]:.2f} s ({t[1]:.2f} s) | "
                             f"{int(path.n_iter.sum())} | {int(path.n_cg.sum())} |")
        finally:
            (fixed._PREDICT_ORDER, fixed._PREDICT_VARIABLES, fixed._plain_budget,
             fixed._HALF) = saved
    lines += ["", f"`benchmarks/bench_perceptron.py`, {time.strftime('%Y-%m-%d')}, "
              f"{os.cpu_count()} cores shared with other jobs (load average "
              f"{os.getloadavg()[0]:.1f} at the end)."]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        doc = DOCS.read_text()
        name = re.escape(args.marker)
        new, n = re.subn(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)",
                         lambda m: m.group(1) + text + "\n" + m.group(2), doc, flags=re.S)
        if n != 1:
            sys.exit(f"bench_perceptron: no {args.marker} markers in {DOCS}")
        DOCS.write_text(new)
        print(f"wrote the table into {DOCS}")


if __name__ == "__main__":
    main()
