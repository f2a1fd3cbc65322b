"""The sweep driver: skips what is done, submits the rest, and is the store's single writer."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from normscale._validation import POSITIVE_INT, Options, check_param
from normscale.errors import NormscaleError
from normscale.store import Record, Store
from normscale.sweep.executors import run_local, run_ray
from normscale.sweep.spec import SweepSpec
from normscale.train.config import TrainConfig
from normscale.train.seed_groups import ensemble_id, seed_groups

EXECUTORS = ("local", "ray")
TERMINAL = ("finished", "diverged")  # a run in one of these states is never run again


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep did.

    Attributes
    ----------
    total : int
        Runs in the sweep.
    skipped : int
        Runs already finished or diverged in the store (not run again).
    finished, diverged, failed : int
        Outcomes of the runs executed now.
    wall_time : float
        Seconds.
    failures : list of (run_id, error)
        The runs executed now that failed, with the error each was recorded
        with (an empty string when none was given).
    stop_reasons : dict of str to int
        Why the runs executed now ended (:data:`~normscale.store.schema.STOP_REASONS`):
        how many stopped ``past_optimum``, at ``max_epochs``, on their ``plateau``, ...
    plateau : list of str
        The run ids stopped on their initial plateau.
    """

    total: int
    skipped: int
    finished: int
    diverged: int
    failed: int
    wall_time: float
    failures: list[tuple[str, str]] = field(default_factory=list)
    stop_reasons: dict[str, int] = field(default_factory=dict)
    plateau: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary `normscale sweep` prints."""
        reasons = ", ".join(f"{n} {k}" for k, n in sorted(self.stop_reasons.items(),
                                                           key=lambda kv: -kv[1]))
        return (f"{self.total} runs: {self.skipped} already done, {self.finished} finished"
                + (f" ({reasons})" if reasons else "")
                + f", {self.diverged} diverged, {self.failed} failed in {self.wall_time:.0f} s")


def _stored_configs(configs: Sequence[TrainConfig], data_root: str | Path | None
                    ) -> dict[str, dict]:
    """Each run's config as the store keeps it, with its parameter count N
    (:func:`normscale.train.stored_config`; one model per architecture, on the meta device).

    A run whose data set's shape is unknown here (``imagefolder`` without its
    folder) is stored without N: its worker then fails it with the data set's error.
    """
    if not configs:
        return {}
    from normscale.train import stored_config

    counts: dict[tuple, int | None] = {}
    out = {}
    for cfg in configs:
        key = (cfg.model, cfg.dataset, cfg.preset, cfg.width, cfg.depth)
        if key not in counts:
            try:
                counts[key] = stored_config(cfg, data_root=data_root)["N"]
            except NormscaleError:  # the worker meets the same error and fails the run
                counts[key] = None
        out[cfg.run_id] = cfg.to_dict() | ({"N": counts[key]} if counts[key] is not None
                                           else {})
    return out


def run_sweep(spec: SweepSpec | Sequence[TrainConfig], *, store: Store,
              executor: str = "local", workers: int | None = None, address: str | None = None,
              data_root: str | Path | None = None, download: bool = False, device: str = "cpu",
              checkpoint_dir: str | Path | None = None, force: bool = False,
              threads_per_run: int = 1, gpus_per_run: float = 0.0,
              ensemble: bool | None = None,
              on_progress: Callable[[int, int, int, int], None] | None = None) -> SweepSummary:
    """Run every run of a sweep that the store does not already hold as done.

    Parameters
    ----------
    spec : SweepSpec or sequence of TrainConfig
    store : Store
        Receives each run's records and status as the run completes; only this
        process writes to it.
    executor : {"local", "ray"}
    workers : int, optional
        Parallel runs (local pool size, or CPUs of a local Ray instance);
        default: the number of CPU cores.
    address : str, optional
        A Ray cluster to join (``"auto"`` or ``"HOST:PORT"``); default: start a
        local instance.
    checkpoint_dir : path, optional
        Where workers keep checkpoints so an interrupted run resumes (on a
        cluster: a local path on each node). Default: ``<store>.checkpoints``.
    force : bool
        Run again runs that are already finished (their records are replaced).
    ensemble : bool, optional
        Train the runs of each cell that differ only by their seed as one seed
        ensemble (one job; the store still gets one run per seed, sharing an
        ``ensemble_id``). Default: the sweep file's ``ensemble`` switch.
    on_progress : callable, optional
        Called as ``on_progress(done, running, failed, total)`` after each event.

    Returns
    -------
    SweepSummary

    Notes
    -----
    Idempotent and resumable: a run's identity is the hash of its config, so
    finished and diverged runs are skipped; runs left ``running`` by an
    interrupted driver, and ``failed`` ones, are run again (resuming from their
    checkpoint when the worker finds one). A failed run is recorded with its
    error and does not stop the sweep.
    """
    check_param("run_sweep", "executor", executor, Options(EXECUTORS))
    workers = workers if workers is not None else (os.cpu_count() or 1)
    check_param("run_sweep", "workers", workers, POSITIVE_INT)
    configs = spec.configs() if isinstance(spec, SweepSpec) else list(spec)
    if checkpoint_dir is None:
        checkpoint_dir = Path(str(store.path) + ".checkpoints")
    t0 = time.perf_counter()

    todo, skipped, seen = [], 0, set()
    for cfg in configs:
        if cfg.run_id in seen:
            continue
        seen.add(cfg.run_id)
        info = store.run(cfg.run_id)
        if info is not None and info.status in TERMINAL and not force:
            skipped += 1
            continue
        todo.append(cfg)
    total = len(seen)
    if ensemble is None:
        ensemble = isinstance(spec, SweepSpec) and spec.ensemble
    groups = seed_groups(todo) if ensemble else [[cfg] for cfg in todo]
    stored = _stored_configs(todo, data_root)
    for group in groups:
        eid = ensemble_id(group) if len(group) > 1 else None
        for cfg in group:
            store.start_run(cfg.run_id, stored[cfg.run_id], ensemble_id=eid, fresh=force)

    common = {"data_root": None if data_root is None else str(data_root), "download": download,
              "device": device, "checkpoint_dir": str(checkpoint_dir),
              "threads": threads_per_run}
    jobs = [(g[0].run_id, {"config": g[0].to_dict(), **common}) if len(g) == 1 else
            (ensemble_id(g), {"config": [c.to_dict() for c in g], **common}) for g in groups]
    if executor == "local":
        results = run_local(jobs, workers=workers)
    else:
        results = run_ray(jobs, workers=workers, address=address,
                          cpus_per_run=threads_per_run, gpus_per_run=gpus_per_run)

    configs_of = {ensemble_id(g): g for g in groups if len(g) > 1}
    counts = {"finished": 0, "diverged": 0, "failed": 0}
    failures: list[tuple[str, str]] = []
    reasons: dict[str, int] = {}
    plateau: list[str] = []

    def report() -> None:
        if on_progress is not None:
            done = skipped + sum(counts.values())
            on_progress(done, min(workers, total - done), counts["failed"], total)

    report()
    for key, job_result in results:
        if "runs" not in job_result and len(configs_of.get(key, ())) > 1:
            # a died ensemble job: each member failed with the job's error
            job_result = {"runs": [{**job_result, "run_id": c.run_id} for c in configs_of[key]]}
        for result in job_result.get("runs", [job_result]):
            run_id = result["run_id"]
            records = [Record.from_row(r) for r in result["records"]]
            if records:
                store.add_records(run_id, records)
            reason = result.get("stop_reason")
            store.finish_run(run_id, status=result["status"], error=result["error"],
                             wall_time=result["wall_time"], stop_reason=reason)
            counts[result["status"]] += 1
            if reason is not None:
                reasons[reason] = reasons.get(reason, 0) + 1
            if reason == "plateau":
                plateau.append(run_id)
            if result["status"] == "failed":
                failures.append((run_id, result["error"] or ""))
            report()
    return SweepSummary(total=total, skipped=skipped, wall_time=time.perf_counter() - t0,
                        failures=failures, stop_reasons=reasons, plateau=plateau, **counts)

