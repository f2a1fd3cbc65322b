"""Log-spaced logging points (docs/science.md 2.2: about 50 log-spaced epochs from 1 to T)."""

from __future__ import annotations

import math

from normscale._validation import POSITIVE_INT, check_param


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
