"""Subsets of size P: balanced, seeded, reproducible, nested over P."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from normscale.data import subset_indices, subset_order
from normscale.errors import ParameterError


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 30), min_size=1, max_size=6), seed=st.integers(0, 2**31),
       data=st.data())
def test_nested_balanced_and_valid(counts, seed, data):
    labels = torch.from_numpy(np.repeat(np.arange(len(counts)), counts))
    labels = labels[torch.from_numpy(np.random.default_rng(1).permutation(len(labels)))]
    n = len(labels)
    p_small = data.draw(st.integers(1, n))
    p_big = data.draw(st.integers(p_small, n))
    small = subset_indices(labels, P=p_small, seed=seed)
    big = subset_indices(labels, P=p_big, seed=seed)
    assert len(small) == p_small and len(set(small.tolist())) == p_small  # no repeats
    assert set(small.tolist()) <= set(big.tolist())  # nested
    assert small.tolist() == sorted(small.tolist())
    # balance: a class is short of another only when it has run out of examples
    got = torch.bincount(labels[small], minlength=len(counts)).numpy()
    avail = np.array(counts)
    for a in range(len(counts)):
        for b in range(len(counts)):
            if got[a] + 1 < got[b]:
                assert got[a] == avail[a]


def test_exact_balance_and_reproducibility():
    labels = torch.arange(1000) % 10
    idx = subset_indices(labels, P=250, seed=3)
    counts = torch.bincount(labels[idx], minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 250
    assert torch.equal(idx, subset_indices(labels.clone(), P=250, seed=3))
    other = subset_indices(labels, P=250, seed=4)
    assert not torch.equal(idx, other)
    assert torch.equal(torch.sort(subset_order(labels, seed=3)).values, torch.arange(1000))


def test_seeds_draw_fresh_examples():
    """Two seeds' subsets overlap about as much as independent draws (P^2 / N)."""
    labels = torch.arange(10000) % 10
    a = set(subset_indices(labels, P=1000, seed=0).tolist())
    b = set(subset_indices(labels, P=1000, seed=1).tolist())
    assert 50 < len(a & b) < 150  # expectation 100, sd about 9


@pytest.mark.parametrize("P", [0, 11, 2.5])
def test_bad_P(P):
    with pytest.raises(ParameterError, match="The 'P' parameter of subset_indices"):
        subset_indices(torch.arange(10) % 2, P=P, seed=0)
