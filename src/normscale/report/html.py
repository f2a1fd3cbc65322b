"""A self-contained HTML report: figures, the table, the configs and the environment.

The page uses relative links only, so it opens from the file system with no
server; a small script marks any image that failed to load (and records the
count in ``data-images-loaded`` on ``<body>``, which the tests read).
"""

from __future__ import annotations

import html
import json
import platform
import subprocess
from pathlib import Path

import pandas as pd

from normscale import __version__, safeio
from normscale.laws import LawsFit, write_report
from normscale.laws.tables import summary_table
from normscale.report.study import GroupFailure, stop_line, stop_reasons
from normscale.store import Store

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
img { max-width: 100%; border: 1px solid #eee; }
.broken { outline: 3px solid #c00; }
details pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; }
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


def write_html_report(store: Store, fits: list[LawsFit], failures: list[GroupFailure],
                      out_dir: Path, *, title: str = "normscale report") -> Path:
    """Write figures, tables and ``index.html`` into ``out_dir``; return the page's path."""
    figures = write_report(fits, out_dir / "figures") if fits else []
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<style>{_STYLE}</style><script>{_CHECK_IMAGES}</script></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>Store: <code>{e(str(store.path))}</code>. Exponents as in docs/science.md: "
             "eps ~ lambda^-gamma1 early in training, lambda_opt ~ P^gamma2, "
             "gamma_pred = gamma1 gamma2 against gamma_meas from eps_opt ~ P^-gamma.</p>"]
    if fits:
        table = summary_table(fits)
        parts += ["<h2>The table</h2><div style='overflow-x:auto'>",
                  table.to_html(index=False, float_format="%.4g", border=0), "</div>"]
        links = [p for p in figures if p.suffix in (".md", ".csv", ".tex", ".json")]
        parts.append("<p>Also as " + ", ".join(
            f"<a href='figures/{e(p.name)}'>{e(p.name)}</a>" for p in links) + ".</p>")
        parts.append("<h2>Verdicts, stop reasons and edge minima</h2><ul>")
        for f in fits:
            label = ", ".join(f"{k}={v}" for k, v in f.group.items())
            reasons = "".join(f"<li>{e(r)}</li>" for r in f.verdict_reasons)
            parts.append(
                f"<li class='group'><b>{e(label)}</b>: verdict <b class='verdict'>"
                f"{e(f.verdict)}</b><ul>{reasons}</ul><p class='stops'>"
                f"{e(stop_line(stop_reasons(store, f.group)))}; minimum at the last logged "
                f"point (edge minimum) on <span class='edge'>{f.n_edge_minima}</span> of "
                f"{len(f.P)} P</p></li>")
        parts.append("</ul>")
    for f in failures:
        parts.append(f"<p><b>Not fitted</b> {e(json.dumps(f.group, default=str))}: "
                     f"{e(f.error)}</p>")
    parts.append("<h2>Figures</h2>")
    for p in figures:
        if p.suffix == ".png":
            parts.append(f"<h3>{e(p.stem)}</h3><p><img src='figures/{e(p.name)}' "
                         f"alt='{e(p.stem)}'> <a href='figures/{e(p.stem)}.pdf'>PDF</a></p>")
    runs = store.runs()
    parts.append(f"<h2>Runs ({len(runs)})</h2><table><tr><th>run</th><th>status</th>"
                 "<th>stop reason</th><th>records</th><th>wall time (s)</th><th>config</th></tr>")
    for r in runs:
        wall = "" if r.wall_time is None else f"{r.wall_time:.1f}"
        cfg = e(json.dumps(dict(r.config), indent=1, sort_keys=True))
        parts.append(f"<tr><td><code>{e(r.run_id)}</code></td><td>{e(r.status)}</td>"
                     f"<td class='stop'>{e(r.stop_reason or '')}</td><td>{r.n_records}</td>"
                     f"<td>{wall}</td><td style='text-align:left'>"
                     f"<details><summary>{e(str(r.config.get('model')))} "
                     f"{e(str(r.config.get('dataset')))} P={e(str(r.config.get('P')))} "
                     f"seed={e(str(r.config.get('seed')))}</summary><pre>{cfg}</pre>"
                     "</details></td></tr>")
    parts.append("</table><h2>Environment</h2><table>")
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _environment().items()]
    parts.append("</table></body></html>")
    return safeio.write_text(out_dir / "index.html", "\n".join(parts), "the report page")
