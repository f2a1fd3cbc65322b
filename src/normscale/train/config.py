"""The configuration of one training run, typed and checked, and its identity.

Defaults follow the paper's experiments (docs/science.md 2.2): cross-entropy,
batch 128, no weight decay, about 50 log-spaced logging points from epoch 1
to T. The model's learning rate, optimizer, T and init factor come from
``normscale.nets.paper_preset`` when the CLI is not told otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from normscale._validation import (
    NONNEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    Interval,
    Options,
    check_param,
)
from normscale.data.base import AUGMENTATIONS  # torch-free: the kinds of data.augment
from normscale.errors import ParameterError
from normscale.nets.presets import MODELS  # torch-free: the names nets.build knows

OPTIMIZERS = ("adam", "adamw", "sgd")
#: largest width or depth multiplier: width 16 is 256x the paper's weights per layer, and a
#: multiplier of 1e300 would allocate until the memory runs out instead of failing at once
MAX_MULTIPLIER = 16.0
UNTIL = ("end", "optimum")  # train the whole length T, or stop past the optimum (train.stop)
#: logging on norm growth in ``until="optimum"`` runs when ``log_growth`` is not set: 1.1
#: gives about 7 points per factor 2 of the norm, so at least 5 fall within a factor 2 of
#: lambda_opt on either side
DEFAULT_LOG_GROWTH = 1.1
#: fields added after run ids were first published: left out of the hash at their default,
#: so the runs of older stores keep their ids
_HASH_IF_SET = {"until": "end", "log_growth": None}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; two equal configs are the same run.

    Where the data live (``data_root``) and which device trains are not part
    of a run's identity: they are arguments of :func:`normscale.train.train`.

    Attributes
    ----------
    model : str
        ``"cnn"``, ``"resnet"`` or ``"vit"`` (:func:`normscale.nets.build`).
    dataset : str
        A name of :func:`normscale.data.load_dataset` (mnist, cifar10, digits, ...).
    P : int
        Training-set size: a class-balanced subset drawn by ``seed``.
    seed : int
        Controls the initialisation, the subset, the batch order, the
        augmentation and dropout.
    epochs, steps : int or None
        Training length T: exactly one of them is set. The logging points are
        log-spaced in the same unit.
    optimizer : str
        ``"adam"``, ``"adamw"`` or ``"sgd"`` (SGD with ``momentum``).
    lr, weight_decay, momentum : float
        Optimizer hyperparameters (``momentum`` only used by SGD).
    batch_size : int
        Mini-batch size (the paper: 128).
    n_log : int
        Number of log-spaced logging points from 1 to T (the paper: about 50).
    preset, width, depth, init_factor : str, float, float, float
        Passed to :func:`normscale.nets.build` (width and depth multipliers
        for small CPU runs; PyTorch's default init scaled by ``init_factor``).
    augment : str
        Augmentation of training batches, a kind of
        :func:`normscale.data.augment`: ``"none"``, ``"crop_flip"`` or ``"affine"``.
    until : str
        ``"end"``: train the whole length T. ``"optimum"``: stop once the run is
        clearly past the minimum of its test error against the norm
        (:mod:`normscale.train.stop`); ``epochs`` or ``steps`` is then the cap.
        Such a run logs at ``n_log`` log-spaced *steps* up to the cap (so the
        early descent within the first epoch is seen) and whenever the norm
        has grown by ``log_growth``.
    log_growth : float or None
        Also log a point whenever the watched norm (spectral complexity) has
        grown by this factor (> 1) since the last logged point. Default None:
        ``DEFAULT_LOG_GROWTH`` when ``until="optimum"``, else off.
    """

    model: str
    dataset: str
    P: int
    seed: int = 0
    epochs: int | None = None
    steps: int | None = None
    optimizer: str = "adam"
    lr: float = 1e-3  # the paper's Adam learning rate for CNN and ResNet
    weight_decay: float = 0.0  # the paper: none unless ablated
    momentum: float = 0.9  # SGD ablation
    batch_size: int = 128  # the paper
    n_log: int = 50  # the paper logs about 50 log-spaced epochs
    preset: str = "paper"
    width: float = 1.0
    depth: float = 1.0
    init_factor: float = 1.0
    augment: str = "none"  # the paper augments for ResNet only
    until: str = "end"  # "optimum": stop past the optimum, T is the cap
    log_growth: float | None = None  # log on norm growth by this factor (> 1)

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        check_param(owner, "model", self.model, Options(MODELS))
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ParameterError(
                f"The 'dataset' parameter of {owner} must be a non-empty str. "
                f"Got {self.dataset!r} instead.")
        check_param(owner, "P", self.P, POSITIVE_INT)
        check_param(owner, "seed", self.seed, Interval(Integral, 0, None, closed="left"))
        if (self.epochs is None) == (self.steps is None):
            raise ParameterError(
                f"{owner} needs exactly one of 'epochs' and 'steps'; got epochs={self.epochs!r}, "
                f"steps={self.steps!r}: set one and leave the other None.")
        if self.epochs is not None:
            check_param(owner, "epochs", self.epochs, POSITIVE_INT)
        if self.steps is not None:
            check_param(owner, "steps", self.steps, POSITIVE_INT)
        check_param(owner, "optimizer", self.optimizer, Options(OPTIMIZERS))
        check_param(owner, "lr", self.lr, POSITIVE)
        check_param(owner, "weight_decay", self.weight_decay, NONNEGATIVE)
        check_param(owner, "momentum", self.momentum, Interval(Real, 0, 1, closed="left"))
        check_param(owner, "batch_size", self.batch_size, POSITIVE_INT)
        check_param(owner, "n_log", self.n_log, POSITIVE_INT)
        multiplier = Interval(Real, 0, MAX_MULTIPLIER, closed="right")
        check_param(owner, "width", self.width, multiplier)
        check_param(owner, "depth", self.depth, multiplier)
        check_param(owner, "init_factor", self.init_factor, POSITIVE)
        check_param(owner, "augment", self.augment, Options(AUGMENTATIONS))
        check_param(owner, "until", self.until, Options(UNTIL))
        if self.log_growth is not None:
            check_param(owner, "log_growth", self.log_growth,
                        Interval(Real, 1, None, closed="neither"))

    @property
    def norm_log_factor(self) -> float | None:
        """The norm growth that triggers a logged point, or None (no norm-growth logging)."""
        if self.log_growth is not None:
            return float(self.log_growth)
        return DEFAULT_LOG_GROWTH if self.until == "optimum" else None

    @property
    def unit(self) -> str:
        """``"epoch"`` or ``"step"``: what T and the logging points count."""
        return "epoch" if self.epochs is not None else "step"

    @property
    def length(self) -> int:
        """T in :attr:`unit`."""
        return int(self.epochs if self.epochs is not None else self.steps)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON types (stored with every run)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; keys that are not fields are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def run_id(self) -> str:
        """The run's identity: 16 hex digits of the SHA-256 of the canonical config JSON.

        Floats are written by ``repr`` so ``1e-3`` and ``0.001`` are the same run.
        Fields added later (``until``, ``log_growth``) enter only when they are
        not at their default, so older runs keep their ids.
        """
        data = {k: v for k, v in self.to_dict().items()
                if not (k in _HASH_IF_SET and v == _HASH_IF_SET[k])}
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
