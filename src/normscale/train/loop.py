"""Training with norm tracking: the one loop of docs/science.md 2.2 (:func:`run_curves`),
for a lone run (:func:`train`) and, batched, for a seed ensemble (:mod:`.ensemble`).

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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from normscale.errors import NormscaleError, ParameterError
from normscale.store.schema import Record
from normscale.train.checkpoint import load_checkpoint, save_checkpoint
from normscale.train.config import TrainConfig
from normscale.train.curve import DIVERGED_LOSS, Curve, TrainResult
from normscale.train.optim import make_optimizer
from normscale.train.schedule import Schedule

__all__ = ["DIVERGED_LOSS", "Engine", "TrainResult", "augment_generator", "derive_seed",
           "epoch_order", "evaluate", "init_run", "load_data", "run_curves", "stored_config",
           "train"]

#: images per forward pass when evaluating (speed, not statistics): on 2 CPU threads the
#: width-1/4 CNN on MNIST evaluates 5,600 images/s in batches of 256, 3,600 in batches of 1024
_EVAL_BATCH = 256
#: the same on a GPU, where larger batches are faster
_EVAL_BATCH_CUDA = 4096
#: the training subset is evaluated on a fixed seeded sample of this many of its images when
#: P is larger (its error is a diagnostic; the test error, of the laws and the stop rule,
#: is always on the full test set): at P = 4000 a logged point evaluates 12,000 images
#: instead of 14,000. The stop rule's "fits its subset" test reads it: checked to give the
#: same stop decisions on cpu/cnn-mnist (docs/train.md)
TRAIN_EVAL_IMAGES = 2000
#: smallest image side at which evaluation runs in channels_last on the CPU: the width-1/4
#: CNN evaluates MNIST (28 px) 1.22x faster so (1 thread; logits equal to 4e-8), the 8x8
#: digits 0.86x as fast; training keeps its own layout (its records stay as they were)
CHANNELS_LAST_MIN_SIZE = 16


class Engine(Protocol):
    """What the loop needs from the networks it trains: K members, K = 1 for a lone run
    (:class:`_Lone`), K seeds vectorised for an ensemble
    (:class:`normscale.train.ensemble._Batched`)."""

    device: torch.device

    def step(self, step: int, alive: list[bool]) -> torch.Tensor:
        """Optimizer step ``step`` (0-based) of every member; the (K,) detached losses.
        Members not ``alive`` keep their weights."""

    def finite(self, members: list[int]) -> list[bool]:
        """Whether each member's weights are all finite."""

    def norms(self, members: list[int]) -> list[dict[str, float]]:
        """Every norm measure of each member."""

    def evaluate(self, members: list[int]) -> tuple[list[float], ...]:
        """Test error, test loss, training error, training loss of each member."""


@dataclass(frozen=True)
class _Setup:
    """Data on the device, the model, its norm tracker and optimizer."""

    info: Any
    train_raw: torch.Tensor  # (P, C, H, W) in [0, 1], augmented per batch
    train_y: torch.Tensor  # (P,)
    eval_x: torch.Tensor  # (S, C, H, W) normalised: the evaluated sample (train_eval_indices)
    eval_y: torch.Tensor  # (S,)
    test_x: torch.Tensor  # (N_test, C, H, W) normalised
    test_y: torch.Tensor  # (N_test,)
    model: torch.nn.Module
    tracker: Any
    optimizer: torch.optim.Optimizer
    shape: dict[str, int]  # in_channels, image_size, num_classes
    normalize: Callable  # normscale.data.normalize
    augment: Callable  # normscale.data.augment
    channels_last: bool = False  # evaluate in channels_last (eval_channels_last)


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


def stored_config(config: TrainConfig, *, data_root: str | Path | None = None
                  ) -> dict[str, Any]:
    """The config as a run store keeps it: the fields of ``config`` and what the run records
    about itself when it is trained.

    ``N``: the trainable parameters of the run's model (the model-size axis of the
    classic joint scaling law, :mod:`normscale.scaling`), counted on a model built
    on the ``meta`` device (no memory, no initialisation), so an export never has
    to build one.

    ``train_eval_images``: how many images of the training subset its logged
    training error and loss are measured on (P, or ``TRAIN_EVAL_IMAGES``).

    Raises
    ------
    NormscaleError
        When the data set's shape is unknown (e.g. ``imagefolder`` without its
        folder at ``data_root``).
    """
    data, nets, _ = _components()
    info = data.info(config.dataset, root=data_root)
    with torch.device("meta"):
        model = nets.build(config.model, in_channels=info.in_channels,
                           image_size=info.image_size, num_classes=info.num_classes,
                           preset=config.preset, width=config.width, depth=config.depth,
                           init_factor=config.init_factor, dataset=config.dataset)
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {**config.to_dict(), "N": int(n),
            "train_eval_images": int(train_eval_indices(config.seed, config.P).numel())}


def train_eval_indices(seed: int, P: int) -> torch.Tensor:
    """The training images a logged point evaluates: all P, or for P > ``TRAIN_EVAL_IMAGES``
    a fixed sample of that many drawn by ``seed`` (sorted indices into the subset)."""
    if P <= TRAIN_EVAL_IMAGES:
        return torch.arange(P)
    order = torch.randperm(P, generator=_generator(seed, "train-eval", 0, torch.device("cpu")))
    return order[:TRAIN_EVAL_IMAGES].sort().values


def eval_channels_last(images: torch.Tensor) -> bool:
    """Whether to evaluate images like ``images`` (N, C, H, W) in channels_last: on the CPU,
    at sides of ``CHANNELS_LAST_MIN_SIZE`` pixels or more (where it was measured faster)."""
    return images.device.type == "cpu" and images.dim() == 4 \
        and min(images.shape[-2:]) >= CHANNELS_LAST_MIN_SIZE


def _setup(config: TrainConfig, data_root: str | Path | None, download: bool,
           device: torch.device) -> _Setup:
    data, _, norms = _components()
    info, train_full, test, shape = load_data(config, data_root, download)
    idx, model = init_run(config, train_full.labels, shape, device)
    train_raw = train_full.images[idx].to(device)  # (P, C, H, W)
    tracker = norms.NormTracker(model, reference="init")  # reference: the initial weights
    optimizer = make_optimizer(model.parameters(), config)
    torch.manual_seed(derive_seed(config.seed, "dropout"))
    sample = train_eval_indices(config.seed, config.P).to(device)
    test_x = data.normalize(test.images.to(device), info)
    channels_last = eval_channels_last(test_x)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    train_y = train_full.labels[idx].to(device)
    return _Setup(info=info, train_raw=train_raw, train_y=train_y,
                  eval_x=data.normalize(train_raw[sample], info).to(memory_format=layout),
                  eval_y=train_y[sample],
                  test_x=test_x.to(memory_format=layout),
                  test_y=test.labels.to(device), model=model, tracker=tracker,
                  optimizer=optimizer, shape=shape, normalize=data.normalize,
                  augment=data.augment, channels_last=channels_last)


@torch.no_grad()
def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
             channels_last: bool = False) -> tuple[float, float]:
    """Misclassified fraction and mean cross-entropy of ``model`` (eval mode) on a whole set.

    With ``channels_last`` the model runs on channels_last copies of its 4-d weights (the
    model itself is untouched) and on ``images`` in that layout: the same arithmetic in
    another summation order, faster on the CPU for images of 16 pixels or more.
    """
    was_training = model.training
    model.eval()
    forward: Callable[[torch.Tensor], torch.Tensor] = model
    if channels_last:
        # .to, not .contiguous: a (out, 1, k, k) kernel already counts as channels_last
        # contiguous, and .contiguous would leave its strides, and so the whole net, as they are
        layout = torch.channels_last
        state = {k: t.to(memory_format=layout) if t.dim() == 4 else t
                 for k, t in (*model.named_parameters(), *model.named_buffers())}

        def forward(x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(model, state, (x,))
    wrong, loss = 0, 0.0
    chunk = _EVAL_BATCH_CUDA if images.device.type == "cuda" else _EVAL_BATCH
    for i in range(0, len(labels), chunk):
        logits = forward(images[i:i + chunk])  # (B, classes)
        y = labels[i:i + chunk]
        loss += float(F.cross_entropy(logits.double(), y, reduction="sum"))
        wrong += int((logits.argmax(dim=1) != y).sum())
    model.train(was_training)
    n = max(len(labels), 1)
    return wrong / n, loss / n


def _forked(device: torch.device):
    """Evaluation and norm tracking must not move the training's random stream."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


class _Lone:
    """The engine of a lone run: one model, its optimizer and norm tracker (K = 1)."""

    def __init__(self, config: TrainConfig, s: _Setup, schedule: Schedule) -> None:
        self.config, self.s, self.schedule = config, s, schedule
        self.device = s.test_x.device
        self.perm: torch.Tensor | None = None

    def step(self, step: int, alive: list[bool]) -> torch.Tensor:
        s, c, B = self.s, self.config, self.config.batch_size
        epoch_index, batch = divmod(step, self.schedule.n_batches)
        if self.perm is None or batch == 0:
            self.perm = epoch_order(c.seed, epoch_index, c.P).to(self.device)
        idx = self.perm[batch * B:(batch + 1) * B]
        x = s.train_raw[idx]  # (B, C, H, W) in [0, 1]
        if c.augment != "none":
            x = s.augment(x, c.augment, generator=augment_generator(c.seed, step, self.device))
        logits = s.model(s.normalize(x, s.info))  # (B, classes)
        loss = F.cross_entropy(logits, s.train_y[idx])
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.optimizer.step()
        return loss.detach().reshape(1)

    def finite(self, members: list[int]) -> list[bool]:
        tensors = [t for t in (*self.s.model.parameters(), *self.s.model.buffers())
                   if t.is_floating_point()]
        return [bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())]

    def norms(self, members: list[int]) -> list[dict[str, float]]:
        with _forked(self.device), torch.no_grad():
            return [{k: float(v) for k, v in self.s.tracker.measure().items()}]

    def evaluate(self, members: list[int]) -> tuple[list[float], ...]:
        s = self.s
        with _forked(self.device):
            test_error, test_loss = evaluate(s.model, s.test_x, s.test_y,
                                             channels_last=s.channels_last)
            train_error, train_loss = evaluate(s.model, s.eval_x, s.eval_y,
                                               channels_last=s.channels_last)
        return [test_error], [test_loss], [train_error], [train_loss]


def _measure_norms(engine: Engine, curves: Sequence[Curve], members: list[int], step: int,
                   schedule: Schedule) -> dict[int, dict[str, float]]:
    """The norms of ``members``; a member whose weights are no longer finite diverged (its
    norms are undefined: an SVD of inf fails)."""
    finite = engine.finite(members) if members else []
    for k, ok in zip(members, finite, strict=True):
        if not ok:
            curves[k].diverge(f"the weights became non-finite by step {step} "
                              f"(epoch {schedule.epoch(step):g})", step)
    ok = [k for k, f in zip(members, finite, strict=True) if f]
    return dict(zip(ok, engine.norms(ok), strict=True)) if ok else {}


def _log_points(engine: Engine, curves: Sequence[Curve], members: list[int],
                norms: dict[int, dict[str, float]], step: int, schedule: Schedule,
                wall_time: float) -> None:
    """Measure and take a logged point of each of ``members`` (norms already measured for
    the norm-growth decision are the point's norms)."""
    epoch = schedule.epoch(step)
    test_error, test_loss, train_error, train_loss = engine.evaluate(members)
    by_member = {k: j for j, k in enumerate(members)}
    members = [k for j, k in enumerate(members)
               if curves[k].check_point_loss(train_loss[j], step, epoch)]
    norms = {**_measure_norms(engine, curves, [k for k in members if k not in norms], step,
                              schedule), **norms}
    for k in members:
        if not curves[k].alive:
            continue
        j = by_member[k]
        curves[k].take(Record(epoch=epoch, step=step, test_error=test_error[j],
                              test_loss=test_loss[j], train_error=train_error[j],
                              train_loss=train_loss[j], wall_time=wall_time, norms=norms[k]))


def run_curves(engine: Engine, curves: Sequence[Curve], schedule: Schedule, *, step: int = 0,
               clock: Callable[[], float], progress: Callable[[], None] | None = None,
               save: Callable[[int, bool], None] | None = None) -> int:
    """The training loop of docs/science.md 2.2, for a lone run or a seed ensemble.

    Each step trains every member (``engine.step``); then, per member, the
    log-spaced points and the norm-growth decision (``Curve.grown``) say
    whether it logs a point, the divergence check runs at logged points and
    epoch ends, and a logged point goes to its :class:`Curve` and stop rule.
    Members log at their own points, so each logs where it would alone.

    Parameters
    ----------
    engine : Engine
        The K members.
    curves : sequence of Curve
        One per member.
    schedule : Schedule
        Shared by the members.
    step : int
        Steps already taken (a resume).
    clock : callable
        Seconds of training so far (the records' wall time).
    progress : callable, optional
        Called once per unit of T (epoch or step).
    save : callable, optional
        ``save(step, logged)`` after each step that no member diverged in (a checkpoint).

    Returns
    -------
    int
        The step training ended at (the cap, or where the last member stopped).
    """
    loss_sum = torch.zeros(len(curves), device=engine.device)  # since each member's last check
    while step < schedule.total and any(c.alive for c in curves):
        loss_sum += engine.step(step, [c.alive for c in curves])
        step += 1
        alive = [k for k, c in enumerate(curves) if c.alive]
        scheduled = step in schedule.log_steps
        logged = dict.fromkeys(alive, scheduled)
        norms: dict[int, dict[str, float]] = {}
        if not scheduled and schedule.norm_check(step):
            norms = _measure_norms(engine, curves, alive, step, schedule)
            for k, measured in norms.items():
                logged[k] = curves[k].grown(measured, schedule.growth)
        if progress is not None and step % schedule.per_unit == 0:
            progress()
        checked = [k for k in alive if curves[k].alive and schedule.loss_check(step, logged[k])]
        if checked:
            sums = loss_sum.tolist()
            for k in checked:
                curves[k].check_loss(sums[k], step, schedule.epoch(step))
            loss_sum[checked] = 0.0
        points = [k for k in alive if logged[k] and curves[k].alive]
        if points:
            _log_points(engine, curves, points, {k: norms[k] for k in points if k in norms},
                        step, schedule, clock())
        if save is not None and not any(curves[k].status == "diverged" for k in alive):
            save(step, bool(points))
    return step


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
    schedule = Schedule.of(config)

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
    curve = Curve(config, n_test=int(s.test_y.shape[0]), records=records, callback=callback)
    curve.replay()  # a resumed run stops where the uninterrupted run stopped
    t0 = time.perf_counter()  # wall time counts training and logging, not loading

    def elapsed() -> float:
        return wall_before + time.perf_counter() - t0

    last_save = time.perf_counter()

    def save(at: int, logged: bool) -> None:
        nonlocal last_save
        if not logged and time.perf_counter() - last_save <= checkpoint_every_s:
            return
        save_checkpoint(checkpoint, {
            "model_state": s.model.state_dict(), "optimizer_state": s.optimizer.state_dict(),
            "rng_state": _rng_state(device), "config": {**config.to_dict(), **s.shape},
            "epoch": schedule.epoch(at), "step": at, "wall_time": elapsed(),
            "run_id": config.run_id, "records": [r.to_row() for r in curve.records]})
        last_save = time.perf_counter()

    s.model.train()
    step = run_curves(_Lone(config, s, schedule), [curve], schedule, step=step, clock=elapsed,
                      progress=progress, save=save if checkpoint is not None else None)
    return curve.result(step=step, n_batches=schedule.n_batches, wall_time=elapsed(),
                        resumed_from=resumed_from)
