"""The automatic laws' verdict and paper mode, on the paper's released curves and on
synthetic families shaped like them (sigmoid drop from chance, offset, bent lambda_opt(P),
censored minima, curves that start one decade below their minimum)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from laws_synthetic import synthetic_curves
from normscale.laws import fit_laws
from normscale.laws.collapse import houdayer_hartmann_S
from normscale.laws.curves import Curve
from normscale.laws.paper import PaperChoices, fit_paper
from normscale.laws.verdict import curvature_t

ROWS = {"CNN_MNIST": "cnn_mnist", "ResNet_CIFAR10": "resnet_cifar10",
        "CNN_CIFAR10": "cnn_cifar10", "ResNet_MNIST": "resnet_mnist", "ViT_MNIST": "vit_mnist"}


def _reported(shared_data) -> dict:
    return json.loads((shared_data / "paper-curves" / "reported.json").read_text())


@pytest.mark.parametrize("key", list(ROWS))
def test_paper_mode_reproduces_the_paper(shared_data, cli, key):
    """With the paper's choices and its per-seed optima, paper mode gives its numbers:
    gamma1 and gamma2 within 1%, gamma_pred within 0.005 (the paper rounds to 2 digits)."""
    rep = _reported(shared_data)[key]
    ch = rep["paper_choices"]
    d = shared_data / "paper-curves"
    window = f"{ch['window_lo']},{ch['window_hi']},{ch['gamma1_P_min']}"
    run = cli("fit", d / f"{ROWS[key]}.csv", "--method", "paper", "--window", window,
              "--gamma2-p-min", str(ch["gamma2_P_min"]), "--gamma-meas-p-min",
              str(ch["gamma_meas_P_min"]), "--optima", d / f"{ROWS[key]}_optima.csv", "--json")
    assert run.code == 0, run.err
    out = run.json()
    assert out["gamma1"] == pytest.approx(rep["gamma1"], rel=0.01)
    assert out["gamma2"] == pytest.approx(rep["gamma2"], rel=0.01)
    assert abs(out["gamma_pred"] - rep["gamma_pred"]) <= 0.005
    assert abs(out["gamma_meas"] - rep["gamma_meas"]) <= 0.005
    assert abs(out["sigma"] - rep["sigma"]) <= 0.005
    # the paper's gamma1 error: the rms of each slope's own standard error
    assert out["gamma1_err"] == pytest.approx(rep["gamma1_err"], rel=0.01)
    assert out["gamma2_err"] == pytest.approx(rep["gamma2_err"], rel=0.01)
    # an independent check of gamma2: numpy's least squares on the optima table
    import pandas as pd

    opt = pd.read_csv(d / f"{ROWS[key]}_optima.csv")
    opt = opt[opt.P >= ch["gamma2_P_min"]]
    assert out["gamma2"] == pytest.approx(
        np.polyfit(np.log(opt.P), np.log(opt.lambda_opt), 1)[0], rel=1e-9)


def test_paper_mode_takes_lambda_opt_from_the_seeds():
    """With a seed column, lambda_opt is the mean of the seeds' own argmin norms: the same
    numbers as an optima table holding that mean."""
    df = synthetic_curves(rng=np.random.default_rng(5), n_seeds=3, noise=0.02)
    ch = PaperChoices(1e-3, 1e-1, 0.0)
    own = fit_paper(df, choices=ch)[0]
    assert own.lambda_opt_source == "seeds' own argmins"
    import pandas as pd

    table = pd.DataFrame([{"P": P, "lambda_opt": float(np.mean(
        [g.norm.to_numpy()[int(np.argmin(g.test_error.to_numpy()))] for _, g in sub.groupby(
            "seed")]))} for P, sub in df.groupby("P")])
    given = fit_paper(df, choices=ch, optima=table)[0]
    assert own.gamma2 == pytest.approx(given.gamma2, rel=1e-12)
    assert own.gamma1 == pytest.approx(given.gamma1, rel=1e-12)


def _auto(shared_data, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_laws(shared_data / "paper-curves" / f"{name}.csv")[0]


def test_auto_resnet_cifar10_is_consistent(shared_data):
    f = _auto(shared_data, "resnet_cifar10")
    assert f.verdict == "consistent" and f.assessment.range.name == "all"
    assert 0.43 <= f.gamma_pred <= 0.60
    assert abs(f.z) <= 2 and f.n_censored >= 8
    assert any("censored" in r for r in f.verdict_reasons)
    # the window-free check agrees with gamma1 within their errors
    assert abs(f.gamma1 - f.gamma1_direct) < 0.1


def test_auto_cnn_cifar10_holds_on_its_upper_half_and_flags_curvature(shared_data):
    f = _auto(shared_data, "cnn_cifar10")
    assert f.verdict == "consistent"
    assert f.assessment.range.name == "upper 1/2" and f.assessment.range.P_range[0] == 28000
    full = f.assessment.ranges[0]
    assert full.verdict == "tension" and any("curved" in p for p in full.problems)
    assert "curved" in f.verdict_reasons[0]


def test_auto_resnet_mnist_reports_censoring_and_range_dependence(shared_data):
    f = _auto(shared_data, "resnet_mnist")
    assert f.verdict != "consistent"
    assert f.n_censored >= 7
    assert any("censored" in r for r in f.verdict_reasons)
    assert any(r.startswith("gamma_pred by P range") for r in f.verdict_reasons)
    preds = [r.gamma_pred for r in f.assessment.ranges if np.isfinite(r.gamma_pred)]
    assert len(preds) >= 2


@pytest.mark.parametrize("name", ["vit_mnist", "cnn_mnist"])
def test_auto_vit_and_cnn_mnist_are_not_consistent(shared_data, name):
    f = _auto(shared_data, name)
    assert f.verdict != "consistent"
    full = f.assessment.ranges[0]
    assert not np.isfinite(full.gamma1) or abs(full.z_direct) > 2
    assert f.gamma1_reason  # the reason gamma1 is undefined on all P


@pytest.mark.parametrize("name", list(ROWS.values()))
def test_auto_never_errors_and_gives_a_verdict(shared_data, cli, name):
    run = cli("fit", shared_data / "paper-curves" / f"{name}.csv", "--json", "--n-boot", "0")
    assert run.code == 0, run.err
    out = run.json()
    assert out["verdict"] in ("consistent", "tension", "untestable")
    assert out["verdict_reasons"] or out["verdict"] == "consistent"
    assert "verdict:" in run.err and len(out["ranges"]) == 3
    text = cli("fit", shared_data / "paper-curves" / f"{name}.csv", "--n-boot", "0")
    assert text.out.rstrip().splitlines()[-1].startswith("verdict: " + out["verdict"])


FAMILIES = {
    # the truth holds, behind a sigmoid drop from chance level: consistent
    "chance": (dict(plateau=0.9), {"consistent"}),
    # an irreducible error q1: eps_opt(P) bends, gamma_meas drops: not consistent
    "offset": (dict(q1=0.02), {"tension", "untestable"}),
    # lambda_opt(P) bent: the laws cannot hold as power laws over all P
    "bend": (dict(bend=-1.0, n_points=60), None),
    # 4 of 6 runs stopped at 0.3 lambda_opt: lambda_opt unknown
    "cut": (dict(cut=4), {"untestable"}),
    # curves that start one decade below their minimum: a smaller window or undefined, never a
    # false tension
    "short": (dict(start_decades=1.0), {"consistent", "untestable"}),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_verdict_is_right_on_synthetic_families(family):
    kwargs, right = FAMILIES[family]
    n_draws, good = 20, 0
    for d in range(n_draws):
        df = synthetic_curves(rng=np.random.default_rng(1000 + d), n_seeds=1, noise=0.02,
                              **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = fit_laws(df, n_boot=0)[0]
        if right is None:  # "bend": all P are never judged consistent, the bend is named
            full = f.assessment.ranges[0]
            good += full.verdict != "consistent" and (f.verdict != "consistent"
                                                      or f.assessment.range is not full)
        else:
            good += f.verdict in right
        if family == "cut":
            assert f.n_censored >= 4
    assert good >= 0.9 * n_draws, (family, good)


def test_curvature_t_against_a_parabola():
    P = np.geomspace(100, 1e5, 9)
    straight = 3.0 * P ** 0.7
    assert abs(curvature_t(P, straight * np.exp(1e-3 * np.sin(np.arange(9))))) < 3
    bent = np.exp(0.7 * np.log(P) - 0.05 * np.log(P) ** 2) * np.exp(1e-3 * np.sin(np.arange(9)))
    assert curvature_t(P, bent) < -10


def test_houdayer_hartmann_S_is_one_for_noise_and_grows_with_misfit():
    """Identical master curve plus Gaussian noise of known size: S is about 1; a shifted curve
    raises it."""
    rng = np.random.default_rng(0)
    x = np.linspace(-3, 1, 200)
    master = np.exp(-0.5 * x) + np.exp(x)
    s = 0.02
    curves = [Curve(float(p), np.exp(x), master * np.exp(s * rng.standard_normal(x.size)))
              for p in range(1, 7)]
    errs = [np.full(x.size, s)] * 6
    ones = np.ones(6)
    S = houdayer_hartmann_S(curves, ones, ones, errs)
    assert 0.8 < S < 1.3
    shifted = curves[:-1] + [Curve(6.0, np.exp(x), curves[-1].error * 1.1)]
    assert houdayer_hartmann_S(shifted, ones, ones, errs) > 3 * S


def test_runs_stopped_by_a_cap_count_as_censored():
    """A stop_reason of max_epochs marks the run's minimum as censored even when its last points
    rise: the stop rule never saw the optimum."""
    df = synthetic_curves(rng=np.random.default_rng(9), n_seeds=2, noise=0.01)
    df["stop_reason"] = "past_optimum"
    plain = fit_laws(df, n_boot=0)[0]
    assert plain.n_censored == 0
    capped = df.P == df.P.max()
    df.loc[capped, "stop_reason"] = "max_epochs"
    f = fit_laws(df, n_boot=0)[0]
    assert f.n_censored == 1 and [o.P for o in f.optima if o.censored] == [float(df.P.max())]
    assert any("1 of 6 minima censored" in r for r in f.verdict_reasons)


def test_bootstrap_over_seeds_with_the_profile():
    """Per-seed curves: each seed's own basin, and a bootstrap over seeds within each P."""
    df = synthetic_curves(rng=np.random.default_rng(11), n_seeds=4, noise=0.03)
    f = fit_laws(df, n_boot=30, seed=1)[0]
    assert f.err_method == "bootstrap" and f.bootstrap.n_gamma1 >= 25
    assert f.bootstrap.std["gamma1"] > 0 and f.verdict == "consistent"
    assert all(o.n_seeds == 4 for o in f.optima)
    # the basin's uncertainty combines the seeds' spread of log10 lambda_opt
    assert all(0 < o.lambda_opt_err < 0.5 for o in f.optima)


def test_a_flat_basin_seen_past_by_the_stop_rule_is_not_censored():
    """A run whose stop rule saw it past its optimum (stop_reason past_optimum) ends inside a
    flat basin: the basin reaches its last point, but the minimum was passed."""
    lam = np.geomspace(1, 100, 30)
    err = np.where(lam < 30, 0.5 * lam ** -0.5, 0.5 * 30 ** -0.5)  # flat after its minimum
    from normscale.laws.basin import find_basin

    assert find_basin(Curve(1.0, lam, err)).censored
    assert not find_basin(Curve(1.0, lam, err, past_optimum=True)).censored
    assert find_basin(Curve(1.0, lam, err, stopped_early=True, past_optimum=False)).censored
