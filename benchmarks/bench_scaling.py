"""Benchmark: the joint fit of Epoch AI's Chinchilla replication, three ways, side by side.

Besiroglu et al. (2024) fit log loss = LSE(a - alpha log N, b - beta log D, e)
with a Huber loss (delta 1e-3), leaving out the 5 highest losses, by scipy's
L-BFGS from each of the 4,500 points of a grid. This script fits that
objective (the sum of scipy.special.huber over the points) three ways in one
run, on one BLAS thread:

- **projection**: :func:`normscale.scaling.fit_form` as it runs by default,
  variable projection (225 exponent pairs ranked by the linear fit of E, A,
  B, the best 4 refined by the engine); timed as the median of ``--repeats``
  fits after a warm-up, alternating with the engine;
- **engine, full grid**: ``fit_form(..., method="grid")``, the engine from
  the form's default 4,500-start grid in all five parameters (the method
  before projection, kept as the check), median of ``--engine-repeats``,
  and once from Epoch's own 4,500 starts;
- **scipy**: ``scipy.optimize.minimize(method="L-BFGS-B")`` once per start
  of Epoch's grid, numerical gradients, as in Epoch's code
  (``--scipy-starts K``: every (4500/K)-th start, its time scaled up).

Then the bootstrap of the projection fit with Epoch's 4,000 refits:
percentile intervals (the refits alone) and BCa (plus one jackknife refit
per configuration). It prints the times, the ratios, the best objectives
and the largest relative difference of the parameters between projection
and the engine; ``--write-docs`` puts the table into docs/scaling.md
between its ``bench_scaling`` markers.

Run: ``.venv/bin/python benchmarks/bench_scaling.py [--write-docs]``.
"""

from __future__ import annotations

import os

# One BLAS thread for every side: their matrices are tiny (5 x 5, 240 points), and threads
# only contend; on the shared 2-core machine a threaded BLAS made each scipy start 18x slower
# (0.58 s against 0.031 s) and the engine 1.6x slower. Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "scaling" / "chinchilla_epoch.csv"
DOCS = ROOT / "docs" / "scaling.md"
DELTA = 1e-3
N_BOOT = 4000


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    import pandas as pd
    from scipy.optimize import minimize
    from scipy.special import huber

    from normscale.scaling import ScalingWarning, bootstrap_fit, epoch_grid, fit_form

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="Epoch's table (N, D, loss)")
    parser.add_argument("--repeats", type=int, default=7,
                        help="timed projection fits (the median is compared)")
    parser.add_argument("--engine-repeats", type=int, default=3,
                        help="timed full-grid engine fits (the median is compared)")
    parser.add_argument("--scipy-starts", type=int, default=4500,
                        help="starts given to scipy (every k-th of the grid; time scaled up)")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the table into docs/scaling.md between its markers")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"bench_scaling: skipped, no table at {args.data}")
        return
    df = pd.read_csv(args.data)
    df = df.drop(index=df["loss"].nlargest(5).index)
    lN, lD, ly = (np.log(df[c].to_numpy()) for c in ("N", "D", "loss"))
    grid = epoch_grid()                                 # (4500, 5): a, b, e, alpha, beta
    x, y = np.column_stack([np.exp(lD), np.exp(lN)]), np.exp(ly)
    print(f"Chinchilla (Epoch AI): {len(ly)} points, Huber delta {DELTA}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    def objective(p):
        # Epoch's objective; np.logaddexp instead of their scipy logsumexp of a list (5x
        # faster per call here, 14 against 78 us), so the baseline is not slowed by it
        a, b, e, alpha, beta = p
        pred = np.logaddexp(np.logaddexp(a - alpha * lN, b - beta * lD), e)
        return float(np.sum(huber(DELTA, pred - ly)))

    def projection():
        return fit_form("joint", x, y, delta=DELTA)

    def engine():
        return fit_form("joint", x, y, delta=DELTA, method="grid")

    t_vp, t_engine = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        projection()                                                  # warm-up
        fit_form("joint", x, y, delta=DELTA, starts=grid[::45])       # warm-up: 100 starts
        # alternate the two, so that a change of the machine's load hits both
        per_engine = max(1, args.repeats // max(1, args.engine_repeats))
        for i in range(args.repeats):
            vp, t = _timed(projection)
            t_vp.append(t)
            if i % per_engine == 0 and len(t_engine) < args.engine_repeats:
                full, t = _timed(engine)
                t_engine.append(t)
        epoch_fit, t_epoch = _timed(lambda: fit_form("joint", x, y, delta=DELTA, starts=grid))
        boot_p, t_boot_p = _timed(lambda: bootstrap_fit(vp, x, y, n_boot=N_BOOT, seed=0,
                                                        method="percentile"))
        boot_b, t_boot_b = _timed(lambda: bootstrap_fit(vp, x, y, n_boot=N_BOOT, seed=0))
    t_vp_med, t_engine_med = float(np.median(t_vp)), float(np.median(t_engine))

    step = max(1, len(grid) // args.scipy_starts)
    sub = grid[::step]
    t0 = time.perf_counter()
    best, n_success = None, 0
    for th in sub:
        r = minimize(objective, th, method="L-BFGS-B")
        n_success += bool(r.success)
        if best is None or r.fun < best.fun:
            best = r
    t_scipy = (time.perf_counter() - t0) * len(grid) / len(sub)

    obj = {"projection": objective(vp.theta), "engine": objective(full.theta),
           "epoch": objective(epoch_fit.theta), "scipy": best.fun}
    rel = max(abs(vp.params[k] / full.params[k] - 1) for k in vp.params)
    scaled = " (time scaled to 4,500)" if step > 1 else ""
    rows = [
        ("variable projection (default): 225 exponent pairs ranked, 4 refined",
         f"{1e3 * t_vp_med:.1f} ms (median of {len(t_vp)}: "
         f"{', '.join(f'{1e3 * t:.0f}' for t in t_vp)})",
         "1", f"{obj['projection']:.12g}"),
        ("engine, the form's 4,500-start grid (`--method grid`, before)",
         f"{t_engine_med:.2f} s (median of {len(t_engine)})",
         f"{t_engine_med / t_vp_med:.0f}x", f"{obj['engine']:.12g}"),
        ("engine, Epoch's 4,500 starts (`--grid epoch`)", f"{t_epoch:.2f} s",
         f"{t_epoch / t_vp_med:.0f}x", f"{obj['epoch']:.12g}"),
        (f"scipy L-BFGS-B, {len(sub)} of Epoch's starts{scaled}", f"{t_scipy:.1f} s",
         f"{t_scipy / t_vp_med:.0f}x", f"{best.fun:.12g}"),
    ]
    lines = ["| fit of Epoch's Chinchilla data | time | time / projection's | best objective |",
             "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += ["", f"Parameters, projection against the engine's full grid: largest relative "
              f"difference {rel:.1e} (E {vp.params['E']:.4f}, A {vp.params['A']:.1f}, "
              f"B {vp.params['B']:.1f}, alpha {vp.params['alpha']:.4f}, beta "
              f"{vp.params['beta']:.4f}); {n_success} of {len(sub)} scipy starts report "
              "success.", "",
              "| bootstrap of the projection fit | time |", "|---|---|",
              f"| {N_BOOT:,} refits, percentile intervals | {t_boot_p:.2f} s "
              f"({boot_p.bootstrap.n_ok:,} converged) |",
              f"| {N_BOOT:,} refits + {boot_b.bootstrap.n_configs} jackknife refits, BCa "
              f"intervals (the default) | {t_boot_b:.2f} s |", "",
              f"Machine: {os.cpu_count()} cores, one BLAS thread, load average "
              f"{os.getloadavg()[0]:.1f} at the end (other jobs); "
              f"`benchmarks/bench_scaling.py`, {time.strftime('%Y-%m-%d')}."]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        doc = DOCS.read_text()
        new, n = re.subn(r"(<!-- bench_scaling:start -->\n).*?(<!-- bench_scaling:end -->)",
                         lambda m: m.group(1) + text + "\n" + m.group(2), doc, flags=re.S)
        if n != 1:
            sys.exit(f"bench_scaling: no bench_scaling markers in {DOCS}")
        DOCS.write_text(new)
        print(f"wrote the table into {DOCS}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
