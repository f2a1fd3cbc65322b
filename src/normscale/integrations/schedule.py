"""When a training loop records a point: log-spaced steps by default.

A schedule answers one question, :meth:`Schedule.next_after`: the first
scheduled step after a given step. A loop that can measure at any step asks
whether ``step`` is scheduled; a loop that has an error only at validation
time (Lightning, the Hugging Face ``Trainer``) records at the first
validation on or after each scheduled step, so the points stay log-spaced
whatever the validation interval. A schedule depends on the step alone, not
on the planned length of training, so a resumed or extended run keeps the
points it had.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass

from normscale._validation import POSITIVE_INT, check_param
from normscale.errors import ParameterError

#: points per decade of steps of the default schedule: 20 gives the paper's ~50
#: log-spaced points over 2.5 decades (e.g. 10 to 3000 steps), and every step up to 10
DEFAULT_PER_DECADE = 20
#: most points per decade: 1000 already records every step up to ~430, and a finer grid
#: would cost next_after a search of about (per_decade * 2.3 / step) grid points per step
MAX_PER_DECADE = 1000


class Schedule:
    """Scheduled steps, as the first one after a given step."""

    def next_after(self, step: int) -> int | None:
        """The first scheduled step > ``step``, or None when no step follows."""
        raise NotImplementedError

    def due(self, step: int, last: int) -> bool:
        """Whether a scheduled step lies in ``(last, step]`` (``last``: the last recorded step)."""
        nxt = self.next_after(last)
        return nxt is not None and nxt <= step


@dataclass(frozen=True)
class LogSpaced(Schedule):
    """Steps ``round(10 ** (k / per_decade))`` for k = 0, 1, 2, ...: 1, 2, 3, ... then log-spaced.

    Attributes
    ----------
    per_decade : int, default 20
        Points per factor of 10 in steps, at most ``MAX_PER_DECADE``;
        consecutive steps where the grid is finer than one step.
    """

    per_decade: int = DEFAULT_PER_DECADE

    def __post_init__(self) -> None:
        check_param("LogSpaced", "per_decade", self.per_decade, POSITIVE_INT)
        if self.per_decade > MAX_PER_DECADE:
            raise ParameterError(f"The 'per_decade' parameter of LogSpaced must be <= "
                                 f"{MAX_PER_DECADE}. Got {self.per_decade!r} instead.")

    def next_after(self, step: int) -> int:
        if step < 1:
            return 1
        k = max(0, math.floor(self.per_decade * math.log10(step)) - 1)
        while (point := round(10 ** (k / self.per_decade))) <= step:
            k += 1
        return point


@dataclass(frozen=True)
class Every(Schedule):
    """Every ``n``-th step: n, 2n, 3n, ...

    Attributes
    ----------
    n : int
        The interval between scheduled steps, >= 1.
    """

    n: int

    def __post_init__(self) -> None:
        check_param("Every", "n", self.n, POSITIVE_INT)

    def next_after(self, step: int) -> int:
        return (max(step, 0) // self.n + 1) * self.n


@dataclass(frozen=True)
class Steps(Schedule):
    """An explicit list of steps (e.g. :func:`normscale.train.log_points` of a known length).

    Attributes
    ----------
    steps : tuple of int
        The scheduled steps, each >= 1; stored sorted, without duplicates,
        whatever order they were given in.
    """

    steps: tuple[int, ...]

    def __post_init__(self) -> None:
        for s in self.steps:
            check_param("Steps", "steps", s, POSITIVE_INT)
        object.__setattr__(self, "steps", tuple(sorted(set(self.steps))))

    def next_after(self, step: int) -> int | None:
        i = bisect.bisect_right(self.steps, step)
        return self.steps[i] if i < len(self.steps) else None


def as_schedule(schedule: Schedule | int | Iterable[int] | None) -> Schedule:
    """A :class:`Schedule` from None (:class:`LogSpaced`), an int (:class:`Every`) or steps."""
    if schedule is None:
        return LogSpaced()
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, int) and not isinstance(schedule, bool):
        return Every(schedule)
    try:
        return Steps(tuple(int(s) for s in schedule))  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ParameterError(
            "The 'schedule' parameter must be None (log-spaced steps), an int n (every n "
            f"steps), a list of steps or a Schedule. Got {schedule!r} instead.") from None
