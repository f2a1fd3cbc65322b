"""Parameter constraints declared once as data and checked at the edge.

In the manner of scikit-learn's ``Interval``: a constraint is an object that
says whether a value is valid and how to describe the valid set, so every
error has one shape::

    The 'alpha' parameter of perceptron must be a float > 0. Got -1 instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

from normscale.errors import ParameterError

if TYPE_CHECKING:  # imported where an array is checked: the CLI's parser must not load numpy
    import numpy as np


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``Integral`` or ``Real``) between ``left`` and ``right``.

    ``closed`` is one of ``"both"``, ``"left"``, ``"right"``, ``"neither"``;
    ``None`` bounds are unbounded.
    """

    kind: type
    left: float | None = None
    right: float | None = None
    closed: str = "both"

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            int_as_real = self.kind is Real and isinstance(value, Integral)
            if not int_as_real or isinstance(value, bool):
                return False
        v = float(value)
        if math.isnan(v):
            return False
        if self.left is not None:
            if v < self.left or (v == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if v > self.right or (v == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        name = "an int" if self.kind is Integral else "a float"
        lo_op = ">=" if self.closed in ("both", "left") else ">"
        hi_op = "<=" if self.closed in ("both", "right") else "<"
        if self.left is not None and self.right is not None:
            lb = "[" if lo_op == ">=" else "("
            rb = "]" if hi_op == "<=" else ")"
            return f"{name} in the range {lb}{self.left:g}, {self.right:g}{rb}"
        if self.left is not None:
            return f"{name} {lo_op} {self.left:g}"
        if self.right is not None:
            return f"{name} {hi_op} {self.right:g}"
        return name


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple

    def is_satisfied_by(self, value: Any) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


def check_param(owner: str, name: str, value: Any, constraint: Interval | Options) -> Any:
    """Return ``value`` if it satisfies ``constraint``, else raise :class:`ParameterError`."""
    if not constraint.is_satisfied_by(value):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be {constraint}. Got {value!r} instead."
        )
    return value


def check_array(
    owner: str, name: str, values: Iterable[float], constraint: Interval, *, nonempty: bool = True
) -> np.ndarray:
    """Check each element of a 1-d sequence; return it as a float64 array."""
    import numpy as np

    arr = np.atleast_1d(np.asarray(list(values) if not isinstance(values, np.ndarray) else values,
                                   dtype=float))
    if nonempty and arr.size == 0:
        raise ParameterError(f"The {name!r} parameter of {owner} must not be empty.")
    for v in arr:
        if not constraint.is_satisfied_by(float(v)):
            raise ParameterError(
                f"The {name!r} parameter of {owner} must hold values that are {constraint}. "
                f"Got {float(v)!r} instead."
            )
    return arr


POSITIVE = Interval(Real, 0, None, closed="neither")
POSITIVE_INT = Interval(Integral, 1, None, closed="left")
NONNEGATIVE = Interval(Real, 0, None, closed="left")
NONNEGATIVE_INT = Interval(Integral, 0, None, closed="left")
