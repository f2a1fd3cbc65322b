"""Norm-indexed learning curves from a Lightning fit: ``NormCallback`` (extra ``lightning``).

The callback is a thin adapter around :class:`~normscale.integrations.RunTracker`:

- it builds the tracker when training starts (``on_train_start``, so the
  reference ``"init"`` is the weights before the first step and ``P`` can
  be read from the training data loader);
- at the end of each validation epoch whose step reached a scheduled step
  (log-spaced by default), it measures the norms of ``pl_module`` (or of
  the submodule ``module``), reads the validation error the user names
  from ``trainer.callback_metrics``, stores the record and logs the totals
  through ``pl_module.log_dict`` (so every Lightning logger receives them,
  off the progress bar); with ``error=None`` it records norms alone, at
  the scheduled training steps;
- its ``state_dict`` (saved in every Lightning checkpoint) holds the
  tracker's warm-start vectors, reference weights, wall time and last
  recorded step, so ``trainer.fit(..., ckpt_path=...)`` warm-starts and
  records no point twice; that state is checked before use (its run, its
  model's matrices), and a fit resumed from a checkpoint without it is
  refused while the reference is ``"init"`` (the resumed weights are not
  the initial ones).

Lightning calls ``load_state_dict`` before ``on_train_start``; the state
waits until the tracker exists.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from normscale.errors import ParameterError
from normscale.integrations._optional import require
from normscale.integrations.schedule import Schedule
from normscale.integrations.tracker import RunTracker, totals

_pl = require("lightning.pytorch", "lightning", "normscale.integrations.lightning")


class NormCallback(_pl.Callback):
    """Record norms and the validation error of a Lightning fit into a normscale store.

    Parameters
    ----------
    model_name : str
        The run's ``model`` column.
    P : int, optional
        Training-set size; default the length of the training data loader's data set.
    seed : int, default 0
        The run's ``seed`` column (e.g. the seed given to ``seed_everything``).
    dataset : str, default "custom"
    config : mapping, optional
        More JSON-able config fields; they enter the run id and the table.
    store : str, path or Store, optional
        The run store; None keeps the records in ``callback.tracker.records``.
    error : str or None, default "val_error"
        The logged metric recorded as ``test_error`` (what ``normscale fit``
        reads); None records norms alone, at the scheduled training steps.
    loss : str, optional
        A logged metric recorded as ``test_loss`` (e.g. ``"val_loss"``).
    module : str, optional
        Measure this submodule of the LightningModule (``"model"``,
        ``"backbone"``) instead of all of it.
    schedule : None, int, list of int or Schedule
        When to record (see :class:`~normscale.integrations.RunTracker`).
    log_kinds : sequence of str, optional
        Measures logged to the loggers as ``norms/<kind>`` (default all of
        :data:`~normscale.norms.MEASURES`); the store always gets all.
    per_layer : bool, default False
        Also log ``norms/layer/<name>/spectral_norm`` and ``.../two_one``
        (never on the progress bar).
    reference, **norm_options
        As for :class:`~normscale.integrations.RunTracker`.

    Examples
    --------
    >>> trainer = lightning.Trainer(max_epochs=30, callbacks=[
    ...     NormCallback(model_name="cnn", seed=0, store="runs.db")])  # doctest: +SKIP
    >>> trainer.fit(module, train_loader, val_loader)                 # doctest: +SKIP
    """

    def __init__(self, *, model_name: str, P: int | None = None, seed: int = 0,
                 dataset: str = "custom", config: Mapping[str, Any] | None = None,
                 store: Any = None, error: str | None = "val_error", loss: str | None = None,
                 module: str | None = None,
                 schedule: Schedule | int | Iterable[int] | None = None,
                 log_kinds: Sequence[str] | None = None, per_layer: bool = False,
                 reference: Any = "init", **norm_options: Any) -> None:
        super().__init__()
        self._kwargs = {"model_name": model_name, "seed": seed, "dataset": dataset,
                        "config": config, "schedule": schedule, "reference": reference,
                        **norm_options}
        self.P, self.store = P, (str(store) if isinstance(store, Path) else store)
        self.error, self.loss, self.module = error, loss, module
        self.log_kinds, self.per_layer = log_kinds, per_layer
        self.tracker: RunTracker | None = None
        self._pending: dict[str, Any] | None = None  # a checkpoint's state, before the tracker

    @property
    def state_key(self) -> str:
        """The checkpoint key of this callback's state: one per measured model, subclasses too."""
        return f"NormCallback{{'model_name': {self._kwargs['model_name']!r}, " \
               f"'module': {self.module!r}}}"

    # -- set-up --------------------------------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        model = pl_module.get_submodule(self.module) if self.module else pl_module
        resumed = trainer.global_step > 0
        if resumed and self._pending is None and _is_init(self._kwargs["reference"]):
            raise ParameterError(
                f"NormCallback: the fit resumes at step {trainer.global_step} from a checkpoint "
                f"that holds no state of this callback (key {self.state_key!r}), so the "
                "weights at initialisation, the reference of distance_from_init and the (2,1) "
                "terms, are lost: resume from a checkpoint saved with this NormCallback, or "
                "pass reference= the initial weights (a state dict) or None")
        # every process measures (the weights are the same), one writes the store
        store = self.store if trainer.is_global_zero else None
        self.tracker = RunTracker(model, P=self.P or _dataset_size(trainer), store=store,
                                  config={"integration": "lightning",
                                          **(self._kwargs["config"] or {})}, resume=resumed,
                                  **{k: v for k, v in self._kwargs.items() if k != "config"})
        if self._pending is not None:
            self.tracker.load_state_dict(self._pending)
            self._pending = None

    def state_dict(self) -> dict[str, Any]:
        if self.tracker is not None:
            return self.tracker.state_dict()
        return dict(self._pending or {})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if self.tracker is not None:
            self.tracker.load_state_dict(state_dict)
        else:
            self._pending = dict(state_dict)

    # -- recording -----------------------------------------------------------------------------
    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.tracker is None or self.error is None or trainer.sanity_checking:
            return
        step = trainer.global_step
        if step < 1 or not self.tracker.due(step):
            return
        metrics = trainer.callback_metrics
        record = self.tracker.log(step, epoch=_epoch(trainer),
                                  test_error=_metric(metrics, self.error),
                                  test_loss=_metric(metrics, self.loss) if self.loss else math.nan)
        pl_module.log_dict(self._logged(record), prog_bar=False, logger=bool(trainer.loggers),
                           on_step=False, on_epoch=True, batch_size=1)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.tracker is None or self.error is not None:
            return
        step = trainer.global_step
        if step >= 1 and self.tracker.due(step):
            record = self.tracker.log(step, epoch=_epoch(trainer))
            pl_module.log_dict(self._logged(record), prog_bar=False,
                               logger=bool(trainer.loggers), on_step=True, on_epoch=False,
                               batch_size=1)

    def _logged(self, record: Any) -> dict[str, float]:
        values = totals(record, self.log_kinds)
        if self.per_layer and self.tracker is not None and self.tracker.last_report is not None:
            for lay in self.tracker.last_report.layers:
                values[f"norms/layer/{lay.name}/spectral_norm"] = lay.spectral_norm
                values[f"norms/layer/{lay.name}/two_one"] = lay.two_one
        return values

    # -- the end -------------------------------------------------------------------------------
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.tracker is not None:
            self.tracker.finish()
            self.tracker.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.tracker is not None:
            self.tracker.finish("failed", f"{type(exception).__name__}: {exception}")
            self.tracker.close()


def _is_init(reference: Any) -> bool:
    return isinstance(reference, str) and reference == "init"


def _metric(metrics: Mapping[str, Any], name: str) -> float:
    if name not in metrics:
        raise ParameterError(
            f"NormCallback records the metric {name!r}, which the LightningModule did not log "
            f"in validation; logged: {', '.join(sorted(metrics)) or 'none'}. Log it with "
            f"self.log({name!r}, ...) in validation_step, or pass error=... naming one of those.")
    return float(metrics[name])


def _epoch(trainer: Any) -> float:
    """Passes over the training data: optimizer steps / steps per epoch."""
    batches = trainer.num_training_batches
    if not isinstance(batches, int) or batches < 1:
        return float(trainer.current_epoch)
    per_epoch = max(math.ceil(batches / trainer.accumulate_grad_batches), 1)
    return trainer.global_step / per_epoch


def _dataset_size(trainer: Any) -> int:
    loader = trainer.train_dataloader
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError):
        raise ParameterError("NormCallback cannot read the training-set size from the data "
                             "loader; pass P=... (the number of training examples).") from None
