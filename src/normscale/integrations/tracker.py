"""The one code path of every integration: a norm-indexed learning curve from any loop.

:class:`RunTracker` measures :mod:`normscale.norms` on a model (warm-started
power iteration, :class:`~normscale.norms.NormTracker`), pairs the norms with
the error the loop measured, and writes the point as a
:class:`~normscale.store.Record` to a run store under a run config that
carries ``model``, ``dataset``, ``P`` and ``seed`` -- the columns that
``normscale export`` and ``normscale fit`` group and index by -- and ``N``,
the trainable parameters of the model it was given, counted once when the
tracker is made, as ``normscale train`` records it (the ``N`` column of the
exported table). The Lightning and Hugging Face callbacks are thin adapters
around it.

Identity and resume follow :mod:`normscale.store`: the run id is a hash of
the config, a point is keyed by ``(run_id, step)``, so a resumed loop that
logs a step again replaces it and never duplicates it; :meth:`state_dict`
carries the warm-start vectors, the reference weights and the last
recorded step, so a resumed loop measures exactly as an uninterrupted one
would and does not record again the points it already has.

Ownership: a tracker claims its run in the store at its first point and
holds the claim until it finishes, so a second tracker of the same config
is refused by name while the first is alive (their points would mix); the
claim of a killed process does not block its resume. A tracker that does
not resume (no :meth:`load_state_dict`, ``resume=False``) starts its run
afresh: its first point replaces the run's old points in one transaction,
so a rerun of a finished config never mixes new and stale points. A
closed or finished tracker refuses further points instead of dropping them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from normscale._validation import NONNEGATIVE_INT, POSITIVE, POSITIVE_INT, check_param
from normscale.errors import ParameterError
from normscale.integrations.schedule import Schedule, as_schedule
from normscale.norms import MEASURES, NormReport, NormTracker
from normscale.store import Record, Store
from normscale.store.store import new_owner

#: the largest step a point may have: 2**53, where float64 stops holding every integer (and
#: far below SQLite's 2**63)
MAX_STEP = 2**53
#: config keys every run of an integration carries (the grouping of ``normscale fit``)
RUN_KEYS = ("model", "dataset", "P", "seed")
#: the config key of the model's trainable parameter count, counted by the tracker (like
#: ``normscale.train.stored_config``) and stored with the run, outside its run id
N_KEY = "N"


def run_id_of(config: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the canonical config JSON (as ``TrainConfig.run_id``)."""
    canonical = json.dumps(dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class RunTracker:
    """Record norm-indexed learning-curve points of one run from a hand-written loop.

    Parameters
    ----------
    model : torch.nn.Module
        The model whose weights are measured (a submodule is fine). Its
        trainable parameters (``requires_grad``), counted when the tracker
        is made, are stored as the run's ``N``.
    model_name : str
        The run's ``model`` column, e.g. ``"my-cnn"``.
    P : int
        Training-set size of the run (the curves' index of ``normscale fit``).
    seed : int, default 0
        The run's seed (``normscale fit`` averages and bootstraps over seeds).
    dataset : str, default "custom"
        The run's ``dataset`` column.
    config : mapping, optional
        More JSON-able config fields (optimizer, lr, width, ...); they enter
        the run id and the exported table. ``N`` is not one of them: the
        tracker counts it from ``model``.
    store : str, path, Store or None
        The run store the records go to; None keeps them in :attr:`records` only.
    schedule : None, int, list of int or Schedule
        Steps at which :meth:`due` is true: None for log-spaced steps
        (:class:`~normscale.integrations.schedule.LogSpaced`, 20 per decade),
        n for every n-th step, or a list of steps.
    reference : None, "init", nn.Module or state dict, default "init"
        The reference M of the (2,1) terms and of ``distance_from_init``
        (as in :class:`~normscale.norms.NormTracker`; ``"init"``: the weights
        when the tracker is made, as in ``normscale train``).
    callback : callable, optional
        Called with every :class:`~normscale.store.Record` after it is stored.
    steps_per_epoch : float, optional
        Optimizer steps per pass over the training set: :meth:`log` then
        computes the epoch of a point from its step when not given one.
    resume : bool, default False
        Continue the run's points already in the store (a resumed loop); set
        too by :meth:`load_state_dict`. Otherwise the first point replaces
        the run's stored points (a rerun starts afresh).
    **norm_options
        Keyword arguments of :class:`~normscale.norms.NormTracker` (``rho``,
        ``conv``, ``norm_layers``, ``bias``, ``split_qkv``, ``spectral``, ...).

    Notes
    -----
    A point costs one forward-free pass over the weights: a few products
    with each matrix (power iteration, warm-started from the last point) and
    three passes for the other norms. Errors are what the loop measured; the
    tracker evaluates nothing.

    Examples
    --------
    >>> tracker = RunTracker(model, model_name="mlp", P=len(train_set), seed=0,
    ...                      store="runs.db")                      # doctest: +SKIP
    >>> for step in range(1, n_steps + 1):                         # doctest: +SKIP
    ...     train_step()
    ...     if tracker.due(step):
    ...         tracker.log(step, epoch=step / steps_per_epoch, test_error=evaluate(model))
    >>> tracker.finish(); tracker.close()                          # doctest: +SKIP

    Or as a context manager, which finishes (or marks failed) and closes:
    ``with RunTracker(...) as tracker: ...``.
    """

    def __init__(self, model: nn.Module, *, model_name: str, P: int, seed: int = 0,
                 dataset: str = "custom", config: Mapping[str, Any] | None = None,
                 store: str | Path | Store | None = None,
                 schedule: Schedule | int | Iterable[int] | None = None,
                 reference: Any = "init", callback: Callable[[Record], None] | None = None,
                 steps_per_epoch: float | None = None, resume: bool = False,
                 **norm_options: Any) -> None:
        owner = "RunTracker"
        for name, value in (("model_name", model_name), ("dataset", dataset)):
            if not isinstance(value, str) or not value:
                raise ParameterError(f"The '{name}' parameter of {owner} must be a non-empty "
                                     f"str. Got {value!r} instead.")
        check_param(owner, "P", P, POSITIVE_INT)
        check_param(owner, "seed", seed, NONNEGATIVE_INT)
        if steps_per_epoch is not None:
            check_param(owner, "steps_per_epoch", steps_per_epoch, POSITIVE)
        self.steps_per_epoch = steps_per_epoch
        extra = dict(config or {})
        clash = [k for k in RUN_KEYS if k in extra]
        if clash:
            arg = "model_name" if clash[0] == "model" else clash[0]
            raise ParameterError(f"The 'config' parameter of {owner} sets {clash[0]!r}; pass it "
                                 f"as the argument {arg} instead.")
        if N_KEY in extra:
            raise ParameterError(f"The 'config' parameter of {owner} sets {N_KEY!r}; the "
                                 "tracker counts the model's trainable parameters itself.")
        self.config: dict[str, Any] = {"model": model_name, "dataset": dataset, "P": int(P),
                                       "seed": int(seed), **extra}
        try:
            self.run_id = run_id_of(self.config)
        except TypeError as exc:
            raise ParameterError(f"The 'config' parameter of {owner} must hold JSON values "
                                 f"only ({exc}).") from None
        self.schedule = as_schedule(schedule)
        self.norms = NormTracker(model, reference=reference, **norm_options)
        #: N, the model's trainable parameters when the tracker was made (stored with the
        #: run's config, outside its run id, as ``normscale train`` stores it)
        self.n_params = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
        self.callback = callback
        self.records: list[Record] = []
        self.last_report: NormReport | None = None  # per-layer norms of the last point
        self.last_step = 0
        self._wall_before = 0.0
        self._t0 = time.perf_counter()
        self._owns_store = store is not None and not isinstance(store, Store)
        self.store = Store(store) if self._owns_store else store
        self._started = False
        self._resume = bool(resume)
        self._owner = new_owner()
        self._ended: str | None = None  # "finished" or "closed": no more points

    # -- the loop's side --------------------------------------------------------------------
    def due(self, step: int) -> bool:
        """Whether a scheduled step was reached since the last recorded one (``step`` included)."""
        return self.schedule.due(int(step), self.last_step)

    def log(self, step: int, *, epoch: float | None = None, test_error: float = math.nan,
            test_loss: float = math.nan, train_error: float = math.nan,
            train_loss: float = math.nan) -> Record:
        """Measure the norms now and record them with the loop's errors at ``step``.

        Parameters
        ----------
        step : int
            Optimizer steps taken (the record's key: logging a step again replaces it).
        epoch : float, optional
            Passes over the training set so far; default ``step /
            steps_per_epoch`` (one of the two is needed: the store keys
            curves by step but exports epochs).
        test_error, test_loss, train_error, train_loss : float, optional
            What the loop measured at this step (NaN when not measured);
            ``normscale fit`` reads ``test_error`` by default, so record the
            validation or test error there.

        Returns
        -------
        Record
            The stored point (every measure of :data:`~normscale.norms.MEASURES`).
        """
        self._check_open("log")
        check_param("RunTracker.log", "step", step, NONNEGATIVE_INT)
        if step > MAX_STEP:
            raise ParameterError(f"The 'step' parameter of RunTracker.log must be <= 2**53. "
                                 f"Got {step!r} instead.")
        if epoch is None:
            if self.steps_per_epoch is None:
                raise ParameterError("RunTracker.log needs the epoch of the point: pass "
                                     "epoch=..., or steps_per_epoch=... to the tracker.")
            epoch = step / self.steps_per_epoch
        epoch = _float(epoch, "epoch")
        if not (math.isfinite(epoch) and epoch >= 0):
            raise ParameterError(f"The 'epoch' parameter of RunTracker.log must be a finite "
                                 f"float >= 0. Got {epoch!r} instead.")
        errors = {name: _float(value, name) for name, value in (
            ("test_error", test_error), ("test_loss", test_loss), ("train_error", train_error),
            ("train_loss", train_loss))}
        with torch.random.fork_rng(devices=[]), torch.no_grad():  # measuring draws no randomness
            self.last_report = self.norms.report()
        norms = self.last_report.complexity.as_dict()
        record = Record(epoch=epoch, step=int(step), wall_time=self.wall_time, norms=norms,
                        **errors)
        if self.store is not None:
            self._start()
            self.store.add_records(self.run_id, [record])
        self.records.append(record)
        self.last_step = max(self.last_step, int(step))
        if self.callback is not None:
            self.callback(record)
        return record

    def finish(self, status: str = "finished", error: str | None = None) -> None:
        """Mark the run ``status`` in the store (``normscale export`` keeps finished runs)
        and release its claim; no point is recorded after this. A tracker that recorded no
        point leaves a run already in the store as it is (a rerun that failed before its
        first point does not replace the finished run)."""
        self._check_open("finish")
        if self.store is not None:
            if not self._started and self.store.run(self.run_id) is not None:
                # no point recorded: the stored run (a finished one, say) is not replaced
                Store.release(self._owner)
                self._ended = "finished"
                return
            self._start()
            self.store.finish_run(self.run_id, status=status, error=error,
                                  wall_time=self.wall_time)
        Store.release(self._owner)
        self._ended = "finished"

    def close(self) -> None:
        """Close the store if the tracker opened it (a path was given); no point is recorded
        after this (a later :meth:`log` raises instead of storing nothing)."""
        Store.release(self._owner)
        if self._ended is None:
            self._ended = "closed"
        if self._owns_store and self.store is not None:
            self.store.close()
            self.store = None

    def __del__(self) -> None:  # a tracker dropped unclosed (a notebook cell rerun) frees its run
        owner = getattr(self, "_owner", None)
        if owner is not None:
            Store.release(owner)

    def _start(self) -> None:
        """Claim the run at its first write: fresh unless resuming (see the module notes)."""
        if not self._started:
            self.store.start_run(self.run_id, {**self.config, N_KEY: self.n_params},
                                 fresh=not self._resume,
                                 owner=self._owner)
            self._started = True

    def _check_open(self, what: str) -> None:
        if self._ended is not None:
            raise ParameterError(
                f"RunTracker.{what}: the tracker of run {self.run_id} is {self._ended} (its "
                "with block ended, or finish()/close() was called), so nothing more is "
                "recorded; make a new tracker (with load_state_dict to continue the run)")

    def __enter__(self) -> RunTracker:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        try:
            if self._ended is None:
                if exc is None:
                    self.finish()
                else:
                    self.finish("failed", f"{type(exc).__name__}: {exc}")
        finally:
            self.close()

    @property
    def wall_time(self) -> float:
        """Seconds since the tracker was made, summed over resumes."""
        return self._wall_before + time.perf_counter() - self._t0

    # -- resume ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The run id, the last recorded step, the wall time and the norm tracker's state."""
        return {"run_id": self.run_id, "last_step": self.last_step,
                "wall_time": self.wall_time, "norms": self.norms.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue a run from :meth:`state_dict`: warm start, reference and schedule position.

        The state is checked before any of it is used: its run id, a last step
        and a wall time that are numbers >= 0, and a norm state whose
        matrices are those of this model (names and shapes).

        Raises
        ------
        ParameterError
            When the state belongs to another run (another config) or another
            model, or is malformed; nothing is changed then.
        """
        where = "RunTracker.load_state_dict"
        if not isinstance(state, Mapping):
            raise ParameterError(f"{where} takes the dict of state_dict(); got a "
                                 f"{type(state).__name__}")
        if state.get("run_id") != self.run_id:
            raise ParameterError(f"the tracker state belongs to run {state.get('run_id')!r}, "
                                 f"not to {self.run_id!r} (config {self.config})")
        last, wall = state.get("last_step"), state.get("wall_time", 0.0)
        if isinstance(last, bool) or not isinstance(last, int) or last < 0:
            raise ParameterError(f"{where}: 'last_step' is {last!r}, not an int >= 0")
        if isinstance(wall, bool) or not isinstance(wall, int | float) \
                or not math.isfinite(wall) or wall < 0:
            raise ParameterError(f"{where}: 'wall_time' is {wall!r}, not a finite number >= 0")
        _check_norm_state(state.get("norms"), self.norms, where)
        self.norms.load_state_dict(state["norms"])
        self.last_step = int(last)
        self._wall_before = float(wall)
        self._t0 = time.perf_counter()
        self._resume = True


def _check_norm_state(norms: Any, tracker: NormTracker, where: str) -> None:
    """Raise ParameterError unless ``norms`` is a NormTracker state for ``tracker``'s matrices."""
    specs = tracker.discovery.layers
    if not isinstance(norms, Mapping):
        raise ParameterError(f"{where}: 'norms' is not the dict of NormTracker.state_dict()")
    names = [s.name for s in specs]
    layers, vectors, ref = norms.get("layers"), norms.get("vectors"), norms.get("reference")
    if not isinstance(layers, list | tuple) or list(layers) != names:
        raise ParameterError(f"{where}: the state was saved for other matrices "
                             f"({len(layers) if isinstance(layers, list | tuple) else '?'} "
                             f"layers, this model counts {len(names)}); is it another model?")
    if not isinstance(vectors, list | tuple) or len(vectors) != len(names) or not all(
            v is None or (isinstance(v, torch.Tensor) and v.dim() == 1
                          and v.is_floating_point() and bool(torch.isfinite(v).all()))
            for v in vectors):
        raise ParameterError(f"{where}: the state's warm-start vectors are not one finite "
                             "vector (or None) per matrix")
    if ref is None:
        if tracker.has_reference:
            raise ParameterError(f"{where}: the state has no reference weights, but this "
                                 "tracker measures from a reference (reference='init')")
        return
    if not isinstance(ref, list | tuple) or len(ref) != len(names):
        raise ParameterError(f"{where}: the state's reference is not one matrix per layer")
    for spec, m in zip(specs, ref, strict=True):
        if not isinstance(m, torch.Tensor) or tuple(m.shape) != tuple(spec.shape) \
                or not bool(torch.isfinite(m).all()):
            got = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise ParameterError(f"{where}: the state's reference of {spec.name} is {got}, "
                                 f"not a finite {tuple(spec.shape)} matrix: is it another "
                                 "model (another width)?")


def totals(record: Record, kinds: Sequence[str] | None = None,
           prefix: str = "norms/") -> dict[str, float]:
    """What the callbacks log for ``record``: ``norms/<kind>`` and its step and epoch.

    ``norms/step`` and ``norms/epoch`` hold the record's optimizer step and
    epoch, because loggers may file the point under another step (Lightning
    files a validation under ``global_step - 1``); ``normscale import
    tensorboard`` reads them back.
    """
    names = MEASURES if kinds is None else tuple(kinds)
    return {f"{prefix}step": float(record.step), f"{prefix}epoch": float(record.epoch),
            **{f"{prefix}{k}": float(record.norms[k]) for k in names}}


def _float(x: Any, name: str) -> float:
    """A number the loop measured (None: not measured, NaN); anything else is a ParameterError."""
    if x is None:
        return math.nan
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return float(x.detach().cpu())
    if isinstance(x, bool) or not isinstance(x, int | float):
        try:
            import numpy as np

            if isinstance(x, np.generic) and np.isreal(x):
                return float(x)
        except (TypeError, ValueError):
            pass
        raise ParameterError(f"The '{name}' parameter of RunTracker.log must be a number. Got "
                             f"{x!r} instead.")
    try:
        return float(x)
    except OverflowError:  # an int past float's range
        raise ParameterError(f"The '{name}' parameter of RunTracker.log must be a number a "
                             f"float holds. Got {x!r} instead.") from None
