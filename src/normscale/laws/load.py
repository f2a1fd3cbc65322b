"""Learning-curve tables: loading, column aliases, checks, grouping.

A table of curves is long-format: one row per logged point, with the
training-set size ``P``, the norm ``norm`` and the error ``test_error``, an
optional ``seed`` and any grouping columns (``model``, ``dataset``, ...).
The perceptron lab's names (``alpha``, ``lam``, ``eps``) are accepted as
aliases of ``P``, ``norm`` and ``test_error``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from normscale.errors import DataError, NormscaleError

#: canonical column -> accepted aliases, first match wins
ALIASES: dict[str, tuple[str, ...]] = {
    "P": ("P", "alpha"),
    "norm": ("norm", "lam"),
    "test_error": ("test_error", "eps"),
}

#: columns that, when they hold several values, make an ungrouped analysis ambiguous
KNOWN_GROUP_COLUMNS = ("model", "dataset", "optimizer", "weight_decay", "norm_kind", "mode")


def _read(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise DataError(f"the curves file '{path}' is a folder, not a CSV or Parquet file")
    if not path.is_file():
        raise DataError(f"the curves file '{path}' does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read the curves file '{path}': {msg}") from None


def load_curves(source: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Load a table of learning curves and normalise its column names.

    Parameters
    ----------
    source : path to a CSV or Parquet file, or a pandas DataFrame
        Long format: one row per (P, seed, logged point).

    Returns
    -------
    pandas.DataFrame
        A copy with the columns ``P``, ``norm``, ``test_error`` (renamed from
        ``alpha``, ``lam``, ``eps`` where needed), ``seed`` when present, and
        every other column kept as it is.

    Raises
    ------
    NormscaleError
        Missing or non-numeric columns, NaNs, empty seeds, non-positive P or
        norm, an unreadable file; the message names the column or file.
    """
    where = "the curves table" if isinstance(source, pd.DataFrame) else f"'{source}'"
    df = source.copy() if isinstance(source, pd.DataFrame) else _read(Path(source))
    df.columns = [str(c) for c in df.columns]
    rename = {}
    for canonical, names in ALIASES.items():
        found = [n for n in names if n in df.columns]
        if not found:
            raise NormscaleError(
                f"{where} has no column {canonical!r} (or its aliases {', '.join(names[1:])}); "
                f"its columns are {', '.join(df.columns) or 'none'}")
        if found[0] != canonical:
            rename[found[0]] = canonical
    df = df.rename(columns=rename)
    for col in ("P", "norm", "test_error"):
        values = pd.to_numeric(df[col], errors="coerce")
        if np.isinf(values).any():
            n_inf = int(np.isinf(values).sum())
            raise NormscaleError(
                f"column {col!r} of {where} holds {n_inf} infinite value(s) (inf); "
                "drop those rows first")
        if values.isna().any():
            n_bad = int(values.isna().sum())
            raise NormscaleError(
                f"column {col!r} of {where} holds {n_bad} NaN or non-numeric value(s); "
                "drop or fill those rows first")
        df[col] = values.astype(float)
    if "seed" in df.columns and df["seed"].isna().any():
        # a groupby on seed would drop these rows without a word
        n_bad = int(df["seed"].isna().sum())
        raise NormscaleError(
            f"column 'seed' of {where} is empty in {n_bad} row(s); give every row its seed, or "
            "drop the seed column for one curve per P")
    for col in ("P", "norm"):
        if (df[col] <= 0).any():
            bad = float(df.loc[df[col] <= 0, col].iloc[0])
            raise NormscaleError(f"column {col!r} of {where} must be > 0; got {bad:g}")
    if len(df) == 0:
        raise NormscaleError(f"{where} has no rows")
    return df


def check_error_column(df: pd.DataFrame, error: str) -> str:
    """Return the column that holds ``error`` (aliases allowed); check it is finite and > 0."""
    col = error
    if col not in df.columns:
        col = next((c for c, names in ALIASES.items() if error in names and c in df.columns), error)
    if col not in df.columns:
        raise NormscaleError(
            f"the error column {error!r} is not in the table; "
            f"its columns are {', '.join(df.columns)}")
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    if np.any(np.isinf(values)):
        raise NormscaleError(f"the error column {col!r} holds infinite values (inf)")
    if not np.all(np.isfinite(values)):
        raise NormscaleError(f"the error column {col!r} holds NaN or non-numeric values")
    if np.any(values <= 0):
        raise NormscaleError(
            f"the error column {col!r} must be > 0 to be fitted in log scale; "
            f"got {values[values <= 0][0]:g}")
    return col


def iter_groups(df: pd.DataFrame, group_by: Sequence[str]) -> Iterator[tuple[dict, pd.DataFrame]]:
    """Yield ``(group, sub_table)`` with ``group`` a dict column -> value.

    Ungrouped tables that mix several values of a known grouping column
    (``model``, ``mode``, ...) are refused: one analysis would mix curves of
    different kinds.
    """
    group_by = list(group_by)
    missing = [c for c in group_by if c not in df.columns]
    if missing:
        raise NormscaleError(
            f"cannot group by {', '.join(missing)}: no such column; the columns are "
            f"{', '.join(df.columns)}")
    mixed = [c for c in KNOWN_GROUP_COLUMNS
             if c in df.columns and c not in group_by and df[c].nunique(dropna=False) > 1]
    if mixed:
        c = mixed[0]
        values = ", ".join(map(str, sorted(df[c].dropna().unique().tolist(), key=str)))
        raise NormscaleError(
            f"the table mixes several values of {c!r} ({values}): group by it "
            f"(--group-by {c}) or keep one of them")
    if not group_by:
        yield {}, df
        return
    for key, sub in df.groupby(group_by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        group = {c: (v.item() if isinstance(v, np.generic) else v)
                 for c, v in zip(group_by, key, strict=True)}
        yield group, sub
