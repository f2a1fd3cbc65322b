"""Bootstrap over seeds: resample each P's seeds, redo the whole pipeline.

Seeds of different P are resampled independently (they are independent
runs on different training subsets). Every replicate re-finds the minima
and, when it is automatic, the window, so the spread includes the choice
of the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from normscale.errors import NormscaleError
from normscale.laws.curves import CurveSet, average_seeds
from normscale.laws.pipeline import estimate

#: quantities the bootstrap reports
QUANTITIES = ("gamma1", "gamma2", "gamma_pred", "gamma_meas")


@dataclass(frozen=True)
class Bootstrap:
    """Spread over ``n_ok`` successful replicates out of ``n_boot``.

    ``std`` maps each quantity to its standard deviation; ``intervals`` to
    its percentile interval at level ``level``.
    """

    n_boot: int
    n_ok: int
    level: float
    std: dict[str, float]
    intervals: dict[str, tuple[float, float]]


def resample(sets: list[CurveSet], rng: np.random.Generator) -> list[CurveSet]:
    """One bootstrap replicate: the seeds of each P drawn with replacement."""
    out = []
    for cs in sets:
        idx = rng.integers(0, len(cs.seeds), len(cs.seeds))
        seeds = tuple(cs.seeds[i] for i in idx)
        out.append(CurveSet(cs.P, seeds, average_seeds(seeds)))
    return out


def bootstrap(sets: list[CurveSet], *, n_boot: int, seed: int, level: float = 0.95,
              window: tuple[float, float] | None = None, strict_minimum: bool = False,
              on_step=None) -> Bootstrap:
    """Run ``n_boot`` replicates; replicates the pipeline refuses are skipped and counted."""
    rng = np.random.default_rng(seed)
    values = {q: [] for q in QUANTITIES}
    for _ in range(n_boot):
        try:
            est = estimate(resample(sets, rng), window=window, strict_minimum=strict_minimum)
        except NormscaleError:
            continue
        finally:
            if on_step is not None:
                on_step()
        for q in QUANTITIES:
            values[q].append(getattr(est, q))
    n_ok = len(values["gamma1"])
    if n_ok < 2:
        raise NormscaleError(f"only {n_ok} of {n_boot} bootstrap replicates could be fitted")
    tail = 50 * (1 - level)
    std = {q: float(np.std(v, ddof=1)) for q, v in values.items()}
    intervals = {q: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail)))
                 for q, v in values.items()}
    return Bootstrap(n_boot, n_ok, level, std, intervals)
