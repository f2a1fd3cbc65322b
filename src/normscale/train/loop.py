"""Training with norm tracking: the loop of docs/science.md 2.2.

The training subset and the test set sit on the device as whole tensors; a
batch is a slice of a per-epoch permutation of indices, augmented and
normalised as one tensor. At log-spaced points (:func:`log_points`) the loop
measures the test and training error and loss and every norm of
:mod:`normscale.norms`, and hands the :class:`~normscale.store.Record` to a
callback (a store, a sweep driver, a list). With a checkpoint path it saves
its whole state after each logged point, so an interrupted run continues
from there and re-logs the same points.

Randomness is a pure function of the seed: the initialisation, the subset,
each epoch's batch order and each step's augmentation draw from generators
seeded by ``(seed, purpose, index)``; only dropout uses the global generator,
whose state travels in the checkpoint. A resumed run therefore trains
exactly as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from normscale.errors import NormscaleError, ParameterError
from normscale.store.schema import Record
from normscale.train.checkpoint import load_checkpoint, save_checkpoint
from normscale.train.config import TrainConfig
from normscale.train.optim import make_optimizer
from normscale.train.schedule import log_points
from normscale.train.stop import PLATEAU_RTOL, StopRule, watched_norm

#: images per forward pass when evaluating (speed, not statistics): on 2 CPU threads the
#: width-1/4 CNN on MNIST evaluates 5,600 images/s in batches of 256, 3,600 in batches of 1024
_EVAL_BATCH = 256
#: the same on a GPU, where larger batches are faster
_EVAL_BATCH_CUDA = 4096


#: a logged training loss above this (nats) counts as diverged, as NaN and inf do: chance
#: level is ln(classes) <= 4.6, so 1e3 means logits of order 1e3 (an lr of 1e6 reaches 6e34)
DIVERGED_LOSS = 1e3


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    run_id : str
        ``config.run_id``.
    config : TrainConfig
    status : str
        ``"finished"`` or ``"diverged"`` (a NaN or infinite loss ended the run).
    stop_reason : str or None
        Why the run ended, one of :data:`normscale.train.stop.STOP_REASONS`:
        ``"past_optimum"``, ``"max_epochs"`` (the cap of an ``until="optimum"``
        run ran out), ``"plateau"``, ``"diverged"`` or ``"end"`` (a fixed-length
        run trained its length).
    error : str or None
        Why the run diverged.
    records : tuple of Record
        Every logged point, the ones before a resume included, in step order.
    step : int
        Optimizer steps taken.
    epoch : float
        Passes over the training subset taken.
    wall_time : float
        Seconds of training, summed over resumes.
    resumed_from : int or None
        The step of the checkpoint the run continued from.
    """

    run_id: str
    config: TrainConfig
    status: str
    error: str | None
    records: tuple[Record, ...]
    step: int
    epoch: float
    wall_time: float
    resumed_from: int | None = None
    stop_reason: str | None = None

    @property
    def stayed_on_plateau(self) -> bool:
        """True when the training loss never moved off its first logged value.

        At 3 logged points or more, every training loss within
        ``PLATEAU_RTOL`` of the first: the network still predicts (close to)
        the same distribution for every input, as on the initial plateau of a
        small initialisation (the paper's init factor 0.05 for CNN-MNIST can
        hold a run there for hundreds to thousands of steps, docs/train.md).
        """
        losses = [r.train_loss for r in self.records]
        return len(losses) >= 3 and all(
            abs(v - losses[0]) <= PLATEAU_RTOL * abs(losses[0]) for v in losses)



@dataclass(frozen=True)
class _Setup:
    """Data on the device, the model, its norm tracker and optimizer."""

    info: Any
    train_raw: torch.Tensor  # (P, C, H, W) in [0, 1], augmented per batch
    train_x: torch.Tensor  # (P, C, H, W) normalised, for evaluation
    train_y: torch.Tensor  # (P,)
    test_x: torch.Tensor  # (N_test, C, H, W) normalised
    test_y: torch.Tensor  # (N_test,)
    model: torch.nn.Module
    tracker: Any
    optimizer: torch.optim.Optimizer
    shape: dict[str, int]  # in_channels, image_size, num_classes
    normalize: Callable  # normscale.data.normalize
    augment: Callable  # normscale.data.augment


def derive_seed(seed: int, purpose: str, index: int = 0) -> int:
    """A 63-bit seed for one use of randomness, independent across purposes and indices."""
    digest = hashlib.sha256(f"{seed}:{purpose}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _generator(seed: int, purpose: str, index: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive_seed(seed, purpose, index))


def _components() -> tuple[Any, Any, Any]:
    """The data, nets and norms modules (one seam, so tests can stand in for them)."""
    from normscale import data, nets, norms

    return data, nets, norms


def epoch_order(seed: int, epoch: int, P: int) -> torch.Tensor:
    """Batch order of epoch ``epoch`` (0-based) of run ``seed``: a permutation of P, on the CPU."""
    return torch.randperm(P, generator=_generator(seed, "order", epoch, torch.device("cpu")))


def augment_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of the augmentation of step ``step`` (0-based) of run ``seed``."""
    return _generator(seed, "augment", step, device)


def load_data(config: TrainConfig, data_root: str | Path | None, download: bool
              ) -> tuple[Any, Any, Any, dict[str, int]]:
    """The data set of ``config``: its info, the whole training and test splits, and the
    shape a model needs (``in_channels``, ``image_size``, ``num_classes``)."""
    data = _components()[0]
    info = data.info(config.dataset, root=data_root)
    train_full = data.load_dataset(config.dataset, root=data_root, download=download,
                                   split="train")
    test = data.load_dataset(config.dataset, root=data_root, download=download, split="test")
    if config.P > len(train_full.labels):
        raise ParameterError(
            f"The 'P' parameter of train must be at most the {len(train_full.labels)} training "
            f"images of {config.dataset!r}. Got {config.P} instead.")
    shape = {"in_channels": int(train_full.images.shape[1]),
             "image_size": int(train_full.images.shape[-1]),
             "num_classes": len(train_full.classes)}
    return info, train_full, test, shape


def init_run(config: TrainConfig, train_labels: torch.Tensor, shape: dict[str, int],
             device: torch.device) -> tuple[torch.Tensor, torch.nn.Module]:
    """The seeded part of a run's set-up: its training subset (indices) and initial model."""
    data, nets, _ = _components()
    idx = data.subset_indices(train_labels, P=config.P, seed=config.seed)
    torch.manual_seed(derive_seed(config.seed, "init"))
    model = nets.build(config.model, **shape, preset=config.preset, width=config.width,
                       depth=config.depth, init_factor=config.init_factor,
                       dataset=config.dataset).to(device)
    return idx, model


def _setup(config: TrainConfig, data_root: str | Path | None, download: bool,
           device: torch.device) -> _Setup:
    data, _, norms = _components()
    info, train_full, test, shape = load_data(config, data_root, download)
    idx, model = init_run(config, train_full.labels, shape, device)
    train_raw = train_full.images[idx].to(device)  # (P, C, H, W)
    tracker = norms.NormTracker(model, reference="init")  # reference: the initial weights
    optimizer = make_optimizer(model.parameters(), config)
    torch.manual_seed(derive_seed(config.seed, "dropout"))
    return _Setup(info=info, train_raw=train_raw, train_x=data.normalize(train_raw, info),
                  train_y=train_full.labels[idx].to(device),
                  test_x=data.normalize(test.images.to(device), info),
                  test_y=test.labels.to(device), model=model, tracker=tracker,
                  optimizer=optimizer, shape=shape, normalize=data.normalize,
                  augment=data.augment)


@torch.no_grad()
def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor
             ) -> tuple[float, float]:
    """Misclassified fraction and mean cross-entropy of ``model`` (eval mode) on a whole set."""
    was_training = model.training
    model.eval()
    wrong, loss = 0, 0.0
    chunk = _EVAL_BATCH_CUDA if images.device.type == "cuda" else _EVAL_BATCH
    for i in range(0, len(labels), chunk):
        logits = model(images[i:i + chunk])  # (B, classes)
        y = labels[i:i + chunk]
        loss += float(F.cross_entropy(logits.double(), y, reduction="sum"))
        wrong += int((logits.argmax(dim=1) != y).sum())
    model.train(was_training)
    n = max(len(labels), 1)
    return wrong / n, loss / n


def _norms(s: _Setup) -> dict[str, float]:
    device = s.train_x.device
    # norm tracking must not move the training's random stream
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            torch.no_grad():
        return {k: float(v) for k, v in s.tracker.measure().items()}


def _measure(s: _Setup, *, epoch: float, step: int, wall_time: float,
             norms: dict[str, float] | None = None) -> Record:
    device = s.train_x.device
    # evaluation and norm tracking must not move the training's random stream
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        test_error, test_loss = evaluate(s.model, s.test_x, s.test_y)
        train_error, train_loss = evaluate(s.model, s.train_x, s.train_y)
    if norms is None:
        norms = _norms(s)
    return Record(epoch=epoch, step=step, test_error=test_error, test_loss=test_loss,
                  train_error=train_error, train_loss=train_loss, wall_time=wall_time,
                  norms=norms)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def train(config: TrainConfig, *, data_root: str | Path | None = None, download: bool = False,
          device: str | torch.device = "cpu",
          callback: Callable[[Record], None] | None = None,
          checkpoint: str | Path | None = None, resume: bool = False,
          checkpoint_every_s: float = 600.0,
          progress: Callable[[], None] | None = None) -> TrainResult:
    """Train one run and log its learning curve against time and norms (docs/science.md 2.2).

    Parameters
    ----------
    config : TrainConfig
        The run.
    data_root : path, optional
        Where the data set files are (:func:`normscale.data.load_dataset`).
    download : bool
        Fetch missing data set files.
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ... The whole subset and test set move there once.
    callback : callable, optional
        Called with each :class:`Record` as soon as it is measured, before the
        checkpoint that follows it is written (so a crash never loses a
        record that a checkpoint claims). A store writer, a queue to a sweep
        driver, or None (the records are returned anyway).
    checkpoint : path, optional
        Checkpoint file, written (atomically) after each logged point and at
        least every ``checkpoint_every_s`` seconds; kept at the end.
    resume : bool
        Continue from ``checkpoint`` if it exists (it must belong to this
        run); the points after it are logged again, identically up to the
        warm start of the norm tracker.
    progress : callable, optional
        Called once per epoch (or per step when ``config.steps`` is set).

    Returns
    -------
    TrainResult
        Status ``"finished"``, or ``"diverged"`` when the training loss became
        NaN or infinite (the run stops there; no exception); ``stop_reason``
        says why it ended.

    Notes
    -----
    The loss is the mean cross-entropy over a batch; the last batch of an
    epoch is smaller when ``batch_size`` does not divide P. Logging points
    are :func:`log_points` ``(T, n_log)`` in epochs, or in steps when
    ``config.steps`` is set or ``config.until == "optimum"`` (then T is the
    cap, counted in steps for the schedule); the test error is always on
    the full test set. With ``config.norm_log_factor`` the watched norm is
    also measured every ``max(1, step // 32)`` steps (a few ms, warm-started)
    and a point is logged when it has grown by that factor since the last
    logged point. With ``until="optimum"`` each logged point is handed to
    :class:`~normscale.train.stop.StopRule`, which may end the run.
    """
    if not isinstance(config, TrainConfig):
        raise ParameterError(
            f"The 'config' parameter of train must be a TrainConfig. Got {config!r} instead.")
    device = torch.device(device)
    s = _setup(config, data_root, download, device)

    P, B = int(s.train_y.shape[0]), config.batch_size
    n_batches = math.ceil(P / B)
    per_unit = n_batches if config.unit == "epoch" else 1  # steps per unit of T
    total = config.length * per_unit
    if config.until == "optimum":  # log-spaced in steps: the early descent of large P is seen
        log_steps = set(log_points(total, config.n_log))
    else:
        log_steps = {p * per_unit for p in log_points(config.length, config.n_log)}
    growth = config.norm_log_factor
    rule = StopRule(n_test=int(s.test_y.shape[0])) if config.until == "optimum" else None

    step, wall_before, records, resumed_from = 0, 0.0, [], None
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint, map_location=device)
        if state.get("run_id") != config.run_id:
            raise NormscaleError(f"the checkpoint '{checkpoint}' belongs to run "
                                 f"{state.get('run_id')}, not to {config.run_id}")
        s.model.load_state_dict(state["model_state"])
        s.optimizer.load_state_dict(state["optimizer_state"])
        torch.set_rng_state(state["rng_state"]["torch"])
        if device.type == "cuda" and "cuda" in state["rng_state"]:
            torch.cuda.set_rng_state(state["rng_state"]["cuda"], device)
        step, wall_before = int(state["step"]), float(state.get("wall_time", 0.0))
        records = [Record.from_row(r) for r in state.get("records", [])]
        resumed_from = step
    stop_reason = None
    for i, record in enumerate(records if rule is not None else []):
        stop_reason = rule.update(record)  # replay: stop where the uninterrupted run stops
        if stop_reason is not None:
            records, step = records[:i + 1], record.step
            break
    t0 = time.perf_counter()  # wall time counts training and logging, not loading

    def elapsed() -> float:
        return wall_before + time.perf_counter() - t0

    def save() -> None:
        save_checkpoint(checkpoint, {
            "model_state": s.model.state_dict(), "optimizer_state": s.optimizer.state_dict(),
            "rng_state": _rng_state(device), "config": {**config.to_dict(), **s.shape},
            "epoch": step / n_batches, "step": step, "wall_time": elapsed(),
            "run_id": config.run_id, "records": [r.to_row() for r in records]})

    def result(status: str, error: str | None = None,
               reason: str | None = None) -> TrainResult:
        return TrainResult(config.run_id, config, status, error, tuple(records), step,
                           step / n_batches, elapsed(), resumed_from,
                           reason or ("diverged" if status == "diverged" else None))

    if stop_reason is not None:
        return result("finished", reason=stop_reason)
    kind = watched_norm(dict(records[-1].norms)) if records else None
    last_norm = records[-1].norms.get(kind, math.nan) if kind else math.nan
    s.model.train()
    last_save = time.perf_counter()
    loss_sum = torch.zeros((), device=device)  # since the last divergence check
    perm = None
    while step < total:
        epoch_index, batch = divmod(step, n_batches)
        if perm is None or batch == 0:
            perm = epoch_order(config.seed, epoch_index, P).to(device)
        idx = perm[batch * B:(batch + 1) * B]
        x = s.train_raw[idx]  # (B, C, H, W) in [0, 1]
        if config.augment != "none":
            x = s.augment(x, config.augment, generator=augment_generator(config.seed, step, device))
        logits = s.model(s.normalize(x, s.info))  # (B, classes)
        loss = F.cross_entropy(logits, s.train_y[idx])
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.optimizer.step()
        step += 1
        loss_sum += loss.detach()

        logged, norms = step in log_steps, None
        if not logged and growth is not None and step % max(1, step // 32) == 0:
            norms = _norms(s)
            kind = kind or watched_norm(norms)
            logged = kind is not None and norms[kind] >= growth * last_norm
        if progress is not None and step % per_unit == 0:
            progress()
        if logged or step % n_batches == 0:
            if not torch.isfinite(loss_sum):
                return result("diverged", f"the training loss became {float(loss_sum)} "
                                          f"before step {step} (epoch {step / n_batches:g})")
            loss_sum.zero_()
        if logged:
            record = _measure(s, epoch=step / n_batches, step=step, wall_time=elapsed(),
                              norms=norms)
            if not record.train_loss <= DIVERGED_LOSS:  # NaN, inf, or exploded
                return result("diverged", f"the training loss is {record.train_loss:.3g} at "
                                          f"step {step} (epoch {step / n_batches:g}), above "
                                          f"{DIVERGED_LOSS:g}")
            records.append(record)
            kind = kind or watched_norm(dict(record.norms))
            last_norm = record.norms.get(kind, math.nan) if kind else math.nan
            if callback is not None:
                callback(record)
            stop_reason = rule.update(record) if rule is not None else None
        if checkpoint is not None and (
                logged or time.perf_counter() - last_save > checkpoint_every_s):
            save()
            last_save = time.perf_counter()
        if stop_reason is not None:
            return result("finished", reason=stop_reason)
    return result("finished", reason="max_epochs" if rule is not None else "end")
