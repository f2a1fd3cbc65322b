"""The ``normscale scaling`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from normscale.scaling import get_form

EPOCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "scaling" / "chinchilla_epoch.csv"


@pytest.fixture
def joint_table(tmp_path):
    """Runs over (P, N) with 2 seeds each, y from the joint form plus 2% noise, and a cost."""
    P, N = np.meshgrid(np.geomspace(1e3, 1e6, 6), np.geomspace(1e4, 1e7, 6))
    x = np.repeat(np.column_stack([P.ravel(), N.ravel()]), 2, axis=0)
    true = {"E": 0.5, "A": 40.0, "B": 80.0, "alpha": 0.4, "beta": 0.5}
    rng = np.random.default_rng(0)
    y = get_form("joint").predict(true, x) * np.exp(rng.normal(0, 0.02, len(x)))
    df = pd.DataFrame({"P": x[:, 0], "N": x[:, 1], "err": y, "seed": np.tile([0, 1], 36),
                       "flops": 6 * x[:, 0] * x[:, 1]})
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    return path


def test_joint_json_frontier_and_holdout(cli, joint_table, tmp_path):
    out = tmp_path / "out"
    r = cli("scaling", joint_table, "--form", "joint", "--x", "P,N", "--y", "err",
            "--n-boot", "100", "--holdout", "3", "--grid", "coarse", "--out", out, "--json",
            "--quiet")
    assert r.code == 0, r.err
    d = r.json()
    fit = d["fit"]
    assert fit["n_configs"] == 36 and fit["n_points"] == 72
    assert fit["params"]["alpha"] == pytest.approx(0.4, abs=0.05)
    assert fit["n_at_best"] >= 2 and fit["converged"] is True
    lo, hi = fit["bootstrap"]["intervals"]["beta"]
    assert lo < fit["params"]["beta"] < hi
    al = d["allocation"]
    b, a = fit["params"]["alpha"], fit["params"]["beta"]
    assert al["a"] == pytest.approx(a / (a + b)) and al["cost"]["k"] == 6.0
    h = d["holdout"]
    assert h["k"] == 3 and len(h["points"]) == 6          # 3 configurations x 2 seeds
    assert h["rmsle"] < 0.1
    for name in ("fit.png", "contours.png", "frontier.png"):
        assert (out / name).stat().st_size > 5000
    starts = pd.read_csv(out / "starts.csv")
    assert len(starts) == fit["n_starts"] and starts["at_best"].sum() == fit["n_at_best"]
    assert json.loads((out / "scaling.json").read_text())["fit"]["objective"] == \
        pytest.approx(fit["objective"])


def test_cost_column_is_fitted(cli, joint_table):
    r = cli("scaling", joint_table, "--form", "joint", "--x", "P,N", "--y", "err",
            "--cost", "flops", "--n-boot", "50", "--grid", "coarse", "--json", "--quiet")
    assert r.code == 0, r.err
    cost = r.json()["allocation"]["cost"]
    assert cost["fitted"] and cost["k"] == pytest.approx(6.0, rel=1e-6)
    assert (cost["u"], cost["v"]) == pytest.approx((1.0, 1.0), abs=1e-9)


def test_power_text_and_exclude_top(cli, joint_table):
    r = cli("scaling", joint_table, "--form", "power", "--x", "P", "--y", "err",
            "--exclude-top", "4", "--n-boot", "50")
    assert r.code == 0, r.err
    assert "| alpha |" in r.out and "4 highest left out" in r.out and "68 points" in r.out


@pytest.mark.parametrize("extra", [
    ("--x", "P,N,Q"),
    ("--x", "P", "--form", "joint"),
    ("--x", "Q"),
    ("--y", "seed"),                          # zeros: not > 0
    ("--form", "power", "--cost", "flops"),
    ("--form", "joint", "--x", "P,N", "--holdout", "36"),
    ("--exclude-top", "-1"),
    ("--form", "cubic"),
    ("--grid", "epoch"),                      # the epoch grid is for joint
    ("--level", "1.5"),
])
def test_bad_input_exits_2_on_one_line(cli, joint_table, extra):
    args = {"--y": "err", **dict(zip(extra[::2], extra[1::2], strict=True))}
    r = cli("scaling", joint_table, *[v for kv in args.items() for v in kv], "--n-boot", "10")
    assert r.code == 2, r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_missing_table_exits_2(cli, tmp_path):
    r = cli("scaling", tmp_path / "none.csv")
    assert r.code == 2 and "no table" in r.err


@pytest.mark.slow
@pytest.mark.skipif(not EPOCH.is_file(), reason="Epoch's Chinchilla table not at hand")
def test_chinchilla_command(cli):
    r = cli("scaling", EPOCH, "--form", "joint", "--x", "D,N", "--y", "loss",
            "--exclude-top", "5", "--n-boot", "200", "--json", "--quiet")
    assert r.code == 0, r.err
    p = r.json()["fit"]["params"]
    assert abs(p["alpha"] - 0.348) < 0.005 and abs(p["beta"] - 0.366) < 0.005
    assert abs(p["E"] / 1.817 - 1) < 0.01


def test_width_store_gives_eps_opt_on_N_and_P(cli, tmp_path):
    """A store of width x P runs whose best test error follows the joint law: the export
    carries each run's parameter count N, and `scaling` on the store recovers the law."""
    from normscale import data, nets
    from normscale.store import Record, Store, long_table

    info = data.info("digits")
    true = {"E": 0.02, "A": 30.0, "B": 3.0, "alpha": 0.5, "beta": 0.4}
    rng = np.random.default_rng(0)
    db = tmp_path / "runs.db"
    with Store(db) as store:
        for width in (0.25, 0.5, 1.0, 2.0):
            N = nets.parameter_count("cnn", in_channels=info.in_channels,
                                     image_size=info.image_size,
                                     num_classes=info.num_classes, width=width,
                                     dataset="digits")
            for P in (100, 200, 400, 800, 1600):
                for seed in (0, 1):
                    run = f"w{width}-P{P}-s{seed}"
                    store.start_run(run, {"model": "cnn", "dataset": "digits", "preset": "paper",
                                          "optimizer": "adam", "width": width, "P": P,
                                          "seed": seed, "N": N})  # N: recorded by training
                    best = get_form("joint").predict(true, np.array([[P, N]]))[0] * np.exp(
                        rng.normal(0, 0.02))
                    errs = (2 * best, best, 1.5 * best)          # the optimum in the middle
                    store.add_records(run, [Record(
                        epoch=float(k), step=k + 1, test_error=e, test_loss=1.0,
                        train_error=0.0, train_loss=0.1, wall_time=0.1,
                        norms={"spectral_complexity": 10.0 ** k}) for k, e in enumerate(errs)])
                    store.finish_run(run, status="finished")
        table = long_table(store)
    assert "N" in table.columns
    n_by_width = table.groupby("width")["N"].first()
    assert n_by_width[0.5] == nets.parameter_count(
        "cnn", in_channels=info.in_channels, image_size=info.image_size,
        num_classes=info.num_classes, width=0.5, dataset="digits")
    assert n_by_width.is_monotonic_increasing
    r = cli("scaling", db, "--form", "joint", "--x", "P,N", "--y", "eps_opt", "--n-boot", "100",
            "--grid", "coarse", "--loss", "squared", "--json", "--quiet")
    assert r.code == 0, r.err
    fit = r.json()["fit"]
    assert fit["n_points"] == 40 and fit["n_configs"] == 20
    for k in ("alpha", "beta"):
        lo, hi = fit["bootstrap"]["intervals"][k]
        assert lo <= true[k] <= hi, (k, lo, hi)
    # `table` on the same store: the dynamical laws per width, and the joint law below them
    t = cli("table", "--store", db, "--n-boot", "0")
    assert t.code == 0, t.err
    assert "eps_opt(N, P)" in t.out and t.out.count("Verdict (") == 4
    joint = [d for d in cli("table", "--store", db, "--n-boot", "20", "--json").json()
             if "joint_eps_opt_N_P" in d][0]["joint_eps_opt_N_P"]["fit"]["params"]
    assert abs(joint["alpha"] - true["alpha"]) < 0.15 and abs(joint["beta"] - true["beta"]) < 0.15


def test_width_presets_span_width_and_P():
    from normscale.sweep import load_spec

    cpu = load_spec("cpu/cnn-mnist-width").configs()
    assert {c.width for c in cpu} == {0.125, 0.25, 0.5} and len({c.P for c in cpu}) == 4
    assert len(cpu) == 3 * 4 * 2 and all(c.until == "optimum" for c in cpu)
    paper = load_spec("paper/cnn-mnist-width").configs()
    assert {c.width for c in paper} >= {0.25, 1.0, 2.0}
    assert all(c.init_factor == 0.05 and c.epochs == 500 for c in paper)


def test_optima_and_width_study_need_both_axes():
    from normscale.errors import NormscaleError
    from normscale.scaling import fit_width_study, optima

    long = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "P": [100, 100, 200, 200],
                         "N": [1e4, 1e4, 1e4, 1e4], "width": [1.0] * 4, "seed": [0] * 4,
                         "test_error": [0.3, 0.2, 0.25, 0.1], "norm": [1.0, 2.0, 1.0, 3.0],
                         "step": [1, 2, 1, 2]})
    runs = optima(long)
    assert list(runs["eps_opt"]) == [0.2, 0.1] and list(runs["norm_opt"]) == [2.0, 3.0]
    with pytest.raises(NormscaleError, match="2 model sizes"):
        fit_width_study(runs)


# ---------------------------------------------------------------- roles and bad input


def test_roles_name_the_columns(cli, tmp_path):
    """--data D --model N on a table whose columns are (N, D): A and alpha belong to N
    whatever the column order; --x N,D (model size first) is refused, not misread."""
    P, N = np.meshgrid(np.geomspace(1e3, 1e6, 6), np.geomspace(1e4, 1e7, 6))
    true = {"E": 0.5, "A": 40.0, "B": 80.0, "alpha": 0.3, "beta": 0.6}
    y = get_form("joint").predict(true, np.column_stack([P.ravel(), N.ravel()]))
    table = tmp_path / "nd.csv"
    pd.DataFrame({"N": N.ravel(), "D": P.ravel(), "loss": y}).to_csv(table, index=False)
    r = cli("scaling", table, "--form", "joint", "--data", "D", "--model", "N", "--y", "loss",
            "--loss", "squared", "--n-boot", "20", "--json", "--quiet")
    assert r.code == 0, r.err
    fit = r.json()["fit"]
    assert fit["roles"] == {"data": "D", "model": "N"}
    assert fit["named_equation"] == "loss = E + A N^-alpha + B D^-beta"
    assert fit["params"]["alpha"] == pytest.approx(0.3, rel=1e-4)      # alpha: N's exponent
    assert fit["params"]["beta"] == pytest.approx(0.6, rel=1e-4)
    old = cli("scaling", table, "--form", "joint", "--x", "D,N", "--y", "loss",
              "--loss", "squared", "--n-boot", "20", "--json", "--quiet")
    assert old.code == 0 and old.json()["fit"]["params"] == pytest.approx(fit["params"])
    bad = cli("scaling", table, "--form", "joint", "--x", "N,D", "--y", "loss")
    assert bad.code == 2 and "--data D --model N" in bad.err
    assert len(bad.err.strip().splitlines()) == 1
    text = cli("scaling", table, "--form", "joint", "--data", "D", "--model", "N", "--y",
               "loss", "--n-boot", "20")
    assert "model size N: A, alpha" in text.out and "N_opt ~ C^" in text.out


def test_method_grid_is_the_check(cli, joint_table):
    """--method grid (the full start grid) and the default projection: the same objective."""
    args = ("scaling", joint_table, "--form", "joint", "--data", "P", "--model", "N", "--y",
            "err", "--n-boot", "10", "--json", "--quiet")
    vp, grid = cli(*args), cli(*args, "--method", "grid")
    assert vp.code == 0 and grid.code == 0, (vp.err, grid.err)
    a, b = vp.json()["fit"], grid.json()["fit"]
    assert a["method"] == "projection" and b["method"] == "grid"
    assert a["objective"] == pytest.approx(b["objective"], rel=1e-9)
    assert cli(*args, "--method", "projection", "--grid", "epoch").code == 2


@pytest.mark.parametrize(("extra", "flag"), [
    (("--holdout", "33"), "--holdout"),             # 36 configurations, 5 parameters
    (("--exclude-top", "69"), "--exclude-top"),     # 3 rows left: 2 or 3 configurations
    (("--x", "P,P"), "--x"),
    (("--data", "P"), "--model"),
    (("--cost", "seed"), "--cost"),                 # zeros: not > 0
    (("--seed", "-1"), "--seed"),                   # was a traceback from numpy
])
def test_bad_input_names_its_flag(cli, joint_table, extra, flag):
    args = ["--form", "joint", "--y", "err", "--n-boot", "10", *extra]
    if "--x" not in extra and "--data" not in extra:
        args += ["--data", "P", "--model", "N"]
    r = cli("scaling", joint_table, *args)
    assert r.code == 2, r.err
    assert flag in r.err and len(r.err.strip().splitlines()) == 1


def test_constant_cost_and_constant_y_are_refused(cli, joint_table, tmp_path):
    """A cost that does not grow with N and P has no frontier (it printed N_opt ~ C^-2e14);
    a constant y has no law (its interval missed its own estimate)."""
    df = pd.read_csv(joint_table)
    df["flat"] = 1e18
    df["same"] = 0.25
    table = tmp_path / "flat.csv"
    df.to_csv(table, index=False)
    base = ("scaling", table, "--form", "joint", "--data", "P", "--model", "N", "--n-boot", "10")
    r = cli(*base, "--y", "err", "--cost", "flat")
    assert r.code == 2 and "--cost 'flat'" in r.err and "does not grow" in r.err
    r = cli(*base, "--y", "same")
    assert r.code == 2 and "all equal" in r.err and len(r.err.strip().splitlines()) == 1


def test_out_honours_mkdir(cli, joint_table, tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")                # the output is not under it
    out = tmp_path / "deep" / "er" / "out"
    args = ("scaling", joint_table, "--form", "power", "--data", "P", "--y", "err",
            "--n-boot", "10", "--out", out)
    r = cli(*args)
    assert r.code == 2 and "--mkdir" in r.err and not out.exists()
    r = cli(*args, "--mkdir")
    assert r.code == 0, r.err
    assert (out / "fit.png").is_file() and (out / "scaling.json").is_file()


def test_a_million_rows_are_refused_with_the_size(cli, tmp_path):
    """1e6 rows with 1000 replicates would take hours (and took 24 GB before): refused before
    any fit, with the work it would need and what to lower."""
    rng = np.random.default_rng(0)
    P = rng.choice(np.geomspace(1e3, 1e6, 20), 10 ** 6)
    y = 5 * P ** -0.5 + 0.05
    table = tmp_path / "big.parquet"                  # parquet: fast to write and read
    pd.DataFrame({"P": P, "err": y * np.exp(rng.normal(0, 0.01, len(P)))}).to_parquet(table)
    r = cli("scaling", table, "--form", "power", "--data", "P", "--y", "err")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "1,000,000 rows" in r.err and "--n-boot" in r.err and "point evaluations" in r.err
