"""Study throughput: runs per hour for the paper/cnn-mnist row, seed ensembles off and on.

A study is many runs of one row (paper/cnn-mnist: 11 P from 375 to 48,000, 31
seeds, the paper's CNN at width 1, init factor 0.05, Adam, the stop rule with a
500-epoch cap). Its cost is training steps plus logged points (each evaluates
the full 10,000-image test set, the training subset and every norm). This
script measures both on the device, for

- ``lone``: one run at a time (:func:`normscale.train.train`);
- ``ensemble``: K seeds of one cell trained as one vectorised model
  (:func:`normscale.train.ensemble.train_ensemble`),

and projects runs per hour for the whole row from them:

    hours = sum over runs of (epochs(P) * ceil(P / 128) * t_step + n_points * t_point(P))

for two lengths per run: every run to the 500-epoch cap (the upper bound, and
the paper's own schedule), and every run stopping at ``--stop-epochs`` (the
stop rule's typical stop; cpu/cnn-mnist at width 1/4 stopped at 40 to 80
epochs, docs/example-cnn-mnist). A step is timed at ``--P``; a logged point
is timed at the smallest P of the row, split into the norms and the
evaluation of N_test + P images, and extended to larger P by the images.

    .venv/bin/python benchmarks/bench_study.py [--device cpu|cuda] [--P 3000]
        [--seeds 4] [--steps 12] [--width 1] [--data-root ../shared/data/mnist]

Without the MNIST files it says so and exits 0 (``make bench`` runs every script).

``--compare REF`` instead measures a run of ``cpu/cnn-mnist`` (one P, seed 0, one
thread, as a sweep worker runs it) with the code of the git revision REF and with
this tree, alternately, ``--rounds`` times each, and checks that both log the same
steps with the same test errors and stop at the same step for the same reason:

    nice .venv/bin/python benchmarks/bench_study.py --compare 994a1ca --P 250 --rounds 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from normscale.sweep import load_spec
from normscale.train import TrainConfig, train
from normscale.train.ensemble import train_ensemble
from normscale.train.loop import _Lone, _setup, evaluate
from normscale.train.schedule import Schedule

ROW = "paper/cnn-mnist"
DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
N_POINTS = 60  # logged points per run: n_log 50 log-spaced steps plus norm-growth points


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(config: TrainConfig, *, root: Path, device: str, seeds: int) -> float:
    """Seconds per optimizer step per run: lone runs (seeds == 1) or one ensemble."""
    def once(steps: int) -> float:
        cfg = dataclasses.replace(config, epochs=None, steps=steps, n_log=1, until="end")
        _sync(device)
        t0 = time.perf_counter()
        if seeds == 1:
            train(cfg, data_root=root, device=device)
        else:
            train_ensemble([dataclasses.replace(cfg, seed=s) for s in range(seeds)],
                           data_root=root, device=device)
        _sync(device)
        return time.perf_counter() - t0

    short, long = max(2, STEPS // 4), STEPS
    # the difference of two lengths cancels loading, set-up and the one logged point
    return max(once(long) - once(short), 1e-9) / (long - short) / seeds


def time_point(config: TrainConfig, *, root: Path, device: str) -> tuple[float, float]:
    """Seconds per logged point of a lone run at ``config.P`` (test set, training subset,
    every norm), and seconds per evaluated test image."""
    s = _setup(config, root, False, torch.device(device))
    engine = _Lone(config, s, Schedule.of(config))

    def point() -> None:
        engine.evaluate([0])
        engine.norms([0])

    point()  # warm-up: the tracker's first pass
    _sync(device)
    t0 = time.perf_counter()
    point()
    _sync(device)
    t1 = time.perf_counter()
    evaluate(s.model, s.test_x, s.test_y, channels_last=s.channels_last)
    _sync(device)
    return t1 - t0, (time.perf_counter() - t1) / len(s.test_y)


def project(configs: list[TrainConfig], t_step: float, t_point, epochs_of) -> float:
    """Runs per hour of the whole row."""
    seconds = sum(epochs_of(c) * math.ceil(c.P / c.batch_size) * t_step + N_POINTS * t_point(c.P)
                  for c in configs)
    return len(configs) / (seconds / 3600)


#: one run in a fresh process, on the tree at sys.path[0]: its wall time and what it logged
_RUN = """
import json, sys, time
import torch
torch.set_num_threads(1)
from normscale.train import TrainConfig, train
cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
t0 = time.perf_counter()
r = train(cfg, data_root=sys.argv[2])
print(json.dumps({"wall": time.perf_counter() - t0, "status": r.status,
                  "stop_reason": r.stop_reason, "step": r.step,
                  "records": [[x.step, x.test_error, x.test_loss, x.train_error]
                              for x in r.records]}))
"""


def _run_tree(src: Path, config: TrainConfig, root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    env.pop("OMP_WAIT_POLICY", None)  # the same OpenMP settings for both trees
    done = subprocess.run([sys.executable, "-c", _RUN, json.dumps(config.to_dict()), str(root)],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(ref: str, *, P: int, rounds: int, root: Path, first: str = "before") -> None:
    """Alternate runs of one cpu/cnn-mnist config on the code of ``ref`` and of this tree."""
    repo = Path(__file__).resolve().parents[1]
    config = next(c for c in load_spec("cpu/cnn-mnist").configs() if c.P == P and c.seed == 0)
    with tempfile.TemporaryDirectory(prefix="bench-study-ref-") as tmp:
        archive = subprocess.run(["git", "-C", str(repo), "archive", ref, "src"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        trees = {"before": Path(tmp) / "src", "after": repo / "src"}
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for i in range(rounds):
            order = ("before", "after") if first == "before" else ("after", "before")
            for name in (order if i % 2 == 0 else order[::-1]):
                runs[name].append(_run_tree(trees[name], config, root))
                print(f"round {i + 1} {name:>6}: {runs[name][-1]['wall']:7.1f} s, "
                      f"{len(runs[name][-1]['records'])} points, stopped "
                      f"{runs[name][-1]['stop_reason']} at step {runs[name][-1]['step']}",
                      flush=True)
    a, b = runs["before"][0], runs["after"][0]
    steps_same = [r[0] for r in a["records"]] == [r[0] for r in b["records"]]
    diffs = [abs(x[1] - y[1]) for x, y in zip(a["records"], b["records"], strict=False)]
    loss = [abs(x[2] - y[2]) / abs(x[2]) for x, y in zip(a["records"], b["records"],
                                                         strict=False)]
    print(f"{ref} vs this tree, cpu/cnn-mnist P = {P} seed 0, {rounds} rounds alternated: "
          f"same logged steps: {steps_same}; test error: {sum(d > 0 for d in diffs)} of "
          f"{len(diffs)} points differ, by at most {max(diffs, default=0):.2g} "
          f"({max(diffs, default=0) * 10000:.0f} of 10,000 images); test loss to "
          f"{max(loss, default=0):.1g} relative; same stop: "
          f"{(a['stop_reason'], a['step']) == (b['stop_reason'], b['step'])}")
    before = statistics.median(r["wall"] for r in runs["before"])
    after = statistics.median(r["wall"] for r in runs["after"])
    print(f"median wall time {before:.1f} s before, {after:.1f} s after: "
          f"{before / after:.2f}x faster")


def main() -> None:
    global STEPS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--P", type=int, default=3000, help="subset size the steps are timed at")
    p.add_argument("--seeds", type=int, default=4, help="ensemble size K")
    p.add_argument("--steps", type=int, default=12, help="timed optimizer steps")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--stop-epochs", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--compare", metavar="REF",
                   help="time cpu/cnn-mnist at --P against the code of git revision REF")
    p.add_argument("--rounds", type=int, default=2, help="with --compare: runs of each")
    p.add_argument("--first", choices=("before", "after"), default="before",
                   help="with --compare: which code runs first in odd rounds")
    args = p.parse_args()
    STEPS = args.steps
    if not (args.data_root / "train-images-idx3-ubyte.gz").is_file():
        print(f"bench_study: no MNIST files in {args.data_root}; skipped")
        return
    if args.compare:
        compare(args.compare, P=args.P, rounds=args.rounds, root=args.data_root,
                first=args.first)
        return
    torch.set_num_threads(args.threads)
    configs = [dataclasses.replace(c, width=args.width) for c in load_spec(ROW).configs()]
    base = next(c for c in configs if c.P == min(configs, key=lambda c: abs(c.P - args.P)).P)
    base = dataclasses.replace(base, P=args.P)
    lo, hi = min(c.P for c in configs), max(c.P for c in configs)
    t_lo, t_img = time_point(dataclasses.replace(base, P=lo), root=args.data_root,
                             device=args.device)

    def t_point(P: int) -> float:
        return t_lo + (P - lo) * t_img

    cap = max(c.epochs for c in configs)
    print(f"{ROW}: {len(configs)} runs, P {lo}..{hi}, width {args.width:g}, device "
          f"{args.device}, {args.threads} threads; step timed at P = {args.P}")
    print(f"logged point: {t_lo:.3f} s at P = {lo}, {t_point(hi):.3f} s at P = {hi} "
          f"({1e6 * t_img:.0f} us per evaluated image)")
    for label, k in (("lone", 1), (f"ensemble of {args.seeds}", args.seeds)):
        t_step = time_steps(base, root=args.data_root, device=args.device, seeds=k)
        at_cap = project(configs, t_step, t_point, lambda c: cap)
        at_stop = project(configs, t_step, t_point, lambda c: args.stop_epochs)
        print(f"{label:>14}: {1000 * t_step:8.2f} ms per step per run, "
              f"{at_cap:8.3g} runs/h to the {cap}-epoch cap, "
              f"{at_stop:8.3g} runs/h stopping at epoch {args.stop_epochs:g}")


STEPS = 12

if __name__ == "__main__":
    main()
