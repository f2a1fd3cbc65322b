"""The laws' ground truth (normscale.laws.synthetic) and the verdict's calibration, small size.

The generators are checked against closed forms and independent computations;
the verdict against the targets of benchmarks/calibrate_laws.py (invariance
under lambda -> c lambda^k, coverage of the 95% intervals on both sides,
power against a 30% violation), on a few dozen draws with binomial tolerances.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from normscale.errors import ParameterError
from normscale.laws.synthetic import (
    binomial_noise,
    master_curves,
    master_shape,
    perceptron_curves,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import calibrate_laws as cal  # noqa: E402


@pytest.mark.parametrize(("gamma1", "beta", "m"),
                         [(0.5, 1.0, 1.0), (0.1, 3.0, 1.0), (1.2, 0.2, 1.0), (0.5, 0.2, 3.0)])
def test_master_shape_has_its_minimum_1_at_x_1(gamma1, beta, m):
    x = np.geomspace(1e-3, 1e3, 6001)
    phi = master_shape(x, gamma1=gamma1, beta=beta, sharpness=m)
    assert master_shape(1.0, gamma1=gamma1, beta=beta, sharpness=m) == pytest.approx(1.0,
                                                                                     abs=1e-15)
    assert abs(np.log10(x[np.argmin(phi)])) < 1e-3
    assert np.all(phi >= 1.0 - 1e-12)
    # the early law: local slope -gamma1 far below the optimum, +beta far above it
    lo = np.log(master_shape([1e-8, 1e-7], gamma1=gamma1, beta=beta, sharpness=m))
    hi = np.log(master_shape([1e7, 1e8], gamma1=gamma1, beta=beta, sharpness=m))
    assert (lo[1] - lo[0]) / np.log(10) == pytest.approx(-gamma1, rel=2e-3)
    assert (hi[1] - hi[0]) / np.log(10) == pytest.approx(beta, rel=2e-3)


@pytest.mark.parametrize(("x", "m", "slope"), [(0.01, 1.0, -0.436), (0.1, 3.0, -0.486),
                                               (0.1, 1.0, -0.268)])
def test_master_shape_local_slope_near_the_elbow(x, m, slope):
    # d ln Phi / d ln x = g1 (x^(b m) - x^(-g1 m)) / (x^(-g1 m) + (g1/b) x^(b m)), g1 .5, b .2
    g1, b = 0.5, 0.2
    exact = g1 * (x ** (b * m) - x ** (-g1 * m)) / (x ** (-g1 * m) + g1 / b * x ** (b * m))
    h = 1e-5
    ln = np.log(master_shape([x * np.exp(-h), x * np.exp(h)], gamma1=g1, beta=b, sharpness=m))
    assert (ln[1] - ln[0]) / (2 * h) == pytest.approx(exact, rel=1e-6)
    assert exact == pytest.approx(slope, abs=1e-3)


def test_master_curves_noiseless_follow_the_closed_form():
    g1, g2, k2, eps0, beta, ratio = 0.4, 1.5, 2.0, 0.1, 0.7, 1.3
    P = (100, 300, 900, 2700)
    df, truth = master_curves(gamma1=g1, gamma2=g2, k2=k2, eps0=eps0, beta=beta, ratio=ratio,
                              P=P, n_seeds=2, n_points=25, start=1e-2, stop=10,
                              n_test=None, plateau=None, random_phase=False)
    gm = ratio * g1 * g2
    assert truth.gamma_meas == pytest.approx(gm) and truth.gamma_pred == pytest.approx(g1 * g2)
    np.testing.assert_allclose(truth.lambda_opt, k2 * np.array(P, float) ** g2, rtol=1e-6)
    np.testing.assert_allclose(truth.eps_opt, eps0 * (np.array(P, float) / P[0]) ** -gm,
                               rtol=1e-10)
    # every point is eps0 (P/P0)^-gm Phi(lambda / (k2 P^g2)), written out independently
    x = df["norm"] / (k2 * df["P"] ** g2)
    phi = (x ** -g1 + g1 / beta * x ** beta) / (1 + g1 / beta)
    np.testing.assert_allclose(df["test_error"], eps0 * (df["P"] / P[0]) ** -gm * phi,
                               rtol=1e-12)
    # the grid: 25 points from 0.01 to 10 lambda_opt, the same for every seed
    for (p, _), g in df.groupby(["P", "seed"]):
        lam_opt = k2 * p ** g2
        assert len(g) == 25
        assert g["norm"].min() == pytest.approx(1e-2 * lam_opt)
        assert g["norm"].max() == pytest.approx(10 * lam_opt)


def test_master_curves_plateau_and_offset_move_the_exact_optimum_only_slightly():
    df, truth = master_curves(P=(500, 2000, 8000), n_seeds=1, n_points=2001, start=1e-3,
                              stop=10, n_test=None, plateau=0.9, q1=0.01, random_phase=False)
    assert np.all(df["test_error"] <= 0.9 + 0.01)
    for p, lam, eps in zip(truth.P, truth.lambda_opt, truth.eps_opt, strict=True):
        g = df[df["P"] == p]
        i = int(np.argmin(g["test_error"]))
        assert math.log10(g["norm"].iloc[i] / lam) == pytest.approx(0, abs=0.003)
        assert g["test_error"].min() == pytest.approx(eps, rel=1e-6)
    # with the offset, the exact optimum is eps0 (P/P0)^-1/2 + q1 at k2 P (the plateau's
    # effect near the optimum is below 1e-3)
    np.testing.assert_allclose(truth.eps_opt, 0.2 * (truth.P / 500) ** -0.5 + 0.01, rtol=1e-3)


def test_master_curves_refuse_errors_above_one():
    with pytest.raises(ParameterError, match="plateau"):
        master_curves(plateau=None, start=1e-3, eps0=0.2, rng=0)
    with pytest.raises(ParameterError, match="start"):
        master_curves(start=2.0, rng=0)


def test_binomial_noise_has_the_binomial_mean_and_variance():
    eps, n_test, n = 0.05, 2000, 40_000
    draws = binomial_noise(np.full(n, eps), n_test=n_test, rng=1)
    var = eps * (1 - eps) / n_test
    assert abs(draws.mean() - eps) < 5 * math.sqrt(var / n)
    # the sample variance's relative standard deviation is sqrt(2 / (n - 1))
    assert draws.var(ddof=1) / var == pytest.approx(1.0, abs=5 * math.sqrt(2 / (n - 1)))
    assert np.all(np.isclose(draws * n_test, np.round(draws * n_test)))  # whole counts
    assert binomial_noise([1e-9], n_test=100, rng=0)[0] == pytest.approx(0.5 / 100)


def test_perceptron_curves_are_the_theory_with_its_exact_optima():
    from normscale.theory import hebb_error, lambda_opt, solve

    alphas = (5.0, 10.0, 20.0)
    df, truth = perceptron_curves(alphas=alphas, N=10, n_seeds=1, n_points=12, n_test=None,
                                  truth_gamma1=False, random_phase=False)
    assert sorted(df["P"].unique()) == [50.0, 100.0, 200.0]
    for a, lam_t in zip(alphas, truth.lambda_opt, strict=True):
        assert lam_t == pytest.approx(lambda_opt(alpha=a).lam_opt, rel=1e-6)
        g = df[df["P"] == a * 10].sort_values("norm")
        for lam, e in zip(g["norm"].iloc[[1, 6, 10]], g["test_error"].iloc[[1, 6, 10]],
                          strict=True):
            assert e == pytest.approx(solve(alpha=a, lam=lam).eps / hebb_error(alpha=a),
                                      rel=1e-5)
    # docs/theory.md: lambda_opt ~ alpha^0.99 and eps_hat_opt ~ alpha^-0.51
    assert truth.gamma2 == pytest.approx(1.0, abs=0.05)
    assert truth.gamma_meas == pytest.approx(0.5, abs=0.05)


# --- the verdict's calibration (small size; the full tables: benchmarks/calibrate_laws.py) --


def _fit(df, optima=None):
    return cal.record(cal.fit(df, n_boot=0, optima=optima))


@pytest.mark.parametrize(("case", "with_optima"), [
    ("resnet_cifar10", False), ("resnet_cifar10", True), ("cnn_cifar10", False),
    ("cnn_cifar10", True), ("synthetic", False)])
def test_verdict_is_invariant_under_a_change_of_units(shared_data, case, with_optima):
    if case == "synthetic":
        df, _ = master_curves(beta=0.3, n_seeds=3, rng=5)
        opt = None
    else:
        df = pd.read_csv(shared_data / "paper-curves" / f"{case}.csv")
        opt = (pd.read_csv(shared_data / "paper-curves" / f"{case}_optima.csv")
               if with_optima else None)
    base = _fit(df, opt)
    failures = {}
    for k, c in ((0.5, 1e3), (2.0, 1e-3)):
        tdf, topt = cal.transform(df, opt, k, c)
        bad = cal.invariance_checks(base, _fit(tdf, topt), k)
        if bad:
            failures[(k, c)] = bad
    assert not failures


def test_invariance_check_sees_a_unit_dependent_answer():
    base = {"verdict": "consistent", "P_lo": 1.0, "P_hi": 8.0, "z": 0.5, "gamma1": 0.5,
            "gamma1_err": 0.05, "gamma2": 1.0, "gamma2_err": 0.1, "gamma_pred": 0.5,
            "gamma_pred_err": 0.1}
    same = base | {"gamma1": 0.25, "gamma1_err": 0.025, "gamma2": 2.0, "gamma2_err": 0.2}
    assert cal.invariance_checks(base, same, 2.0) == []
    assert cal.invariance_checks(base, same | {"z": 0.6}, 2.0) == ["z +0.60"]
    assert cal.invariance_checks(base, base, 2.0)  # gamma1, gamma2 did not scale


def _misses_allowed(n: int, p_side: float = 0.05, level: float = 0.995) -> int:
    """Most misses on one side consistent with at most p_side of them (coverage 90%)."""
    return int(stats.binom.ppf(level, n, p_side))


def _sd_band(n: int) -> tuple[float, float]:
    """[0.8, 1.25] widened by 2.5 sampling sd of a sample sd of n (relative sd 1/sqrt(2(n-1)))."""
    tol = 2.5 / math.sqrt(2 * (n - 1))
    return 0.8 * (1 - tol), 1.25 * (1 + tol)


N_NULL = 40


@pytest.fixture(scope="module")
def null_draws():
    """40 seeded draws of a null family whose curves show their early law at every P (eps_opt
    0.05 at the smallest P, under a chance plateau at 0.9; 5 P, 2 seeds, 14 points, n_test
    10,000)."""
    fam = cal.master("clean early law", "", eps0=0.05, n_P=5, n_seeds=2, n_points=14)
    return cal.run_family(fam, N_NULL, seed=11, n_boot=0, index=0)


@pytest.mark.parametrize("q", cal.QUANTITIES)
def test_intervals_cover_the_truth_on_both_sides_under_the_null(null_draws, q):
    res = null_draws
    t = res[f"true_{q}"]
    below, above = int((t < res[q + "_lo"]).sum()), int((t > res[q + "_hi"]).sum())
    z = ((res[q] - t) / res[q + "_err"]).dropna()
    lo, hi = _sd_band(N_NULL)
    # every quantity defined in 90% of draws; at most 5% of misses on each side (binomial
    # tolerance); the standardised errors' sd in [0.8, 1.25] (within its sampling tolerance):
    # intervals that are too wide fail here
    assert len(z) >= 0.9 * N_NULL
    assert below <= _misses_allowed(N_NULL) and above <= _misses_allowed(N_NULL), (below, above)
    assert lo <= z.std(ddof=1) <= hi, z.std(ddof=1)


def test_z_has_unit_spread_under_the_null(null_draws):
    z = cal.z_centred(null_draws)
    lo, hi = _sd_band(N_NULL)
    assert z.size >= 0.9 * N_NULL
    assert lo <= z.std(ddof=1) <= hi, z


def test_the_null_is_not_called_tension_too_often(null_draws):
    tension = int((null_draws["verdict"] == "tension").sum())
    assert tension <= stats.binom.ppf(0.99, N_NULL, 0.05), null_draws["verdict"].value_counts()


def test_a_30_percent_violation_is_called_tension():
    n = 16
    fam = cal.master("x1.3", "", ratio=1.3, n_P=6, n_seeds=3, n_points=20)
    res = cal.run_family(fam, n, seed=13, n_boot=0, index=2)
    tension = int((res["verdict"] == "tension").sum())
    # at least 80% power: fewer than the 1% quantile of Binomial(n, 0.8) fails
    assert tension >= stats.binom.ppf(0.01, n, 0.8), res["verdict"].value_counts().to_dict()


def test_calibrate_laws_writes_its_tables(shared_data, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal.main(["stability", "--rows", "resnet_cifar10", "--out", str(tmp_path)])
    text = (tmp_path / "stability.md").read_text()
    assert text.startswith("<!-- written by `python benchmarks/calibrate_laws.py stability "
                           "--rows resnet_cifar10 --out")
    assert "flips between `consistent` and `tension`" in text
