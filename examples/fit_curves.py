"""The last step of both examples: export the run store and fit the laws, as two commands.

Equivalent to::

    normscale export --store OUT/runs.db --out OUT/curves.csv --norm spectral_complexity
    normscale fit OUT/curves.csv --n-boot 50 --json > OUT/fit.json
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from normscale.cli import main as normscale


def export_and_fit(store: Path, out: Path) -> dict:
    """Write ``out/curves.csv`` and ``out/fit.json``; print the exponents and the verdict."""
    curves = out / "curves.csv"
    if normscale(["export", "--store", str(store), "--out", str(curves), "--norm",
                  "spectral_complexity", "--quiet"]):
        sys.exit("normscale export failed")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = normscale(["fit", str(curves), "--n-boot", "50", "--json", "--quiet"])
    if code:
        sys.exit("normscale fit failed")
    result = json.loads(text.getvalue())
    (out / "fit.json").write_text(json.dumps(result, indent=1))
    print(f"gamma2 = {result['gamma2']}, gamma_meas = {result['gamma_meas']}, "
          f"gamma_pred = {result['gamma_pred']}")
    print(f"verdict: {result.get('verdict')}: {'; '.join(result.get('verdict_reasons', []))}")
    return result
