"""The stop rule (train until past the optimum), dense logging, and stop reasons in the
store, the export, the sweep summary and the CLI. Tiny CNN on the bundled digits."""

from __future__ import annotations

import math
import sqlite3

import pytest

from normscale.errors import ParameterError
from normscale.store import Record, Store, long_table
from normscale.train import TrainConfig, train
from normscale.train.stop import (
    PAST_OPTIMUM_GROWTH,
    PLATEAU_STEPS,
    STOP_REASONS,
    StopRule,
    error_noise,
)

pytestmark = pytest.mark.usefixtures("one_thread")

N_TEST = 10_000


def rec(step: int, test_error: float, norm: float, *, train_error: float = 0.0,
        train_loss: float | None = None) -> Record:
    """A logged point; the training loss moves with the step unless given."""
    loss = 2.3 / (1 + step) if train_loss is None else train_loss
    return Record(epoch=step / 10, step=step, test_error=test_error, test_loss=1.0,
                  train_error=train_error, train_loss=loss, wall_time=0.0,
                  norms={"spectral_complexity": norm, "l2": 1.0})


def feed(rule: StopRule, points) -> tuple[str | None, int]:
    """Feed points until the rule stops; return (reason, index of the stopping point)."""
    for i, p in enumerate(points):
        reason = rule.update(p)
        if reason is not None:
            return reason, i
    return None, len(points) - 1


def u_curve(n: int = 40, *, rise: float = 0.0):
    """Error falls from 0.9 to 0.05 at point 20 (norm 1.1^i), then stays or rises by
    ``rise`` per point; steps double every 4 points."""
    pts = []
    for i in range(n):
        err = max(0.9 * 0.88 ** i, 0.05) if i <= 20 else 0.05 + rise * (i - 20)
        pts.append(rec(int(10 * 2 ** (i / 4)), err, 1.1 ** i, train_error=0.0))
    return pts


# -- the rule on synthetic curves ----------------------------------------------------
def test_error_noise_is_binomial_with_a_one_image_floor():
    assert error_noise(0.05, 10_000) == pytest.approx(math.sqrt(0.05 * 0.95 / 10_000))
    assert error_noise(0.0, 400) == 1 / 400


def test_a_rising_curve_stops_past_its_optimum_not_before():
    pts = u_curve(rise=0.002)
    reason, i = feed(StopRule(n_test=N_TEST), pts)
    assert reason == "past_optimum"
    best = 20
    # the norm grew by the factor since the minimum, steps doubled, 3 points after it
    assert pts[i].norms["spectral_complexity"] >= PAST_OPTIMUM_GROWTH * 1.1 ** best
    assert pts[i].step >= 2 * pts[best].step and i - best >= 3
    assert i < len(pts) - 1  # long before the curve runs out


def test_a_flat_curve_after_its_minimum_stops_too():
    reason, i = feed(StopRule(n_test=N_TEST), u_curve(rise=0.0))
    assert reason == "past_optimum" and 23 <= i < 39


def test_a_still_falling_curve_never_stops():
    pts = [rec(10 * (i + 1), 0.9 * 0.9 ** i, 1.1 ** i) for i in range(60)]
    assert feed(StopRule(n_test=N_TEST), pts) == (None, 59)


def test_improvements_within_the_noise_do_not_reset_the_stretch_but_a_real_one_does():
    noise = error_noise(0.05, N_TEST)
    base = u_curve(rise=0.0)
    wiggle = [rec(p.step, p.test_error - (0.5 * noise if i > 20 and i % 2 else 0.0),
                  p.norms["spectral_complexity"]) for i, p in enumerate(base)]
    reason, i_wiggle = feed(StopRule(n_test=N_TEST), wiggle)
    assert reason == "past_optimum" and i_wiggle < 39
    # a drop by 3 noise levels at point 24 is a new optimum: the stop comes later
    real = [rec(p.step, p.test_error - (3 * noise if i >= 24 else 0.0),
                p.norms["spectral_complexity"]) for i, p in enumerate(base)]
    _, i_real = feed(StopRule(n_test=N_TEST), real)
    assert i_real > i_wiggle and i_real - 24 >= 3


def test_early_oscillations_are_not_an_optimum():
    # the error jumps up by far more than its noise while the norm doubles, but the run
    # does not fit its subset yet (training error near the test error): no stop
    pts = [rec(s, e, n, train_error=e) for s, e, n in
           [(1, 0.9, 5), (2, 0.6, 8), (4, 0.35, 14), (6, 0.40, 20), (8, 0.46, 28), (10, 0.5, 40),
            (12, 0.5, 55), (16, 0.48, 70)]]
    assert feed(StopRule(n_test=N_TEST), pts)[0] is None


def test_a_run_on_its_plateau_stops_with_reason_plateau_after_the_plateau_steps():
    steps = [1, 10, 100, 500, PLATEAU_STEPS - 1, PLATEAU_STEPS, 2 * PLATEAU_STEPS]
    pts = [rec(s, 0.9 - 1e-4 * k, 3.0 + 1e-3 * k, train_error=0.9, train_loss=2.3026)
           for k, s in enumerate(steps)]
    reason, i = feed(StopRule(n_test=N_TEST), pts)
    assert (reason, pts[i].step) == ("plateau", PLATEAU_STEPS)
    # the same run whose loss moved once is not on its plateau
    moved = pts[:2] + [rec(100, 0.88, 3.0, train_error=0.9, train_loss=2.2)] + pts[3:]
    assert feed(StopRule(n_test=N_TEST), moved)[0] is None


def test_a_rise_of_two_noise_levels_stops_before_the_norm_cap():
    # the error falls to its minimum at point 21 (0.052), then rises 0.002 a point (noise
    # 0.0022 at 10k test images); the rule also needs 3 points and twice the steps after it
    pts = u_curve(rise=0.002)
    errors = [p.test_error for p in pts]
    best = errors.index(min(errors))
    bar = min(errors) + 2 * error_noise(min(errors), N_TEST)
    ready = [i for i in range(best + 3, len(pts)) if pts[i].step >= 2 * pts[best].step]
    expect_rise = next(i for i in ready if errors[i] >= bar and errors[i - 1] >= bar)
    expect_norm = next(i for i in ready if 1.1 ** i >= 2.0 * 1.1 ** best)
    assert expect_rise < expect_norm
    assert feed(StopRule(n_test=N_TEST, growth=2.0, rise=2.0), pts) == ("past_optimum",
                                                                         expect_rise)
    # without the rise the same rule waits for 2x of norm past the minimum
    assert feed(StopRule(n_test=N_TEST, growth=2.0), pts) == ("past_optimum", expect_norm)


def test_on_a_flat_curve_the_rise_rule_waits_for_its_norm_cap():
    pts = u_curve(rise=0.0)
    assert feed(StopRule(n_test=N_TEST, growth=1.5, rise=2.0), pts) \
        == feed(StopRule(n_test=N_TEST, growth=1.5), pts)


def test_one_point_above_the_bar_is_not_a_rise():
    noise = error_noise(0.05, N_TEST)
    pts = [rec(p.step, 0.05 + (3 * noise if i == 25 else 0.0), p.norms["spectral_complexity"])
           if i > 20 else p for i, p in enumerate(u_curve(rise=0.0))]
    # the minimum is point 21 (0.05 from there on): 3.0x of norm is 1.1^12 past it; the lone
    # high point at 25 does not stop a rule that needs two
    assert feed(StopRule(n_test=N_TEST, growth=3.0, rise=2.0), pts) == ("past_optimum", 33)
    assert feed(StopRule(n_test=N_TEST, growth=3.0, rise=2.0, rise_points=1), pts) \
        == ("past_optimum", 25)


@pytest.mark.parametrize("kw", [dict(n_test=0), dict(growth=1.0), dict(time=0.5),
                                dict(rise=-1.0), dict(rise_points=0), dict(plateau_steps=0)])
def test_bad_rule_parameters_are_refused(kw):
    with pytest.raises(ParameterError):
        StopRule(**{"n_test": N_TEST, **kw})


# -- training ----------------------------------------------------------------------------
def tiny(**overrides) -> TrainConfig:
    kw = dict(model="cnn", dataset="digits", P=200, seed=0, epochs=150, batch_size=50,
              n_log=10, lr=3e-3, width=0.25, until="optimum")
    kw.update(overrides)
    return TrainConfig(**kw)


@pytest.fixture(scope="module")
def stopped():
    import torch

    torch.set_num_threads(1)
    return train(tiny())


def test_a_run_until_optimum_stops_past_it_and_says_why(stopped):
    r = stopped
    assert r.status == "finished" and r.stop_reason == "past_optimum"
    assert r.epoch < 150  # before its cap
    errors = [x.test_error for x in r.records]
    best = errors.index(min(errors))
    assert best < len(errors) - 1 and errors[-1] > min(errors)  # never the last point
    norms = [x.norms["spectral_complexity"] for x in r.records]
    # dense logging: the first point after one step, points from chance to twice eps_opt,
    # and around lambda_opt
    assert r.records[0].step == 1
    assert sum(e >= 2 * min(errors) for e in errors[:best]) >= 8
    assert sum(norms[best] / 2 <= n <= 2 * norms[best] for n in norms) >= 5


def test_norm_growth_logging_adds_points_where_the_norm_moves(stopped):
    plain = train(tiny(epochs=20, until="end", n_log=10))
    grown = train(tiny(epochs=20, until="end", n_log=10, log_growth=1.2))
    assert len(grown.records) > len(plain.records) + 5
    norms = [x.norms["spectral_complexity"] for x in grown.records]
    # never more than the factor between points (checks run every step early on) ...
    early = [b / a for a, b in zip(norms, norms[1:], strict=False)][:10]
    assert max(early) < 1.2 * 1.6
    assert plain.stop_reason == grown.stop_reason == "end"


def test_a_run_capped_before_its_optimum_says_max_epochs():
    r = train(tiny(epochs=3))
    assert (r.status, r.stop_reason, r.epoch) == ("finished", "max_epochs", 3)


def test_a_small_init_run_on_its_plateau_is_stopped_there(monkeypatch):
    import normscale.train.curve as curve
    import normscale.train.stop as stop

    monkeypatch.setattr(stop, "PLATEAU_STEPS", 40)
    monkeypatch.setattr(curve, "StopRule", lambda n_test: stop.StopRule(n_test=n_test,
                                                                        plateau_steps=40))
    r = train(tiny(init_factor=1e-4, lr=1e-6, epochs=100))
    assert r.stop_reason == "plateau" and 40 <= r.step < 60
    assert r.stayed_on_plateau


def test_resume_replays_the_rule_and_stops_where_the_run_stopped(stopped, tmp_path):
    ckpt = tmp_path / "run.pt"
    first = train(tiny(), checkpoint=ckpt)
    again = train(tiny(), checkpoint=ckpt, resume=True)
    assert again.stop_reason == first.stop_reason == stopped.stop_reason
    assert again.step == first.step and len(again.records) == len(first.records)


def test_new_fields_keep_old_run_ids_at_their_defaults():
    old = TrainConfig(model="cnn", dataset="digits", P=100, seed=0, epochs=8, batch_size=25,
                      n_log=4, lr=3e-3, width=0.125)
    assert old.run_id == "97fdf8d49c51bb6d"  # the id normscale gave it before the stop rule
    assert len({old.run_id, TrainConfig(**{**old.to_dict(), "until": "optimum"}).run_id,
                TrainConfig(**{**old.to_dict(), "log_growth": 1.1}).run_id}) == 3


@pytest.mark.parametrize(("field", "value", "message"), [
    ("until", "forever", "'until' parameter of TrainConfig must be one of"),
    ("log_growth", 1.0, "'log_growth' parameter of TrainConfig"),
])
def test_config_rejects_bad_stop_settings(field, value, message):
    with pytest.raises(ParameterError, match=message):
        tiny(**{field: value})


# -- the store, the export, the sweep, the CLI ---------------------------------------
def test_the_store_keeps_the_stop_reason_and_checks_it(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        store.start_run("a", {"model": "cnn", "P": 10})
        store.finish_run("a", status="finished", stop_reason="past_optimum")
        assert store.run("a").stop_reason == "past_optimum"
        with pytest.raises(ParameterError, match="'stop_reason'"):
            store.finish_run("a", status="finished", stop_reason="bored")
        store.start_run("a", {"model": "cnn", "P": 10})  # a re-run clears it
        assert store.run("a").stop_reason is None
    assert set(STOP_REASONS) == {"past_optimum", "max_epochs", "plateau", "diverged", "end"}


def test_a_store_written_before_stop_reasons_gains_the_column(tmp_path):
    path = tmp_path / "old.db"
    with Store(path) as store:
        store.start_run("a", {"model": "cnn"})
        store.finish_run("a", status="finished")
    conn = sqlite3.connect(path)  # drop the column, as in a store of an older normscale
    conn.execute("ALTER TABLE runs DROP COLUMN stop_reason")
    conn.commit()
    conn.close()
    with Store(path, readonly=True) as store:
        assert store.run("a").stop_reason is None  # a reader copes without the column
    with Store(path) as store:
        store.finish_run("a", status="finished", stop_reason="max_epochs")
        assert store.run("a").stop_reason == "max_epochs"


def test_export_and_sweep_summary_carry_the_stop_reason(tmp_path, cli):
    from normscale.sweep import load_spec, run_sweep

    spec_path = tmp_path / "s.toml"
    spec_path.write_text(
        '[base]\nmodel = "cnn"\ndataset = "digits"\nwidth = 0.125\nbatch_size = 50\n'
        'n_log = 4\nlr = 3e-3\nuntil = "optimum"\n[grid]\nseed = [0]\n'
        'cells = [{P = 100, epochs = 2}, {P = 200, epochs = 2}]\n')
    with Store(tmp_path / "runs.db") as store:
        summary = run_sweep(load_spec(spec_path), store=store, workers=1)
        assert summary.stop_reasons == {"max_epochs": 2}
        assert "2 finished (2 max_epochs)" in summary.line()
        table = long_table(store, norm="spectral_complexity")
    assert set(table["stop_reason"]) == {"max_epochs"} and set(table["until"]) == {"optimum"}
    r = cli("export", "--store", tmp_path / "runs.db", "--out", tmp_path / "c.csv", "--json")
    assert r.code == 0 and r.json()["norm_kinds"] == ["spectral_complexity"]


def test_train_cli_reports_the_stop_reason_and_checks_its_options(tmp_path, cli):
    db = tmp_path / "runs.db"
    r = cli("train", "--model", "cnn", "--dataset", "digits", "--P", "100", "--width", "0.125",
            "--until", "optimum", "--max-epochs", "2", "--n-log", "3", "--store", db, "--json")
    assert r.code == 0, r.err
    assert r.json()["stop_reason"] == "max_epochs" and r.json()["config"]["init_factor"] == 1.0
    with Store(db) as store:
        assert [i.stop_reason for i in store.runs()] == ["max_epochs"]
    r = cli("train", "--model", "cnn", "--dataset", "digits", "--P", "100", "--max-epochs", "2")
    assert r.code == 2 and "--until optimum" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("train", "--model", "cnn", "--dataset", "digits", "--P", "100", "--epochs", "2",
            "--log-growth", "1")
    assert r.code == 2 and "--log-growth" in r.err


def test_an_ensemble_stops_each_member_by_its_own_rule(stopped):
    from normscale.train.ensemble import train_ensemble

    configs = [tiny(seed=0), tiny(seed=1)]
    result = train_ensemble(configs)
    for member, cfg in zip(result.members, configs, strict=True):
        assert member.status == "finished" and member.stop_reason == "past_optimum"
        assert member.epoch < cfg.epochs and member.records[-1].step == member.step
        errors = [r.test_error for r in member.records]
        assert errors.index(min(errors)) < len(errors) - 1
    # every member stops before the cap (150 epochs of 4 steps)
    assert all(m.step < 150 * 4 for m in result.members)
    capped = train_ensemble([tiny(seed=0, epochs=2), tiny(seed=1, epochs=2)])
    assert [m.stop_reason for m in capped.members] == ["max_epochs", "max_epochs"]
