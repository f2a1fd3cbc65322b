"""Speed of the solvable models: the Volterra theory of SGD and the exact gradient flow.

Each is timed side by side with a plain numpy baseline written the obvious way
(a per-step loop over vectors or matrices), on one BLAS thread (the machine is
shared), and printed as a ratio. ``--out FILE`` also writes the table as markdown
(docs/solvable/bench.md).

1. The expected risk of one-pass SGD at d = 10,000 features and 100,000 steps:
   the blocked recursion against the step-by-step loop m <- q m + g P, and, at
   d = 200 and 2,000 steps, against the d x d second-moment matrix recursion.
   Identity features (d = v), so no 10,000 x 10,000 eigendecomposition enters
   either side.
2. A gradient-flow curve at 50 times with N = 1,000 features and P = 10,000
   samples (v = 2,000): drawing the features (W and the eigendecomposition of K,
   once per feature draw) and the curve itself. Side by side at N = 200, P =
   2,000, v = 400 against forming X and F = X W and running gradient descent
   with step 0.5 / lam_max(F^T F / P) up to t = 300, one step per loop turn.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from normscale.solvable import PowerLawModel, draw_features, gradient_flow, sgd_theory
from normscale.solvable.volterra import sgd_theory_stepwise


def _best(f, repeat: int = 2) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def matrix_recursion(K: np.ndarray, theta_star: np.ndarray, r_star: float, gamma: float,
                     steps: int) -> np.ndarray:
    """Baseline: E[e e^T] stepped as a d x d matrix (batch 1)."""
    M = np.outer(theta_star, theta_star)
    A = np.eye(len(K)) - gamma * K
    out = np.empty(steps + 1)
    for t in range(steps + 1):
        out[t] = r_star + np.trace(K @ M)
        M = A @ M @ A + gamma ** 2 * (K @ M @ K + out[t] * K)
    return out


def gd_baseline(m: PowerLawModel, W: np.ndarray, P: int, times: np.ndarray, seed: int
                ) -> np.ndarray:
    """Baseline: draw X, form F = X W, run full-batch gradient descent step by step."""
    rng = np.random.default_rng(seed)
    D, b = m.data_variances(), m.teacher()
    X = rng.standard_normal((P, m.v)) * np.sqrt(D)
    y = X @ b + m.noise * rng.standard_normal(P)
    F = X @ W
    eta = 0.5 / np.linalg.eigvalsh(F.T @ F / P).max()
    theta = np.zeros(W.shape[1])
    out, k, t = [], 0, 0.0
    while k < len(times):
        if t >= times[k]:
            w = W @ theta
            out.append(np.sum(D * (w - b) ** 2))
            k += 1
            continue
        theta -= eta * (F.T @ (F @ theta - y)) / P
        t += eta
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the table as markdown here")
    args = parser.parse_args()
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        # 1. Volterra theory, d = 10,000, 100,000 steps
        f = draw_features(PowerLawModel(alpha=1.0, beta=0.7, v=10_000))
        gamma, steps = 0.15 / f.lam[0], 100_000
        ours = _best(lambda: sgd_theory(f, gamma=gamma, steps=steps))
        base = _best(lambda: sgd_theory_stepwise(f, gamma=gamma, steps=steps))
        th = sgd_theory(f, gamma=gamma, steps=steps, log_times=np.arange(steps + 1))
        ref = sgd_theory_stepwise(f, gamma=gamma, steps=steps)
        rows.append(("SGD theory, d = 10,000, 100,000 steps", "step-by-step vector loop",
                     ours, base, float(np.max(np.abs(th.mean / ref - 1)))))
        fs = draw_features(PowerLawModel(alpha=1.0, beta=0.7, v=200))
        g2, s2 = 0.15 / fs.lam[0], 2000
        ours = _best(lambda: sgd_theory(fs, gamma=g2, steps=s2))
        base = _best(lambda: matrix_recursion(np.diag(fs.lam), fs.theta_star, fs.risk_star,
                                              g2, s2), repeat=1)
        th = sgd_theory(fs, gamma=g2, steps=s2, log_times=np.arange(s2 + 1)).mean
        ref = matrix_recursion(np.diag(fs.lam), fs.theta_star, fs.risk_star, g2, s2)
        rows.append(("SGD theory, d = 200, 2,000 steps", "d x d second-moment matrix loop",
                     ours, base, float(np.max(np.abs(th / ref - 1)))))
        # 2. gradient flow
        times = np.geomspace(0.1, 1e4, 50)
        m = PowerLawModel(alpha=0.75, beta=0.25, v=2000, d=1000, noise=0.5)
        t_feat = _best(lambda: draw_features(m, seed=0), repeat=1)
        fb = draw_features(m, seed=0)
        t_curve = _best(lambda: gradient_flow(fb, P=10_000, times=times, seed=0))
        rows.append(("features N = 1,000, v = 2,000 (W, K, eigh; once per draw)", "-",
                     t_feat, float("nan"), float("nan")))
        rows.append(("gradient-flow curve N = 1,000, P = 10,000, 50 times", "-", t_curve,
                     float("nan"), float("nan")))
        ms = PowerLawModel(alpha=0.75, beta=0.25, v=400, d=200, noise=0.5)
        fm = draw_features(ms, seed=0)
        ts = np.geomspace(0.1, 300, 50)
        ours = _best(lambda: (draw_features(ms, seed=0),
                              gradient_flow(fm, P=2000, times=ts, seed=0)))
        base = _best(lambda: gd_baseline(ms, fm.W, 2000, ts, 0), repeat=1)
        mean_ours = np.mean([gradient_flow(fm, P=2000, times=ts, seed=s).risk[-1]
                             for s in range(20)])
        mean_base = np.mean([gd_baseline(ms, fm.W, 2000, ts[-1:], s)[-1] for s in range(5)])
        rows.append(("features + curve N = 200, P = 2,000, 50 times", "X, F = X W, GD loop",
                     ours, base, abs(mean_ours / mean_base - 1)))
    lines = ["| computation | baseline | normscale (s) | baseline (s) | speed-up | "
             "agreement |", "|---|---|---|---|---|---|"]
    for name, bname, ours, base, agree in rows:
        ratio = f"{base / ours:.1f}x" if np.isfinite(base) else "-"
        b = f"{base:.3g}" if np.isfinite(base) else "-"
        ag = f"{agree:.1e}" if np.isfinite(agree) else "-"
        lines.append(f"| {name} | {bname} | {ours:.3g} | {b} | {ratio} | {ag} |")
    text = "\n".join(lines) + "\n"
    print(text)
    print("agreement: largest relative difference of the curves (SGD), or of the mean final "
          "risk over draws (gradient flow: 20 draws against 5, so only a sanity check)")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
