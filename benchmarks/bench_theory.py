"""Speed of the replica theory: a 50-lambda curve, continuation vs cold starts, prox solvers.

Prints wall times and ratios measured side by side in one run.
"""

from __future__ import annotations

import time

import numpy as np

from normscale.theory import Logistic, learning_curve, solve_saddle
from normscale.theory.prox import prox_bracketed


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
    loss = Logistic(lam=5.0)
    t = np.linspace(-11, 11, 1000)
    t_spec = _best(lambda: loss.prox(t, 1.0), repeat=20)
    t_gen = _best(lambda: prox_bracketed(loss.d1, loss.d2, t, np.e), repeat=20)
    print(f"prox on 1000 nodes: logistic-specific {t_spec * 1e6:.0f} us, generic safeguarded "
          f"{t_gen * 1e6:.0f} us, ratio generic/specific {t_gen / t_spec:.2f}")


if __name__ == "__main__":
    main()
