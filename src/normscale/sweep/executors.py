"""Where the runs of a sweep execute: a local process pool, or Ray tasks.

Both take a list of ``(key, kwargs)`` jobs for :func:`~normscale.sweep.worker.run_one`
and yield ``(key, result)`` as runs complete, in completion order. Ray is the
distributed engine (no home-made cluster code): each run is a Ray task with
its resources, on a local instance or on the cluster at ``address``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
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

    ``address=None`` starts a private local Ray instance on 127.0.0.1 with
    ``workers`` CPUs (:func:`_local_instance`); ``"auto"`` or ``"HOST:PORT"``
    joins a running cluster (started with ``ray start --head`` and
    ``ray start --address``).
    """
    try:
        import ray
    except ImportError:
        raise NormscaleError("the ray executor needs Ray: pip install 'normscale[ray]'") from None
    if not jobs:
        return
    init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                            "ignore_reinit_error": True}
    temp_dir = None
    if address is None:
        temp_dir = _local_instance()
        init.update(address="local", num_cpus=workers,
                    num_gpus=0 if gpus_per_run == 0 else None,
                    _node_ip_address="127.0.0.1", _temp_dir=str(temp_dir))
    else:
        init["address"] = address
    try:
        ray.init(**init)
    except Exception as exc:  # Ray raises many types for a failed start or connection
        ray.shutdown()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NormscaleError(f"cannot start or reach Ray at {address or 'a local instance'}: "
                             f"{first}") from None
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
            shutil.rmtree(temp_dir, ignore_errors=True)


#: prefix of the session folder of a local Ray instance started by a sweep driver; the
#: driver's pid follows, so a later driver can tell the folders of dead drivers
_TEMP_PREFIX = "normscale-ray-"


def _local_instance() -> Path:
    """A fresh session folder for a private local Ray instance, owned by this driver.

    A local instance shares nothing with another: ``address="local"`` never
    attaches to a running cluster (not to ``RAY_ADDRESS``, not to the last
    ``ray start``, not to the instance of a killed driver), its ports are
    chosen by the system, and its session folder (sockets, logs, object
    spilling) is its own instead of Ray's shared ``/tmp/ray``, whose
    ``session_latest`` link every local instance rewrites. A driver killed by
    SIGKILL cannot remove its folder; the next driver removes those whose
    driver is gone. The folder sits in ``/tmp`` where there is one, so the
    socket paths inside stay below the 107 bytes a Unix socket allows.
    """
    base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    for old in base.glob(f"{_TEMP_PREFIX}*"):
        pid = old.name[len(_TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-", dir=base))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
