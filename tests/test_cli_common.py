import argparse
import os

import numpy as np
import pytest

from normscale._validation import POSITIVE, POSITIVE_INT, check_array, check_param
from normscale.cli._common import output_dir, parse_grid, to_jsonable
from normscale.errors import NormscaleError, ParameterError


def test_log_grid_endpoints_and_spacing():
    g = parse_grid("0.01:300:40", name="lam")
    assert g.size == 40
    assert g[0] == pytest.approx(0.01) and g[-1] == pytest.approx(300)
    ratios = g[1:] / g[:-1]
    assert np.allclose(ratios, ratios[0])


def test_list_and_single_value():
    assert parse_grid("3.1,6.25", name="alpha").tolist() == [3.1, 6.25]
    assert parse_grid("5", name="alpha").tolist() == [5.0]


@pytest.mark.parametrize("text", ["", "0.1:-1:5", "0:1:3", "1,-2", "a,b", "1:2", "1:2:0"])
def test_bad_grids_raise_with_the_value(text):
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        parse_grid(text, name="lam")
    assert "lam" in str(exc.value)


def test_check_param_message_shape():
    with pytest.raises(ParameterError, match=r"The 'alpha' parameter of perceptron must be a "
                                             r"float > 0\. Got -1 instead\."):
        check_param("perceptron", "alpha", -1, POSITIVE)
    with pytest.raises(ParameterError, match="an int >= 1"):
        check_param("perceptron", "n", 0, POSITIVE_INT)
    with pytest.raises(ParameterError):
        check_param("perceptron", "n", 2.5, POSITIVE_INT)
    with pytest.raises(ParameterError):
        check_param("perceptron", "n", True, POSITIVE_INT)


def test_check_array():
    assert check_array("f", "lam", [1, 2], POSITIVE).dtype == np.float64
    with pytest.raises(ParameterError, match="must not be empty"):
        check_array("f", "lam", [], POSITIVE)
    with pytest.raises(ParameterError, match="Got -1.0"):
        check_array("f", "lam", [1, -1], POSITIVE)


def test_output_dir_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NormscaleError, match="is a file, not a folder"):
        output_dir(blocker / "sub")
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(NormscaleError):
            output_dir(ro)
    with pytest.raises(NormscaleError, match="give --mkdir"):  # tmp_path is not under cwd
        output_dir(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()
    assert output_dir(tmp_path / "a" / "b", mkdir=True).is_dir()
    assert output_dir(tmp_path / "c").is_dir()  # the named folder itself, in an existing one


def test_to_jsonable():
    assert to_jsonable({"a": np.float64(1.5), "b": np.arange(2), "c": float("nan")}) == {
        "a": 1.5, "b": [0, 1], "c": None}


def test_unknown_subcommand_and_help(cli):
    r = cli("no-such-command")
    assert r.code == 2 and "invalid choice" in r.err and "Traceback" not in r.err
    assert cli("--help").code == 0


def test_building_the_parser_imports_no_heavy_library():
    """`normscale --help` and `normscale fit --help` start in a fraction of a second: every
    subcommand's parser is built without numpy, torch, pandas, scipy or matplotlib (numpy
    alone cost a third of `fit --help`'s wall time)."""
    import subprocess
    import sys

    code = ("import sys; from normscale.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'torch', 'pandas', 'scipy', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
