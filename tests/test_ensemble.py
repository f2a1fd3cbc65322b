"""Seed ensembles (issue 8): members trained together as one vmapped model reproduce the
runs trained alone with their seeds (float64, CPU), diverge one by one, keep BatchNorm
statistics per member; batched norms match the single-network tracker."""

from __future__ import annotations

import dataclasses
import math
import types

import pytest
import torch
from torch.func import stack_module_state

from normscale import nets
from normscale.errors import ParameterError
from normscale.norms import NormTracker, power_iteration
from normscale.norms.batched import BatchedNormTracker, batched_power_iteration
from normscale.train import TrainConfig, loop, train
from normscale.train.ensemble import check_ensemble, ensemble_id, limitations, train_ensemble

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def float64(monkeypatch):
    """Models and data in float64, so member and lone run agree to rounding."""
    data, nets_mod, norms = loop._components()

    def load_dataset(*args, **kwargs):
        d = data.load_dataset(*args, **kwargs)
        return dataclasses.replace(d, images=d.images.double())

    wrapped = types.SimpleNamespace(**{k: getattr(data, k) for k in data.__all__})
    wrapped.load_dataset = load_dataset
    monkeypatch.setattr(loop, "_components", lambda: (wrapped, nets_mod, norms))
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def tiny(**overrides) -> TrainConfig:
    """The paper's CNN at 1/8 width on 8x8 digits; P not a multiple of the batch size."""
    kw = dict(model="cnn", dataset="digits", P=90, seed=0, steps=6, batch_size=25, n_log=3,
              lr=3e-3, width=0.125)
    kw.update(overrides)
    return TrainConfig(**kw)


def assert_same_run(member, alone, *, rtol=1e-9):
    assert (member.run_id, member.status, member.error, member.step) == \
           (alone.run_id, alone.status, alone.error, alone.step)
    assert [r.step for r in member.records] == [r.step for r in alone.records]
    for x, y in zip(member.records, alone.records, strict=True):
        assert x.epoch == y.epoch
        assert (x.test_error, x.train_error) == (y.test_error, y.train_error)
        assert x.test_loss == pytest.approx(y.test_loss, rel=rtol)
        assert x.train_loss == pytest.approx(y.train_loss, rel=rtol)
        assert x.norms.keys() == y.norms.keys()
        for k in x.norms:
            assert x.norms[k] == pytest.approx(y.norms[k], rel=1e-7), k


@pytest.mark.parametrize("overrides", [
    dict(),  # Adam
    dict(optimizer="adamw", weight_decay=0.1, augment="crop_flip"),
    dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, epochs=2, steps=None),
])
def test_members_match_runs_trained_alone(float64, overrides):
    configs = [tiny(seed=s, **overrides) for s in (0, 3, 7)]
    result = train_ensemble(configs)
    assert result.ensemble_id == ensemble_id(configs[::-1])
    for member, config in zip(result.members, configs, strict=True):
        assert_same_run(member, train(config))
    # the members did learn different things (their own seeds)
    losses = {m.records[-1].train_loss for m in result.members}
    assert len(losses) == 3


def test_batchnorm_statistics_are_per_member(float64):
    configs = [tiny(model="resnet", seed=s, depth=0.5, steps=3, n_log=2) for s in (1, 2)]
    assert limitations(configs[0]) is None
    result = train_ensemble(configs)
    for member, config in zip(result.members, configs, strict=True):
        assert_same_run(member, train(config), rtol=1e-8)


def test_one_diverging_member_leaves_the_others_running(float64, monkeypatch):
    """Member seed 5 gets an absurd init scale: it diverges, seeds 0 and 1 go on untouched."""
    build = nets.build
    poisoned = {"on": False}

    def build_maybe_poisoned(*args, **kwargs):
        model = build(*args, **kwargs)
        if poisoned["on"]:
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1e200)
        return model

    real_init = loop.init_run

    def init_run(config, labels, shape, device):
        poisoned["on"] = config.seed == 5
        try:
            return real_init(config, labels, shape, device)
        finally:
            poisoned["on"] = False

    monkeypatch.setattr(nets, "build", build_maybe_poisoned)
    monkeypatch.setattr("normscale.train.ensemble.init_run", init_run)
    monkeypatch.setattr(loop, "init_run", init_run)
    configs = [tiny(seed=s, steps=8, n_log=4) for s in (0, 5, 1)]
    result = train_ensemble(configs)
    bad = result.members[1]
    assert bad.status == "diverged" and "training loss" in bad.error
    assert bad.step < 8
    for k in (0, 2):
        assert result.members[k].status == "finished"
        assert_same_run(result.members[k], train(configs[k]))
    assert_same_run(bad, train(configs[1]))


def test_check_ensemble_rejects_members_that_differ_beyond_the_seed():
    with pytest.raises(ParameterError, match="'lr' is"):
        check_ensemble([tiny(seed=0), tiny(seed=1, lr=0.1)])
    with pytest.raises(ParameterError, match="distinct"):
        check_ensemble([tiny(seed=2), tiny(seed=2)])
    with pytest.raises(ParameterError, match="non-empty"):
        check_ensemble([])


def test_dropout_is_named_as_a_limitation():
    assert "dropout" in limitations(TrainConfig(model="cnn", dataset="cifar100", P=10, epochs=1))
    assert limitations(tiny()) is None


# -- batched norms ----------------------------------------------------------------------
def test_batched_power_iteration_matches_the_svd_and_the_single_routine():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 40, 70, generator=g, dtype=torch.float64)
    a[1] = 0
    a[3] = torch.outer(torch.randn(40, generator=g, dtype=torch.float64),
                       torch.randn(70, generator=g, dtype=torch.float64))  # rank one
    r = batched_power_iteration(a)
    exact = torch.linalg.matrix_norm(a, ord=2)
    assert torch.allclose(r.sigma, exact, rtol=1e-8, atol=0)
    assert bool(r.converged.all())
    for k in range(5):
        assert r.sigma[k].item() == pytest.approx(power_iteration(a[k]).sigma, rel=1e-8, abs=0)
    # warm start from the result: one product suffices
    again = batched_power_iteration(a, r.v)
    assert again.n_iter <= 2 and torch.allclose(again.sigma, exact, rtol=1e-8, atol=0)


@pytest.mark.parametrize(("model", "kw"), [("cnn", dict(width=0.25, init_factor=0.05)),
                                           ("resnet", dict(width=0.125, depth=0.5))])
def test_batched_tracker_matches_one_tracker_per_member(model, kw):
    torch.set_default_dtype(torch.float64)
    try:
        models = []
        for s in range(3):
            torch.manual_seed(s)
            models.append(nets.build(model, in_channels=1, image_size=16, num_classes=10,
                                     dataset="mnist", **kw))
        params, buffers = stack_module_state(models)
        options = dict(norm_layers="fold") if model == "resnet" else {}
        batched = BatchedNormTracker(models[0], {**buffers, **params}, **options)
        alone = [NormTracker(m, reference="init", **options) for m in models]
        with torch.no_grad():  # move the weights, identically in both copies
            for name, t in params.items():
                t.add_(0.05 * torch.randn_like(t))
                for k, m in enumerate(models):
                    m.get_parameter(name).copy_(t[k])
        got, want = batched.measure(members=[2, 0]), [alone[2].measure(), alone[0].measure()]
    finally:
        torch.set_default_dtype(torch.float32)
    for g_, w in zip(got, want, strict=True):
        assert g_.keys() == w.keys()
        for k in w:
            assert g_[k] == pytest.approx(w[k], rel=1e-8), k
        assert math.isfinite(g_["log10_spectral_complexity"])
        assert g_["distance_from_init"] > 0


def test_members_whose_weights_become_infinite_diverge_as_lone_runs_do():
    """lr = 1e308: the first Adam step makes the weights infinite; with norm-growth logging
    the next norm check finds them so (an SVD of inf would fail): diverged, as alone."""
    configs = [tiny(seed=s, lr=1e308, until="optimum", steps=20) for s in (0, 1)]
    result = train_ensemble(configs)
    for member, config in zip(result.members, configs, strict=True):
        alone = train(config)
        assert member.status == alone.status == "diverged"
        assert (member.error, member.step) == (alone.error, alone.step)
