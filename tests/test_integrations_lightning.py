"""The Lightning callback: stored norms, resume with warm start, TensorBoard round trip."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch

pl = pytest.importorskip("lightning.pytorch", reason="needs the extra normscale[lightning]")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from conftest import run_cli  # noqa: E402
from integration_checks import assert_norms_equal, one_thread  # noqa: E402, F401

pytestmark = pytest.mark.usefixtures("one_thread")
from normscale.data import load_dataset  # noqa: E402
from normscale.errors import ParameterError  # noqa: E402
from normscale.integrations.lightning import NormCallback  # noqa: E402
from normscale.norms import NormTracker, measure  # noqa: E402
from normscale.store import Store, long_table  # noqa: E402

P = 240  # digits images per run: 8 batches of 30


class Digits(pl.LightningModule):
    """A two-layer MLP on the 8x8 digits; logs val_error and val_loss per epoch."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 10)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_error", (logits.argmax(1) != y).float().mean(), on_epoch=True)
        self.log("val_loss", F.cross_entropy(logits, y), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def loaders(seed: int = 0) -> tuple[DataLoader, DataLoader]:
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(train.labels), generator=g)[:P]
    return (DataLoader(TensorDataset(train.images[idx], train.labels[idx]), batch_size=30,
                       shuffle=True, generator=torch.Generator().manual_seed(seed)),
            DataLoader(TensorDataset(test.images, test.labels), batch_size=360))


def trainer(tmp_path, callbacks, max_epochs: int, logger=False, **kw) -> pl.Trainer:
    return pl.Trainer(max_epochs=max_epochs, callbacks=callbacks, logger=logger,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0,
                      default_root_dir=tmp_path, accelerator="cpu", devices=1, **kw)


class Snapshot(NormCallback):
    """Keeps a copy of the weights at every record, to measure them independently."""

    def on_train_start(self, trainer, pl_module):
        super().on_train_start(trainer, pl_module)
        self.init = copy.deepcopy(pl_module.state_dict())
        self.weights = []

    def on_validation_epoch_end(self, trainer, pl_module):
        n = len(self.tracker.records)
        super().on_validation_epoch_end(trainer, pl_module)
        if len(self.tracker.records) > n:
            self.weights.append(copy.deepcopy(pl_module.state_dict()))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*log_every_n_steps.*")
        yield


def _module(seed: int) -> Digits:
    torch.manual_seed(seed)
    return Digits()


def test_stored_norms_equal_measure_of_the_same_weights(tmp_path):
    db = tmp_path / "runs.db"
    cb = Snapshot(model_name="mlp", dataset="digits", seed=0, store=db, loss="val_loss")
    module = _module(0)
    train, val = loaders()
    trainer(tmp_path, [cb], max_epochs=4).fit(module, train, val)
    with Store(db) as store:
        run, = store.runs()
        records = store.records(run.run_id)
    assert run.status == "finished"
    assert run.config["P"] == P and run.config["model"] == "mlp" and run.config["seed"] == 0
    assert [r.step for r in records] == [8, 16, 24, 32]  # one validation per epoch, all due
    assert [r.epoch for r in records] == [1.0, 2.0, 3.0, 4.0]
    assert len(cb.weights) == len(records)
    probe = Digits()
    for rec, state in zip(records, cb.weights, strict=True):
        probe.load_state_dict(state)
        want = measure(probe, reference=cb.init)
        assert_norms_equal(rec.norms, want)
        assert 0 <= rec.test_error <= 1 and rec.test_loss > 0
    # the errors are the validation metrics Lightning computed at that step
    assert records[-1].test_error == pytest.approx(float(cb.tracker.records[-1].test_error))


def test_resumed_fit_warm_starts_and_records_no_point_twice(tmp_path):
    db = tmp_path / "runs.db"
    train, val = loaders()
    schedule = [8, 16, 24, 25, 40, 48]  # norms at training steps; 24 ends the first fit
    first = NormCallback(model_name="mlp", dataset="digits", store=db, error=None,
                         schedule=schedule)
    module = _module(0)
    init_a = copy.deepcopy(module.state_dict())
    t1 = trainer(tmp_path, [first], max_epochs=3)
    t1.fit(module, train, val)
    ckpt = tmp_path / "epoch3.ckpt"
    t1.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)["callbacks"][first.state_key]
    assert [r.step for r in first.tracker.records] == [8, 16, 24]

    class Watch(NormCallback):
        def on_train_start(self, trainer, pl_module):
            super().on_train_start(trainer, pl_module)
            self.loaded = copy.deepcopy(self.tracker.norms.state_dict())
            self.first = None

        def on_train_batch_end(self, trainer, pl_module, *args):
            super().on_train_batch_end(trainer, pl_module, *args)
            if self.first is None and self.tracker.records:  # the first point after the resume
                self.first = self.tracker.last_report
                self.cold = NormTracker(pl_module).report()

    second = Watch(model_name="mlp", dataset="digits", store=db, error=None, schedule=schedule)
    resumed = _module(123)  # another init: the reference must come from the checkpoint
    trainer(tmp_path, [second], max_epochs=6).fit(resumed, train, val, ckpt_path=ckpt)
    for a, b in zip(saved["norms"]["vectors"], second.loaded["vectors"], strict=True):
        assert torch.equal(a, b)
    for a, b in zip(saved["norms"]["reference"], second.loaded["reference"], strict=True):
        assert torch.equal(a, b)
    assert [r.step for r in second.tracker.records] == [25, 40, 48]  # none of 8, 16, 24 again
    # warm start from step 24's vectors: a step later, fewer products than a cold start
    warm = sum(lay.n_iter for lay in second.first.layers)
    cold = sum(lay.n_iter for lay in second.cold.layers)
    assert warm < 0.7 * cold, (warm, cold)
    # the reference is the first fit's initial weights, not the new module's
    want = measure(resumed, reference=init_a)
    assert second.tracker.records[-1].norms["distance_from_init"] == pytest.approx(
        want["distance_from_init"], rel=1e-8)
    assert second.tracker.records[0].wall_time > saved["wall_time"]  # the wall time continues
    with Store(db) as store:
        run, = store.runs()
        assert [r.step for r in store.records(run.run_id)] == [8, 16, 24, 25, 40, 48]
        assert run.status == "finished"


def test_norms_alone_at_training_steps_and_missing_metric_is_named(tmp_path):
    train, val = loaders()
    cb = NormCallback(model_name="mlp", error=None, schedule=5, module="net", per_layer=True)
    t = trainer(tmp_path, [cb], max_epochs=2)
    t.fit(_module(0), train, val)
    assert [r.step for r in cb.tracker.records] == [5, 10, 15]
    assert all(math.isnan(r.test_error) for r in cb.tracker.records)
    # the submodule "net" is measured (its own names), per-layer keys reach the metrics
    assert [lay.name for lay in cb.tracker.last_report.layers] == ["1", "3"]
    metrics = t.callback_metrics
    assert float(metrics["norms/layer/3/spectral_norm"]) == pytest.approx(
        cb.tracker.last_report.layers[1].spectral_norm, rel=1e-6)
    assert float(metrics["norms/step"]) == 15
    assert not t.progress_bar_metrics  # nothing of the callback on the progress bar
    bad = NormCallback(model_name="mlp", error="val_acc")
    with pytest.raises(Exception, match="'val_acc'.*logged: .*val_error"):
        trainer(tmp_path, [bad], max_epochs=1).fit(_module(0), train, val)


def test_tensorboard_import_round_trips_the_store_export(tmp_path):
    tb = pytest.importorskip("tensorboard", reason="needs the extra normscale[tensorboard]")
    del tb
    db = tmp_path / "runs.db"
    logger = pl.loggers.TensorBoardLogger(tmp_path / "tb", name="mlp")
    cb = NormCallback(model_name="mlp", dataset="digits", store=db)
    train, val = loaders()
    trainer(tmp_path, [cb], max_epochs=5, logger=logger).fit(_module(0), train, val)
    out = tmp_path / "tb.csv"
    res = run_cli("import", "tensorboard", tmp_path / "tb", "--norm-tag",
                  "norms/spectral_complexity", "--norm-tag", "norms/l2", "--error-tag",
                  "val_error", "--P", str(P), "--seed", "0", "--model", "mlp",
                  "--dataset", "digits", "--out", out, "--json")
    assert res.code == 0, res.err
    import pandas as pd

    got = pd.read_csv(out)
    with Store(db) as store:
        want = long_table(store)
    want = want[want["norm_kind"].isin(["spectral_complexity", "l2"])]
    key = ["norm_kind", "step"]
    got, want = got.sort_values(key, ignore_index=True), want.sort_values(key, ignore_index=True)
    assert len(got) == len(want) == 10
    assert (got["step"].to_numpy() == want["step"].to_numpy()).all()
    assert (got["norm_kind"].to_numpy() == want["norm_kind"].to_numpy()).all()
    assert (got["P"] == P).all() and (got["seed"] == 0).all() and (got["model"] == "mlp").all()
    # TensorBoard keeps float32 scalars: equal to float32 rounding
    for col in ("norm", "test_error", "epoch"):
        assert got[col].to_numpy() == pytest.approx(want[col].to_numpy(), rel=1e-6), col


def test_a_resume_from_a_checkpoint_without_the_callback_state_is_refused(tmp_path):
    """Issue 23: the resumed weights are not the initial ones; taking them as the reference
    of distance_from_init would silently restart it at 0."""
    train, val = loaders()
    t1 = trainer(tmp_path, [], max_epochs=1)  # trained without NormCallback
    t1.fit(_module(0), train, val)
    ckpt = tmp_path / "plain.ckpt"
    t1.save_checkpoint(ckpt)
    cb = NormCallback(model_name="mlp", dataset="digits", error=None, schedule=[1, 2])
    with pytest.raises(ParameterError, match="holds no state of this callback"):
        trainer(tmp_path, [cb], max_epochs=2).fit(_module(0), train, val, ckpt_path=ckpt)
    # no reference to lose: the resume goes on
    plain = NormCallback(model_name="mlp", dataset="digits", error=None, reference=None)
    trainer(tmp_path, [plain], max_epochs=2).fit(_module(0), train, val, ckpt_path=ckpt)
    assert plain.tracker is not None and plain.tracker.records
