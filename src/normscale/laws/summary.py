"""The summary table of the laws, one row per group: markdown, CSV, LaTeX and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from normscale import safeio
from normscale.laws.fit import LawsFit
from normscale.store.export import write_table

_COLUMNS = ("gamma1", "gamma1_err", "gamma2", "gamma2_err", "gamma_pred", "gamma_pred_err",
            "gamma_meas", "gamma_meas_err", "sigma", "z", "verdict", "gamma1_direct",
            "collapse_variance", "collapse_S", "backtest_rel_error", "n_edge_minima",
            "n_censored")


def summary_table(fits: list[LawsFit]) -> pd.DataFrame:
    """One row per group: the group columns, the exponents, the window, the checks."""
    rows = []
    for f in fits:
        row = dict(f.group)
        row.update({c: getattr(f, c) for c in _COLUMNS})
        w = f.window
        r = f.assessment.range
        row.update(verdict_P_lo=r.P_range[0], verdict_P_hi=r.P_range[1],
                   verdict_reasons="; ".join(f.verdict_reasons),
                   window_lo=w.lo if w else None, window_hi=w.hi if w else None,
                   window_units=w.units if w else None,
                   window_automatic=w.automatic if w else None, gamma1_reason=f.gamma1_reason,
                   n_P=len(f.P), level=f.level)
        for q in ("gamma1", "gamma2", "gamma_pred", "gamma_meas"):
            row[f"{q}_ci_lo"], row[f"{q}_ci_hi"] = getattr(f, f"{q}_ci")
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(v: float, e: float) -> str:
    return f"{v:.3f} ± {e:.3f}" if v == v else "undefined"


def _window_cell(f: LawsFit) -> str:
    w = f.window
    return f"[{w.lo:.3g}, {w.hi:.3g}] {w.units}" if w is not None else "none"


def compact(fits: list[LawsFit]) -> str:
    """One line per group: its verdict, z and gamma_pred +- error beside gamma_meas +- error.

    With one group per norm (``--group-by norm_kind``) this is the paper's ablation side by
    side: which norms' gamma1 gamma2 meets gamma_meas.
    """
    head = list(fits[0].group) + ["verdict", "z", "gamma_pred", "gamma_meas", "P range"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in fits:
        z = f"{f.z:+.2f}" if f.z == f.z else "-"
        lines.append("| " + " | ".join([str(v) for v in f.group.values()] + [
            f"**{f.verdict}**", z, _pm(f.gamma_pred, f.gamma_pred_err),
            _pm(f.gamma_meas, f.gamma_meas_err),
            f"{f.P_range[0]:g}..{f.P_range[1]:g}"]) + " |")
    return "\n".join(lines) + "\n"


def markdown(fits: list[LawsFit]) -> str:
    """A markdown table with value ± error columns, the verdict, and its reasons below."""
    head = list(fits[0].group) + ["gamma1", "gamma2", "gamma_pred", "gamma_meas", "sigma",
                                  "verdict", "z", "P range", "gamma1_direct", "window",
                                  "edge minima", "collapse S", "back-test"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in fits:
        r = f.assessment.range
        z = f"{r.z:+.1f}" if r.z == r.z else "-"
        cells = [str(v) for v in f.group.values()] + [
            _pm(f.gamma1, f.gamma1_err), _pm(f.gamma2, f.gamma2_err),
            _pm(f.gamma_pred, f.gamma_pred_err), _pm(f.gamma_meas, f.gamma_meas_err),
            f"{f.sigma:.3f}" if f.sigma == f.sigma else "-", f"**{f.verdict}**", z,
            f"{r.P_range[0]:g}..{r.P_range[1]:g}", f"{f.gamma1_direct:.3f}", _window_cell(f),
            f"{f.n_edge_minima} of {len(f.P)}", f"{f.collapse_S:.3g}",
            f"{100 * f.backtest_rel_error:+.1f}%" if f.backtest is not None else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for f in fits:
        label = ", ".join(f"{k}={v}" for k, v in f.group.items())
        lines.append(f"Verdict{' (' + label + ')' if label else ''}: **{f.verdict}**")
        lines += [f"- {reason}" for reason in f.verdict_reasons]
    return "\n".join(lines) + "\n"


def write_tables(fits: list[LawsFit], out: Path) -> list[Path]:
    """Write laws.md, laws.csv, laws.tex, laws.json and optima.csv in ``out``."""
    from normscale.jsonable import to_jsonable

    table = summary_table(fits)
    paths = [out / n for n in ("laws.md", "laws.csv", "laws.tex", "laws.json", "optima.csv")]
    # through normscale.safeio: regular files only, never an input, nothing half-written
    safeio.write_text(paths[0], (compact(fits) + "\n" if len(fits) > 1 else "") + markdown(fits))
    write_table(table, paths[1], fmt="csv")
    safeio.write_text(paths[2], table.to_latex(index=False, float_format="%.4g"))
    safeio.write_text(paths[3], json.dumps(to_jsonable([f.to_dict() for f in fits]), indent=1))
    optima = []
    for f in fits:
        t = f.optima_table()
        for k, v in f.group.items():
            t.insert(0, k, v)
        optima.append(t)
    write_table(pd.concat(optima), paths[4], fmt="csv")
    return paths
