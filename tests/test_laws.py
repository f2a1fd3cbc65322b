"""Tests of normscale.laws: closed forms, synthetic curves of known exponents, paper curves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from laws_synthetic import synthetic_curves
from normscale.errors import NormscaleError, ParameterError
from normscale.laws import fit_laws, load_curves
from normscale.laws.curves import Curve, curve_minimum
from normscale.laws.powerlaw import fit_offset_form, fit_power_law
from normscale.laws.summary import summary_table


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


_TRUTH = {"gamma1": 0.5, "gamma2": 1.0, "gamma_pred": 0.5}


def _coverage(*, n_draws: int, n_seeds: int, noise: float, n_boot: int, first_seed: int):
    """Fit ``n_draws`` seeded synthetic tables (5 P, known exponents); count truths in ``*_ci``."""
    inside = {q: 0 for q in _TRUTH}
    half_widths = {q: [] for q in _TRUTH}
    for d in range(n_draws):
        df = synthetic_curves(rng=np.random.default_rng(first_seed + d),
                              P=(500, 1000, 2000, 4000, 8000), n_seeds=n_seeds, n_points=30,
                              noise=noise)
        f = fit_laws(df, n_boot=n_boot, seed=d)[0]
        assert f.level == 0.95
        for q, true in _TRUTH.items():
            lo, hi = getattr(f, f"{q}_ci")
            inside[q] += lo <= true <= hi
            half_widths[q].append((hi - lo) / 2)
        assert f.collapse_variance < 0.01 and f.window.within_noise
        # the back-test predicts from 4 P (the per-seed argmins are a grid step coarse)
        assert abs(f.backtest_rel_error) < 0.2
    return inside, {q: float(np.median(v)) for q, v in half_widths.items()}


def test_synthetic_coverage_with_seed_bootstrap():
    """Known gamma1=0.5, gamma2=1 (gamma_pred=0.5), 5 P x 4 seeds, 3% noise, 50 seeded draws.

    Coverage: the reported 95% interval (``*_ci``: value +- Student t x
    reported error) holds the truth in at least 90% of the draws. Accuracy:
    the intervals stay narrow, so coverage cannot come from inflated errors.
    """
    n_draws = 50
    inside, half = _coverage(n_draws=n_draws, n_seeds=4, noise=0.03, n_boot=20, first_seed=100)
    for q in _TRUTH:
        assert inside[q] >= 0.9 * n_draws, (q, inside)
    # gamma2 from the seeds' argmins: a grid step (0.17 decades here) over sqrt(12) per seed
    assert half["gamma1"] < 0.06 and half["gamma2"] < 0.15 and half["gamma_pred"] < 0.12, half


def test_synthetic_coverage_analytic_errors():
    """The same with one seed per P (1.5% noise): analytic errors only, 50 seeded draws."""
    n_draws = 50
    inside, half = _coverage(n_draws=n_draws, n_seeds=1, noise=0.015, n_boot=0, first_seed=500)
    for q in _TRUTH:
        assert inside[q] >= 0.9 * n_draws, (q, inside)
    assert half["gamma1"] < 0.06 and half["gamma2"] < 0.1 and half["gamma_pred"] < 0.08, half


def test_window_skips_a_flat_start():
    """A plateau before the power law (chance level, Hebb limit) is not the early law."""
    df = synthetic_curves(rng=np.random.default_rng(3), plateau=1.0, gamma1=0.4, n_seeds=1,
                          noise=0.01)
    f = fit_laws(df, n_boot=0)[0]
    assert f.gamma1 == pytest.approx(0.4, abs=max(3 * f.gamma1_err, 0.01))
    # the window starts where every curve has fallen below the plateau (eps < 0.2 there)
    smallest = min(o.lambda_opt for o in f.optima if o.P in f.window.P_used)
    assert f.window.lo * smallest > 0.5 ** (1 / 0.4) * 0.2 ** (1 / 0.4)
    assert f.verdict == "consistent"


def test_collapse_variance_detects_a_broken_collapse():
    df = synthetic_curves(rng=np.random.default_rng(4), n_seeds=1, noise=0.0)
    good = fit_laws(df, n_boot=0)[0].collapse_variance
    bad_df = df.copy()
    bad_df.loc[bad_df.P == bad_df.P.max(), "test_error"] *= np.geomspace(1, 3, 40)
    bad_fit = fit_laws(bad_df, n_boot=0)[0]
    bad = bad_fit.collapse_variance
    # lambda_opt on the grid (basin centres): a noiseless collapse is good to a grid step
    assert good < 2e-3 and bad > 10 * good
    assert bad_fit.collapse_S > fit_laws(df, n_boot=0)[0].collapse_S


def _reported(shared_data, key: str) -> dict:
    return json.loads((shared_data / "paper-curves" / "reported.json").read_text())[key]


def _log_slope(x, y) -> float:
    """Plain least-squares slope in log-log, an independent check of the pipeline's fits."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def test_aliases_and_mixed_modes(tmp_path):
    aliases = {"P": "alpha", "norm": "lam", "test_error": "eps"}
    df = synthetic_curves(n_seeds=2).rename(columns=aliases)
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


@pytest.mark.parametrize(("key", "name", "window"), [
    ("CNN_MNIST", "cnn_mnist", "1e-3,1e-2,24000"),  # min_P = 6 of P_arr
    ("ResNet_CIFAR10", "resnet_cifar10", "1.5e-3,4e-3,11000"),  # min_P = 1
])
def test_paper_hand_windows_give_the_papers_gamma1(cli, shared_data, key, name, window):
    """With the paper's own hand choices (its analysis notebook: the window in
    lambda/lambda_opt and the smallest P used) the pipeline gives the paper's gamma1.

    Checked against an independent per-curve computation: slopes of
    log(eps/eps_opt) against log(lambda/lambda_opt) inside the window, averaged.
    """
    rep = _reported(shared_data, key)
    path = shared_data / "paper-curves" / f"{name}.csv"
    lo, hi, p_min = (float(v) for v in window.split(","))
    run = cli("fit", path, "--window", window, "--json", "--n-boot", "0")
    assert run.code == 0, run.err
    out = json.loads(run.out)
    assert out["window"]["P_used"] and min(out["window"]["P_used"]) >= p_min
    # auto mode rescales by its own lambda_opt estimates, the paper by the grid argmin (paper
    # mode, tests/test_laws_verdict.py, gives the paper's numbers exactly): the windows differ
    # by a fraction of a decade
    assert abs(out["gamma1"] - rep["gamma1"]) < 0.1
    df = pd.read_csv(path)
    lam_opt = {o["P"]: o["lambda_opt"] for o in out["optima"]}
    used = set(out["ranges"][0]["P"])  # the P of the verdict's fit (with a minimum)
    slopes = []
    for P, c in df.groupby("P"):
        x = c.norm.to_numpy() / lam_opt[float(P)]
        y = c.test_error.to_numpy()
        inside = (x >= lo) & (x <= hi)
        if P >= p_min and float(P) in used and inside.sum() >= 3:
            slopes.append(-_log_slope(x[inside], y[inside]))
    # the same window on the same rescaled axis: the same mean of per-P slopes
    assert out["gamma1"] == pytest.approx(np.mean(slopes), rel=1e-9)
    # without P_min the smaller P enter and gamma1 moves away
    assert abs(fit_laws(path, window=(lo, hi), n_boot=0)[0].gamma1 - out["gamma1"]) > 0.02


def test_window_triple_is_checked(cli, tmp_path):
    df = synthetic_curves(n_seeds=1)
    with pytest.raises(ParameterError, match="window"):
        fit_laws(df, window=(0.01, 0.1, 0.0))
    with pytest.raises(ParameterError, match="window"):
        fit_laws(df, window=(0.01, 0.1, 1.0, 2.0))
    with pytest.raises(NormscaleError, match="P_min"):
        fit_laws(df, window=(0.01, 0.1, 1e12))
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    for bad in ("0.01,0.1,-5", "0.01,0.1,a", "0.01"):
        run = cli("fit", path, "--window", bad)
        assert run.code == 2 and "--window" in run.err and "Traceback" not in run.err


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
    run = cli("fit", path, "--group-by", "model", "--n-boot", "5", "--out", tmp_path / "out",
              "--json")
    assert run.code == 0, run.err
    data = run.json()
    assert isinstance(data, list) and len(data) == 2
    for key in ("gamma1", "gamma1_err", "gamma2", "gamma2_err", "gamma_pred", "gamma_meas",
                "gamma_meas_err", "sigma", "window", "collapse_variance", "backtest_rel_error"):
        assert key in data[0]
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"fit_a.png", "fit_b.pdf", "laws.md", "laws.csv", "laws.tex", "laws.json"} <= names


def test_a_seed_that_never_trained_is_left_out_with_a_warning():
    from laws_synthetic import synthetic_curves
    from normscale.laws import fit_laws

    df = synthetic_curves(n_seeds=3, rng=np.random.default_rng(3))
    stuck = (df.P == df.P.max()) & (df.seed == 0)
    # a dead run: its norm never leaves its start, its error stays at chance
    df.loc[stuck, "norm"] = np.linspace(1e-3, 1.01e-3, int(stuck.sum()))
    df.loc[stuck, "test_error"] = 0.9
    with pytest.warns(UserWarning, match="seed\\(s\\) 0 left out"):
        fit = fit_laws(df, n_boot=10)[0]
    clean = fit_laws(df[~stuck], n_boot=10)[0]
    assert fit.gamma2 == pytest.approx(clean.gamma2, rel=1e-9)


def test_dense_curves_are_thinned_and_fit_the_same():
    """A history logged at every step (20,000 points per curve) is binned to at most
    MAX_POINTS points; the fit finds the same laws as on a plain logging grid."""
    from normscale.laws.curves import MAX_POINTS, build_curves, thin

    norm = np.geomspace(1.0, 1e4, 20_000)
    err = 0.5 * norm ** -0.3
    tn, te = thin(norm, err)
    assert tn.size == MAX_POINTS and np.all(np.diff(tn) > 0)
    # each bin's norm is its geometric mean, its error the mean: a power law stays one
    assert np.allclose(np.log(te), np.log(0.5) - 0.3 * np.log(tn), atol=1e-3)
    dense = synthetic_curves(rng=np.random.default_rng(2), n_seeds=1, noise=0.02,
                             n_points=20_000)
    sets = build_curves(load_curves(dense), "test_error")
    assert all(cs.mean.norm.size == MAX_POINTS for cs in sets)
    f = fit_laws(dense)[0]
    assert f.verdict == "consistent"
    assert f.gamma1 == pytest.approx(0.5, abs=3 * f.gamma1_err + 0.01)
    assert f.gamma2 == pytest.approx(1.0, abs=3 * f.gamma2_err + 0.01)


def test_importing_the_laws_loads_neither_torch_nor_scipy_stats():
    """`normscale fit` starts fast: the laws need numpy, pandas and scipy.special at import,
    the optimisers only when a fit runs, and never torch."""
    import subprocess
    import sys

    code = ("import sys, normscale.laws; "
            "print(sorted(m for m in ('torch', 'scipy.stats', 'scipy.optimize', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_rows_with_an_empty_seed_are_refused_not_dropped(cli, tmp_path):
    df = synthetic_curves(rng=np.random.default_rng(3), n_seeds=2, noise=0.01)
    df["seed"] = df["seed"].astype(object)
    df.loc[df.index[:5], "seed"] = None
    with pytest.raises(NormscaleError, match="'seed' .* empty in 5 row"):
        fit_laws(df)
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    run = cli("fit", path)
    assert run.code == 2 and "seed" in run.err and "Traceback" not in run.err


def test_optima_with_a_repeated_P_are_refused(tmp_path):
    df = synthetic_curves(rng=np.random.default_rng(3), n_seeds=1, noise=0.01)
    opt = pd.DataFrame({"P": [500, 500, 1000], "lambda_opt": [1.0, 2.0, 3.0]})
    with pytest.raises(NormscaleError, match="P = 500 more than once"):
        fit_laws(df, optima=opt)


@pytest.mark.parametrize("flag", ["--gamma2-p-min", "--gamma-meas-p-min"])
def test_paper_p_min_that_leaves_too_few_P_names_the_flag(cli, shared_data, flag):
    run = cli("fit", shared_data / "paper-curves" / "cnn_mnist.csv", "--method", "paper",
              "--window", "1e-3,1e-2", flag, "40000")
    assert run.code == 2 and flag in run.err and "Traceback" not in run.err


def test_the_window_says_whether_it_was_found_or_given():
    df = synthetic_curves(rng=np.random.default_rng(3), n_seeds=2, noise=0.02)
    found = fit_laws(df, n_boot=0)[0]
    given = fit_laws(df, window=(0.01, 0.1), n_boot=0)[0]
    assert found.window is not None and found.window.automatic
    assert given.window is not None and not given.window.automatic
    table = summary_table([found, given])
    assert table["window_automatic"].tolist() == [True, False]
