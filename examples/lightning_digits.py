"""Norm-indexed learning curves of your own Lightning model, then the scaling-law fit.

A small CNN, written as any LightningModule would be, learns the bundled 8x8
digits (no download) at several training-set sizes P (three in CI). ``NormCallback`` records
Bartlett's spectral complexity and the validation error at log-spaced steps
into a run store; ``normscale export`` turns the store into the long table
and ``normscale fit`` fits the two dynamical laws and says how far to trust
them.

    python examples/lightning_digits.py --out results/lightning-digits
    python examples/lightning_digits.py --P 100,200,400 --epochs 4 --seeds 1   # CI size

Needs ``pip install 'normscale[lightning]'``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from normscale.data import load_dataset, subset_indices
from normscale.integrations.lightning import NormCallback

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_curves import export_and_fit  # noqa: E402  (export, fit, verdict)


class DigitsCNN(pl.LightningModule):
    """Two convolutions and a linear head; logs val_error, which the callback records."""

    def __init__(self, width: int = 16, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),           # (B, width, 8, 8)
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),       # (B, width, 8, 8)
            nn.MaxPool2d(2), nn.Flatten(),                          # (B, width * 16)
            nn.Linear(width * 16, 10))                              # (B, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_error", (logits.argmax(1) != y).float().mean())
        self.log("val_loss", F.cross_entropy(logits, y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def train_one(P: int, seed: int, epochs: int, store: Path, root: Path) -> None:
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    idx = subset_indices(train.labels, P=P, seed=seed)  # nested: the P=300 set is in P=600's
    pl.seed_everything(seed, verbose=False)
    train_loader = DataLoader(TensorDataset(train.images[idx], train.labels[idx]),
                              batch_size=64, shuffle=True)
    val_loader = DataLoader(TensorDataset(test.images, test.labels), batch_size=360)
    callback = NormCallback(model_name="digits-cnn", dataset="digits", seed=seed, store=store,
                            loss="val_loss", config={"optimizer": "adam", "lr": 3e-3})
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[callback], accelerator="cpu",
                         devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, default_root_dir=root)
    trainer.fit(DigitsCNN(), train_loader, val_loader)


def main(argv: list[str] | None = None) -> dict:
    """Train every (P, seed), export the store, fit; return the fit's result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/lightning-digits", help="output folder")
    parser.add_argument("--P", default="150,300,600,1200",
                        help="training-set sizes (a power law needs 4 or more to be tested)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per P")
    parser.add_argument("--epochs", type=int, default=60, help="epochs per run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "runs.db"
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    for P in (int(p) for p in args.P.split(",")):
        for seed in range(args.seeds):
            train_one(P, seed, args.epochs, store, out)
    return export_and_fit(store, out)


if __name__ == "__main__":
    main()
