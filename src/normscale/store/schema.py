"""The run store's schema: one row per run, one row per logged point.

A *run* is one training of one configuration; its identity (``run_id``) is a
hash of that configuration, so the same configuration is the same run. A
*record* is one logged point of a run (docs/science.md 2.2: test and training
error and loss, every norm measure, wall time, at log-spaced epochs), keyed
by ``(run_id, step)`` so that re-logging a point after a resume replaces it
instead of duplicating it.

This module is free of torch: a driver process that only gathers records
(sweeps) imports the store without the training stack.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

STATUSES = ("running", "finished", "diverged", "failed")
#: why a run ended (normscale.train.stop): past its optimum, its cap ran out (a censored
#: minimum), on its initial plateau, diverged, or a fixed-length run trained its length
STOP_REASONS = ("past_optimum", "max_epochs", "plateau", "diverged", "end")

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,        -- hash of the config
    config      TEXT NOT NULL,           -- the whole config, JSON
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'diverged', 'failed')),
    error       TEXT,                    -- why a run diverged or failed
    ensemble_id TEXT,                    -- runs of one seed ensemble share it
    created_at  REAL NOT NULL,           -- unix time of the first start
    updated_at  REAL NOT NULL,           -- unix time of the last change
    finished_at REAL,                    -- unix time the run ended (any final status)
    wall_time   REAL,                    -- seconds of training, summed over resumes
    versions    TEXT NOT NULL,           -- JSON: normscale, python, torch, ...
    host        TEXT NOT NULL,
    stop_reason TEXT,                    -- why it ended (STOP_REASONS), NULL while running
    owner       TEXT                     -- host:pid:claim of the writer that owns it, or NULL
);
CREATE INDEX IF NOT EXISTS runs_ensemble ON runs (ensemble_id);
CREATE TABLE IF NOT EXISTS records (
    run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,        -- optimizer steps taken
    epoch       REAL NOT NULL,           -- passes over the training subset (step / batches)
    test_error  REAL,                    -- fraction misclassified, full test set
    test_loss   REAL,                    -- mean cross-entropy, full test set
    train_error REAL,                    -- fraction misclassified, training subset
    train_loss  REAL,                    -- mean cross-entropy, training subset
    wall_time   REAL,                    -- seconds since the run started
    norms       TEXT NOT NULL,           -- JSON {measure name: value}
    PRIMARY KEY (run_id, step)
);
"""


#: the columns of the long table that name a group of runs in the paper's table
#: (docs/science.md 2.3); `normscale table` fits one analysis per distinct combination
GROUP_COLUMNS = ("model", "dataset", "optimizer", "weight_decay", "norm_kind")


def _float(value: Any) -> float:
    """SQLite stores NaN as NULL: read it back as NaN."""
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Record:
    """One logged point of a run (docs/science.md 2.2).

    Attributes
    ----------
    epoch : float
        Passes over the training subset so far (integer-valued when logging
        by epoch, fractional when logging by step).
    step : int
        Optimizer steps taken so far; the record's key within its run.
    test_error, test_loss : float
        Misclassified fraction and mean cross-entropy on the full test set.
    train_error, train_loss : float
        The same on the training subset (no augmentation, eval mode).
    wall_time : float
        Seconds since the run started, summed over resumes.
    norms : mapping of str to float
        Every measure of :mod:`normscale.norms` at this point.
    """

    epoch: float
    step: int
    test_error: float
    test_loss: float
    train_error: float
    train_loss: float
    wall_time: float
    norms: Mapping[str, float] = field(default_factory=dict)

    def to_row(self) -> dict[str, float]:
        """A flat dict: the fixed fields followed by one key per norm measure."""
        row: dict[str, float] = {
            "epoch": self.epoch, "step": self.step,
            "test_error": self.test_error, "test_loss": self.test_loss,
            "train_error": self.train_error, "train_loss": self.train_loss,
            "wall_time": self.wall_time,
        }
        row.update({k: float(v) for k, v in self.norms.items()})
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Record:
        """Inverse of :meth:`to_row`: keys that are not fixed fields are norms."""
        fixed = {"epoch", "step", "test_error", "test_loss", "train_error", "train_loss",
                 "wall_time"}
        return cls(
            epoch=_float(row["epoch"]), step=int(row["step"]),
            test_error=_float(row["test_error"]), test_loss=_float(row["test_loss"]),
            train_error=_float(row["train_error"]), train_loss=_float(row["train_loss"]),
            wall_time=_float(row["wall_time"]),
            norms={k: _float(v) for k, v in row.items() if k not in fixed},
        )


@dataclass(frozen=True)
class RunInfo:
    """One row of the ``runs`` table (:meth:`Store.runs <normscale.store.Store.runs>`).

    Attributes
    ----------
    run_id : str
        The run's identity: 16 hex digits of the SHA-256 of its config
        (``TrainConfig.run_id``, or ``run_id_of`` for an integration's run).
    config : mapping of str to any
        The whole config as stored when the run started, JSON values; a run
        trained by normscale or tracked by ``RunTracker`` also carries
        ``N``, its trainable parameter count.
    status : str
        One of :data:`STATUSES`: ``running``, ``finished``, ``diverged``,
        ``failed``.
    error : str or None
        Why the run diverged or failed; None otherwise.
    ensemble_id : str or None
        Shared by the runs of one seed ensemble (trained together); None for
        a run trained alone.
    created_at : float
        Unix time of the run's first start (kept over resumes and reruns).
    updated_at : float
        Unix time of the last change: a start, a batch of records, the end.
    finished_at : float or None
        Unix time the run ended with any final status; None while running.
    wall_time : float or None
        Seconds of training, summed over resumes, as the writer reported at
        the end; None while running.
    versions : mapping of str to str
        Versions of the process that last started the run: ``normscale``,
        ``python``, and ``torch`` when it was loaded.
    host : str
        Host name of the machine that last started the run.
    n_records : int
        Logged points (rows of the ``records`` table) the run has.
    stop_reason : str or None
        Why the run ended, one of :data:`STOP_REASONS`; None while running,
        for a run stored before stop reasons existed, or when the writer
        gave none.
    """

    run_id: str
    config: Mapping[str, Any]
    status: str
    error: str | None
    ensemble_id: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    wall_time: float | None
    versions: Mapping[str, str]
    host: str
    n_records: int
    stop_reason: str | None = None
