"""When a run logs: log-spaced points (docs/science.md 2.2: about 50 log-spaced epochs from
1 to T), points on norm growth, and the checks between them (:class:`Schedule`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from normscale._validation import POSITIVE_INT, check_param
from normscale.train.config import TrainConfig

#: between logged points the watched norm is measured every step // 32 steps (a few ms each,
#: warm-started), so norm-growth logging costs about 32 measurements per factor 2 of steps
NORM_CHECK_FRACTION = 32


def log_points(total: int, n: int) -> tuple[int, ...]:
    """``min(n, total)`` distinct integers from 1 to ``total``, as log-spaced as integers allow.

    Each point is the geometric step from the previous one to ``total`` over
    the points still to place, rounded, and at least one more than the
    previous one; so early points are consecutive (1, 2, 3, ...) where the
    geometric grid would repeat integers, and the last point is ``total``.

    Parameters
    ----------
    total : int
        T, the training length (epochs or steps), >= 1.
    n : int
        Wanted number of points, >= 1. With ``n == 1`` the only point is ``total``.

    Returns
    -------
    tuple of int
        Strictly increasing, ending at ``total``.
    """
    check_param("log_points", "total", total, POSITIVE_INT)
    check_param("log_points", "n", n, POSITIVE_INT)
    n = min(n, total)
    if n == 1:
        return (total,)
    points = [1]
    for k in range(1, n):
        prev, remaining = points[-1], n - k  # points left to place, `total` included
        ideal = round(math.exp(math.log(prev) + (math.log(total) - math.log(prev)) / remaining))
        points.append(min(max(ideal, prev + 1), total - remaining + 1))
    return tuple(points)


@dataclass(frozen=True)
class Schedule:
    """When a run logs, checks its loss, and measures its norm between logged points.

    One schedule serves a lone run and every member of a seed ensemble (their
    configs differ only by the seed), so the members log where lone runs log.

    Attributes
    ----------
    n_batches : int
        Optimizer steps per epoch, ``ceil(P / batch_size)``.
    per_unit : int
        Steps per unit of T: ``n_batches`` for a length in epochs, 1 in steps.
    total : int
        Steps to train (the cap of an ``until="optimum"`` run).
    log_steps : frozenset of int
        The steps of the log-spaced points: :func:`log_points` ``(T, n_log)``
        in the config's unit, or in steps up to the cap for
        ``until="optimum"`` (so the early descent of large P is seen).
    growth : float or None
        ``config.norm_log_factor``: also log a point once the watched norm has
        grown by this factor since the last logged point.
    """

    n_batches: int
    per_unit: int
    total: int
    log_steps: frozenset[int]
    growth: float | None

    @classmethod
    def of(cls, config: TrainConfig) -> Schedule:
        """The schedule of ``config`` (its P, batch size, length, ``n_log``, ``until``)."""
        n_batches = math.ceil(config.P / config.batch_size)
        per_unit = n_batches if config.unit == "epoch" else 1
        total = config.length * per_unit
        if config.until == "optimum":
            log_steps = frozenset(log_points(total, config.n_log))
        else:
            log_steps = frozenset(p * per_unit for p in log_points(config.length, config.n_log))
        return cls(n_batches, per_unit, total, log_steps, config.norm_log_factor)

    def norm_check(self, step: int) -> bool:
        """Whether to measure the watched norm after ``step`` (off the log-spaced points):
        every ``max(1, step // NORM_CHECK_FRACTION)`` steps, so a few hundred checks in all."""
        return self.growth is not None and step % max(1, step // NORM_CHECK_FRACTION) == 0

    def loss_check(self, step: int, logged: bool) -> bool:
        """Whether to check that the summed training loss is finite: at a logged point and
        at the end of each epoch (one host sync there, not one per step)."""
        return logged or step % self.n_batches == 0

    def epoch(self, step: int) -> float:
        """Passes over the training subset after ``step`` steps."""
        return step / self.n_batches
