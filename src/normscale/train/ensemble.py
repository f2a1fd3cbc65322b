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

The loss is the sum over members of each member's mean cross-entropy, so
each member's gradient is its own; Adam, AdamW and SGD act elementwise, so
one ``torch.optim`` optimizer over the stacked tensors keeps per-member
state and gives per-member updates. BatchNorm running statistics are
stacked buffers, updated per member. A member whose loss becomes NaN or
infinite is marked diverged at the point a lone run would notice, its
weights are frozen from then on, and the others continue. With
``until="optimum"`` each member has its own
:class:`~normscale.train.stop.StopRule`; a member that stops is frozen the
same way. Norm-growth logging (``log_growth``) logs every member still
training whenever one of them has grown by the factor, so members get a
superset of the points they would get alone.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from normscale.norms.batched import BatchedNormTracker
from normscale.store.schema import Record
from normscale.train import loop
from normscale.train.cells import check_ensemble, ensemble_id
from normscale.train.config import TrainConfig
from normscale.train.loop import (
    _EVAL_BATCH,
    TrainResult,
    augment_generator,
    derive_seed,
    epoch_order,
    init_run,
    load_data,
)
from normscale.train.optim import make_optimizer
from normscale.train.schedule import log_points
from normscale.train.stop import StopRule, watched_norm


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
    c0, K = configs[0], len(configs)
    device = torch.device(device)
    data = loop._components()[0]  # the seam tests stand in for

    info, train_full, test, shape = load_data(c0, data_root, download)
    members = [init_run(c, train_full.labels, shape, device) for c in configs]
    idx = torch.stack([i for i, _ in members])  # (K, P)
    models = [m for _, m in members]
    params, buffers = stack_module_state(models)  # (K, ...) leaves, requires_grad for params
    base = copy.deepcopy(models[0]).to("meta")  # the architecture; weights come from the stack
    tracker = BatchedNormTracker(models[0], {**buffers, **params}, reference="init")
    optimizer = make_optimizer(params.values(), c0)  # elementwise: per-member state
    del models, members
    torch.manual_seed(derive_seed(c0.seed, "dropout"))

    P, B = c0.P, c0.batch_size
    train_raw = train_full.images[idx.flatten()].to(device)  # (K * P, C, H, W)
    train_raw = train_raw.view(K, P, *train_raw.shape[1:])  # (K, P, C, H, W)
    train_x = data.normalize(train_raw.flatten(0, 1), info).view_as(train_raw)
    train_y = train_full.labels[idx.flatten()].view(K, P).to(device)  # (K, P)
    test_x = data.normalize(test.images.to(device), info)  # (N_test, C, H, W)
    test_y = test.labels.to(device)

    def forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    def evaluate(x: torch.Tensor, y: torch.Tensor, shared: bool, sel: torch.Tensor
                 ) -> tuple[list[float], list[float]]:
        """Error and mean loss of members ``sel`` on x: (N, ...) if shared else (K, N, ...)."""
        base.eval()
        p = {k: v[sel] for k, v in params.items()}
        b = {k: v[sel] for k, v in buffers.items()}
        k = len(sel)
        n = y.shape[-1]
        chunk = max(1, _EVAL_BATCH // k)
        wrong = torch.zeros(k, dtype=torch.long, device=device)
        loss = torch.zeros(k, dtype=torch.float64, device=device)
        run = vmap(forward, in_dims=(0, 0, None if shared else 0))
        with torch.no_grad(), torch.random.fork_rng(
                devices=[device] if device.type == "cuda" else []):
            for i in range(0, n, chunk):
                xi = x[i:i + chunk] if shared else x[sel, i:i + chunk]
                yi = (y[i:i + chunk].expand(k, -1) if shared else y[sel, i:i + chunk])  # (k, b)
                logits = run(p, b, xi)  # (k, b, classes)
                loss += F.cross_entropy(logits.double().flatten(0, 1), yi.flatten(),
                                        reduction="none").view(yi.shape).sum(1)
                wrong += (logits.argmax(-1) != yi).sum(1)
        base.train()
        return (wrong.double() / max(n, 1)).tolist(), (loss / max(n, 1)).tolist()

    n_batches = math.ceil(P / B)
    per_unit = n_batches if c0.unit == "epoch" else 1
    total = c0.length * per_unit
    if c0.until == "optimum":  # as train(): log-spaced in steps
        log_steps = set(log_points(total, c0.n_log))
    else:
        log_steps = {p * per_unit for p in log_points(c0.length, c0.n_log)}
    growth = c0.norm_log_factor
    rules = [StopRule(n_test=int(test_y.shape[0])) for _ in configs] \
        if c0.until == "optimum" else None
    last_norm = [math.nan] * K  # the watched norm at each member's last logged point
    kind: str | None = None
    records: list[list[Record]] = [[] for _ in configs]
    status: list[str | None] = [None] * K  # None while training, then finished / diverged
    errors: list[str | None] = [None] * K
    reasons: list[str | None] = [None] * K
    stopped = [0] * K  # the step a diverged or stopped member stopped at
    alive = torch.ones(K, dtype=torch.bool)
    loss_sum = torch.zeros(K, device=device)
    members_k = torch.arange(K, device=device)[:, None]  # (K, 1) row index for gathers
    step, perm = 0, None
    t0 = time.perf_counter()

    def diverge(k: int, message: str) -> None:
        status[k], errors[k], stopped[k], reasons[k] = "diverged", message, step, "diverged"
        alive[k] = False

    def stop(k: int, reason: str) -> None:
        status[k], stopped[k], reasons[k] = "finished", step, reason
        alive[k] = False

    base.train()
    while step < total and bool(alive.any()):
        epoch_index, batch = divmod(step, n_batches)
        if perm is None or batch == 0:
            perm = torch.stack([epoch_order(c.seed, epoch_index, P) for c in configs]).to(device)
        bidx = perm[:, batch * B:(batch + 1) * B]  # (K, b)
        x = train_raw[members_k, bidx]  # (K, b, C, H, W) in [0, 1]
        if c0.augment != "none":
            x = torch.stack([data.augment(x[k], c0.augment,
                                          generator=augment_generator(c.seed, step, device))
                             for k, c in enumerate(configs)])
        x = data.normalize(x.flatten(0, 1), info).view_as(x)
        frozen = ~alive.to(device)
        if bool(frozen.any()):  # a diverged member keeps its weights and buffers as they are
            kept = [t.detach()[frozen].clone() for t in [*params.values(), *buffers.values()]]
        logits = vmap(forward, randomness="different")(params, buffers, x)  # (K, b, classes)
        y = train_y[members_k, bidx]  # (K, b)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(),
                               reduction="none").view(y.shape).mean(1)  # (K,) each member's mean
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # the sum: each member's gradient is its own
        optimizer.step()
        if bool(frozen.any()):
            with torch.no_grad():
                for t, old in zip([*params.values(), *buffers.values()], kept, strict=True):
                    t[frozen] = old
        step += 1
        loss_sum += loss.detach()

        logged = step in log_steps
        if not logged and growth is not None and step % max(1, step // 32) == 0:
            sel = torch.nonzero(alive).flatten().tolist()
            now = tracker.measure(members=sel)
            kind = kind or (watched_norm(dict(now[0])) if now else None)
            logged = kind is not None and any(
                now[j][kind] >= growth * last_norm[k] for j, k in enumerate(sel))
        if progress is not None and step % per_unit == 0:
            progress()
        if logged or step % n_batches == 0:
            finite = torch.isfinite(loss_sum).cpu()
            for k in torch.nonzero(alive & ~finite).flatten().tolist():
                diverge(k, f"the training loss became {float(loss_sum[k])} before step {step} "
                           f"(epoch {step / n_batches:g})")
            loss_sum.zero_()
        if logged and bool(alive.any()):
            sel = torch.nonzero(alive).flatten()
            sel_dev = sel.to(device)
            test_error, test_loss = evaluate(test_x, test_y, True, sel_dev)
            train_error, train_loss = evaluate(train_x, train_y, False, sel_dev)
            norms = tracker.measure(members=sel.tolist())
            wall = time.perf_counter() - t0
            for j, k in enumerate(sel.tolist()):
                if not train_loss[j] <= loop.DIVERGED_LOSS:  # NaN, inf, or exploded
                    diverge(k, f"the training loss is {train_loss[j]:.3g} at step {step} "
                               f"(epoch {step / n_batches:g}), above {loop.DIVERGED_LOSS:g}")
                    continue
                record = Record(epoch=step / n_batches, step=step, test_error=test_error[j],
                                test_loss=test_loss[j], train_error=train_error[j],
                                train_loss=train_loss[j], wall_time=wall, norms=norms[j])
                records[k].append(record)
                kind = kind or watched_norm(dict(record.norms))
                last_norm[k] = record.norms.get(kind, math.nan) if kind else math.nan
                if callback is not None:
                    callback(k, record)
                reason = rules[k].update(record) if rules is not None else None
                if reason is not None:
                    stop(k, reason)

    wall = time.perf_counter() - t0
    results = []
    for k, c in enumerate(configs):
        last = stopped[k] if status[k] is not None else step
        reason = reasons[k] or ("max_epochs" if rules is not None else "end")
        results.append(TrainResult(c.run_id, c, status[k] or "finished", errors[k],
                                   tuple(records[k]), last, last / n_batches, wall, None,
                                   reason))
    return EnsembleResult(ensemble_id=ensemble_id(configs), members=tuple(results),
                          wall_time=wall)

