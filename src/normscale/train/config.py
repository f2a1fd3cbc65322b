"""The configuration of one training run, typed and checked, and its identity.

Defaults follow the paper's experiments (SCIENCE.md 2.2): cross-entropy,
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
from normscale.errors import ParameterError

OPTIMIZERS = ("adam", "adamw", "sgd")
MODELS = ("cnn", "resnet", "vit")
AUGMENTATIONS = ("none", "crop_flip", "affine")  # the kinds of normscale.data.augment


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
        check_param(owner, "width", self.width, POSITIVE)
        check_param(owner, "depth", self.depth, POSITIVE)
        check_param(owner, "init_factor", self.init_factor, POSITIVE)
        check_param(owner, "augment", self.augment, Options(AUGMENTATIONS))

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
        """
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
