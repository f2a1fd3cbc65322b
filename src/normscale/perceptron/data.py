"""Teacher-student data for the perceptron (docs/science.md 1.1), batched over seeds.

A seed fixes the teacher and an endless stream of examples; the data set of
size P = alpha * N is the first P examples of that stream, so the data sets
of one seed are nested across alpha. The stream is drawn in blocks of
``_BLOCK`` rows, each from its own generator, so the first P rows do not
depend on how many rows are drawn in all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from normscale._validation import POSITIVE, POSITIVE_INT, Options, check_param
from normscale.errors import ParameterError

INPUTS = ("binary", "gaussian")
_BLOCK = 1024  # rows per generator block of the example stream
_TEACHER, _EXAMPLES = 0, 1  # stream ids inside one seed


def _generator(seed: int, stream: int, block: int = 0) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), stream, block]).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0]) >> 1)


@dataclass(frozen=True)
class PerceptronData:
    """Training sets of several seeds, stacked on a leading seed axis.

    Attributes
    ----------
    z : Tensor of shape (S, P, N)
        The examples multiplied by their labels, ``z = y * x``: the stability
        of a student w with |w|^2 = N is ``Delta = z @ w / sqrt(N)``.
    teacher : Tensor of shape (S, N)
        The teachers, on the sphere |w*|^2 = N.
    seeds : tuple of int
        The seed of each training set, in the order of the leading axis; a
        seed fixes its teacher and examples on every device.
    alpha : float
        P / N.
    inputs : str
        ``"binary"`` (x in {-1, +1}^N) or ``"gaussian"`` (x ~ N(0, I)).
    """

    z: torch.Tensor
    teacher: torch.Tensor
    seeds: tuple[int, ...]
    alpha: float
    inputs: str

    @property
    def n(self) -> int:
        """N, the input dimension."""
        return self.z.shape[-1]

    @property
    def p(self) -> int:
        """P = round(alpha * N), the training examples per seed."""
        return self.z.shape[-2]


def n_examples(*, n: int, alpha: float) -> int:
    """P = round(alpha * N), at least 1."""
    return max(1, int(round(alpha * n)))


def make_data(*, n: int, alpha: float, seeds, inputs: str = "binary",
              dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
              ) -> PerceptronData:
    """Draw the teacher and P = alpha * N labelled examples for each seed (docs/science.md 1.1).

    Parameters
    ----------
    n : int
        Input dimension N >= 1.
    alpha : float
        Examples per dimension, > 0; P = round(alpha * N).
    seeds : iterable of int
        One training set per seed; the same seed gives the same teacher and
        the same examples on every device.
    inputs : {"binary", "gaussian"}
    dtype, device
        Where the tensors live (drawn on the CPU, then moved).

    Returns
    -------
    PerceptronData
    """
    check_param("make_data", "n", n, POSITIVE_INT)
    check_param("make_data", "alpha", alpha, POSITIVE)
    check_param("make_data", "inputs", inputs, Options(INPUTS))
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ParameterError("The 'seeds' parameter of make_data must not be empty.")
    p = n_examples(n=n, alpha=alpha)
    zs, teachers = [], []
    for seed in seeds:
        t = torch.randn(n, generator=_generator(seed, _TEACHER), dtype=torch.float64)
        t *= np.sqrt(n) / t.norm()
        blocks = []
        for b in range((p + _BLOCK - 1) // _BLOCK):
            g = _generator(seed, _EXAMPLES, b)
            rows = min(_BLOCK, p - b * _BLOCK)
            if inputs == "binary":
                x = torch.randint(0, 2, (_BLOCK, n), generator=g).to(torch.float64) * 2 - 1
            else:
                x = torch.randn(_BLOCK, n, generator=g, dtype=torch.float64)
            blocks.append(x[:rows])
        x = torch.cat(blocks)  # (P, N)
        y = torch.sign(x @ t)
        y[y == 0] = 1.0
        zs.append(y[:, None] * x)
        teachers.append(t)
    return PerceptronData(z=torch.stack(zs).to(device=device, dtype=dtype),
                          teacher=torch.stack(teachers).to(device=device, dtype=dtype),
                          seeds=seeds, alpha=float(alpha), inputs=inputs)


def overlap(w: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """R = w . w* / (|w| |w*|) along the last axis."""
    return (w * teacher).sum(-1) / (w.norm(dim=-1) * teacher.norm(dim=-1))


def generalization_error(r: torch.Tensor | np.ndarray | float):
    """eps = arccos(R) / pi (docs/science.md 1.1): exact for Gaussian inputs, N -> inf if binary."""
    if isinstance(r, torch.Tensor):
        return torch.arccos(r.clamp(-1.0, 1.0)) / np.pi
    return np.arccos(np.clip(r, -1.0, 1.0)) / np.pi
