"""Seed ensembles: K runs of one configuration trained together as one vectorised model.

A scaling-law row needs many seeds of networks too small to fill a device
one at a time. :func:`train_ensemble` stacks the K members' weights
(``torch.func.stack_module_state``) and trains them with one
``vmap``-ed ``functional_call`` per step: each member keeps its own
initialisation, training subset, batch order and augmentation, drawn from
exactly the generators a lone run of :func:`~normscale.train.train` uses
(:func:`~normscale.train.loop.init_run`, :func:`~normscale.train.loop.epoch_order`,
:func:`~normscale.train.loop.augment_generator`), so a member reproduces the
run trained alone with its seed (to rounding: batched kernels sum in another
order).

An ensemble is the batched case of the one training loop
(:func:`~normscale.train.loop.run_curves`): this module supplies only the
engine that steps, measures and evaluates K stacked members (``_Batched``);
the schedule, the logging decision, the divergence check, the stop rule
and the result assembly are those of a lone run
(:class:`~normscale.train.curve.Curve`), one per member. So each member
logs at its own points (the shared log-spaced ones, and its own norm-growth
points), diverges and stops where the lone run does.

The loss is the sum over members of each member's mean cross-entropy, so
each member's gradient is its own; Adam, AdamW and SGD act elementwise, so
one ``torch.optim`` optimizer over the stacked tensors keeps per-member
state and gives per-member updates. BatchNorm running statistics are
stacked buffers, updated per member. A member that diverges or stops is
frozen (its weights and buffers are restored after each step) and the
others continue.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from normscale.norms.batched import BatchedNormTracker
from normscale.store.schema import Record
from normscale.train import loop
from normscale.train.config import TrainConfig
from normscale.train.curve import Curve, TrainResult
from normscale.train.loop import (
    _EVAL_BATCH,
    augment_generator,
    derive_seed,
    epoch_order,
    init_run,
    load_data,
    run_curves,
    train_eval_indices,
)
from normscale.train.optim import make_optimizer
from normscale.train.schedule import Schedule
from normscale.train.seed_groups import check_ensemble, ensemble_id


@dataclass(frozen=True)
class EnsembleResult:
    """The outcome of :func:`train_ensemble`.

    Attributes
    ----------
    ensemble_id : str
        Shared by the members in a store (:func:`ensemble_id`).
    members : tuple of TrainResult
        One per config, in the order given; each as :func:`train` would
        return it, except ``wall_time``, the ensemble's.
    wall_time : float
        Seconds of training and logging of the whole ensemble.
    """

    ensemble_id: str
    members: tuple[TrainResult, ...]
    wall_time: float


def limitations(config: TrainConfig) -> str | None:
    """Why members of ``config`` would not reproduce lone runs exactly, or None.

    Dropout draws from the global generator: under ``vmap`` each member gets
    its own draws, but not those of a lone run (same distribution, other
    samples). BatchNorm is handled (per-member running statistics).
    """
    _, nets, _ = loop._components()
    shape = {"in_channels": 1, "image_size": 32, "num_classes": 10}
    with torch.device("meta"):
        model = nets.build(config.model, **shape, preset=config.preset, width=config.width,
                           depth=config.depth, init_factor=config.init_factor,
                           dataset=config.dataset)
    dropout = [m for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
    if dropout:
        return (f"{config.model} on {config.dataset} uses dropout (p={dropout[0].p:g}): the "
                "members draw their own dropout masks, not those of runs trained alone, so "
                "they match lone runs in distribution only")
    return None


class _Batched:
    """The engine of a seed ensemble: the K members' stacked weights, trained by one
    ``vmap``-ed ``functional_call`` per step."""

    def __init__(self, configs: Sequence[TrainConfig], *, data_root: str | Path | None,
                 download: bool, device: torch.device, schedule: Schedule) -> None:
        c0, K = configs[0], len(configs)
        self.configs, self.schedule, self.device = configs, schedule, device
        data = self.data = loop._components()[0]  # the seam tests stand in for
        info, train_full, test, shape = load_data(c0, data_root, download)
        members = [init_run(c, train_full.labels, shape, device) for c in configs]
        idx = torch.stack([i for i, _ in members])  # (K, P)
        models = [m for _, m in members]
        # (K, ...) leaves, requires_grad for the parameters
        self.params, self.buffers = stack_module_state(models)
        self.base = copy.deepcopy(models[0]).to("meta")  # the architecture only
        self.tracker = BatchedNormTracker(models[0], {**self.buffers, **self.params},
                                          reference="init")
        self.optimizer = make_optimizer(self.params.values(), c0)  # elementwise: per member
        del models, members
        torch.manual_seed(derive_seed(c0.seed, "dropout"))
        P = c0.P
        self.info = info
        train_raw = train_full.images[idx.flatten()].to(device)  # (K * P, C, H, W)
        self.train_raw = train_raw.view(K, P, *train_raw.shape[1:])  # (K, P, C, H, W)
        self.train_y = train_full.labels[idx.flatten()].view(K, P).to(device)  # (K, P)
        self.rows = torch.arange(K, device=device)[:, None]  # (K, 1) row index for gathers
        # each member evaluates the sample of its subset its lone run evaluates
        sample = torch.stack([train_eval_indices(c.seed, P) for c in configs]).to(device)
        self.eval_x = data.normalize(self.train_raw[self.rows, sample].flatten(0, 1), info
                                     ).view(K, sample.shape[1], *train_raw.shape[1:])  # (K, S, ..)
        self.eval_y = self.train_y[self.rows, sample]  # (K, S)
        self.test_x = data.normalize(test.images.to(device), info)  # (N_test, C, H, W)
        self.test_y = test.labels.to(device)
        self.perm: torch.Tensor | None = None
        self.base.train()

    def _forward(self, p, b, x):
        return functional_call(self.base, (p, b), (x,))

    def step(self, step: int, alive: list[bool]) -> torch.Tensor:
        c0, B = self.configs[0], self.configs[0].batch_size
        epoch_index, batch = divmod(step, self.schedule.n_batches)
        if self.perm is None or batch == 0:
            self.perm = torch.stack([epoch_order(c.seed, epoch_index, c0.P)
                                     for c in self.configs]).to(self.device)
        bidx = self.perm[:, batch * B:(batch + 1) * B]  # (K, b)
        x = self.train_raw[self.rows, bidx]  # (K, b, C, H, W) in [0, 1]
        if c0.augment != "none":
            x = torch.stack([self.data.augment(x[k], c0.augment, generator=augment_generator(
                c.seed, step, self.device)) for k, c in enumerate(self.configs)])
        x = self.data.normalize(x.flatten(0, 1), self.info).view_as(x)
        tensors = [*self.params.values(), *self.buffers.values()]
        frozen = ~torch.tensor(alive, device=self.device)
        if bool(frozen.any()):  # a stopped member keeps its weights and buffers as they are
            kept = [t.detach()[frozen].clone() for t in tensors]
        logits = vmap(self._forward, randomness="different")(
            self.params, self.buffers, x)  # (K, b, classes)
        y = self.train_y[self.rows, bidx]  # (K, b)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(),
                               reduction="none").view(y.shape).mean(1)  # (K,) each member's
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # the sum: each member's gradient is its own
        self.optimizer.step()
        if bool(frozen.any()):
            with torch.no_grad():
                for t, old in zip(tensors, kept, strict=True):
                    t[frozen] = old
        return loss.detach()

    def finite(self, members: list[int]) -> list[bool]:
        sel = torch.as_tensor(members, device=self.device)
        ok = torch.ones(len(members), dtype=torch.bool, device=self.device)
        for t in (*self.params.values(), *self.buffers.values()):
            if t.is_floating_point():
                ok &= torch.isfinite(t.detach()[sel].flatten(1)).all(1)
        return ok.tolist()

    def norms(self, members: list[int]) -> list[dict[str, float]]:
        return self.tracker.measure(members=members)

    def _evaluate(self, x: torch.Tensor, y: torch.Tensor, shared: bool, sel: torch.Tensor
                  ) -> tuple[list[float], list[float]]:
        """Error and mean loss of members ``sel`` on x: (N, ...) if shared else (K, N, ...)."""
        self.base.eval()
        p = {k: v[sel] for k, v in self.params.items()}
        b = {k: v[sel] for k, v in self.buffers.items()}
        k, n = len(sel), y.shape[-1]
        chunk = max(1, _EVAL_BATCH // k)
        wrong = torch.zeros(k, dtype=torch.long, device=self.device)
        loss = torch.zeros(k, dtype=torch.float64, device=self.device)
        run = vmap(self._forward, in_dims=(0, 0, None if shared else 0))
        with torch.no_grad(), torch.random.fork_rng(
                devices=[self.device] if self.device.type == "cuda" else []):
            for i in range(0, n, chunk):
                xi = x[i:i + chunk] if shared else x[sel, i:i + chunk]
                yi = (y[i:i + chunk].expand(k, -1) if shared else y[sel, i:i + chunk])  # (k, b)
                logits = run(p, b, xi)  # (k, b, classes)
                loss += F.cross_entropy(logits.double().flatten(0, 1), yi.flatten(),
                                        reduction="none").view(yi.shape).sum(1)
                wrong += (logits.argmax(-1) != yi).sum(1)
        self.base.train()
        return (wrong.double() / max(n, 1)).tolist(), (loss / max(n, 1)).tolist()

    def evaluate(self, members: list[int]) -> tuple[list[float], ...]:
        sel = torch.as_tensor(members, device=self.device)
        test_error, test_loss = self._evaluate(self.test_x, self.test_y, True, sel)
        train_error, train_loss = self._evaluate(self.eval_x, self.eval_y, False, sel)
        return test_error, test_loss, train_error, train_loss


def train_ensemble(configs: Sequence[TrainConfig], *, data_root: str | Path | None = None,
                   download: bool = False, device: str | torch.device = "cpu",
                   callback: Callable[[int, Record], None] | None = None,
                   progress: Callable[[], None] | None = None) -> EnsembleResult:
    """Train the K runs ``configs`` (one config, K seeds) as one vectorised ensemble.

    Parameters
    ----------
    configs : sequence of TrainConfig
        The members; they differ only by ``seed`` (:func:`check_ensemble`).
    data_root, download, device :
        As in :func:`~normscale.train.train`; the data set is loaded once.
    callback : callable, optional
        Called as ``callback(member_index, record)`` with each logged point of
        each member as soon as it is measured.
    progress : callable, optional
        Called once per epoch (or per step when ``steps`` is set).

    Returns
    -------
    EnsembleResult
        One :class:`~normscale.train.TrainResult` per member: ``"finished"``,
        or ``"diverged"`` with the same message and at the same point as the
        run trained alone.

    Notes
    -----
    The training of docs/science.md 2.2 (see :func:`~normscale.train.train`) for
    each member. Checkpoints are not written: an interrupted ensemble starts
    over. Evaluation runs the members side by side on ``1024 // K`` images
    at a time, so memory stays that of one model's evaluation.
    """
    configs = check_ensemble(configs)
    device = torch.device(device)
    schedule = Schedule.of(configs[0])
    engine = _Batched(configs, data_root=data_root, download=download, device=device,
                      schedule=schedule)
    n_test = int(engine.test_y.shape[0])
    curves = [Curve(c, n_test=n_test,
                    callback=None if callback is None else partial(callback, k))
              for k, c in enumerate(configs)]
    t0 = time.perf_counter()

    def clock() -> float:
        return time.perf_counter() - t0

    step = run_curves(engine, curves, schedule, clock=clock, progress=progress)
    wall = clock()
    return EnsembleResult(
        ensemble_id=ensemble_id(configs), wall_time=wall,
        members=tuple(c.result(step=step, n_batches=schedule.n_batches, wall_time=wall)
                      for c in curves))
