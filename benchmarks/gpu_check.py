"""GPU check: the paper's CNN on MNIST on one GPU, in one table, in a few minutes.

Kept ready for the day a GPU is lent (the test suite runs it on CPU at a
tiny size, so it cannot rot). It measures, with the project's own APIs
(:func:`normscale.train.train`, :func:`normscale.train.ensemble.train_ensemble`,
:class:`normscale.norms.NormTracker`):

- **training throughput** of the paper's CNN at width 1 (``cnn``, preset
  ``paper``, Adam, batch 128) on MNIST: alone, and as an ensemble of
  ``--seeds`` seeds vectorised with torch.func (images per second over all
  members, against the same number of runs one after the other);
- **precision**: TF32 matmuls and convolutions, and bf16 autocast, each
  against strict fp32: the throughput and the difference of the final test
  error after the same short run (same seed, same batches);
- **norm tracking**: the time of one measurement of every norm
  (:class:`~normscale.norms.NormTracker`, warm-started power iteration, as
  the training loop does at each logged point) against a training step, and
  its share of a run that logs ``--n-log`` points.

Throughput is measured between the first and the last logged point of a run
(``--n-log`` log-spaced points; their evaluations of the 10,000 test images
and norm measurements included, stated in the table), after a warm-up run.
Nothing is written except the printed table.

    .venv/bin/python benchmarks/gpu_check.py --data-root /path/to/mnist      # on the GPU
    .venv/bin/python benchmarks/gpu_check.py --tiny --device cpu            # the suite's check
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

#: the full check: about 4 minutes on one GPU (the budget is 8): runs of ``steps`` Adam steps
#: of batch 128 on a P-image subset; ``norm_reps`` timed norm measurements
FULL = {"dataset": "mnist", "P": 8192, "steps": 1500, "seeds": 8, "n_log": 6, "norm_reps": 20}
#: the suite's size: the bundled 8x8 digits, a few steps, 2 seeds (seconds on a CPU)
TINY = {"dataset": "digits", "P": 64, "steps": 3, "seeds": 2, "n_log": 2, "norm_reps": 1}
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@dataclass(frozen=True)
class Run:
    """One timed run: images per second between its first and last logged points, its end."""

    name: str
    images_per_s: float
    step_ms: float
    test_error: float
    wall_s: float


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _precision(kind: str, device):
    """fp32 (TF32 off everywhere), tf32 (matmul and cuDNN), or bf16 autocast."""
    import torch

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = kind == "tf32"
    torch.backends.cudnn.allow_tf32 = kind == "tf32"
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                if kind == "bf16" else contextlib.nullcontext())
    try:
        with autocast:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _rate(records, members: int, batch: int) -> tuple[float, float]:
    """Images per second and ms per step between the first and the last logged point."""
    first, last = records[0], records[-1]
    steps = last.step - first.step
    dt = last.wall_time - first.wall_time
    if steps <= 0 or dt <= 0:
        return float("nan"), float("nan")
    return members * steps * batch / dt, 1e3 * dt / steps


def _alone(name, cfg, args, device, precision="fp32") -> Run:
    from normscale.train import train

    with _precision(precision, device):
        t0 = time.perf_counter()
        res = train(cfg, data_root=args.data_root, device=device)
        _sync(device)
        wall = time.perf_counter() - t0
    ips, ms = _rate(res.records, 1, min(cfg.batch_size, cfg.P))
    return Run(name, ips, ms, res.records[-1].test_error, wall)


def _ensemble(name, cfg, seeds, args, device) -> Run:
    from normscale.train.ensemble import train_ensemble

    configs = [replace(cfg, seed=s) for s in range(seeds)]
    with _precision("fp32", device):
        t0 = time.perf_counter()
        res = train_ensemble(configs, data_root=args.data_root, device=device)
        _sync(device)
        wall = time.perf_counter() - t0
    ips, ms = _rate(res.members[0].records, seeds, min(cfg.batch_size, cfg.P))
    err = sum(m.records[-1].test_error for m in res.members) / seeds
    return Run(name, ips, ms, err, wall)


def _norm_time(cfg, reps: int, device) -> float:
    """Seconds per measurement of every norm of the paper's CNN on ``device`` (warm tracker)."""
    import torch

    from normscale import data, nets, norms

    info = data.info(cfg.dataset)
    torch.manual_seed(0)
    model = nets.build(cfg.model, in_channels=info.in_channels, image_size=info.image_size,
                       num_classes=info.num_classes, preset=cfg.preset, width=cfg.width,
                       dataset=cfg.dataset).to(device)
    tracker = norms.NormTracker(model, reference="init")
    with torch.no_grad():
        for p in model.parameters():                 # move off the init, as training does
            p.add_(0.01 * torch.randn_like(p))
    tracker.measure()                                # warm-up: power iteration's vectors
    times = []
    for _ in range(reps):
        with torch.no_grad():
            for p in model.parameters():             # a small update between measurements
                p.add_(1e-3 * torch.randn_like(p))
        _sync(device)
        t0 = time.perf_counter()
        tracker.measure()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def check(*, device: str = "cuda", data_root: str | None = None, tiny: bool = False,
          **sizes) -> list[str]:
    """Run every measurement and return the table's lines (see the module notes)."""
    import torch

    from normscale.train import TrainConfig

    size = {**(TINY if tiny else FULL), **{k: v for k, v in sizes.items() if v is not None}}
    dev = torch.device(device)
    args = argparse.Namespace(data_root=data_root)
    cfg = TrainConfig(model="cnn", dataset=size["dataset"], P=size["P"], steps=size["steps"],
                      n_log=size["n_log"], preset="paper", width=1.0)
    # warm-up: CUDA context, cuDNN's algorithm search, the data set in memory
    _alone("warm-up", replace(cfg, steps=max(2, size["steps"] // 20)), args, dev)
    fp32 = _alone("fp32, alone", cfg, args, dev)
    tf32 = _alone("TF32, alone", cfg, args, dev, "tf32")
    bf16 = _alone("bf16 autocast, alone", cfg, args, dev, "bf16")
    ens = _ensemble(f"fp32, ensemble of {size['seeds']} seeds", cfg, size["seeds"], args, dev)
    t_norm = _norm_time(cfg, size["norm_reps"], dev)

    name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else f"CPU ({os.cpu_count()} cores)")
    n_test = {"mnist": 10_000}.get(cfg.dataset)
    lines = [f"gpu_check: {name}; {cfg.model} (preset {cfg.preset}, width {cfg.width:g}) on "
             f"{cfg.dataset}, P = {cfg.P}, {cfg.steps} Adam steps of batch "
             f"{min(cfg.batch_size, cfg.P)}, "
             f"{cfg.n_log} logged points (their test-set evaluations and norms inside the "
             "timing)", "",
             "| run | images/s | ms/step | x fp32 alone | final test error | vs fp32 |",
             "|---|---|---|---|---|---|"]
    for r in (fp32, tf32, bf16, ens):
        diff = r.test_error - fp32.test_error
        images = f" ({diff * n_test:+.0f} images)" if n_test and r is not ens else ""
        lines.append(f"| {r.name} | {r.images_per_s:,.0f} | {r.step_ms:.2f} | "
                     f"{r.images_per_s / fp32.images_per_s:.2f}x | {r.test_error:.4f} | "
                     f"{diff:+.4f}{images} |")
    share = cfg.n_log * t_norm / max(fp32.wall_s, 1e-12)
    lines += ["", f"norm tracking: {1e3 * t_norm:.2f} ms per measurement of every norm (median "
              f"of {size['norm_reps']}) = {t_norm / (fp32.step_ms / 1e3):.1f} training steps; "
              f"{cfg.n_log} measurements are {100 * share:.2f}% of the fp32 run's "
              f"{fp32.wall_s:.1f} s; the paper's 50 points over the same run would be "
              f"{100 * 50 * t_norm / max(fp32.wall_s, 1e-12):.1f}%",
              f"ensemble: {ens.images_per_s / fp32.images_per_s:.2f}x the images/s of one run "
              f"alone ({size['seeds']} runs one after the other would take "
              f"{size['seeds'] * fp32.wall_s:.1f} s; the ensemble took {ens.wall_s:.1f} s); "
              f"its test error is the members' mean"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:1, cpu")
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT) if DEFAULT_ROOT.is_dir()
                        else None, help="folder of the MNIST IDX files")
    parser.add_argument("--tiny", action="store_true",
                        help="the test suite's size: digits, a few steps, 2 seeds")
    for k in ("P", "steps", "seeds", "n_log", "norm_reps"):
        parser.add_argument(f"--{k.replace('_', '-')}", type=int, default=None,
                            help=f"override (full size: {FULL[k]})")
    args = parser.parse_args()
    t0 = time.perf_counter()
    lines = check(device=args.device, data_root=args.data_root, tiny=args.tiny, P=args.P,
                  steps=args.steps, seeds=args.seeds, n_log=args.n_log,
                  norm_reps=args.norm_reps)
    print("\n".join(lines))
    print(f"\ngpu_check took {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
