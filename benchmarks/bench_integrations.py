"""Benchmark: what recording norm-indexed curves costs a training run, at the default schedule.

The callbacks of :mod:`normscale.integrations` all run
:meth:`RunTracker.log` at the scheduled steps (log-spaced, 20 per decade,
every step up to 11); the rest of a callback is a dictionary passed to the
framework's logger. This benchmark trains two models with Adam on random
inputs and, in the same run, times every training step and every
``RunTracker.log`` (warm-started power iteration on every matrix, the other
norms, one store write), so both are measured side by side under the same
load:

- small: the paper's CNN at width 0.25 on 8x8 inputs (the digits example);
- ResNet-18-sized: the paper's CIFAR-10 ResNet (BasicBlocks [2,2,2,2],
  widths 64..512, about 11M weights) on 32x32 inputs.

The overhead of a run of S steps is (cost of the points the schedule puts
in S steps) / (S x the median step time); the points after step 11 are
priced at the median cost of the late measurements of the timed run
(weights that moved between points, as in a long run), the first 11 at
their measured cost. Target: under 2% at 1e3 steps and beyond.

Run: ``.venv/bin/python benchmarks/bench_integrations.py [--threads 2] [--steps 40]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from normscale import nets
from normscale.integrations import LogSpaced, RunTracker

RUN_LENGTHS = (1_000, 10_000, 100_000)  # optimizer steps of the runs the table prices


def n_points(steps: int, schedule: LogSpaced) -> int:
    """How many points the schedule records in a run of ``steps`` steps."""
    n, s = 0, 0
    while (s := schedule.next_after(s)) <= steps:
        n += 1
    return n


def time_run(name: str, model: torch.nn.Module, shape: tuple[int, ...], batch: int,
             steps: int, store: Path) -> dict:
    """Train ``steps`` steps with the tracker at the default schedule; time both, apart."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shape, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tracker = RunTracker(model, model_name=name, P=batch, store=store, steps_per_epoch=1)
    step_times, log_times = [], []
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step_times.append(time.perf_counter() - t0)
        if tracker.due(step):
            t0 = time.perf_counter()
            tracker.log(step, test_error=0.5)
            log_times.append((step, time.perf_counter() - t0))
    tracker.finish()
    tracker.close()
    n_matrices = len(tracker.norms.discovery.layers)
    n_weights = sum(p.numel() for p in model.parameters())
    return {"name": name, "weights": n_weights, "matrices": n_matrices,
            "step": statistics.median(step_times[1:]), "log": log_times}


def table(results: list[dict], schedule: LogSpaced) -> str:
    lines = ["| model | weights | matrices | step (median) | log, first 11 (mean) "
             "| log, later (median) | " + " | ".join(f"overhead at {s:,} steps"
                                                     for s in RUN_LENGTHS) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(RUN_LENGTHS)]
    for r in results:
        early = [t for s, t in r["log"] if s <= 11]
        late = [t for s, t in r["log"] if s > 11] or early
        cost_early, cost_late = statistics.mean(early), statistics.median(late)
        cells = []
        for steps in RUN_LENGTHS:
            n = n_points(steps, schedule)
            cost = min(n, 11) * cost_early + max(n - 11, 0) * cost_late
            cells.append(f"{100 * cost / (steps * r['step']):.2f}% ({n} points)")
        lines.append(f"| {r['name']} | {r['weights'] / 1e6:.2f}M | {r['matrices']} | "
                     f"{1e3 * r['step']:.1f} ms | {1e3 * cost_early:.1f} ms | "
                     f"{1e3 * cost_late:.1f} ms | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: least disturbed by other work on the machine)")
    parser.add_argument("--steps", type=int, default=200,
                        help="steps timed, small model (36 points of the default schedule)")
    parser.add_argument("--batch", type=int, default=128, help="batch, small model")
    parser.add_argument("--resnet-steps", type=int, default=30,
                        help="steps timed, ResNet-18-sized model (19 points)")
    parser.add_argument("--resnet-batch", type=int, default=32, help="batch, ResNet")
    parser.add_argument("--skip-resnet", action="store_true", help="the small model only")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = [("CNN, width 0.25, 8x8", nets.build("cnn", in_channels=1, image_size=8,
                                                    num_classes=10, width=0.25,
                                                    dataset="digits"), (1, 8, 8),
               args.batch, args.steps)]
    if not args.skip_resnet:
        models.append(("ResNet-18-sized, 32x32", nets.build(
            "resnet", in_channels=3, image_size=32, num_classes=10, dataset="cifar10"),
            (3, 32, 32), args.resnet_batch, args.resnet_steps))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model, shape, batch, steps) in enumerate(models):
            model.train()
            results.append(time_run(f"{name}, batch {batch}", model, shape, batch, steps,
                                    Path(tmp) / f"runs{i}.db"))
            print(f"{name}: {len(results[-1]['log'])} points timed", file=sys.stderr)
    print(f"{args.threads} torch thread(s), CPU, default schedule (LogSpaced, 20 per decade)\n")
    print(table(results, LogSpaced()))


if __name__ == "__main__":
    main()
