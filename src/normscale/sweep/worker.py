"""What a worker does for one run of a sweep: train it and send back its records.

The function is top-level and takes and returns plain data, so it travels
to a process pool or to a Ray task unchanged; the worker never writes to the
store (the driver is the single writer, so no shared file system is needed).

A local worker dies with its driver (:func:`die_with_parent`), so a driver
killed by SIGKILL or out of memory leaves no worker training on, and with
the workers gone multiprocessing's resource tracker ends too.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from normscale.errors import NormscaleError

#: seconds between two checks that the driver still lives (where the kernel cannot tell)
PARENT_CHECK_S = 1.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Process-pool initializer: end this worker as soon as ``parent_pid`` (the driver) dies.

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``);
    everywhere a daemon thread also checks every ``PARENT_CHECK_S`` seconds that
    the parent is still ours (an orphan is re-parented, so its parent id changes).
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the thread alone
        pass
    if os.getppid() != parent_pid:  # the driver died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="normscale-parent-watch", daemon=True).start()


def run_one(config: dict[str, Any] | list[dict[str, Any]], *, data_root: str | None = None,
            download: bool = False, device: str = "cpu", checkpoint_dir: str | None = None,
            threads: int = 1) -> dict[str, Any]:
    """Train the run ``config`` (a :class:`~normscale.train.TrainConfig` as a dict).

    A list of configs (equal but for the seed) trains as one seed ensemble
    (:func:`~normscale.train.ensemble.train_ensemble`, no checkpoint); the
    result is then ``{"run_id": ensemble id, "runs": [one result per config]}``.

    Returns
    -------
    dict
        ``run_id``, ``status`` (finished, diverged or failed), ``error``,
        ``stop_reason`` (:data:`~normscale.store.schema.STOP_REASONS`, None
        for a failed run), ``wall_time`` and ``records`` (a list of :meth:`Record.to_row` dicts).
        Exceptions are caught and returned as status ``failed`` so that one
        bad run never stops a sweep.
    """
    # OpenMP threads sleep at barriers (read when torch loads, so first): a run with
    # threads > 1 beside a busy process would otherwise spin (cli/train.py)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from normscale.train import TrainConfig, train

    torch.set_num_threads(max(int(threads), 1))
    if isinstance(config, list):
        return _run_ensemble([TrainConfig.from_dict(c) for c in config], data_root=data_root,
                             download=download, device=device)
    cfg = TrainConfig.from_dict(config)
    checkpoint = None
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        checkpoint = Path(checkpoint_dir) / f"{cfg.run_id}.pt"
    try:
        result = train(cfg, data_root=data_root, download=download, device=device,
                       checkpoint=checkpoint, resume=True)
    except NormscaleError as exc:
        return {"run_id": cfg.run_id, "status": "failed", "error": str(exc),
                "wall_time": None, "records": []}
    except Exception as exc:  # a bug or an out-of-memory must not stop the sweep
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return {"run_id": cfg.run_id, "status": "failed", "error": tb,
                "wall_time": None, "records": []}
    return {"run_id": cfg.run_id, "status": result.status, "error": result.error,
            "stop_reason": result.stop_reason, "wall_time": result.wall_time,
            "records": [r.to_row() for r in result.records]}


def _run_ensemble(configs: list, *, data_root: str | None, download: bool,
                  device: str) -> dict[str, Any]:
    from normscale.train.ensemble import ensemble_id, train_ensemble

    eid = ensemble_id(configs)
    try:
        result = train_ensemble(configs, data_root=data_root, download=download, device=device)
    except Exception as exc:  # NormscaleError, a bug or an out-of-memory: all members failed
        error = str(exc) if isinstance(exc, NormscaleError) else \
            traceback.format_exception_only(type(exc), exc)[-1].strip()
        return {"run_id": eid, "runs": [
            {"run_id": c.run_id, "status": "failed", "error": error, "wall_time": None,
             "records": []} for c in configs]}
    return {"run_id": eid, "runs": [
        {"run_id": m.run_id, "status": m.status, "error": m.error, "wall_time": m.wall_time,
         "stop_reason": m.stop_reason, "records": [r.to_row() for r in m.records]}
        for m in result.members]}
