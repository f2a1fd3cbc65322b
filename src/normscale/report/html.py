"""A self-contained HTML report that leads with the verdict of each group.

Per group, first: one short table (verdict, z, gamma_pred +- error,
gamma_meas +- error, stop reasons), the verdict's reasons and the group's
figure; every other column of the summary table sits behind a click
(``<details>``). Then the groups that could not be fitted, the runs with
their configs, and the environment.

The page uses relative links only, so it opens from the file system with no
server, and names no folder of the machine that made it: the store appears
by its file name, and absolute paths in messages and configs are cut to
their last part. It fits a laptop screen without sideways scrolling (long
cells wrap, figures scale to the page). A small script marks any image that
failed to load and records the count in ``data-images-loaded`` on
``<body>``, which the tests read.
"""

from __future__ import annotations

import html
import json
import math
import platform
import re
import subprocess
from pathlib import Path

import pandas as pd

from normscale import __version__, safeio
from normscale.laws import LawsFit, write_report
from normscale.laws.summary import summary_table
from normscale.report.study import GroupFailure, norms_side_by_side, stop_counts, stop_reasons
from normscale.store import Store

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 70em;
       padding: 0 1em; color: #222; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; max-width: 100%; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f4f4f4; }
table.columns td, table.columns th, table.runs td.config { text-align: left; }
table.verdict td { font-size: 1.1em; }
.consistent { color: #17692b; } .tension { color: #b00; } .untestable { color: #8a5a00; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.broken { outline: 3px solid #c00; }
summary { cursor: pointer; }
details pre { background: #f6f6f6; padding: 0.5em; white-space: pre-wrap; }
"""

_CHECK_IMAGES = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images), ok = 0;
  imgs.forEach(function (img) {
    if (img.complete && img.naturalWidth > 0) { ok += 1; } else { img.classList.add("broken"); }
  });
  document.body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
  if (ok < imgs.length) {
    var p = document.createElement("p");
    p.textContent = (imgs.length - ok) + " figure(s) failed to load.";
    p.style.color = "#c00";
    document.body.insertBefore(p, document.body.firstChild);
  }
});
"""

# An absolute path (POSIX, ~ or a Windows drive) not glued to a word: "/tmp/x/runs.db",
# never "lambda/lambda_opt" or "1/2".
_ABSOLUTE_PATH = re.compile(r"(?<![\w.)\]/])(?:~|[A-Za-z]:)?[/\\](?:[^\s'\"<>,;/\\]+[/\\])+"
                            r"(?P<name>[^\s'\"<>,;/\\]*)")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part (``.../runs.db``)."""
    return _ABSOLUTE_PATH.sub(lambda m: ".../" + m["name"], text)


def _scrub(value: object) -> object:
    if isinstance(value, str):
        return scrub_paths(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _environment() -> dict[str, str]:
    import numpy
    import scipy
    import torch

    env = {"normscale": __version__, "python": platform.python_version(),
           "platform": platform.platform(), "numpy": numpy.__version__,
           "scipy": scipy.__version__, "torch": torch.__version__,
           "pandas": pd.__version__}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, cwd=Path(__file__).parent)
        if commit.returncode == 0:
            env["normscale commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def _pm(value: float, err: float) -> str:
    """``0.521 ± 0.043``, or ``undefined`` for NaN."""
    if not math.isfinite(value):
        return "undefined"
    return f"{value:.3f} ± {err:.3f}" if math.isfinite(err) else f"{value:.3f}"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return "-" if value is None else str(value)


def _label(group: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items()) or "all runs"


def _group_section(fit: LawsFit, row: pd.Series, figure: Path | None, stops: dict[str, int],
                   e) -> list[str]:
    """The verdict table, the reasons and the figure of one group; all columns behind a click."""
    r = fit.assessment.range
    z = f"{fit.z:+.1f}" if math.isfinite(fit.z) else "-"
    parts = [f"<section class='group'><h2>{e(_label(fit.group))}</h2>",
             "<table class='verdict'><tr><th>verdict</th><th>z</th><th>gamma_pred</th>"
             "<th>gamma_meas</th><th>stop reasons</th></tr>",
             f"<tr><td><b class='verdict {e(fit.verdict)}'>{e(fit.verdict)}</b></td>"
             f"<td class='z'>{e(z)}</td>"
             f"<td class='gamma_pred'>{e(_pm(fit.gamma_pred, fit.gamma_pred_err))}</td>"
             f"<td class='gamma_meas'>{e(_pm(fit.gamma_meas, fit.gamma_meas_err))}</td>"
             f"<td class='stops'>{e(stop_counts(stops) or 'none recorded')}</td></tr></table>",
             f"<p>On P = {r.P_range[0]:g}..{r.P_range[1]:g} ({e(r.name)}); "
             f"gamma1 = {e(_pm(fit.gamma1, fit.gamma1_err))}, "
             f"gamma2 = {e(_pm(fit.gamma2, fit.gamma2_err))}; minimum at the last logged point "
             f"(edge minimum) on <span class='edge'>{fit.n_edge_minima}</span> of "
             f"{len(fit.P)} P.</p>",
             "<ul class='reasons'>"
             + "".join(f"<li>{e(scrub_paths(reason))}</li>" for reason in fit.verdict_reasons)
             + "</ul>"]
    if figure is not None:
        parts.append(f"<p><img src='figures/{e(figure.name)}' alt='{e(figure.stem)}'><br>"
                     f"<a href='figures/{e(figure.stem)}.pdf'>PDF</a></p>")
    rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(scrub_paths(_cell(v)))}</td></tr>"
                   for k, v in row.items())
    parts.append(f"<details class='columns'><summary>All {len(row)} columns of the summary "
                 f"table</summary><table class='columns'>{rows}</table></details></section>")
    return parts


def _runs_section(store: Store, e) -> list[str]:
    runs = store.runs()
    parts = [f"<h2>Runs ({len(runs)})</h2><table class='runs'><tr><th>run</th><th>status</th>"
             "<th>stop reason</th><th>records</th><th>wall time (s)</th><th>config</th></tr>"]
    for r in runs:
        wall = "" if r.wall_time is None else f"{r.wall_time:.1f}"
        cfg = e(json.dumps(_scrub(dict(r.config)), indent=1, sort_keys=True, default=str))
        parts.append(f"<tr><td><code>{e(r.run_id)}</code></td><td>{e(r.status)}</td>"
                     f"<td class='stop'>{e(r.stop_reason or '')}</td><td>{r.n_records}</td>"
                     f"<td>{wall}</td><td class='config'>"
                     f"<details><summary>{e(str(r.config.get('model')))} "
                     f"{e(str(r.config.get('dataset')))} P={e(str(r.config.get('P')))} "
                     f"seed={e(str(r.config.get('seed')))}</summary><pre>{cfg}</pre>"
                     "</details></td></tr>")
    return [*parts, "</table>"]


def write_html_report(store: Store, fits: list[LawsFit], failures: list[GroupFailure],
                      out_dir: Path, *, title: str = "normscale report") -> Path:
    """Write figures, tables and ``index.html`` into ``out_dir``; return the page's path.

    Parameters
    ----------
    store : Store
        The runs (their configs, stop reasons and wall times are listed).
    fits : list of LawsFit
        One per group (:func:`normscale.report.fit_store`); each gets its
        verdict table and its figure, in this order.
    failures : list of GroupFailure
        Groups that could not be fitted, listed with the reason.
    out_dir : Path
        Receives ``index.html`` and ``figures/`` (the six-panel figures as PNG
        and PDF, and the tables as markdown, CSV, LaTeX and JSON).
    title : str
        The page's title.
    """
    figures = write_report(fits, out_dir / "figures") if fits else []
    pngs = [p for p in figures if p.suffix == ".png"]
    per_fit = pngs if len(pngs) == len(fits) else [None] * len(fits)
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{e(title)}</title>",
             f"<style>{_STYLE}</style><script>{_CHECK_IMAGES}</script></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>Store <code>{e(Path(store.path).name)}</code>: {len(fits)} group(s) fitted"
             + (f", {len(failures)} not fitted" if failures else "")
             + ". Exponents as in docs/science.md: eps ~ lambda^-gamma1 early in training, "
             "lambda_opt ~ P^gamma2, gamma_pred = gamma1 gamma2 against gamma_meas from "
             "eps_opt ~ P^-gamma_meas; z = (gamma_pred - gamma_meas) / sigma.</p>"]
    if fits:
        table = summary_table(fits)
        for (_, row), fit, figure in zip(table.iterrows(), fits, per_fit, strict=True):
            parts += _group_section(fit, row, figure, stop_reasons(store, fit.group), e)
        links = [p for p in figures if p.suffix in (".md", ".csv", ".tex", ".json")]
        parts.append("<p>The summary table as " + ", ".join(
            f"<a href='figures/{e(p.name)}'>{e(p.name)}</a>" for p in links) + ".</p>")
        if per_fit[0] is None and pngs:  # figures that could not be matched to a group
            parts += [f"<p><img src='figures/{e(p.name)}' alt='{e(p.stem)}'></p>" for p in pngs]
    side = norms_side_by_side(store, group_by=[k for k in (fits[0].group if fits else {})])
    if side:
        parts.append("<h2>Norms side by side</h2><p>The same test with each tracked norm as "
                     "lambda (the paper's ablation: only a norm whose gamma1 gamma2 meets "
                     "gamma_meas supports the laws).</p><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in (*side[0].group, "verdict", "z",
                                                            "gamma_pred", "gamma_meas"))
                     + "</tr>")
        for f in side:
            z = f"{f.z:+.2f}" if f.z == f.z else "-"
            parts.append("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in f.group.values())
                         + f"<td><b>{e(f.verdict)}</b></td><td>{z}</td>"
                         f"<td>{_pm(f.gamma_pred, f.gamma_pred_err)}</td>"
                         f"<td>{_pm(f.gamma_meas, f.gamma_meas_err)}</td></tr>")
        parts.append("</table>")
    for f in failures:
        parts.append(f"<h2>Not fitted: {e(_label(f.group))}</h2>"
                     f"<p class='failure'>{e(scrub_paths(f.error))}</p>")
    parts += _runs_section(store, e)
    parts.append("<details><summary>Environment</summary><table>")
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _environment().items()]
    parts.append("</table></details></body></html>")
    page = out_dir / "index.html"
    safeio.write_text(page, "\n".join(parts), "the report page")
    return page
