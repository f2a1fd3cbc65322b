"""Speed of the replica theory: a 50-lambda curve, continuation vs cold starts, prox solvers.

Prints wall times and ratios measured side by side in one run.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import integrate, optimize, special

from normscale.theory import Logistic, learning_curve, solve, solve_saddle
from normscale.theory.prox import prox_bracketed


def nested_baseline_eps(*, alpha: float, lam: float) -> float:
    """The textbook way, as a baseline: nested bounded scalar minimisers and adaptive quad.

    E(R, x) = alpha E_t[M_x(t)] - (1 - R^2) / (2x), min over R of max over x
    (docs/science.md 1.4), with M_x(t) = min_D V(D) + (D - t)^2 / (2x) by a bounded
    scalar minimiser (D* lies in [t, t + 2x] since -2 < V' < 0) and E_t by
    ``scipy.integrate.quad`` against P_R(t) = 2 phi(t) H(-R t / sqrt(1 - R^2)).
    """

    def moreau(t: float, x: float) -> float:
        f = lambda d: np.logaddexp(0.0, -2.0 * lam * d) / lam + (d - t) ** 2 / (2 * x)  # noqa: E731
        return optimize.minimize_scalar(f, bounds=(t, t + 2 * x), method="bounded",
                                        options={"xatol": 1e-10}).fun

    def energy(r: float, x: float) -> float:
        s = np.sqrt(1 - r * r)

        def integrand(t: float) -> float:
            phi = np.exp(-t * t / 2) / np.sqrt(2 * np.pi)
            return 2 * phi * 0.5 * special.erfc(-r * t / s / np.sqrt(2)) * moreau(t, x)

        e_t = integrate.quad(integrand, -np.inf, np.inf, limit=200, epsabs=1e-10)[0]
        return alpha * e_t - (1 - r * r) / (2 * x)

    def outer(r: float) -> float:
        inner = optimize.minimize_scalar(lambda lx: -energy(r, np.exp(lx)), bounds=(-8, 8),
                                         method="bounded", options={"xatol": 1e-7})
        return -inner.fun

    res = optimize.minimize_scalar(outer, bounds=(1e-4, 1 - 1e-8), method="bounded",
                                   options={"xatol": 1e-8})
    return float(np.arccos(res.x) / np.pi)


def _best(f, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    lams = np.geomspace(0.01, 300, 50)
    for alpha in (5.0, 100.0):
        t_curve = _best(lambda a=alpha: learning_curve(alpha=a, lams=lams), repeat=2)
        t_cold = _best(lambda a=alpha: [solve_saddle(alpha=a, loss=Logistic(lam=lam))
                                        for lam in lams], repeat=1)
        print(f"alpha={alpha:g}: 50-lambda curve {t_curve * 1e3:.0f} ms "
              f"({t_curve / 50 * 1e3:.1f} ms/point); cold starts {t_cold * 1e3:.0f} ms; "
              f"ratio cold/continuation {t_cold / t_curve:.2f}")
    # the same points by the nested-scalar baseline (a few of them: it is slow)
    for alpha, lam in ((5.0, 2.5), (100.0, 1.0), (100.0, 30.0)):
        t0 = time.perf_counter()
        eps_base = nested_baseline_eps(alpha=alpha, lam=lam)
        t_base = time.perf_counter() - t0
        t_point = _best(lambda a=alpha, lam=lam: solve(alpha=a, lam=lam), repeat=3)
        eps = solve(alpha=alpha, lam=lam).eps
        t_curve = _best(lambda a=alpha: learning_curve(alpha=a, lams=lams), repeat=2) / 50
        print(f"alpha={alpha:g} lambda={lam:g}: eps {eps:.6f} (baseline {eps_base:.6f}); "
              f"nested-scalar baseline {t_base:.2f} s/point, ours {t_point * 1e3:.1f} ms "
              f"alone ({t_base / t_point:.0f}x), {t_curve * 1e3:.1f} ms/point along a "
              f"50-lambda curve ({t_base / t_curve:.0f}x)")
    loss = Logistic(lam=5.0)
    t = np.linspace(-11, 11, 1000)
    t_spec = _best(lambda: loss.prox(t, 1.0), repeat=20)
    t_gen = _best(lambda: prox_bracketed(loss.d1, loss.d2, t, np.e), repeat=20)
    print(f"prox on 1000 nodes: logistic-specific {t_spec * 1e6:.0f} us, generic safeguarded "
          f"{t_gen * 1e6:.0f} us, ratio generic/specific {t_gen / t_spec:.2f}")


if __name__ == "__main__":
    main()
