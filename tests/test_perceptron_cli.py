"""The ``normscale perceptron`` command: outputs, figures, warnings and bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from normscale.perceptron import COLUMNS

SMALL = ["--n", "40", "--seeds", "2", "--lam", "0.1:100:5", "--quiet"]


def test_fixed_and_gd_write_csv_figures_and_json(cli, tmp_path):
    out = tmp_path / "run"
    r = cli("perceptron", "--alpha", "2,5", "--mode", "both", "--steps", "50", *SMALL,
            "--out", out, "--json")
    assert r.code == 0, r.err
    rows = r.json()
    df = pd.read_csv(out / "results.csv")
    assert list(df.columns) == COLUMNS
    assert len(rows) == len(df)
    fixed = df[df["mode"] == "fixed"]
    assert len(fixed) == 2 * 2 * 5 and fixed["converged"].all()
    assert (df[df["mode"] == "gd"]["step"] >= 0).all()
    pd.testing.assert_series_equal(df["eps_hat"], df["eps"] / df["eps0"], check_names=False)
    assert {row["mode"] for row in rows} == {"fixed", "gd"}
    assert (out / "fig_a_eps_hat.png").stat().st_size > 0
    assert (out / "fig_d_gd_vs_fixed.png").stat().st_size > 0
    # the same run again is identical (seeded)
    again = cli("perceptron", "--alpha", "2,5", "--mode", "both", "--steps", "50", *SMALL,
                "--json")
    assert again.json() == rows


def test_gd_figure_from_a_fixed_csv(cli, tmp_path):
    assert cli("perceptron", "--alpha", "5", *SMALL, "--out", tmp_path / "f").code == 0
    r = cli("perceptron", "--alpha", "5", "--mode", "gd", "--steps", "30", *SMALL,
            "--fixed-csv", tmp_path / "f" / "results.csv", "--out", tmp_path / "g")
    assert r.code == 0, r.err
    assert (tmp_path / "g" / "fig_d_gd_vs_fixed.png").exists()


def test_non_convergence_is_reported(cli, tmp_path):
    r = cli("perceptron", "--alpha", "5", "--n", "40", "--lam", "300", "--max-iter", "1",
            "--out", tmp_path)
    assert r.code == 0
    assert "did not converge" in r.err
    assert not pd.read_csv(tmp_path / "results.csv")["converged"].any()


@pytest.mark.parametrize("argv, needle", [
    (["--n", "0"], "--n must be an int >= 1; got 0"),
    (["--n", "-5"], "--n must be an int >= 1; got -5"),
    (["--alpha", "0"], "--alpha must hold values > 0; got 0"),
    (["--alpha", "2,-1"], "--alpha must hold values > 0; got -1"),
    (["--lam", ""], "--lam '' is empty"),
    (["--lam", "0:10:5"], "--lam must hold values > 0; got 0 in '0:10:5'"),
    (["--lam", "-1"], "--lam must hold values > 0; got -1"),
    (["--lam", "1:10:0"], "must have 1 to 100000 points"),
    (["--mode", "sgd"], "--mode must be fixed, gd, fixed,gd or both; got 'sgd'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--laws", "--alpha", "2,5"], "--laws needs --out, --mode fixed and 3 alpha values"),
])
def test_bad_input_exits_2_with_message(cli, argv, needle):
    r = cli("perceptron", *argv)
    assert r.code == 2
    assert needle in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_unwritable_output_folder_exits_2(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = cli("perceptron", "--n", "10", "--lam", "1", "--out", blocker / "sub")
    assert r.code == 2
    assert f"'{blocker}' is a file, not a folder" in r.err


def test_cuda_without_a_gpu_exits_2(cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    r = cli("perceptron", "--n", "10", "--lam", "1", "--device", "cuda")
    assert r.code == 2
    assert "no CUDA device is available" in r.err


def test_command_modules_import_no_heavy_library():
    """The parsers of `perceptron`, `theory` and `scaling` (built for every `normscale
    --help`) and `import normscale.theory` load neither pandas nor scipy: each command
    imports what it needs when it runs."""
    import subprocess
    import sys

    code = ("import sys, normscale.cli.perceptron, normscale.cli.theory, normscale.cli.scaling, "
            "normscale.theory\n"
            "print(sorted(m for m in ('pandas', 'scipy', 'scipy.integrate', 'torch', "
            "'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", out


def test_loss_families_of_the_parser_are_the_theory_s():
    from normscale.cli.theory import LOSS_FAMILIES
    from normscale.theory.losses import FAMILIES

    assert sorted(LOSS_FAMILIES) == sorted(FAMILIES)
    import normscale.theory as theory

    for name in theory.__all__:                  # every lazy name resolves
        assert getattr(theory, name) is not None
