"""Where the runs of a sweep execute: a local process pool, or Ray tasks.

Both take a list of ``(key, kwargs)`` jobs for :func:`~normscale.sweep.worker.run_one`
and yield ``(key, result)`` as runs complete, in completion order. Ray is the
distributed engine (no home-made cluster code): each run is a Ray task with
its resources, on a local instance or on the cluster at ``address``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from normscale.errors import NormscaleError
from normscale.sweep.worker import die_with_parent, run_one

Job = tuple[str, dict[str, Any]]


def _failed(key: str, error: str) -> dict[str, Any]:
    return {"run_id": key, "status": "failed", "error": error, "wall_time": None, "records": []}


def run_local(jobs: Sequence[Job], *, workers: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Run jobs in a pool of ``workers`` fresh processes (spawned, so no forked torch state).

    The workers die with this process, even when it is killed by SIGKILL
    (:func:`~normscale.sweep.worker.die_with_parent`).
    """
    if not jobs:
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_one, **kwargs): key for key, kwargs in jobs}
        for future in as_completed(futures):
            key = futures[future]
            try:
                yield key, future.result()
            except BrokenProcessPool as exc:  # a worker was killed (e.g. out of memory)
                yield key, _failed(key, f"worker process died: {exc}")


def run_ray(jobs: Sequence[Job], *, workers: int | None, address: str | None,
            cpus_per_run: float = 1.0, gpus_per_run: float = 0.0
            ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Run each job as a Ray task; results come back to this (driver) process.

    ``address=None`` starts a local Ray instance on 127.0.0.1 with ``workers``
    CPUs; ``"auto"`` or ``"HOST:PORT"`` joins a running cluster (started with
    ``ray start --head`` and ``ray start --address``).
    """
    try:
        import ray
    except ImportError:
        raise NormscaleError("the ray executor needs Ray: pip install 'normscale[ray]'") from None
    if not jobs:
        return
    init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                            "ignore_reinit_error": True}
    if address is None:
        init.update(num_cpus=workers, num_gpus=0 if gpus_per_run == 0 else None,
                    _node_ip_address="127.0.0.1")
    else:
        init["address"] = address
    try:
        ray.init(**init)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise NormscaleError(f"cannot start or reach Ray at {address or 'a local instance'}: "
                             f"{exc}") from None
    remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(run_one)
    try:
        pending = {remote.remote(**kwargs): key for key, kwargs in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            key = pending.pop(done[0])
            try:
                yield key, ray.get(done[0])
            except (ray.exceptions.RayError, OSError) as exc:  # a task or its node died
                yield key, _failed(key, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        if address is None:
            ray.shutdown()
