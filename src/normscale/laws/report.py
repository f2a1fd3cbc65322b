"""Write the figures and tables of a list of fits into a folder."""

from __future__ import annotations

import os
from pathlib import Path

from normscale import safeio
from normscale.laws.fit import LawsFit


def _stems(fits: list[LawsFit]) -> list[str]:
    """File-name stems of the groups: safe characters, never two alike (normscale.safeio)."""
    return safeio.file_stems(["_".join(f"{v}" for v in f.group.values()) or "laws" for f in fits])


def write_report(fits: list[LawsFit], out_dir: str | os.PathLike) -> list[Path]:
    """Write one six-panel figure per group (PNG and PDF) and the tables; return the paths.

    ``out_dir`` is created (with its parents) when missing; the CLI checks
    where it may create folders before calling this.
    """
    from normscale.laws.figures import plot_fit
    from normscale.laws.summary import write_tables

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fit, stem in zip(fits, _stems(fits), strict=True):
        paths += plot_fit(fit, out / f"fit_{stem}")
    return paths + write_tables(fits, out)
