"""Seed ensembles against runs one after another: wall time of K seeds, side by side.

The issue 8 benchmark: K seeds of the ``cpu/cnn-mnist`` sweep preset (the
paper's CNN at width 1/4, init factor 0.05, Adam) at P = 1000, trained

- ``alone``: K calls of :func:`normscale.train.train`, one after another;
- ``ensemble``: one call of :func:`normscale.train.ensemble.train_ensemble`.

Both log the same points (norms included), so the timings cover training and
logging. Prints both wall times and their ratio, measured in one run
(targets: >= 3x for 8 seeds on CPU, >= 10x for 32 seeds on a GPU). MNIST from
--data-root; the bundled 8x8 digits when the folder is absent.

    .venv/bin/python benchmarks/bench_ensemble.py [--data-root ../shared/data/mnist]
        [--seeds 8] [--P 1000] [--epochs 3] [--n-log 3] [--threads 2]
    .venv/bin/python benchmarks/bench_ensemble.py --device cuda --seeds 32 --epochs 10
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from normscale.sweep.spec import load_spec
from normscale.train import TrainConfig, train
from normscale.train.ensemble import train_ensemble

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data" / "mnist"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeds", type=int, default=None, help="K (default 8 on CPU, 32 on CUDA)")
    p.add_argument("--P", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=3, help="short by default: a noisy machine")
    p.add_argument("--n-log", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    k = args.seeds or (32 if args.device.startswith("cuda") else 8)
    root = Path(args.data_root)
    dataset = "mnist" if root.is_dir() else "digits"
    base = dict(load_spec("cpu/cnn-mnist").base)
    base.update(dataset=dataset, P=min(args.P, 1000 if dataset == "mnist" else 1000),
                epochs=args.epochs, n_log=args.n_log)
    configs = [dataclasses.replace(TrainConfig(**base), seed=s) for s in range(k)]
    kw = dict(data_root=str(root) if dataset == "mnist" else None, device=args.device)
    print(f"{k} seeds of cpu/cnn-mnist on {dataset}, P={configs[0].P}, {args.epochs} epochs, "
          f"{args.n_log} logging points, device {args.device}, {torch.get_num_threads()} threads")

    train(dataclasses.replace(configs[0], epochs=1, n_log=1), **kw)  # warm-up: load, allocate
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    sync()
    t0 = time.perf_counter()
    ens = train_ensemble(configs, **kw)
    sync()
    t_ens = time.perf_counter() - t0

    t0 = time.perf_counter()
    alone = [train(c, **kw) for c in configs]
    sync()
    t_alone = time.perf_counter() - t0

    worst = max(abs(a.records[-1].test_loss - m.records[-1].test_loss)
                for a, m in zip(alone, ens.members, strict=True))
    print(f"alone (one after another): {t_alone:8.2f} s")
    print(f"ensemble                 : {t_ens:8.2f} s")
    print(f"ratio alone / ensemble   : {t_alone / t_ens:8.2f} x")
    print(f"largest |test loss difference| at the last point: {worst:.2e} (float32 rounding)")


if __name__ == "__main__":
    main()
