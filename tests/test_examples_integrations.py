"""The integration examples run end to end, at CI size, and end in a fit."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import warnings
from pathlib import Path

import pytest

from integration_checks import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str):
    sys.path.insert(0, str(EXAMPLES))  # the examples share examples/fit_curves.py
    try:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def _check(out: Path, result: dict, n_runs: int) -> None:
    saved = json.loads((out / "fit.json").read_text())
    assert saved["P"] == result["P"] == [100.0, 200.0, 400.0]
    assert saved["verdict"] in ("consistent", "tension", "inconclusive", "untestable")
    assert math.isfinite(saved["gamma2"]) and math.isfinite(saved["gamma_meas"])
    import pandas as pd

    curves = pd.read_csv(out / "curves.csv")
    assert curves.groupby(["P", "seed"]).ngroups == n_runs
    assert (curves["norm_kind"] == "spectral_complexity").all()


@pytest.mark.slow
def test_lightning_example_trains_three_P_exports_and_fits(tmp_path):
    pytest.importorskip("lightning", reason="needs the extra normscale[lightning]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = _example("lightning_digits").main(
            ["--out", str(tmp_path), "--P", "100,200,400", "--epochs", "4", "--seeds", "1"])
    _check(tmp_path, result, 3)


@pytest.mark.slow
def test_hf_example_trains_a_vit_from_a_config_and_fits(tmp_path):
    pytest.importorskip("transformers", reason="needs the extra normscale[hf]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = _example("hf_vit_digits").main(
            ["--out", str(tmp_path), "--P", "100,200,400", "--steps", "32", "--eval-every", "4",
             "--seeds", "1"])
    _check(tmp_path, result, 3)
