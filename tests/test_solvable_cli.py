"""The ``normscale solvable`` command: its four actions, its files, its bad-input messages."""

from __future__ import annotations

import pandas as pd
import pytest

from normscale.solvable import dynamical_exponents, sgd_theory
from normscale.solvable.model import PowerLawModel, draw_features


def test_exponents_in_both_conventions_agree(cli):
    r1 = cli("solvable", "exponents", "--a", "2", "--b", "1.5", "--json")
    r2 = cli("solvable", "exponents", "--alpha", "0.75", "--beta", "0.25", "--json")
    assert r1.code == 0 and r2.code == 0
    assert r1.json() == r2.json()
    d = r1.json()
    assert d["time"] == pytest.approx(2 / 3) and d["data"] == 1 and d["model"] == 1
    assert d["gamma1"] == pytest.approx(dynamical_exponents(a=2, b=1.5).gamma1)


def test_theory_with_monte_carlo_writes_its_table(cli, tmp_path):
    out = tmp_path / "sgd.csv"
    r = cli("solvable", "theory", "--alpha", "1", "--beta", "0.7", "--v", "60", "--d", "10",
            "--steps", "200", "--mc", "50", "--out", out)
    assert r.code == 0, r.err
    table = pd.read_csv(out)
    assert {"step", "theory", "mc_mean", "mc_se", "z"} <= set(table.columns)
    f = draw_features(PowerLawModel(alpha=1.0, beta=0.7, v=60, d=10), seed=0)
    th = sgd_theory(f, gamma=0.15 / f.lam[0], steps=200, log_times=table["step"].to_numpy())
    assert table["theory"].to_numpy() == pytest.approx(th.mean, rel=1e-12)


def test_simulate_writes_curves_that_fit_reads(cli, tmp_path):
    out = tmp_path / "curves.csv"
    r = cli("solvable", "simulate", "--a", "1.5", "--b", "2", "--v", "100", "--noise", "1",
            "--tail", "--P", "20,40,80,160", "--times", "0.1:1e5:25", "--seeds", "2",
            "--out", out)
    assert r.code == 0, r.err
    f = cli("fit", out, "--n-boot", "0", "--json")
    assert f.code == 0, f.err
    assert f.json()["P"] == [20, 40, 80, 160]


def test_smoke_study_writes_tables_and_figures(cli, tmp_path):
    r = cli("solvable", "study", "--preset", "smoke", "--out", tmp_path, "--quiet")
    assert r.code == 0, r.err
    for name in ("classic.csv", "dynamical.csv", "sgd.csv", "exponents.md", "exponents.csv",
                 "sgd.png", "classic.png", "crossover.png", "dynamical.png", "phases.png"):
        assert (tmp_path / name).is_file(), name
    assert r.out.rstrip().splitlines()[-1].startswith("| gamma_meas")   # ends in the table
    md = (tmp_path / "exponents.md").read_text()
    assert md.splitlines()[0].startswith("| law | a | b |") and "| L(t) |" in md


@pytest.mark.parametrize("argv, flag", [
    (("exponents", "--a", "2", "--b", "1.5", "--alpha", "1"), "not both"),
    (("exponents", "--a", "0.5", "--b", "1"), "--a must be > 1"),
    (("exponents", "--a", "2"), "--a and --b go together"),
    (("exponents", "--alpha", "0.2", "--beta", "0.1"), "2 alpha + 2 beta > 1"),
    (("exponents",), "needs the model"),
    (("simulate", "--a", "2", "--b", "1.5"), "--P"),
    (("simulate", "--a", "2", "--b", "1.5", "--P", "10", "--d", "5", "--tail"), "--tail"),
    (("theory", "--a", "2", "--b", "1.5", "--mc", "1"), "--mc"),
    (("theory", "--a", "2", "--b", "1.5", "--v", "50", "--d", "10", "--gamma", "50"),
     "diverges"),
    (("theory", "--a", "nan", "--b", "1.5"), "--a"),
    (("study", "--preset", "huge"), "--preset"),
])
def test_bad_input_is_one_line_with_exit_2(cli, argv, flag):
    r = cli("solvable", *argv)
    assert r.code == 2
    assert flag in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_the_cli_names_every_study_preset():
    """The parser names the presets without importing the models: the names must be the
    study's own."""
    from normscale.cli.solvable import PRESET_NAMES
    from normscale.solvable.study import PRESETS

    assert set(PRESET_NAMES) == set(PRESETS)
