"""What a worker does for one run of a sweep: train it and send back its records.

The function is top-level and takes and returns plain data, so it travels
to a process pool or to a Ray task unchanged; the worker never writes to the
store (the driver is the single writer, so no shared file system is needed).
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from normscale.errors import NormscaleError


def run_one(config: dict[str, Any], *, data_root: str | None = None, download: bool = False,
            device: str = "cpu", checkpoint_dir: str | None = None,
            threads: int = 1) -> dict[str, Any]:
    """Train the run ``config`` (a :class:`~normscale.train.TrainConfig` as a dict).

    Returns
    -------
    dict
        ``run_id``, ``status`` (finished, diverged or failed), ``error``,
        ``wall_time`` and ``records`` (a list of :meth:`Record.to_row` dicts).
        Exceptions are caught and returned as status ``failed`` so that one
        bad run never stops a sweep.
    """
    import torch

    from normscale.train import TrainConfig, train

    torch.set_num_threads(max(int(threads), 1))
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
            "wall_time": result.wall_time, "records": [r.to_row() for r in result.records]}
