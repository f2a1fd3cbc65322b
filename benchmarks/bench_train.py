"""Training throughput: normscale.train against a plain DataLoader loop, side by side.

The issue 6 benchmark: the paper's CNN on MNIST at P = 6000, images per second
of training steps, for

- ``normscale``: :func:`normscale.train.train` -- the subset is one tensor,
  a batch is a slice of a permutation, augmented and normalised as one tensor;
- ``dataloader``: ``torch.utils.data.DataLoader`` (shuffle, batch 128, no
  workers) over a ``Dataset`` whose ``__getitem__`` does per sample what a
  torchvision pipeline does: uint8 -> float ("ToTensor"), the random affine
  map of the paper's MNIST augmentation, normalisation.

Both train the same model with the same optimizer; the first steps (warm-up)
are left out, and so are normscale's logging points (timing is read between
steps). Prints both rates and their ratio, measured in one run.

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
from normscale.data.augment import MAX_DEGREES, MAX_TRANSLATE, affine
from normscale.train import TrainConfig, train
from normscale.train.optim import make_optimizer

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


def dataloader_rate(config: TrainConfig, root: Path, steps: int) -> float:
    info = data.info("mnist")
    full = data.load_dataset("mnist", root=root, split="train")
    idx = data.subset_indices(full.labels, P=config.P, seed=config.seed)
    u8 = (full.images[idx] * 255).round().to(torch.uint8)
    loader = DataLoader(PerSample(u8, full.labels[idx], info, config.augment),
                        batch_size=config.batch_size, shuffle=True, num_workers=0)
    torch.manual_seed(0)
    model = nets.build("cnn", in_channels=1, image_size=28, num_classes=10,
                       width=config.width, dataset="mnist")
    opt = make_optimizer(model.parameters(), config)
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
    print(f"CNN (width {args.width:g}) on MNIST, P={args.P}, batch {config.batch_size}, "
          f"augment {args.augment}, {torch.get_num_threads()} threads, {args.steps} steps each")
    print(f"  normscale.train       {ours:10.1f} images/s")
    print(f"  DataLoader per-sample {theirs:10.1f} images/s")
    print(f"  ratio                 {ours / theirs:10.2f}x")


if __name__ == "__main__":
    main()
