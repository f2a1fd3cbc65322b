"""The README's study runs as written: its commands, in a fresh folder, end in a verdict."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from normscale.store import Store

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- readme-study:"


def study_commands() -> list[list[str]]:
    """The lines of the bash block that follows the README's study marker."""
    text = README.read_text()
    assert MARK in text, "the README lost its study section"
    block = re.search(r"```bash\n(.*?)```", text[text.index(MARK):], re.S).group(1)
    lines = [ln.split("#")[0].strip() for ln in block.splitlines()]
    return [shlex.split(ln) for ln in lines if ln]


def test_the_readme_study_is_sweep_export_fit():
    cmds = study_commands()
    assert [c[:2] for c in cmds] == [["normscale", "sweep"], ["normscale", "export"],
                                     ["normscale", "fit"]]


@pytest.mark.usefixtures("one_thread")
def test_the_readme_study_runs_as_written_and_ends_in_a_verdict(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = []
    for cmd in study_commands():
        r = cli(*cmd[1:])
        assert r.code == 0, f"{' '.join(cmd)} exited {r.code}: {r.err[-1500:]}"
        results.append(r)
    sweep, export, fit = results
    # every run stopped for a reason the store names, most past their optimum
    with Store(tmp_path / "study.db", readonly=True) as store:
        reasons = [i.stop_reason for i in store.runs()]
    assert len(reasons) == 8 and set(reasons) <= {"past_optimum", "max_epochs"}
    assert reasons.count("past_optimum") >= 3, reasons  # digits: a noisy 360-image test set
    assert "finished (" in sweep.out and "past_optimum" in sweep.out
    # one norm kind, so fit reads the table as it is; the stop reason rides along
    table = pd.read_csv(tmp_path / "curves.csv")
    assert set(table["norm_kind"]) == {"spectral_complexity"}
    assert set(table["stop_reason"]) == set(reasons)
    assert sorted(set(table["P"])) == [100, 200, 400, 800]
    # the fit prints the paper's exponents and ends in a verdict
    assert "gamma_pred" in fit.out and "gamma_meas" in fit.out
    verdict = re.search(r"Verdict.*\*\*(consistent|tension|inconclusive|untestable)\*\*",
                        fit.out)
    assert verdict is not None, fit.out[-2000:]
    # the README says which verdict its study ends in, and the study ends in it
    said = re.search(r"ends in the verdict \*\*`?(\w+)`?\*\*", README.read_text())
    if said is not None:
        assert verdict.group(1) == said.group(1), (verdict.group(1), said.group(1))
