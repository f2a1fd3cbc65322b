"""A tiny Hugging Face ViT, built from a config (no download), trained with ``Trainer``.

The ViT sees the bundled 8x8 digits as 16 patches of 2x2 pixels. For each
training-set size P, ``transformers.Trainer`` trains it and evaluates it on
the test split every few steps; ``NormTrainerCallback`` records Bartlett's
spectral complexity (the Q, K, V, output and MLP matrices of every block,
the patch embedding and the head) with the evaluation error into a run
store. The store is exported and fitted as in the Lightning example.

    python examples/hf_vit_digits.py --out results/hf-vit-digits
    python examples/hf_vit_digits.py --P 100,200,400 --steps 32 --eval-every 4 --seeds 1  # CI

Needs ``pip install 'normscale[hf]'``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

from normscale.data import load_dataset, subset_indices
from normscale.integrations.hf import NormTrainerCallback

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_curves import export_and_fit  # noqa: E402  (export, fit, verdict)


class Digits(torch.utils.data.Dataset):
    """Images and labels as the Trainer's collator wants them: one dict per example."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels  # (N, 1, 8, 8), (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.images[i], "labels": self.labels[i]}


def tiny_vit(seed: int) -> transformers.ViTForImageClassification:
    """2 blocks, width 32, 2 heads: about 20k parameters, random init (no weights fetched)."""
    torch.manual_seed(seed)
    config = transformers.ViTConfig(
        image_size=8, patch_size=2, num_channels=1, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, num_labels=10,
        # weights ~ N(0, 0.2^2), about PyTorch's default scale for width 32: BERT's 0.02
        # holds so small a ViT on its initial plateau for hundreds of steps
        initializer_range=0.2)
    return transformers.ViTForImageClassification(config)


def error_rate(pred: transformers.EvalPrediction) -> dict[str, float]:
    return {"error": float(np.mean(pred.predictions.argmax(-1) != pred.label_ids))}


def train_one(P: int, seed: int, steps: int, eval_every: int, store: Path, out: Path) -> None:
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    idx = subset_indices(train.labels, P=P, seed=seed)
    args = transformers.TrainingArguments(
        output_dir=str(out / "trainer"), max_steps=steps, per_device_train_batch_size=32,
        per_device_eval_batch_size=360, learning_rate=3e-3, lr_scheduler_type="constant",
        eval_strategy="steps", eval_steps=eval_every, logging_steps=eval_every,
        save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=seed)
    callback = NormTrainerCallback(model_name="vit-tiny", dataset="digits", store=store,
                                   config={"optimizer": "adamw", "lr": 3e-3})
    trainer = transformers.Trainer(model=tiny_vit(seed), args=args,
                                   train_dataset=Digits(train.images[idx], train.labels[idx]),
                                   eval_dataset=Digits(test.images, test.labels),
                                   compute_metrics=error_rate)
    trainer.remove_callback(transformers.PrinterCallback)  # no log dicts on stdout
    callback.attach(trainer)  # first: the Trainer's reporters would log the norms too
    trainer.train()


def main(argv: list[str] | None = None) -> dict:
    """Train every (P, seed), export the store, fit; return the fit's result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/hf-vit-digits", help="output folder")
    parser.add_argument("--P", default="150,300,600,1200",
                        help="training-set sizes (a power law needs 4 or more to be tested)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per P")
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps per run")
    parser.add_argument("--eval-every", type=int, default=10, help="steps between evaluations")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "runs.db"
    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    for P in (int(p) for p in args.P.split(",")):
        for seed in range(args.seeds):
            train_one(P, seed, args.steps, args.eval_every, store, out)
    return export_and_fit(store, out)


if __name__ == "__main__":
    main()
