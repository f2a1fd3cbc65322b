"""The optimizers of the paper and its ablations: Adam, AdamW, SGD with momentum."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from normscale.train.config import TrainConfig

#: devices with PyTorch's fused (one kernel per step) implementations of all three optimizers
_FUSED_DEVICES = ("cpu", "cuda")


def make_optimizer(params: Iterable[torch.nn.Parameter], config: TrainConfig
                   ) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` with its lr and weight decay.

    ``adam`` adds weight decay to the gradient (L2 penalty), ``adamw`` decouples
    it (Loshchilov & Hutter), ``sgd`` uses heavy-ball ``momentum``.

    On the CPU and CUDA the update runs as PyTorch's fused kernel: the same
    arithmetic as the default per-tensor loop (the tests compare the three
    trajectories to 1e-6), in one pass over each tensor instead of about ten.
    On 2 CPU cores a step of the paper's CNN (batch 128) took 0.27-0.31 s
    against 0.32-0.42 s unfused.
    """
    params = list(params)
    fused = bool(params) and all(p.device.type in _FUSED_DEVICES and p.is_floating_point()
                                 for p in params)
    common = {"lr": config.lr, "weight_decay": config.weight_decay, "fused": fused}
    if config.optimizer == "adam":
        return torch.optim.Adam(params, **common)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, **common)
    return torch.optim.SGD(params, momentum=config.momentum, **common)
