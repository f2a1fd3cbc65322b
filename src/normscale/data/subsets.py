"""Training subsets of size P: class-balanced, seeded, reproducible and nested over P."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch

from normscale._validation import Interval, check_param


def subset_order(labels: torch.Tensor, *, seed: int) -> torch.Tensor:
    """A seeded ordering of all examples that is class-balanced at every prefix.

    Each class is shuffled; the ordering takes round ``r`` = the ``r``-th
    example of every class, the classes of a round in a seeded random order.
    A class that runs out drops out of later rounds.

    Parameters
    ----------
    labels : torch.Tensor of shape (N,), int
    seed : int
        Seed of a numpy ``PCG64`` generator (identical results on every platform).

    Returns
    -------
    torch.LongTensor of shape (N,): a permutation of ``range(N)``.
    """
    check_param("subset_order", "seed", seed, Interval(Integral, 0, None, closed="left"))
    y = np.asarray(labels.detach().cpu(), dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes, y_idx = np.unique(y, return_inverse=True)
    n_classes = len(classes)
    perm = rng.permutation(len(y))  # shuffle, then a stable sort by class keeps it within class
    by_class = perm[np.argsort(y_idx[perm], kind="stable")]
    counts = np.bincount(y_idx, minlength=n_classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(y), dtype=np.int64)  # position of each example inside its class
    rank[by_class] = np.arange(len(y)) - np.repeat(starts, counts)
    rounds = int(counts.max()) if len(y) else 0
    # slot[r, c] = position of class c inside round r (a seeded permutation per round)
    slot = np.argsort(rng.random((rounds, n_classes)), axis=1).argsort(axis=1)
    key = rank * n_classes + slot[rank, y_idx]
    return torch.from_numpy(np.argsort(key, kind="stable"))


def subset_indices(labels: torch.Tensor, *, P: int, seed: int) -> torch.Tensor:
    """Indices of a class-balanced training subset of size ``P``.

    The subset is the first ``P`` entries of :func:`subset_order`, so for one
    seed the subset at ``P`` contains the subset at every smaller ``P``
    (learning curves at different P differ only by the added data), and
    class counts differ by at most one while every class has examples left.

    Parameters
    ----------
    labels : torch.Tensor of shape (N,), int
        Labels of the whole training set.
    P : int
        Subset size, ``1 <= P <= N``.
    seed : int
        Selects the subset; the same seed gives the same subset everywhere.

    Returns
    -------
    torch.LongTensor of shape (P,), sorted indices into ``labels``.

    Examples
    --------
    >>> y = torch.arange(100) % 10
    >>> idx = subset_indices(y, P=20, seed=0)
    >>> torch.bincount(y[idx]).tolist()
    [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    """
    n = int(labels.shape[0])
    check_param("subset_indices", "P", P, Interval(Integral, 1, n, closed="both"))
    return torch.sort(subset_order(labels, seed=seed)[:P]).values
