"""A check shared by the integration tests: stored norms against an independent measure."""

from __future__ import annotations

import math

import pytest

from normscale.norms import MEASURES


def assert_norms_equal(got, want, rel: float = 1e-8) -> None:
    """Equal to ``rel``; a log10 measure to the absolute error that ``rel`` gives its argument."""
    for k in MEASURES:
        tol = {"abs": rel / math.log(10)} if k.startswith("log10_") else {"rel": rel}
        assert got[k] == pytest.approx(want[k], **tol), k


@pytest.fixture
def one_thread():
    """Tiny models train faster on one thread, and far faster on a machine shared with others."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
