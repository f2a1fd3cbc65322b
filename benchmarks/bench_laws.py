"""Benchmark: the cost of the seed bootstrap of ``normscale.laws``, measured side by side.

One bootstrap replicate resamples the seeds of each P and redoes the whole
pipeline (minima, window, laws). The per-seed minima do not change under
resampling, so ``bootstrap`` finds them once and reuses them. This script
times, on the synthetic curves of the coverage test (5 P x 4 seeds x 30
points), one replicate with the cached minima against one that searches
them again, and the window search alone (its share of a replicate), and the
whole ``fit_laws`` with ``n_boot`` replicates.

Run: ``.venv/bin/python benchmarks/bench_laws.py [--reps 50] [--n-boot 200]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from laws_synthetic import synthetic_curves  # noqa: E402
from normscale.laws import fit_laws, load_curves  # noqa: E402
from normscale.laws.bootstrap import resample  # noqa: E402
from normscale.laws.curves import build_curves, curve_minimum  # noqa: E402
from normscale.laws.estimate import estimate  # noqa: E402
from normscale.laws.window import find_window  # noqa: E402


def _time(fn, reps: int) -> float:
    """Median wall time of ``fn()`` over ``reps`` calls, in seconds."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50, help="timed repetitions per variant")
    parser.add_argument("--n-boot", type=int, default=200, help="replicates of the full fit")
    args = parser.parse_args()

    df = synthetic_curves(rng=np.random.default_rng(0), P=(500, 1000, 2000, 4000, 8000),
                          n_seeds=4, n_points=30)
    sets = build_curves(load_curves(df), "test_error")
    minima = [tuple(curve_minimum(c) for c in cs.seeds) for cs in sets]
    rng = np.random.default_rng(1)

    def cached() -> None:
        rep, rep_min = resample(sets, minima, rng)
        estimate(rep, seed_minima=rep_min)

    def uncached() -> None:
        rep, _ = resample(sets, minima, rng)
        estimate(rep)

    est = estimate(sets)

    def window() -> None:
        find_window([cs.mean for cs in sets], est.lambda_opt)

    cached(), uncached()  # warm-up
    t_cached, t_uncached = _time(cached, args.reps), _time(uncached, args.reps)
    t_window = _time(window, args.reps)
    t0 = time.perf_counter()
    fit_laws(df, n_boot=args.n_boot)
    t_fit = time.perf_counter() - t0
    print(f"one replicate, minima cached:   {1e3 * t_cached:7.2f} ms")
    print(f"one replicate, minima searched: {1e3 * t_uncached:7.2f} ms")
    print(f"ratio searched / cached:        {t_uncached / t_cached:7.2f}x")
    print(f"window search alone:            {1e3 * t_window:7.2f} ms "
          f"({t_window / t_cached:.0%} of a cached replicate)")
    print(f"fit_laws with n_boot={args.n_boot}:    {t_fit:7.2f} s")


if __name__ == "__main__":
    main()
