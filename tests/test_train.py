"""Training with norm tracking: schedule, config, optimizers, evaluation, determinism,
resume after an interrupt, divergence (docs/science.md 2.2). Tiny CNN on the bundled digits."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from normscale.errors import NormscaleError, ParameterError
from normscale.train import (
    TrainConfig,
    evaluate,
    load_checkpoint,
    log_points,
    save_checkpoint,
    train,
)
from normscale.train.optim import make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> TrainConfig:
    """A few-second run: the paper's CNN at 1/8 width on 8x8 digits."""
    kw = dict(model="cnn", dataset="digits", P=100, seed=0, epochs=8, batch_size=25, n_log=4,
              lr=3e-3, width=0.125)
    kw.update(overrides)
    return TrainConfig(**kw)


def same_records(a, b, *, norm_rtol=0.0):
    """Equal records up to wall time (and, after a resume, the tracker's warm start)."""
    assert [r.step for r in a] == [r.step for r in b]
    for x, y in zip(a, b, strict=True):
        assert (x.epoch, x.test_error, x.test_loss, x.train_error, x.train_loss) == \
               (y.epoch, y.test_error, y.test_loss, y.train_error, y.train_loss)
        assert x.norms.keys() == y.norms.keys()
        for k in x.norms:
            assert x.norms[k] == pytest.approx(y.norms[k], rel=norm_rtol, abs=0), k


@pytest.fixture(scope="module")
def reference():
    torch.set_num_threads(1)
    return train(tiny())


# -- schedule ---------------------------------------------------------------------
@pytest.mark.parametrize(("total", "n"), [(1, 1), (1, 50), (7, 3), (50, 50), (60, 50),
                                          (500, 50), (10_000, 50), (123_456, 17)])
def test_log_points_are_distinct_increasing_from_one_to_total(total, n):
    pts = log_points(total, n)
    assert len(pts) == min(n, total)
    assert pts[-1] == total
    assert pts[0] == (1 if min(n, total) > 1 else total)
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))


def test_log_points_are_geometric_where_integers_allow():
    pts = np.array(log_points(10_000, 50), dtype=float)
    ratios = pts[1:] / pts[:-1]
    tail = ratios[pts[:-1] >= 100]  # rounding no longer matters there
    # the tail keeps one ratio: (10000 / first tail point) ** (1 / points left)
    assert np.allclose(tail, tail.mean(), rtol=0.02)
    assert tail.mean() == pytest.approx((1e4 / pts[pts >= 100][0]) ** (1 / len(tail)), rel=0.02)


def test_log_points_rejects_bad_input():
    with pytest.raises(ParameterError, match="'total' parameter of log_points"):
        log_points(0, 5)
    with pytest.raises(ParameterError, match="'n' parameter"):
        log_points(10, 0)


# -- config -----------------------------------------------------------------------
def test_run_id_is_a_hash_of_the_whole_config():
    a = tiny()
    assert a.run_id == tiny().run_id == TrainConfig.from_dict(a.to_dict()).run_id
    assert len(a.run_id) == 16 and int(a.run_id, 16) >= 0
    ids = {a.run_id, tiny(seed=1).run_id, tiny(P=101).run_id, tiny(lr=1e-3).run_id,
           tiny(weight_decay=1e-4).run_id, tiny(epochs=None, steps=8).run_id}
    assert len(ids) == 6
    assert tiny(lr=0.003).run_id == tiny(lr=3e-3).run_id


@pytest.mark.parametrize(("field", "value", "message"), [
    ("P", 0, "The 'P' parameter of TrainConfig must be an int >= 1. Got 0 instead."),
    ("lr", -1.0, "'lr' parameter of TrainConfig must be a float > 0"),
    ("optimizer", "rmsprop", "'optimizer' parameter of TrainConfig must be one of"),
    ("model", "mlp", "'model' parameter"),
    ("weight_decay", -0.1, "'weight_decay'"),
    ("augment", "mixup", "'augment'"),
    ("steps", 10, "exactly one of 'epochs' and 'steps'"),
])
def test_config_rejects_bad_values(field, value, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        dataclasses.replace(tiny(), **{field: value})


# -- optimizers -------------------------------------------------------------------
def test_sgd_follows_the_heavy_ball_recurrence_with_l2_decay():
    # loss 0.5 * a * w^2: gradient a * w; torch SGD: v <- mu v + (g + wd w), w <- w - lr v
    a, lr, mu, wd = 2.0, 0.1, 0.9, 0.01
    w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = make_optimizer([w], tiny(optimizer="sgd", lr=lr, momentum=mu, weight_decay=wd))
    w_ref, v = 1.0, 0.0
    for _ in range(5):
        opt.zero_grad()
        (0.5 * a * w ** 2).sum().backward()
        opt.step()
        v = mu * v + a * w_ref + wd * w_ref
        w_ref -= lr * v
    assert float(w.detach()) == pytest.approx(w_ref, rel=1e-12)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_fused_update_matches_the_default_implementation(name):
    """make_optimizer runs PyTorch's fused kernel on the CPU; the trajectory is the one of
    the default per-tensor implementation (torch.optim with its defaults, as the paper's code)."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(300))
    b, a0 = torch.nn.Parameter(a.detach().clone()), a.detach().clone()
    cfg = tiny(optimizer=name, lr=1e-2, weight_decay=1e-3)
    ours = make_optimizer([a], cfg)
    assert ours.defaults["fused"]
    kw = {"momentum": cfg.momentum} if name == "sgd" else {}
    ref = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[name](
        [b], lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    for _ in range(50):
        g = torch.randn(300)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    assert (a - a0).abs().mean() > 1e-2  # the weights moved (50 steps of ~lr each)


def test_adamw_decouples_weight_decay_and_adam_does_not():
    # zero gradient: Adam's L2 term is rescaled by its normaliser (a step of ~lr),
    # AdamW multiplies the weight by (1 - lr * wd)
    lr, wd = 0.1, 0.5
    out = {}
    for name in ("adam", "adamw"):
        w = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
        opt = make_optimizer([w], tiny(optimizer=name, lr=lr, weight_decay=wd))
        (0.0 * w).sum().backward()
        opt.step()
        out[name] = float(w.detach())
    assert out["adamw"] == pytest.approx(2.0 * (1 - lr * wd), rel=1e-12)
    assert out["adam"] == pytest.approx(2.0 - lr, rel=1e-6)


# -- evaluation -------------------------------------------------------------------
def test_evaluate_matches_a_brute_force_error_and_cross_entropy():
    g = torch.Generator().manual_seed(3)
    model = torch.nn.Linear(5, 4)
    x = torch.randn(2500, 5, generator=g)  # more than one evaluation batch
    y = torch.randint(0, 4, (2500,), generator=g)
    error, loss = evaluate(model, x, y)
    logits = model(x).detach().double().numpy()
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-log_softmax[np.arange(2500), y.numpy()].mean(), rel=1e-10)
    assert error == np.mean(logits.argmax(axis=1) != y.numpy())
    assert model.training  # left as found


# -- the loop -----------------------------------------------------------------------
def test_a_run_logs_every_point_with_errors_and_norms(reference):
    from normscale.norms import MEASURES

    assert reference.status == "finished" and reference.error is None
    batches = math.ceil(100 / 25)
    assert [r.step for r in reference.records] == [e * batches for e in log_points(8, 4)]
    assert [r.epoch for r in reference.records] == [float(e) for e in log_points(8, 4)]
    assert reference.step == 8 * batches
    for r in reference.records:
        assert set(MEASURES) <= set(r.norms)
        assert 0 <= r.test_error <= 1 and 0 <= r.train_error <= 1
        assert r.test_loss > 0 and r.train_loss > 0
    walls = [r.wall_time for r in reference.records]
    assert walls == sorted(walls) and walls[0] > 0
    first, last = reference.records[0], reference.records[-1]
    assert last.train_loss < first.train_loss  # it learns
    assert last.norms["distance_from_init"] > first.norms["distance_from_init"] > 0
    # the logged test error is the error on the full test set (360 digits)
    assert round(last.test_error * 360) == pytest.approx(last.test_error * 360, abs=1e-9)


def test_two_identical_runs_give_identical_records_and_other_seeds_differ(reference):
    again = train(tiny())
    same_records(reference.records, again.records)
    other = train(tiny(seed=1, epochs=1, n_log=1))
    assert other.records[0].train_loss != reference.records[0].train_loss


def test_callback_gets_each_record_as_it_is_logged(reference):
    seen = []
    result = train(tiny(epochs=2, n_log=2), callback=seen.append)
    assert seen == list(result.records) and len(seen) == 2


def test_resume_after_an_interrupt_gives_the_uninterrupted_records(reference, tmp_path):
    ckpt = tmp_path / "run.pt"
    emitted = []

    def crash_at_third(record):
        emitted.append(record)
        if len(emitted) == 3:
            raise KeyboardInterrupt  # after the third record, before its checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(tiny(), checkpoint=ckpt, callback=crash_at_third)
    state = load_checkpoint(ckpt)
    assert state["step"] == reference.records[1].step  # the last checkpoint: second record
    resumed_emitted = []
    resumed = train(tiny(), checkpoint=ckpt, resume=True, callback=resumed_emitted.append)
    assert resumed.resumed_from == reference.records[1].step
    # the records before the checkpoint are not emitted again; the rest are, once
    assert [r.step for r in resumed_emitted] == [r.step for r in reference.records[2:]]
    same_records(resumed.records, reference.records, norm_rtol=1e-6)
    assert resumed.wall_time >= state["wall_time"]


def test_a_checkpoint_rebuilds_the_model(reference, tmp_path):
    from normscale import nets

    ckpt = tmp_path / "run.pt"
    train(tiny(epochs=1, n_log=1), checkpoint=ckpt)
    state = load_checkpoint(ckpt)
    cfg = state["config"]
    assert state["run_id"] == tiny(epochs=1, n_log=1).run_id
    assert {k: cfg[k] for k in tiny().to_dict()} == tiny(epochs=1, n_log=1).to_dict()
    assert (cfg["in_channels"], cfg["image_size"], cfg["num_classes"]) == (1, 8, 10)
    model = nets.build(cfg["model"], in_channels=cfg["in_channels"],
                       image_size=cfg["image_size"], num_classes=cfg["num_classes"],
                       preset=cfg["preset"], width=cfg["width"], depth=cfg["depth"],
                       init_factor=cfg["init_factor"], dataset=cfg["dataset"])
    model.load_state_dict(state["model_state"])  # raises if the shapes differ
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


def test_resume_refuses_the_checkpoint_of_another_run(tmp_path):
    ckpt = tmp_path / "run.pt"
    train(tiny(epochs=1, n_log=1), checkpoint=ckpt)
    with pytest.raises(NormscaleError, match="belongs to run"):
        train(tiny(epochs=1, n_log=1, seed=5), checkpoint=ckpt, resume=True)


def test_a_corrupt_checkpoint_is_named(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(NormscaleError, match="bad.pt"):
        load_checkpoint(bad)
    save_checkpoint(tmp_path / "dict.pt", {"model_state": {}})
    with pytest.raises(NormscaleError, match="not a normscale checkpoint"):
        load_checkpoint(tmp_path / "dict.pt")


def test_logging_by_steps_puts_points_at_log_spaced_steps():
    result = train(tiny(epochs=None, steps=10, n_log=4))
    assert [r.step for r in result.records] == list(log_points(10, 4))
    assert [r.epoch for r in result.records] == [s / 4 for s in log_points(10, 4)]
    assert result.step == 10


def test_a_huge_learning_rate_diverges_cleanly():
    result = train(tiny(optimizer="sgd", lr=1e12, epochs=4, n_log=4))
    assert result.status == "diverged"
    assert "nan" in result.error or "inf" in result.error
    assert result.step < 4 * 4 or len(result.records) < 4
    assert all(math.isfinite(r.train_loss) for r in result.records)


def test_train_rejects_a_subset_larger_than_the_data():
    with pytest.raises(ParameterError, match="'P' parameter of train must be at most"):
        train(tiny(P=100_000))


def test_augmentation_is_drawn_from_the_seed(reference):
    a = train(tiny(augment="affine", epochs=2, n_log=1))
    b = train(tiny(augment="affine", epochs=2, n_log=1))
    plain = train(tiny(epochs=2, n_log=1))
    same_records(a.records, b.records)
    assert a.records[0].train_loss != plain.records[0].train_loss


def test_a_large_subset_is_evaluated_on_a_fixed_seeded_sample():
    from normscale.train.loop import TRAIN_EVAL_IMAGES, stored_config, train_eval_indices

    small = train_eval_indices(0, 500)
    assert small.tolist() == list(range(500))
    big = train_eval_indices(3, 3 * TRAIN_EVAL_IMAGES)
    assert len(big) == TRAIN_EVAL_IMAGES == len(set(big.tolist()))
    assert big.tolist() == sorted(big.tolist()) and int(big.max()) < 3 * TRAIN_EVAL_IMAGES
    assert torch.equal(big, train_eval_indices(3, 3 * TRAIN_EVAL_IMAGES))  # fixed
    assert not torch.equal(big, train_eval_indices(4, 3 * TRAIN_EVAL_IMAGES))  # by the seed
    assert stored_config(tiny())["train_eval_images"] == 100
    assert stored_config(tiny(P=1437))["train_eval_images"] == 1437


def test_evaluation_in_channels_last_gives_the_same_errors():
    torch.manual_seed(0)
    from normscale import nets

    model = nets.build("cnn", in_channels=1, image_size=28, num_classes=10, width=0.125)
    x, y = torch.randn(300, 1, 28, 28), torch.randint(0, 10, (300,))
    plain, fast = evaluate(model, x, y), evaluate(model, x, y, channels_last=True)
    assert fast[0] == plain[0] and fast[1] == pytest.approx(plain[1], rel=1e-6)
    assert all(p.is_contiguous() for p in model.parameters())  # the model is untouched
