"""Seed groups: which runs train together as a seed ensemble, and the id they share
(torch-free).

A *seed group* is a set of runs equal but for their seed (one model, data
set, P, optimizer, ...); its seeds can train as one ensemble
(:func:`normscale.train.ensemble.train_ensemble`). The sweep driver groups
its runs with :func:`seed_groups` without importing torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from normscale.errors import ParameterError
from normscale.train.config import TrainConfig


def ensemble_id(configs: Sequence[TrainConfig]) -> str:
    """16 hex digits of the SHA-256 of the members' sorted run ids (same members, same id)."""
    joined = ",".join(sorted(c.run_id for c in configs))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def check_ensemble(configs: Sequence[TrainConfig]) -> tuple[TrainConfig, ...]:
    """Check that ``configs`` can train as one ensemble: same config, distinct seeds.

    Raises
    ------
    ParameterError
        Naming the first field in which two members differ, or a repeated seed.
    """
    configs = tuple(configs)
    if not configs or not all(isinstance(c, TrainConfig) for c in configs):
        raise ParameterError("The 'configs' parameter of train_ensemble must be a non-empty "
                             f"sequence of TrainConfig. Got {configs!r} instead.")
    first = configs[0].to_dict()
    for c in configs[1:]:
        for key, value in c.to_dict().items():
            if key != "seed" and value != first[key]:
                raise ParameterError(
                    f"the members of an ensemble differ only by their seed; {key!r} is "
                    f"{first[key]!r} for seed {configs[0].seed} and {value!r} for seed {c.seed}: "
                    "train them as separate ensembles")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ParameterError(f"the seeds of an ensemble must be distinct. Got {seeds} instead.")
    return configs


def seed_groups(configs: Sequence[TrainConfig]) -> list[list[TrainConfig]]:
    """``configs`` grouped into seed groups (equal but for the seed), in first-seen order."""
    groups: dict[str, list[TrainConfig]] = {}
    for cfg in configs:
        groups.setdefault(TrainConfig.from_dict({**cfg.to_dict(), "seed": 0}).run_id,
                          []).append(cfg)
    return list(groups.values())
