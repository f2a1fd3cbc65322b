"""The joint law eps_opt(N, P) of a width x P sweep (the model-size axis of normscale's runs).

:func:`fit_width_study` fits y = E + A N^-alpha + B P^-beta on the per-run
optima of :func:`normscale.scaling.runs.optima` (eps_opt against the data
size P and the parameter count N), all seeds of one (width, P) being one
configuration of the bootstrap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from normscale.errors import NormscaleError
from normscale.scaling.analysis import ScalingAnalysis, analyse


def fit_width_study(runs: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0,
                    holdout_k: int = 0, delta: float | None = 1e-3) -> ScalingAnalysis:
    """The ``joint`` law eps_opt(N, P) on the per-run optima of a width x P sweep.

    Parameters
    ----------
    runs : DataFrame
        :func:`~normscale.scaling.runs.optima` of a store's long table (columns
        ``P``, ``N``, ``eps_opt``).
    n_boot, seed, holdout_k, delta : see :func:`normscale.scaling.analyse`.

    Returns
    -------
    ScalingAnalysis
        The fit, its frontier (C = 6 N P) and, with ``holdout_k``, the held-out check.

    Raises
    ------
    NormscaleError
        When the runs span fewer than 2 model sizes or 2 training-set sizes,
        or have no finite N (the joint law needs both axes).
    """
    if "N" not in runs.columns or not np.isfinite(runs["N"].to_numpy(dtype=float)).any():
        raise NormscaleError("the runs carry no parameter count N (export them again)")
    runs = runs[np.isfinite(runs["N"].to_numpy(dtype=float))]
    n_sizes, n_P = runs["N"].nunique(), runs["P"].nunique()
    if n_sizes < 2 or n_P < 2:
        raise NormscaleError(f"the joint law needs runs over at least 2 model sizes and 2 "
                             f"training-set sizes; got {n_sizes} and {n_P}")
    return analyse(runs, form="joint", data="P", model="N", y="eps_opt", holdout_k=holdout_k,
                   delta=delta, n_boot=n_boot, seed=seed)
