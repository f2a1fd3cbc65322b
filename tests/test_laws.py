"""Tests of normscale.laws: closed forms, synthetic curves of known exponents, the paper's curves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from laws_synthetic import synthetic_curves
from normscale.errors import NormscaleError
from normscale.laws import fit_laws, load_curves
from normscale.laws.curves import Curve, curve_minimum
from normscale.laws.fits import fit_offset_form, fit_power_law


def test_power_law_fit_recovers_exponent_and_error():
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1e3, 30)
    y = 2.5 * x ** -0.7 * np.exp(0.05 * rng.standard_normal(x.size))
    fit = fit_power_law(x, y)
    assert abs(fit.exponent + 0.7) < 3 * fit.exponent_err
    # the OLS standard error against its closed form sigma / sqrt(sum (ln x - mean)^2)
    expected = 0.05 / np.sqrt(np.sum((np.log(x) - np.log(x).mean()) ** 2))
    assert fit.exponent_err == pytest.approx(expected, rel=0.35)


def test_minimum_refined_below_the_grid():
    lam = np.geomspace(0.1, 100, 13)  # the true minimum 3.0 is between grid points
    err = np.exp(0.3 * (np.log(lam) - np.log(3.0)) ** 2 + np.log(0.05))
    m = curve_minimum(Curve(1.0, lam, err))
    assert m.refined and not m.at_edge
    assert m.lambda_opt == pytest.approx(3.0, rel=1e-9)
    assert m.eps_opt == pytest.approx(0.05, rel=1e-9)


def test_minimum_at_first_point_is_refused():
    lam = np.geomspace(1, 10, 5)
    with pytest.raises(NormscaleError, match="P=7"):
        curve_minimum(Curve(7.0, lam, lam))


def test_offset_form_recovers_offsets():
    P = np.geomspace(100, 1e5, 10)
    g1, k1, g2, k2, q2, q1 = 0.5, 2.0, 1.2, 0.3, 40.0, 0.01
    eps = k1 * (k2 * P ** g2 + q2) ** -g1 + q1
    fit = fit_offset_form(P, eps, gamma1=g1, k1=k1)
    assert fit.rms < 1e-6
    assert fit.gamma2 == pytest.approx(g2, rel=1e-3)
    assert fit.q1 == pytest.approx(q1, rel=1e-3)
    assert fit.q2 == pytest.approx(q2, rel=1e-2)


def test_synthetic_recovery_and_coverage():
    """Known gamma1=0.5, gamma2=1 (gamma_pred=0.5), 5 P x 4 seeds, 3% noise, 50 seeded draws.

    Coverage: the reported 95% interval (``*_ci``: value +- Student t x
    reported error) holds the truth in at least 90% of the draws. Accuracy:
    the intervals stay narrow, so coverage cannot come from inflated errors.
    """
    truth = {"gamma1": 0.5, "gamma2": 1.0, "gamma_pred": 0.5}
    n_draws = 50
    inside = {q: 0 for q in truth}
    half_widths = {q: [] for q in truth}
    for d in range(n_draws):
        df = synthetic_curves(rng=np.random.default_rng(100 + d), P=(500, 1000, 2000, 4000, 8000),
                              n_seeds=4, n_points=30)
        f = fit_laws(df, n_boot=20, seed=d)[0]
        assert f.err_method == "bootstrap" and f.level == 0.95
        for q, true in truth.items():
            lo, hi = getattr(f, f"{q}_ci")
            inside[q] += lo <= true <= hi
            half_widths[q].append((hi - lo) / 2)
        assert f.collapse_quality < 0.01
        assert abs(f.backtest_rel_error) < 0.1
    for q in truth:
        assert inside[q] >= 0.9 * n_draws, (q, inside)
    assert np.median(half_widths["gamma1"]) < 0.01
    assert np.median(half_widths["gamma2"]) < 0.1
    assert np.median(half_widths["gamma_pred"]) < 0.06


def test_window_skips_a_flat_start():
    """A plateau before the power law (chance level, Hebb limit) is not the early law."""
    df = synthetic_curves(rng=np.random.default_rng(3), plateau=1.0, gamma1=0.4, n_seeds=1,
                          noise=0.01)
    f = fit_laws(df, n_boot=0)[0]
    assert f.gamma1 == pytest.approx(0.4, abs=max(3 * f.gamma1_err, 0.01))
    assert f.window.lo > 0.2 ** (1 / 0.4)  # starts where eps has fallen below the plateau


def test_collapse_quality_detects_a_broken_collapse():
    df = synthetic_curves(rng=np.random.default_rng(4), n_seeds=1, noise=0.0)
    good = fit_laws(df, n_boot=0)[0].collapse_quality
    bad_df = df.copy()
    bad_df.loc[bad_df.P == bad_df.P.max(), "test_error"] *= np.geomspace(1, 3, 40)
    bad = fit_laws(bad_df, n_boot=0)[0].collapse_quality
    assert good < 1e-4 < bad


def test_paper_resnet_cifar10_within_paper_errors(shared_data):
    rep = json.loads((shared_data / "paper-curves" / "reported.json").read_text())["ResNet_CIFAR10"]
    f = fit_laws(shared_data / "paper-curves" / "resnet_cifar10.csv")[0]
    assert f.err_method == "analytic"
    assert abs(f.gamma1 - rep["gamma1"]) <= rep["gamma1_err"]
    assert abs(f.gamma2 - rep["gamma2"]) <= rep["gamma2_err"]
    assert abs(f.gamma_pred - rep["gamma_pred"]) <= rep["sigma"]
    assert abs(f.gamma_meas - rep["gamma_meas"]) <= rep["sigma"]


def test_aliases_and_mixed_modes(tmp_path):
    df = synthetic_curves(n_seeds=2).rename(columns={"P": "alpha", "norm": "lam", "test_error": "eps"})
    df["eps_hat"] = df["eps"] / 0.3
    df["mode"] = "fixed"
    path = tmp_path / "lab.csv"
    pd.concat([df, df.assign(mode="gd")]).to_csv(path, index=False)
    table = load_curves(path)
    assert {"P", "norm", "test_error", "eps_hat", "mode"} <= set(table.columns)
    with pytest.raises(NormscaleError, match="mode"):
        fit_laws(table, n_boot=0)
    fits = fit_laws(table, group_by=("mode",), error="eps_hat", n_boot=0)
    assert [f.group["mode"] for f in fits] == ["fixed", "gd"]
    assert fits[0].gamma1 == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns="norm"), "norm"),
    (lambda d: d[d.P == d.P.min()], "3 distinct P"),
    (lambda d: d.assign(test_error=d.test_error.where(d.index != 5)), "NaN"),
    (lambda d: d.assign(norm=-d.norm), "must be > 0"),
])
def test_bad_tables_exit_2(cli, tmp_path, mutate, message):
    path = tmp_path / "bad.csv"
    mutate(synthetic_curves(n_seeds=1)).to_csv(path, index=False)
    run = cli("fit", path, "--json")
    assert run.code == 2 and message in run.err and "Traceback" not in run.err


def test_cli_json_and_report(cli, tmp_path):
    path = tmp_path / "c.csv"
    df = synthetic_curves(n_seeds=3, n_points=25)
    pd.concat([df.assign(model="a"), df.assign(model="b")]).to_csv(path, index=False)
    run = cli("fit", path, "--group-by", "model", "--n-boot", "5", "--out", tmp_path / "out", "--json")
    assert run.code == 0, run.err
    data = run.json()
    assert isinstance(data, list) and len(data) == 2
    for key in ("gamma1", "gamma1_err", "gamma2", "gamma2_err", "gamma_pred", "gamma_meas",
                "gamma_meas_err", "sigma", "window", "collapse_quality", "backtest_rel_error"):
        assert key in data[0]
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"fit_a.png", "fit_b.pdf", "laws.md", "laws.csv", "laws.tex", "laws.json"} <= names
