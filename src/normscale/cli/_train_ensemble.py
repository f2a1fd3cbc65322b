"""``normscale train --seeds A:B --ensemble``: K seeds of one run trained as one ensemble.

The store gets one ordinary run per seed (its config, its records), the
members sharing an ``ensemble_id``; members already finished or diverged in
the store are skipped (unless --force) and the rest train together.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

from normscale.cli import _common
from normscale.errors import NormscaleError


def run_ensemble(args: argparse.Namespace, config, *, device: str,
                 summary: Callable[..., str]) -> _common.Result:
    from normscale.store import Store
    from normscale.train import stored_config
    from normscale.train.ensemble import ensemble_id, limitations, train_ensemble

    if args.seeds is None or not args.ensemble:
        raise NormscaleError("--seeds and --ensemble go together: give --seeds A:B --ensemble "
                             "(or --seed N for one run)")
    if args.resume or args.checkpoint:
        raise NormscaleError("an ensemble writes no checkpoint: drop --resume/--checkpoint "
                             "(an interrupted ensemble trains its unfinished members again)")
    configs = [dataclasses.replace(config, seed=s) for s in args.seeds]
    note = limitations(config)
    if note is not None:
        _common.log(args, f"note: {note}")
    store = Store(args.store) if args.store else None
    todo = list(configs)
    if store is not None and not args.force:
        todo = [c for c in configs if (store.run(c.run_id) is None
                                       or store.run(c.run_id).status not in ("finished",
                                                                             "diverged"))]
    eid = args.ensemble_id or ensemble_id(todo or configs)  # the members trained together
    _common.log(args, f"ensemble {eid}: {len(todo)} of {len(configs)} seeds to train "
                      f"({config.model} on {config.dataset}, P={config.P}, {config.length} "
                      f"{config.unit}s, {config.optimizer} lr={config.lr:g}, device {device})")
    results = {}
    if todo:
        if store is not None:
            for c in todo:
                store.start_run(c.run_id, stored_config(c, data_root=args.data_root),
                                ensemble_id=eid, fresh=True)

        def write(k: int, record) -> None:
            if store is not None:
                store.add_records(todo[k].run_id, [record])

        try:
            with _common.progress(args, config.length, f"ensemble {eid[:8]}") as bar:
                result = train_ensemble(todo, data_root=args.data_root, download=args.download,
                                        device=device, callback=write, progress=bar.update)
        except BaseException as exc:
            from normscale.cli.train import stopped

            raise stopped(exc, store, [c.run_id for c in todo],
                          f"--store {args.store}" if store else None, resumable=False) from None
        for member in result.members:
            results[member.run_id] = member
            if store is not None:
                store.finish_run(member.run_id, status=member.status, error=member.error,
                                 wall_time=member.wall_time, stop_reason=member.stop_reason)
            if member.status == "diverged":
                _common.log(args, f"run {member.run_id} (seed {member.config.seed}) diverged: "
                                  f"{member.error}")
    runs, texts = [], []
    for c in configs:
        if c.run_id in results:
            m = results[c.run_id]
            status, error, records, wall, skipped = (m.status, m.error, list(m.records),
                                                     m.wall_time, False)
            reason = m.stop_reason
        else:
            known = store.run(c.run_id)
            status, error, records, wall, skipped = (known.status, known.error,
                                                     store.records(c.run_id), known.wall_time,
                                                     True)
            reason = known.stop_reason
        runs.append({"run_id": c.run_id, "seed": c.seed, "status": status, "error": error,
                     "stop_reason": reason, "skipped": skipped, "config": c.to_dict(),
                     "records": [r.to_row() for r in records], "wall_time": wall})
        texts.append(f"seed {c.seed}: " + summary(
            c.run_id, status, error, records, None,
            " (already in the store, skipped)" if skipped else "", reason))
    if store is not None:
        store.close()
    wall = result.wall_time if todo else None
    text = "\n".join(texts) + (f"\nensemble wall time {wall:.1f} s" if wall is not None else "")
    return _common.Result(data={"ensemble_id": eid, "runs": runs, "wall_time": wall}, text=text)
