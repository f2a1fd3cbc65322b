"""The optimizers of the paper and its ablations: Adam, AdamW, SGD with momentum."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from normscale.train.config import TrainConfig


def make_optimizer(params: Iterable[torch.nn.Parameter], config: TrainConfig
                   ) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` with its lr and weight decay.

    ``adam`` adds weight decay to the gradient (L2 penalty), ``adamw`` decouples
    it (Loshchilov & Hutter), ``sgd`` uses heavy-ball ``momentum``.
    """
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)
