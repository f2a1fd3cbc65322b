"""Write the figures and tables of a list of fits into a folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

from normscale.laws.analysis import LawsFit


def _stem(fit: LawsFit) -> str:
    name = "_".join(f"{v}" for v in fit.group.values()) or "laws"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def write_report(fits: list[LawsFit], out_dir: str | os.PathLike) -> list[Path]:
    """Write one six-panel figure per group (PNG and PDF) and the tables; return the paths.

    ``out_dir`` is created (with its parents) when missing; the CLI checks
    where it may create folders before calling this.
    """
    from normscale.laws.figures import plot_fit
    from normscale.laws.tables import write_tables

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fit in fits:
        paths += plot_fit(fit, out / f"fit_{_stem(fit)}")
    return paths + write_tables(fits, out)
