"""The summary table of the laws, one row per group: markdown, CSV, LaTeX and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from normscale.laws.analysis import LawsFit

_COLUMNS = ("gamma1", "gamma1_err", "gamma2", "gamma2_err", "gamma_pred", "gamma_pred_err",
            "gamma_meas", "gamma_meas_err", "sigma", "collapse_quality", "backtest_rel_error")


def summary_table(fits: list[LawsFit]) -> pd.DataFrame:
    """One row per group: the group columns, the exponents, the window, the checks."""
    rows = []
    for f in fits:
        row = dict(f.group)
        row.update({c: getattr(f, c) for c in _COLUMNS})
        row.update(window_lo=f.window.lo, window_hi=f.window.hi,
                   window_units=f.window.units, window_automatic=f.window.automatic,
                   gamma1_method=f.gamma1_method, n_P=len(f.P), err_method=f.err_method,
                   level=f.level)
        for q in ("gamma1", "gamma2", "gamma_pred", "gamma_meas"):
            row[f"{q}_ci_lo"], row[f"{q}_ci_hi"] = getattr(f, f"{q}_ci")
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(v: float, e: float) -> str:
    return f"{v:.3f} ± {e:.3f}"


def markdown(fits: list[LawsFit]) -> str:
    """A markdown table with value ± error columns."""
    head = list(fits[0].group) + ["gamma1", "gamma2", "gamma_pred", "gamma_meas", "sigma",
                                  "window", "collapse", "back-test"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in fits:
        cells = [str(v) for v in f.group.values()] + [
            _pm(f.gamma1, f.gamma1_err), _pm(f.gamma2, f.gamma2_err),
            _pm(f.gamma_pred, f.gamma_pred_err), _pm(f.gamma_meas, f.gamma_meas_err),
            f"{f.sigma:.3f}", f"[{f.window.lo:.3g}, {f.window.hi:.3g}] {f.window.units}",
            f"{f.collapse_quality:.3g}", f"{100 * f.backtest_rel_error:+.1f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(fits: list[LawsFit], out: Path) -> list[Path]:
    """Write laws.md, laws.csv, laws.tex, laws.json and optima.csv in ``out``."""
    from normscale.cli._common import to_jsonable

    table = summary_table(fits)
    paths = [out / n for n in ("laws.md", "laws.csv", "laws.tex", "laws.json", "optima.csv")]
    paths[0].write_text(markdown(fits))
    table.to_csv(paths[1], index=False)
    paths[2].write_text(table.to_latex(index=False, float_format="%.4g"))
    paths[3].write_text(json.dumps(to_jsonable([f.to_dict() for f in fits]), indent=1))
    optima = []
    for f in fits:
        t = f.optima_table()
        for k, v in f.group.items():
            t.insert(0, k, v)
        optima.append(t)
    pd.concat(optima).to_csv(paths[4], index=False)
    return paths
