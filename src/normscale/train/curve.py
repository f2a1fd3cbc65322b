"""One run's learning curve as it is logged, and every decision taken on it (torch-free).

A lone run and each member of a seed ensemble keep one :class:`Curve`: its
logged points, whether the norm has grown enough to log another (the
norm-growth logging of docs/science.md 2.2), whether the run diverged, and
its :class:`~normscale.train.stop.StopRule`. The training loop
(:func:`normscale.train.loop.run_curves`) feeds it; :meth:`Curve.result`
assembles the :class:`TrainResult`. Keeping these decisions here, once, is
what makes an ensemble member log, diverge and stop exactly where the run
trained alone with its seed does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from normscale.store.schema import Record
from normscale.train.config import TrainConfig
from normscale.train.stop import PLATEAU_RTOL, StopRule, watched_norm

#: a logged training loss above this (nats) counts as diverged, as NaN and inf do: chance
#: level is ln(classes) <= 4.6, so 1e3 means logits of order 1e3 (an lr of 1e6 reaches 6e34)
DIVERGED_LOSS = 1e3


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`~normscale.train.train` (or of one ensemble member).

    Attributes
    ----------
    run_id : str
        ``config.run_id``.
    config : TrainConfig
        The configuration the run trained.
    status : str
        ``"finished"`` or ``"diverged"`` (a NaN, infinite or exploded loss, or
        non-finite weights, ended the run).
    error : str or None
        Why the run diverged.
    records : tuple of Record
        Every logged point, the ones before a resume included, in step order.
    step : int
        Optimizer steps taken.
    epoch : float
        Passes over the training subset taken.
    wall_time : float
        Seconds of training, summed over resumes (an ensemble's: the whole ensemble's).
    resumed_from : int or None
        The step of the checkpoint the run continued from.
    stop_reason : str or None
        Why the run ended, one of :data:`normscale.train.stop.STOP_REASONS`:
        ``"past_optimum"``, ``"max_epochs"`` (the cap of an ``until="optimum"``
        run ran out), ``"plateau"``, ``"diverged"`` or ``"end"`` (a fixed-length
        run trained its length).
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


class Curve:
    """The logged points of one run and the decisions on them.

    Parameters
    ----------
    config : TrainConfig
        The run.
    n_test : int
        Test-set size (the noise of the test error, for the stop rule).
    records : sequence of Record
        Points logged before a resume; the stop rule replays them
        (:meth:`replay`).
    callback : callable, optional
        Called with each new record as soon as it is taken.
    """

    def __init__(self, config: TrainConfig, *, n_test: int, records: Sequence[Record] = (),
                 callback: Callable[[Record], None] | None = None) -> None:
        self.config = config
        self.records: list[Record] = list(records)
        self.callback = callback
        self.rule = StopRule(n_test=n_test) if config.until == "optimum" else None
        self.kind = watched_norm(dict(self.records[-1].norms)) if self.records else None
        self.last_norm = self._watched(self.records[-1]) if self.records else math.nan
        self.status: str | None = None  # None while training, then finished or diverged
        self.error: str | None = None
        self.reason: str | None = None
        self.stopped_at: int | None = None  # the step it diverged or stopped at

    @property
    def alive(self) -> bool:
        """Still training (not diverged, not stopped)."""
        return self.status is None

    def _watched(self, record: Record) -> float:
        return record.norms.get(self.kind, math.nan) if self.kind else math.nan

    def replay(self) -> None:
        """Feed the records of a resume to the stop rule: a run that had stopped by then
        stops at the same point (the records after it are dropped)."""
        for i, record in enumerate(self.records if self.rule is not None else []):
            reason = self.rule.update(record)
            if reason is not None:
                self.records = self.records[:i + 1]
                self._end("finished", record.step, reason)
                return

    def grown(self, norms: dict[str, float], growth: float) -> bool:
        """The logging decision on norm growth: has the watched norm of ``norms`` (measured
        between logged points) grown by ``growth`` since the last logged point?"""
        self.kind = self.kind or watched_norm(norms)
        return self.kind is not None and norms[self.kind] >= growth * self.last_norm

    def check_loss(self, loss_sum: float, step: int, epoch: float) -> None:
        """The divergence check: the training losses summed since the last check must be
        finite (else the run diverged before ``step``)."""
        if not math.isfinite(loss_sum):
            self.diverge(f"the training loss became {loss_sum} before step {step} "
                         f"(epoch {epoch:g})", step)

    def diverge(self, message: str, step: int) -> None:
        """End the run at ``step`` as diverged, saying why."""
        self._end("diverged", step, "diverged", message)

    def check_point_loss(self, train_loss: float, step: int, epoch: float) -> bool:
        """The divergence check at a logged point, before its norms are measured: a training
        loss above ``DIVERGED_LOSS`` (or NaN) ends the run. True while the run goes on."""
        if not train_loss <= DIVERGED_LOSS:  # NaN, inf, or exploded
            self.diverge(f"the training loss is {train_loss:.3g} at step {step} "
                         f"(epoch {epoch:g}), above {DIVERGED_LOSS:g}", step)
        return self.alive

    def take(self, record: Record) -> None:
        """A new logged point (past :meth:`check_point_loss`): kept, handed to the callback
        and to the stop rule, which may end the run."""
        self.records.append(record)
        self.kind = self.kind or watched_norm(dict(record.norms))
        self.last_norm = self._watched(record)
        if self.callback is not None:
            self.callback(record)
        reason = self.rule.update(record) if self.rule is not None else None
        if reason is not None:
            self._end("finished", record.step, reason)

    def _end(self, status: str, step: int, reason: str, error: str | None = None) -> None:
        self.status, self.stopped_at, self.reason, self.error = status, step, reason, error

    def result(self, *, step: int, n_batches: int, wall_time: float,
               resumed_from: int | None = None) -> TrainResult:
        """The run's :class:`TrainResult` once training is over at ``step`` (the step it
        stopped at if it stopped earlier)."""
        last = self.stopped_at if self.stopped_at is not None else step
        reason = self.reason or ("max_epochs" if self.rule is not None else "end")
        return TrainResult(self.config.run_id, self.config, self.status or "finished",
                           self.error, tuple(self.records), last, last / n_batches, wall_time,
                           resumed_from, reason)
