"""The ``normscale theory`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from normscale.theory import solve


def test_one_point_json(cli):
    r = cli("theory", "--alpha", "5", "--lam", "2.5", "--json")
    assert r.code == 0
    d = r.json()
    assert isinstance(d, dict)
    assert d["eps"] == pytest.approx(solve(alpha=5.0, lam=2.5).eps, rel=1e-12)
    assert d["converged"] is True


def test_curve_text_and_json(cli):
    r = cli("theory", "--alpha", "5", "--lam", "0.01:300:5", "--json")
    assert r.code == 0
    rows = r.json()
    assert [x["lam"] for x in rows] == pytest.approx(np.geomspace(0.01, 300, 5), rel=1e-12)
    assert rows[3]["eps"] < rows[0]["eps"]
    t = cli("theory", "--alpha", "5", "--lam", "2.5")
    assert t.code == 0 and "0.087098" in t.out


def test_non_convergence_is_flagged(cli):
    r = cli("theory", "--alpha", "5", "--lam", "20", "--loss", "hinge")
    assert r.code == 1
    assert "NO" in r.out and "no convergence" in r.err


@pytest.mark.parametrize("argv", [
    ("theory", "--alpha", "-1", "--lam", "1"),
    ("theory", "--alpha", "5", "--lam", "0:1:3"),
    ("theory", "--alpha", "5"),
    ("theory", "--alpha", "5", "--lam", "1", "--loss", "cubic"),
    ("theory", "--alpha", "5,10", "--lam", "1:100:5", "--laws"),
])
def test_bad_input_exits_2(cli, argv):
    r = cli(*argv)
    assert r.code == 2
    assert "Traceback" not in r.err


def test_laws_writes_the_analysis(cli, tmp_path):
    r = cli("theory", "--laws", "--alpha", "10:100:3", "--lam", "0.05:200:20",
            "--out", tmp_path, "--json", "--quiet")
    assert r.code == 0, r.err
    d = r.json()
    assert 0.8 < d["gamma2"] < 1.1
    assert 0.3 < d["gamma1"] < 0.55
    assert 0.4 < d["gamma_meas"] < 0.6
    for stem in ("theory_a_curves", "theory_b_lambda_opt", "theory_c_collapse"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "theory_laws.json").read_text())
    assert saved["gamma2"] == pytest.approx(d["gamma2"])
