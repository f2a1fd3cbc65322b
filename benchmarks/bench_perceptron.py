"""Fixed-norm curve: normscale's Riemannian Newton vs scikit-learn's LogisticRegression (lbfgs).

Both solve the same problems: for each lambda, the sphere minimiser of
sum_mu log(1 + exp(-2 z_mu . u / sqrt N)) with |u| = lambda sqrt N is the
solution of the L2-regularised problem 0.5 |beta|^2 + C sum_mu log(1 +
exp(-z_mu . beta)) with beta = 2 u / sqrt N and C = |beta| / |sum_mu z_mu s_mu|.
scikit-learn gets these C (from a tight normscale run), warm starts along the
grid, and the same tolerance; the accuracy of each is measured against the
tight run (max |R - R_ref| over the grid) and printed beside the time.

    .venv/bin/python benchmarks/bench_perceptron.py            # N = 2000, alpha = 10, 40 lambdas
    .venv/bin/python benchmarks/bench_perceptron.py --n 500    # quicker
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from normscale.perceptron import fixed_norm_path, make_data, overlap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--n-lam", type=int, default=40)
    ap.add_argument("--lam-max", type=float, default=300.0)
    ap.add_argument("--threads", type=int, default=2)
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

    x2 = np.vstack([z, -z])  # two classes for sklearn; the mirrored copies double the loss
    y2 = np.r_[np.ones(len(z)), -np.ones(len(z))]
    clf = LogisticRegression(fit_intercept=False, tol=1e-8, max_iter=100_000, warm_start=True)
    r_sk = []
    t0 = time.perf_counter()
    for c in cs:
        clf.set_params(C=c / 2)
        clf.fit(x2, y2)
        r_sk.append(float(overlap(torch.as_tensor(clf.coef_[0])[None], data.teacher)[0]))
    t_sk = time.perf_counter() - t0

    err_sk = np.abs(np.array(r_sk) - ref.r[0]).max()
    # normscale at the loosest gtol that is at least as accurate as sklearn, and at 1e-8
    for gtol in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8):
        t0 = time.perf_counter()
        ours = fixed_norm_path(data, lams=lams, gtol=gtol)
        t_ours = time.perf_counter() - t0
        err_ours = np.abs(ours.r[0] - ref.r[0]).max()
        if err_ours <= err_sk:
            break
    t0 = time.perf_counter()
    tight = fixed_norm_path(data, lams=lams, gtol=1e-8)
    t_tight = time.perf_counter() - t0
    err_tight = np.abs(tight.r[0] - ref.r[0]).max()
    print(f"N={args.n} alpha={args.alpha:g} P={data.p} lambdas={args.n_lam} "
          f"(0.01..{args.lam_max:g}) threads={args.threads}")
    print(f"sklearn LogisticRegression (tol 1e-8): {t_sk:8.2f} s   max|R - R_ref| = {err_sk:.1e}")
    print(f"normscale, gtol {gtol:.0e}          : {t_ours:8.2f} s   max|R - R_ref| = "
          f"{err_ours:.1e}")
    print(f"normscale, gtol 1e-8           : {t_tight:8.2f} s   max|R - R_ref| = "
          f"{err_tight:.1e}   converged {tight.converged.sum()}/{tight.converged.size}")
    print(f"speed-up at equal accuracy (sklearn / normscale): {t_sk / t_ours:.1f}x")
    print(f"speed-up with normscale at gtol 1e-8            : {t_sk / t_tight:.1f}x")


if __name__ == "__main__":
    main()
