"""Norm-indexed learning curves from a Hugging Face ``Trainer``: ``NormTrainerCallback``.

Needs the extra ``normscale[hf]`` (transformers). A thin adapter around
:class:`~normscale.integrations.RunTracker`:

- ``on_train_begin`` builds the tracker (the reference ``"init"`` is the
  weights before the first step; ``P`` defaults to the training data set's
  length and ``seed`` to ``TrainingArguments.seed``);
- ``on_evaluate``, when the step reached a scheduled step (log-spaced by
  default), measures the norms and stores them with the evaluation metric
  named by ``error`` (``"error"`` finds ``eval_error``) as ``test_error``;
- ``on_log`` adds the totals of a new point to the logs (``norms/<kind>``),
  so the callbacks after this one (TensorBoard, W&B, MLflow reporters)
  receive them; :meth:`NormTrainerCallback.attach` puts the callback first;
- ``on_save`` writes the tracker state (warm-start vectors, reference, last
  recorded step) into the checkpoint folder as ``normscale_tracker.pt``, and
  a run resumed from that checkpoint (``trainer.train(resume_from_checkpoint=...)``)
  reads it back in ``on_train_begin`` (``torch.load(weights_only=True)``, then
  checked against the run and the model); a checkpoint outside
  ``output_dir`` is named with ``state_path``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from normscale import safeio
from normscale.errors import ParameterError
from normscale.integrations._optional import require
from normscale.integrations.schedule import Schedule
from normscale.integrations.tracker import RunTracker, totals

_tf = require("transformers", "hf", "normscale.integrations.hf")

#: the tracker state's file name inside a Trainer checkpoint folder
STATE_FILE = "normscale_tracker.pt"


class NormTrainerCallback(_tf.TrainerCallback):
    """Record norms and an evaluation metric of a ``transformers.Trainer`` run.

    Parameters
    ----------
    model_name : str
        The run's ``model`` column.
    P : int, optional
        Training-set size; default ``len(train_dataset)``.
    seed : int, optional
        The run's seed; default ``TrainingArguments.seed``.
    dataset : str, default "custom"
    config : mapping, optional
        More JSON-able config fields; they enter the run id and the table.
    store : str, path or Store, optional
        The run store; None keeps the records in ``callback.tracker.records``.
    error : str, default "error"
        The evaluation metric recorded as ``test_error`` (``compute_metrics``
        returning ``{"error": ...}`` gives ``eval_error``; either name works).
    loss : str or None, default "loss"
        The evaluation metric recorded as ``test_loss`` (``eval_loss``), if present.
    module : str, optional
        Measure this submodule of the model (e.g. ``"bert"``) instead of all of it.
    schedule : None, int, list of int or Schedule
        When to record (see :class:`~normscale.integrations.RunTracker`):
        at the first evaluation on or after each scheduled step.
    log_kinds : sequence of str, optional
        Measures added to the logs as ``norms/<kind>`` (default all).
    state_path : str or path, optional
        The tracker state to resume from (``<checkpoint>/normscale_tracker.pt``);
        default ``output_dir/checkpoint-<step>/normscale_tracker.pt``, the
        folder the Trainer saved. A resumed run whose state is missing is
        refused while the reference is ``"init"`` (the resumed weights are
        not the initial ones), never silently reset.
    reference, **norm_options
        As for :class:`~normscale.integrations.RunTracker`.

    Examples
    --------
    >>> trainer = transformers.Trainer(model=model, args=args, train_dataset=train,
    ...     eval_dataset=test, compute_metrics=error_rate,
    ...     callbacks=[NormTrainerCallback(model_name="vit-tiny", store="runs.db")])
    ...                                                            # doctest: +SKIP
    >>> trainer.train()                                            # doctest: +SKIP
    """

    def __init__(self, *, model_name: str, P: int | None = None, seed: int | None = None,
                 dataset: str = "custom", config: Mapping[str, Any] | None = None,
                 store: Any = None, error: str = "error", loss: str | None = "loss",
                 module: str | None = None,
                 schedule: Schedule | int | Iterable[int] | None = None,
                 log_kinds: Sequence[str] | None = None, reference: Any = "init",
                 state_path: str | Path | None = None, **norm_options: Any) -> None:
        self.state_path = state_path
        self._kwargs = {"model_name": model_name, "dataset": dataset, "schedule": schedule,
                        "reference": reference, **norm_options}
        self.config = dict(config or {})
        self.P, self.seed, self.store = P, seed, (str(store) if isinstance(store, Path)
                                                   else store)
        self.error, self.loss, self.module, self.log_kinds = error, loss, module, log_kinds
        self.tracker: RunTracker | None = None
        self._unlogged = None  # the record whose totals the next on_log adds

    def attach(self, trainer: Any) -> NormTrainerCallback:
        """Add this callback to ``trainer`` before its reporters, so they log the norms too."""
        trainer.callback_handler.callbacks.insert(0, self)
        return self

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       train_dataloader: Any = None, **kwargs: Any) -> None:
        measured = model.get_submodule(self.module) if self.module else model
        self.tracker = RunTracker(
            measured, P=self.P or _dataset_size(train_dataloader),
            seed=args.seed if self.seed is None else self.seed,
            store=self.store if state.is_world_process_zero else None,  # one writer
            config={"integration": "hf", **self.config}, resume=state.global_step > 0,
            **self._kwargs)
        if state.global_step > 0:  # resumed: the state saved with that checkpoint
            path = (Path(self.state_path) if self.state_path is not None else
                    Path(args.output_dir) / f"checkpoint-{state.global_step}" / STATE_FILE)
            if path.is_file():
                loaded = safeio.load_torch(path, "the tracker state")
                if not isinstance(loaded, dict):
                    raise ParameterError(f"the tracker state '{path}' is not a dict")
                self.tracker.load_state_dict(loaded)
            elif self.state_path is not None or _is_init(self._kwargs["reference"]):
                self.tracker = None
                raise ParameterError(
                    f"NormTrainerCallback: the run resumes at step {state.global_step} but "
                    f"'{path}' does not exist, so the weights at initialisation (the "
                    "reference of distance_from_init and the (2,1) terms) are lost; a "
                    "checkpoint outside output_dir needs state_path=<checkpoint>/"
                    f"{STATE_FILE}, or pass reference= the initial weights or None")

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                    **kwargs: Any) -> None:
        step = state.global_step
        if self.tracker is None or step < 1 or not self.tracker.due(step):
            return
        metrics = metrics or {}
        loss = _find(metrics, self.loss, required=False) if self.loss else math.nan
        self._unlogged = self.tracker.log(step, epoch=float(state.epoch or 0.0),
                                          test_error=_find(metrics, self.error), test_loss=loss)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
               **kwargs: Any) -> None:
        if self._unlogged is not None and logs is not None:
            logs.update(totals(self._unlogged, self.log_kinds))
            self._unlogged = None

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.tracker is None:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            state_dict = self.tracker.state_dict()
            safeio.write_with(folder / STATE_FILE, lambda tmp: torch.save(state_dict, tmp),
                              "the tracker state")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.tracker is not None:
            self.tracker.finish()
            self.tracker.close()


def _find(metrics: Mapping[str, Any], name: str, required: bool = True) -> float:
    for key in (name, f"eval_{name}"):
        if key in metrics:
            return float(metrics[key])
    if not required:
        return math.nan
    raise ParameterError(
        f"NormTrainerCallback records the evaluation metric {name!r}, which the Trainer did "
        f"not report; reported: {', '.join(sorted(metrics)) or 'none'}. Return it from "
        "compute_metrics, or pass error=... naming one of those.")


def _dataset_size(loader: Any) -> int:
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError):
        raise ParameterError("NormTrainerCallback cannot read the training-set size; pass "
                             "P=... (the number of training examples).") from None


def _is_init(reference: Any) -> bool:
    return isinstance(reference, str) and reference == "init"
