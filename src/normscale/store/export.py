"""The store as a long-format table: one row per (run, logged point, norm kind).

This is the table ``normscale fit`` reads (docs/science.md 2.3): each row carries
the run's grouping columns (model, dataset, optimizer, weight decay, ...), its
training-set size ``P`` and ``seed``, the norm kind and value, and the errors
at that point. Keeping one norm kind per row makes ``--group-by norm_kind``
give the paper's ablation on other norms.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from normscale import safeio
from normscale._validation import Options, check_param
from normscale.errors import NormscaleError
from normscale.store.schema import STATUSES
from normscale.store.store import Store

#: config fields copied into every row, in this order, after the leading columns
CONFIG_COLUMNS = ("model", "dataset", "optimizer", "weight_decay", "lr", "batch_size",
                  "preset", "width", "init_factor", "augment", "epochs", "steps", "until")
#: the columns every exported table starts with
LEADING_COLUMNS = ("model", "dataset", "optimizer", "weight_decay", "norm_kind", "P", "seed",
                   "epoch", "norm", "test_error")
FORMATS = ("csv", "parquet")


def long_table(store: Store, *, norm: str | None = None,
               status: str | None = "finished") -> pd.DataFrame:
    """Flatten a store into the long format read by ``normscale fit``.

    Parameters
    ----------
    store : Store
        The run store.
    norm : str, optional
        Keep only this norm kind (a measure name of :mod:`normscale.norms`);
        default every kind except the ``log10_*`` duplicates.
    status : str or None, default "finished"
        Keep runs with this status; None keeps every run.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, dataset, optimizer, weight_decay, norm_kind, P, seed,
        epoch, norm, test_error``, then ``step, test_loss, train_error,
        train_loss, wall_time``, the other config fields, ``N`` (the model's
        trainable parameters recorded at training, NaN for runs that did not record it), ``run_id``,
        ``ensemble_id``, ``status`` and ``stop_reason`` (why the run ended,
        :data:`~normscale.store.schema.STOP_REASONS`; empty for runs stored
        before stop reasons existed). Rows whose norm is not finite are left out.
    """
    if status is not None:
        check_param("long_table", "status", status, Options(STATUSES))
    runs = {r.run_id: r for r in store.runs(status=status)}
    rows: list[dict] = []
    kinds_seen: set[str] = set()
    for run_id, rec in store.iter_records():
        run = runs.get(run_id)
        if run is None:
            continue
        cfg = run.config
        base = {c: _cell(cfg.get(c)) for c in CONFIG_COLUMNS}
        base["until"] = _cell(cfg.get("until", "end"))  # runs stored before the stop rule
        base["N"] = _parameter_count(cfg)
        base.update(P=_cell(cfg.get("P")), seed=_cell(cfg.get("seed")), epoch=rec.epoch,
                    step=rec.step,
                    test_error=rec.test_error, test_loss=rec.test_loss,
                    train_error=rec.train_error, train_loss=rec.train_loss,
                    wall_time=rec.wall_time, run_id=run_id, ensemble_id=run.ensemble_id,
                    status=run.status, stop_reason=run.stop_reason)
        for kind, value in rec.norms.items():
            kinds_seen.add(kind)
            if (norm is None and kind.startswith("log10_")) or (norm is not None and kind != norm):
                continue
            if not math.isfinite(value):
                continue
            rows.append({**base, "norm_kind": kind, "norm": value})
    if norm is not None and kinds_seen and norm not in kinds_seen:
        raise NormscaleError(
            f"the store '{store.path}' has no norm kind {norm!r}; it has "
            + ", ".join(sorted(kinds_seen)))
    rest = ["step", "test_loss", "train_error", "train_loss", "wall_time",
            *[c for c in CONFIG_COLUMNS if c not in LEADING_COLUMNS], "N",
            "run_id", "ensemble_id", "status", "stop_reason"]
    columns = [*LEADING_COLUMNS, *rest]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["model", "dataset", "norm_kind", "P", "seed", "step"],
                             kind="stable", ignore_index=True)


def _cell(value):
    """A config value as a table cell: lists and tables (a tracker's config may hold them)
    become their canonical JSON text, so that every cell can be grouped and compared."""
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _parameter_count(cfg) -> float:
    """N, the run's trainable parameters, as recorded in its stored config when it was
    trained (``normscale.train.stored_config``); NaN for a run that did not record it
    (trained before N was recorded, or logged by an integration that does not know it)."""
    n = cfg.get("N")
    if n is None:
        return math.nan
    if isinstance(n, bool) or not isinstance(n, int | float):
        raise NormscaleError(f"the stored config has N = {n!r}, not a number of parameters")
    return float(n)


#: first characters that make a spreadsheet read a text cell as a formula (OWASP's list)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def defuse_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells cannot run as spreadsheet formulas.

    A text cell (never a number) that starts with ``=``, ``+``, ``-``, ``@``,
    a tab or a carriage return gets a leading ``'``, the mitigation that
    spreadsheets themselves apply (OWASP, "CSV injection"): Excel, LibreOffice
    and Google Sheets then show the text instead of evaluating it. Numbers,
    negative ones included, are left as they are, so ``normscale fit``
    reads the table back unchanged; text values such as model names never
    start with these characters in normscale's own runs.
    """
    out = table.copy()
    for col in out.columns:
        if out[col].dtype != object and not pd.api.types.is_string_dtype(out[col]):
            continue
        out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str)
                                and v.startswith(FORMULA_PREFIXES) else v)
    return out


def write_table(table: pd.DataFrame, path: str | Path, *, fmt: str | None = None) -> Path:
    """Write ``table`` as CSV or Parquet (``fmt``, default from the file suffix).

    The file is written through :func:`normscale.safeio.atomic_write`: to a
    temporary name that is renamed, so a reader never sees half a table;
    only over a regular file or a missing path that is no input of the
    running command; nothing left behind on a full disk. Text cells that a
    spreadsheet would run as formulas are defused first
    (:func:`defuse_formulas`, CSV only: Parquet has types).
    """
    path = Path(path)
    if fmt is None:
        fmt = path.suffix.lstrip(".").lower() or "csv"
    check_param("write_table", "fmt", fmt, Options(FORMATS))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NormscaleError(f"cannot write '{path}': {exc.strerror or exc}") from None
    if fmt == "csv":
        safe = defuse_formulas(table)
        return safeio.write_with(path, lambda tmp: safe.to_csv(tmp, index=False), "the table")
    return safeio.write_with(path, lambda tmp: table.to_parquet(tmp, index=False), "the table")
