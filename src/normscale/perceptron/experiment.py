"""A perceptron experiment: fixed-norm curves and GD trajectories as one long table.

One row per (mode, alpha, seed, lambda) for ``mode = "fixed"`` and per
(mode, alpha, seed, recorded step) for ``mode = "gd"``. Columns:

``alpha, seed, lam, eps, R, train_loss, train_error, mode, eps_hat, eps0,
converged, grad_norm, n_iter, step, n, inputs``

``eps_hat = eps / eps0`` with ``eps0`` the Hebb error *of the same sample*
(the exact lambda -> 0 limit of that sample's fixed-norm curve, so finite-size
noise shared by the curve and its limit cancels). Fixed rows have
``step = -1``; GD rows have ``converged`` true, ``grad_norm`` NaN, ``n_iter =
step``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from normscale._validation import POSITIVE, POSITIVE_INT, Options, check_array, check_param
from normscale.errors import ParameterError
from normscale.perceptron.data import INPUTS, generalization_error, make_data, n_examples, overlap
from normscale.perceptron.fixed import copy_bytes, fixed_norm_path
from normscale.perceptron.gd import gradient_descent
from normscale.perceptron.rules import hebb

MODES = ("fixed", "gd")
#: share of the machine's memory (or of the GPU's) that one seed's P x N inputs may take;
#: the solver needs a few P- and N-vectors and an N x N matrix on top
MEMORY_SHARE = 0.5
COLUMNS = ["alpha", "seed", "lam", "eps", "R", "train_loss", "train_error", "mode", "eps_hat",
           "eps0", "converged", "grad_norm", "n_iter", "step", "n", "inputs"]


@dataclass(frozen=True)
class PerceptronConfig:
    """Everything that defines a perceptron run (saved beside its results).

    Attributes
    ----------
    alphas : tuple of float
        The values of alpha = P / N to run, each > 0.
    lams : tuple of float
        The norms lambda of the fixed-norm path (mode ``"fixed"``), each > 0;
        40 log-spaced from 0.01 to 300 by default.
    n : int
        The input dimension N.
    seeds : tuple of int
        One training set (teacher and examples) per seed.
    modes : tuple of str
        What to run on each training set: ``"fixed"`` (the fixed-norm path
        over ``lams``) and/or ``"gd"`` (free-norm gradient descent).
    inputs : str
        ``"binary"`` (x in {-1, +1}^N) or ``"gaussian"`` (x ~ N(0, I)).
    device : str
        ``"cpu"`` or ``"cuda"`` (refused when no CUDA device is available).
    dtype : str
        The floating-point type of the computation: ``"float64"`` or ``"float32"``.
    extra : dict
        Free-form entries kept with the config; no part of the run reads them.
    """

    alphas: tuple[float, ...]
    lams: tuple[float, ...] = tuple(np.geomspace(0.01, 300, 40))
    n: int = 1000
    seeds: tuple[int, ...] = (0,)
    modes: tuple[str, ...] = ("fixed",)
    inputs: str = "binary"
    device: str = "cpu"
    dtype: str = "float64"
    gtol: float = 1e-8  # |grad on the sphere| / |grad|: bounds the error on R (fixed.py notes)
    max_iter: int = 100  # Newton iterations per lambda
    steps: int = 10_000  # GD steps
    lr: float | None = None  # GD learning rate; None = 1/(1 + 1/sqrt(alpha))^2
    init_norm: float = 1e-3  # lambda(0) of GD
    n_record: int = 60  # log-spaced GD records
    max_batch_bytes: int = 2 ** 30  # seeds are batched while z = y x fits in this
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "perceptron"
        check_array(owner, "alpha", self.alphas, POSITIVE)
        check_array(owner, "lam", self.lams, POSITIVE)
        check_param(owner, "n", self.n, POSITIVE_INT)
        check_param(owner, "inputs", self.inputs, Options(INPUTS))
        check_param(owner, "device", self.device, Options(("cpu", "cuda")))
        check_param(owner, "dtype", self.dtype, Options(("float64", "float32")))
        for m in self.modes:
            check_param(owner, "mode", m, Options(MODES))
        if not self.seeds:
            raise ParameterError("The 'seeds' parameter of perceptron must not be empty.")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ParameterError("The 'device' parameter of perceptron is 'cuda' but no CUDA "
                                 "device is available; use --device cpu.")
        check_memory(self)


def memory_limit(device: str) -> int | None:
    """Bytes one seed's data may take: ``MEMORY_SHARE`` of the RAM (or of the GPU's memory)."""
    try:
        if device == "cuda":
            total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        else:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError, RuntimeError):  # not POSIX: no bound known
        return None
    return int(MEMORY_SHARE * total)


def check_memory(cfg: PerceptronConfig) -> None:
    """Refuse, before anything is allocated, an (alpha, n) whose P x N inputs cannot fit.

    One seed holds P = alpha * N inputs of N values (drawn in float64, then
    cast to ``dtype``), the solver's working copies of them
    (:func:`normscale.perceptron.fixed.copy_bytes`) and an N x N matrix; the
    message states what that needs and the limit (:func:`memory_limit`).
    """
    limit = memory_limit(cfg.device)
    if limit is None:
        return
    alpha = max(cfg.alphas)
    p = n_examples(n=cfg.n, alpha=alpha)
    per_value = (8 if cfg.dtype == "float64" else 4) + (
        copy_bytes(dtype=cfg.dtype, gtol=cfg.gtol, inputs=cfg.inputs, device=cfg.device)
        if "fixed" in cfg.modes else 0)
    need = p * cfg.n * per_value + 8 * cfg.n ** 2
    if need > limit:
        raise ParameterError(
            f"alpha={alpha:g} with n={cfg.n} needs P x N = {p:.3g} x {cfg.n} inputs, "
            f"{need / 2**30:.3g} GiB in {cfg.dtype} with the solver's copies; the limit is "
            f"{limit / 2**30:.3g} GiB ({MEMORY_SHARE:g} of this machine's {cfg.device} memory): "
            "lower alpha or n")


def seed_batches(cfg: PerceptronConfig, alpha: float) -> list[tuple[int, ...]]:
    """The seeds of ``cfg`` in batches whose (S, P, N) tensor fits in ``max_batch_bytes``."""
    per_seed = n_examples(n=cfg.n, alpha=alpha) * cfg.n * (8 if cfg.dtype == "float64" else 4)
    size = max(1, cfg.max_batch_bytes // per_seed)
    return [cfg.seeds[i:i + size] for i in range(0, len(cfg.seeds), size)]


def n_blocks(cfg: PerceptronConfig) -> int:
    """How many times :func:`run_perceptron` calls ``on_step``."""
    return len(cfg.modes) * sum(len(seed_batches(cfg, a)) for a in cfg.alphas)


def run_perceptron(cfg: PerceptronConfig, *, on_step: Callable[[str], None] | None = None
                   ) -> pd.DataFrame:
    """Run every (mode, alpha) of ``cfg``; return the long table described in the module notes.

    ``on_step(message)`` is called after each (alpha, seed batch, mode) block.
    """
    dtype = getattr(torch, cfg.dtype)
    frames = []
    for alpha in cfg.alphas:
        for seeds in seed_batches(cfg, alpha):
            data = make_data(n=cfg.n, alpha=float(alpha), seeds=seeds, inputs=cfg.inputs,
                             dtype=dtype, device=cfg.device)
            eps0 = generalization_error(overlap(hebb(data), data.teacher)).cpu().numpy()
            base = {"alpha": float(alpha), "n": cfg.n, "inputs": cfg.inputs}
            if "fixed" in cfg.modes:
                path = fixed_norm_path(data, lams=cfg.lams, gtol=cfg.gtol, max_iter=cfg.max_iter)
                shape = path.eps.shape
                frames.append(pd.DataFrame({
                    **base, "seed": np.repeat(seeds, shape[1]),
                    "lam": np.tile(path.lams, shape[0]), "eps": path.eps.ravel(),
                    "R": path.r.ravel(), "train_loss": path.train_loss.ravel(),
                    "train_error": path.train_error.ravel(), "mode": "fixed",
                    "eps0": np.repeat(eps0, shape[1]), "converged": path.converged.ravel(),
                    "grad_norm": path.grad_norm.ravel(), "n_iter": path.n_iter.ravel(),
                    "step": -1}))
                if on_step:
                    bad = int((~path.converged).sum())
                    on_step(f"fixed alpha={alpha:g} seeds={list(seeds)}: "
                            f"{path.converged.size - bad}/{path.converged.size} converged")
            if "gd" in cfg.modes:
                gdp = gradient_descent(data, steps=cfg.steps, lr=cfg.lr,
                                       init_norm=cfg.init_norm, n_record=cfg.n_record)
                shape = gdp.eps.shape
                frames.append(pd.DataFrame({
                    **base, "seed": np.repeat(seeds, shape[1]), "lam": gdp.lam.ravel(),
                    "eps": gdp.eps.ravel(), "R": gdp.r.ravel(),
                    "train_loss": gdp.train_loss.ravel(), "train_error": gdp.train_error.ravel(),
                    "mode": "gd", "eps0": np.repeat(eps0, shape[1]), "converged": True,
                    "grad_norm": np.nan, "n_iter": np.tile(gdp.steps, shape[0]),
                    "step": np.tile(gdp.steps, shape[0])}))
                if on_step:
                    on_step(f"gd alpha={alpha:g} seeds={list(seeds)}: {cfg.steps} steps, "
                            f"lr={gdp.lr:.3g}, final lambda={gdp.lam[:, -1].mean():.3g}")
    df = pd.concat(frames, ignore_index=True)
    df["eps_hat"] = df["eps"] / df["eps0"]
    return df[COLUMNS]
