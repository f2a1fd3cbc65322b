"""Benchmark: the joint fit of Epoch AI's Chinchilla replication, our engine against scipy.

Besiroglu et al. (2024) fit log loss = LSE(a - alpha log N, b - beta log D, e)
with a Huber loss (delta 1e-3), leaving out the 5 highest losses, by scipy's
L-BFGS from each of the 4,500 points of a grid. This script runs that grid
both ways, side by side, on the same objective (the sum of
scipy.special.huber over the points):

- scipy: ``scipy.optimize.minimize(method="L-BFGS-B")`` once per start, with
  numerical gradients, as in Epoch's code;
- normscale: :func:`normscale.scaling.fit_form` from the same 4,500 starts,
  all at once (:mod:`normscale.scaling.engine`, analytic Jacobians).

The engine is timed after a warm-up fit of 100 starts, as the median of
``--repeats`` fits (3); scipy once. It prints the wall time of each, the
speed ratio, the best objective of each and their ratio (ours / scipy's:
below 1 is better), and the fitted parameters. ``--scipy-starts K`` runs
scipy on every (4500/K)-th start only and scales its time up (for a quick
look; the ratio is then an estimate).

Run: ``.venv/bin/python benchmarks/bench_scaling.py [--scipy-starts 4500]``.
"""

from __future__ import annotations

import os

# One BLAS thread for both sides: their matrices are tiny (5 x 5, 240 points), and threads
# only contend; on the shared 2-core machine a threaded BLAS made each scipy start 18x slower
# (0.58 s against 0.031 s) and the engine 1.6x slower. Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scaling" / "chinchilla_epoch.csv"
DELTA = 1e-3


def main() -> None:
    import pandas as pd
    from scipy.optimize import minimize
    from scipy.special import huber

    from normscale.scaling import ScalingWarning, epoch_grid, fit_form

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="Epoch's table (N, D, loss)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed fits of the engine (the median is compared)")
    parser.add_argument("--scipy-starts", type=int, default=4500,
                        help="starts given to scipy (every k-th of the grid; time scaled up)")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"bench_scaling: skipped, no table at {args.data}")
        return
    df = pd.read_csv(args.data)
    df = df.drop(index=df["loss"].nlargest(5).index)
    lN, lD, ly = (np.log(df[c].to_numpy()) for c in ("N", "D", "loss"))
    grid = epoch_grid()                                 # (4500, 5): a, b, e, alpha, beta
    print(f"Chinchilla (Epoch AI): {len(ly)} points, Huber delta {DELTA}, {len(grid)} starts")

    def objective(p):
        # Epoch's objective; np.logaddexp instead of their scipy logsumexp of a list (5x
        # faster per call here, 14 against 78 us), so the baseline is not slowed by it
        a, b, e, alpha, beta = p
        pred = np.logaddexp(np.logaddexp(a - alpha * lN, b - beta * lD), e)
        return float(np.sum(huber(DELTA, pred - ly)))

    x, y = np.column_stack([np.exp(lD), np.exp(lN)]), np.exp(ly)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        fit_form("joint", x, y, delta=DELTA, starts=grid[::45])      # warm-up: 100 starts
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fit = fit_form("joint", x, y, delta=DELTA, starts=grid)
            times.append(time.perf_counter() - t0)
    t_ours = float(np.median(times))

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

    ours_obj = objective(fit.theta)
    print(f"scipy L-BFGS-B, {len(sub)} starts{' (time scaled to 4500)' if step > 1 else ''}: "
          f"{t_scipy:.1f} s, best objective {best.fun:.10g}, "
          f"{n_success} of {len(sub)} report success")
    print(f"normscale engine, {len(grid)} starts: {t_ours:.2f} s (median of "
          f"{', '.join(f'{t:.2f}' for t in times)}), best objective "
          f"{ours_obj:.10g}, {fit.n_converged} converged, {fit.n_at_best} at the best")
    print(f"speed ratio scipy/normscale: {t_scipy / t_ours:.1f}x; objective ratio "
          f"normscale/scipy: {ours_obj / best.fun:.9f}")
    E, A, B, alpha, beta = np.exp(best.x[2]), np.exp(best.x[0]), np.exp(best.x[1]), *best.x[3:]
    print(f"scipy:     E {E:.4f}  A {A:.1f}  B {B:.1f}  alpha {alpha:.4f}  beta {beta:.4f}")
    p = fit.params
    print(f"normscale: E {p['E']:.4f}  A {p['A']:.1f}  B {p['B']:.1f}  alpha {p['alpha']:.4f}  "
          f"beta {p['beta']:.4f}")
    print("Epoch AI:  E 1.8172  A 482.0  B 2085.4  alpha 0.3478  beta 0.3658")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
