"""Training throughput: normscale.train against a plain DataLoader loop, side by side.

The issue 6 benchmark: the paper's CNN on MNIST at P = 6000, images per second
of training steps, for

- ``normscale``: :func:`normscale.train.train` -- the subset is one tensor,
  a batch is a slice of a permutation, augmented and normalised as one tensor;
- ``dataloader``: ``torch.utils.data.DataLoader`` (shuffle, batch 128, no
  workers) over a ``Dataset`` whose ``__getitem__`` does per sample what a
  torchvision pipeline does: uint8 -> float ("ToTensor"), the random affine
  map of the paper's MNIST augmentation, normalisation.

Both train the same model from the same initialisation; the baseline uses
``torch.optim`` with its defaults, as the paper's scripts do, normscale its
fused optimizer (:func:`normscale.train.optim.make_optimizer`). The first
steps (warm-up) are left out, and so are normscale's logging points (timing
is read between steps). Prints both rates and their ratio, measured in one
run, and the time each pipeline spends on data alone (its batches produced
without training). The latter bounds what any data pipeline can gain: with
data for free, the ratio would be at most (t_data + t_step) / t_step.

    .venv/bin/python benchmarks/bench_train.py [--data-root ../shared/data/mnist]
        [--steps 20] [--width 1] [--augment affine|none] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from normscale import data, nets
from normscale.data.augmentation import MAX_DEGREES, MAX_TRANSLATE, affine
from normscale.train import TrainConfig, train
from normscale.train.loop import augment_generator, epoch_order

#: the baseline's optimizers: torch.optim with its defaults, as the paper's scripts use them
_PLAIN = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}

WARMUP = 2  # steps left out of both timings (allocator, oneDNN kernel selection)


class PerSample(Dataset):
    """A torchvision-style data set: one uint8 image at a time, transformed in Python."""

    def __init__(self, images_u8: torch.Tensor, labels: torch.Tensor, info, augment: str):
        self.images, self.labels, self.info, self.augment = images_u8, labels, info, augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i].float().div(255)  # (C, H, W), "ToTensor"
        if self.augment == "affine":
            angle = (torch.rand(1) * 2 - 1) * MAX_DEGREES
            shift = torch.round((torch.rand(1, 2) * 2 - 1) * MAX_TRANSLATE * x.shape[-1])
            x = affine(x[None], angle_deg=angle, shift=shift)[0]
        mean = torch.tensor(self.info.mean).view(-1, 1, 1)
        std = torch.tensor(self.info.std).view(-1, 1, 1)
        return (x - mean) / std, int(self.labels[i])


def per_sample_loader(config: TrainConfig, root: Path) -> DataLoader:
    """The baseline's data path: the run's subset as uint8 images behind a per-sample Dataset."""
    info = data.info("mnist")
    full = data.load_dataset("mnist", root=root, split="train")
    idx = data.subset_indices(full.labels, P=config.P, seed=config.seed)
    u8 = (full.images[idx] * 255).round().to(torch.uint8)
    return DataLoader(PerSample(u8, full.labels[idx], info, config.augment),
                      batch_size=config.batch_size, shuffle=True, num_workers=0)


def dataloader_rate(config: TrainConfig, root: Path, steps: int) -> float:
    loader = per_sample_loader(config, root)
    torch.manual_seed(0)
    model = nets.build("cnn", in_channels=1, image_size=28, num_classes=10,
                       width=config.width, dataset="mnist")
    opt = _PLAIN[config.optimizer](model.parameters(), lr=config.lr)
    stamps, done = [], 0
    while done < steps + WARMUP:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            stamps.append(time.perf_counter())
            done += 1
            if done == steps + WARMUP:
                break
    return steps * config.batch_size / (stamps[-1] - stamps[WARMUP - 1])


def dataloader_data_time(config: TrainConfig, root: Path, steps: int) -> float:
    """Seconds per batch the per-sample DataLoader takes to produce its batches alone."""
    loader = per_sample_loader(config, root)
    t0, done = time.perf_counter(), 0
    while done < steps:
        for _ in loader:
            done += 1
            if done == steps:
                break
    return (time.perf_counter() - t0) / steps


def normscale_data_time(config: TrainConfig, root: Path, steps: int) -> float:
    """Seconds per batch normscale's tensor pipeline takes (slice, augment, normalise) alone."""
    info = data.info("mnist")
    full = data.load_dataset("mnist", root=root, split="train")
    idx = data.subset_indices(full.labels, P=config.P, seed=config.seed)
    raw, B = full.images[idx], config.batch_size
    t0 = time.perf_counter()
    for step in range(steps):
        perm = epoch_order(config.seed, step, config.P)
        x = raw[perm[:B]]
        if config.augment != "none":
            x = data.augment(x, config.augment, generator=augment_generator(config.seed, step,
                                                                            x.device))
        data.normalize(x, info)
    return (time.perf_counter() - t0) / steps


def normscale_rate(config: TrainConfig, root: Path) -> float:
    stamps: list[float] = []
    train(config, data_root=root, progress=lambda: stamps.append(time.perf_counter()))
    steps = len(stamps) - WARMUP
    return steps * config.batch_size / (stamps[-1] - stamps[WARMUP - 1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path,
                   default=Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")
    p.add_argument("--P", type=int, default=6000)
    p.add_argument("--steps", type=int, default=20, help="timed steps per side")
    p.add_argument("--width", type=float, default=1.0, help="CNN width multiplier")
    p.add_argument("--augment", default="affine", choices=("affine", "none"))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(model="cnn", dataset="mnist", P=args.P, steps=args.steps + WARMUP,
                         n_log=1, width=args.width, augment=args.augment)
    ours = normscale_rate(config, args.data_root)
    theirs = dataloader_rate(config, args.data_root, args.steps)
    data_ours = normscale_data_time(config, args.data_root, args.steps)
    data_theirs = dataloader_data_time(config, args.data_root, args.steps)
    step_theirs = config.batch_size / theirs - data_theirs  # model and optimizer alone
    print(f"CNN (width {args.width:g}) on MNIST, P={args.P}, batch {config.batch_size}, "
          f"augment {args.augment}, {torch.get_num_threads()} threads, {args.steps} steps each")
    print(f"  normscale.train       {ours:10.1f} images/s")
    print(f"  DataLoader per-sample {theirs:10.1f} images/s")
    print(f"  ratio                 {ours / theirs:10.2f}x")
    print(f"  data alone per batch: normscale {1e3 * data_ours:.1f} ms, "
          f"DataLoader {1e3 * data_theirs:.1f} ms; the baseline's model and optimizer "
          f"{1e3 * step_theirs:.0f} ms")
    print(f"  bound on the ratio from the data pipeline alone (same optimizer): "
          f"{(data_theirs + step_theirs) / (data_ours + step_theirs):.2f}x")


if __name__ == "__main__":
    main()
