"""benchmarks/gpu_check.py at its tiny size on CPU: it runs, and its table says what it measured."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_at_a_tiny_size():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module                   # its dataclass looks itself up there
    spec.loader.exec_module(module)
    lines = module.check(device="cpu", tiny=True)
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0] for r in rows] == [
        "| fp32, alone", "| TF32, alone", "| bf16 autocast, alone", "| fp32, ensemble of 2 seeds"]
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    for c in cells:
        assert float(c[1].replace(",", "")) > 0 and float(c[2]) > 0      # images/s, ms/step
        assert 0 <= float(c[4]) <= 1                                     # a test error
    assert cells[0][3] == "1.00x" and cells[0][5] == "+0.0000"
    # TF32 changes nothing on a CPU: the same seed and batches give the same test error
    assert cells[1][4] == cells[0][4] and cells[1][5] == "+0.0000"
    norm = next(line for line in lines if line.startswith("norm tracking:"))
    assert re.search(r"[\d.]+ ms per measurement", norm)
