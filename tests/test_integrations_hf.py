"""The Hugging Face callback: a tiny ViT built from a config (no download) on the digits."""

from __future__ import annotations

import copy
import math
import shutil

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="needs the extra normscale[hf]")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate (normscale[hf])")

from integration_checks import assert_norms_equal, one_thread  # noqa: E402, F401

pytestmark = pytest.mark.usefixtures("one_thread")
from normscale.data import load_dataset  # noqa: E402
from normscale.errors import ParameterError  # noqa: E402
from normscale.integrations.hf import STATE_FILE, NormTrainerCallback  # noqa: E402
from normscale.norms import measure  # noqa: E402
from normscale.store import Store  # noqa: E402


class Images(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.x[i], "labels": self.y[i]}


def tiny_vit() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=8, patch_size=2, num_channels=1, hidden_size=16,
                                    num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32, num_labels=10)
    return transformers.ViTForImageClassification(config)


def error_rate(pred) -> dict[str, float]:
    return {"error": float(np.mean(pred.predictions.argmax(-1) != pred.label_ids))}


def make_trainer(tmp_path, model, callback, max_steps: int, report_to=(), **kw):
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=max_steps, per_device_train_batch_size=32,
        per_device_eval_batch_size=360, learning_rate=3e-3, eval_strategy="steps",
        eval_steps=5, logging_steps=5, report_to=list(report_to), use_cpu=True, disable_tqdm=True,
        seed=7, **kw)
    return transformers.Trainer(model=model, args=args,
                                train_dataset=Images(train.images[:320], train.labels[:320]),
                                eval_dataset=Images(test.images, test.labels),
                                compute_metrics=error_rate,
                                callbacks=[callback] if callback is not None else None)


class Snapshot(NormTrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        super().on_train_begin(args, state, control, model=model, **kwargs)
        self.init, self.weights = copy.deepcopy(model.state_dict()), []

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        n = len(self.tracker.records)
        super().on_evaluate(args, state, control, model=model, **kwargs)
        if len(self.tracker.records) > n:
            self.weights.append(copy.deepcopy(model.state_dict()))


def test_trainer_callback_stores_the_norms_of_the_evaluated_weights(tmp_path):
    db = tmp_path / "runs.db"
    cb = Snapshot(model_name="vit-tiny", dataset="digits", store=db, schedule=[5, 10, 20])
    model = tiny_vit()
    trainer = make_trainer(tmp_path, model, None, max_steps=20, save_strategy="no")

    class Reporter(transformers.TrainerCallback):  # stands for TensorBoard, W&B, MLflow
        seen: list = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if "norms/step" in logs:
                self.seen.append(dict(logs))

    trainer.add_callback(Reporter())
    cb.attach(trainer)  # first: the reporters after it receive the norms in their logs
    trainer.train()
    with Store(db) as store:
        run, = store.runs()
        records = store.records(run.run_id)
    assert run.status == "finished"
    assert run.config["P"] == 320 and run.config["seed"] == 7
    assert run.config["integration"] == "hf"
    assert [r.step for r in records] == [5, 10, 20]  # eval at 15 is past no scheduled step
    assert trainer.callback_handler.callbacks[0] is cb
    history = {h["step"]: h for h in trainer.state.log_history if "eval_error" in h}
    probe = tiny_vit()
    for rec, state in zip(records, cb.weights, strict=True):
        probe.load_state_dict(state)
        assert_norms_equal(rec.norms, measure(probe, reference=cb.init))
        assert rec.test_error == pytest.approx(history[rec.step]["eval_error"])
        assert rec.test_loss == pytest.approx(history[rec.step]["eval_loss"])
        assert rec.epoch == pytest.approx(rec.step / 10)  # 320 images in batches of 32
    # every point reached the reporter: its step, epoch and norms, once
    seen = {int(h["norms/step"]): h for h in Reporter.seen}
    assert sorted(seen) == [5, 10, 20] and len(Reporter.seen) == 3
    for rec in records:
        assert seen[rec.step]["norms/spectral_complexity"] == rec.norms["spectral_complexity"]
        assert seen[rec.step]["norms/epoch"] == rec.epoch
    # the ViT's Q, K, V projections are separate Linears: each is its own matrix
    kinds = {lay.name.rsplit(".", 1)[-1] for lay in cb.tracker.last_report.layers}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2", "classifier"} <= kinds


def test_resumed_trainer_reads_the_tracker_state_from_the_checkpoint(tmp_path):
    db = tmp_path / "runs.db"
    first = NormTrainerCallback(model_name="vit-tiny", store=db, schedule=[5, 10, 15, 20])
    make_trainer(tmp_path, tiny_vit(), first, max_steps=10, save_strategy="steps",
                 save_steps=10).train()
    saved = torch.load(tmp_path / "out" / "checkpoint-10" / STATE_FILE, weights_only=True)
    assert saved["last_step"] == 10

    class Watch(NormTrainerCallback):
        def on_train_begin(self, *args, **kwargs):
            super().on_train_begin(*args, **kwargs)
            self.loaded = copy.deepcopy(self.tracker.norms.state_dict())

    second = Watch(model_name="vit-tiny", store=db, schedule=[5, 10, 15, 20])
    make_trainer(tmp_path, tiny_vit(), second, max_steps=20, save_strategy="no").train(
        resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-10"))
    for a, b in zip(saved["norms"]["vectors"], second.loaded["vectors"], strict=True):
        assert torch.equal(a, b)
    assert [r.step for r in second.tracker.records] == [15, 20]
    with Store(db) as store:
        run, = store.runs()
        steps = [r.step for r in store.records(run.run_id)]
    assert steps == [5, 10, 15, 20] and not any(math.isnan(s) for s in steps)


def test_tensorboard_import_of_a_trainer_run_equals_the_store_export(tmp_path):
    pytest.importorskip("tensorboard", reason="needs the extra normscale[tensorboard]")
    import pandas as pd

    from conftest import run_cli
    from normscale.store import long_table

    db = tmp_path / "runs.db"
    cb = NormTrainerCallback(model_name="vit-tiny", store=db, schedule=[5, 10, 20])
    trainer = make_trainer(tmp_path, tiny_vit(), None, max_steps=20, save_strategy="no",
                           report_to=["tensorboard"])  # events under output_dir/runs/
    cb.attach(trainer)
    trainer.train()
    # the Trainer's TensorBoard reporter files the norms under train/ at the next log
    res = run_cli("import", "tensorboard", tmp_path / "out" / "runs", "--norm-tag",
                  "train/norms/spectral_complexity", "--error-tag", "eval/error",
                  "--step-tag", "train/norms/step", "--epoch-tag", "train/norms/epoch",
                  "--P", "320", "--seed", "7", "--out", tmp_path / "tb.csv")
    assert res.code == 0, res.err
    got = pd.read_csv(tmp_path / "tb.csv")
    with Store(db) as store:
        want = long_table(store, norm="spectral_complexity")
    assert got["step"].tolist() == want["step"].tolist() == [5, 10, 20]
    for col in ("norm", "test_error", "epoch"):
        assert got[col].to_numpy() == pytest.approx(want[col].to_numpy(), rel=1e-6), col


def test_a_resume_from_a_checkpoint_outside_output_dir_needs_its_state_path(tmp_path):
    """Issue 23: the reference was silently reset (distance from init 0.61 -> 0)."""
    first = NormTrainerCallback(model_name="vit-tiny", schedule=[5, 10, 15])
    make_trainer(tmp_path, tiny_vit(), first, max_steps=10, save_strategy="steps",
                 save_steps=10).train()
    moved = tmp_path / "elsewhere" / "ckpt"
    moved.parent.mkdir()
    shutil.move(tmp_path / "out" / "checkpoint-10", moved)
    saved = torch.load(moved / STATE_FILE, weights_only=True)
    lost = NormTrainerCallback(model_name="vit-tiny", schedule=[5, 10, 15])
    with pytest.raises(ParameterError, match="state_path"):
        make_trainer(tmp_path, tiny_vit(), lost, max_steps=15, save_strategy="no").train(
            resume_from_checkpoint=str(moved))
    found = NormTrainerCallback(model_name="vit-tiny", schedule=[5, 10, 15],
                                state_path=moved / STATE_FILE)
    make_trainer(tmp_path, tiny_vit(), found, max_steps=15, save_strategy="no").train(
        resume_from_checkpoint=str(moved))
    for a, b in zip(saved["norms"]["reference"], found.tracker.norms.state_dict()["reference"],
                    strict=True):
        assert torch.equal(a, b)  # the reference is the init, not the resumed weights
    assert [r.step for r in found.tracker.records] == [15]
    assert found.tracker.records[0].norms["distance_from_init"] > 0
