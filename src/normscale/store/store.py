"""The embedded run store: one SQLite file in WAL mode.

Several processes may write one store at once: every write is one short
``BEGIN IMMEDIATE`` transaction and waits (``busy_timeout``) for the others
instead of failing, so no row is lost. A sweep driver that receives finished
records from workers can be the single writer through the same API
(:meth:`Store.add_records`).
"""

from __future__ import annotations

import json
import math
import platform
import socket
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from normscale import __version__
from normscale._validation import Options, check_param
from normscale.errors import NormscaleError
from normscale.store.schema import (
    DDL,
    SCHEMA_VERSION,
    STATUSES,
    STOP_REASONS,
    Record,
    RunInfo,
)

_BUSY_TIMEOUT_MS = 120_000  # writers queue behind each other for up to two minutes


def _versions() -> dict[str, str]:
    versions = {"normscale": __version__, "python": platform.python_version()}
    torch = sys.modules.get("torch")  # only if the caller already imported it
    if torch is not None:
        versions["torch"] = str(torch.__version__)
    return versions


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=True)


class Store:
    """A run store on disk.

    Parameters
    ----------
    path : str or path-like
        The SQLite file; created (with its folder) when absent or empty.
    readonly : bool, default False
        Open an existing store for reading only (the readers: export, table,
        report). Nothing is written, not even to a foreign or empty file:
        the file must already be a normscale store. When no connection holds
        the store (no ``-wal`` file beside it) it is opened as immutable, so
        SQLite leaves no ``-wal``/``-shm`` files behind either; a writer that
        starts during such a read may make it fail, never the writer.

    Raises
    ------
    NormscaleError
        When the file exists but is not a normscale store (a foreign SQLite
        file, another file, or corrupt), or, read-only, when it is missing
        or empty; the message names the file.

    Examples
    --------
    >>> store = Store("runs.db")                                # doctest: +SKIP
    >>> store.start_run("ab12", {"model": "cnn"})               # doctest: +SKIP
    >>> store.add_records("ab12", [record])                     # doctest: +SKIP
    >>> store.finish_run("ab12", status="finished", wall_time=12.5)  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if self.path.is_dir():
            raise NormscaleError(f"the store '{self.path}' is a folder, not a file")
        if readonly:
            self._conn = _open_readonly(self.path)
            self._conn.row_factory = sqlite3.Row
            self._check_schema(self._normscale_tables())
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise NormscaleError(f"cannot open the store '{self.path}': {exc}") from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._normscale_tables()  # a foreign SQLite file is refused before any write
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            with self._write():
                for statement in DDL.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                columns = {r[1] for r in self._conn.execute("PRAGMA table_info(runs)")}
                if "stop_reason" not in columns:  # a store written before stop reasons
                    self._conn.execute("ALTER TABLE runs ADD COLUMN stop_reason TEXT")
                self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                   (str(SCHEMA_VERSION),))
            version = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise NormscaleError(
                f"the store '{self.path}' is not a normscale run store or is corrupt ({exc})"
            ) from None
        self._check_schema(version)

    def _normscale_tables(self) -> str | None:
        """The schema version of a normscale store, None for a new (table-less) file.

        Raises :class:`NormscaleError` naming the file when it is not SQLite,
        or is an SQLite file with other tables (nothing is written to it).
        """
        try:
            tables = {r[0] for r in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                return None
            foreign = NormscaleError(
                f"the file '{self.path}' is an SQLite database but not a normscale run "
                f"store (its tables: {', '.join(sorted(tables))}); give a new or empty path")
            if "meta" not in tables:
                raise foreign
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            current = row is not None and str(row[0]) == str(SCHEMA_VERSION)
            if self.readonly and current and not {"runs", "records"} <= tables:
                raise foreign
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise NormscaleError(
                f"the store '{self.path}' is not a normscale run store or is corrupt ({exc})"
            ) from None
        except NormscaleError:
            self._conn.close()
            raise
        return "?" if row is None else row[0]

    def _check_schema(self, version: str | None) -> None:
        if version is None:  # only read-only: a writer has just created the tables
            self._conn.close()
            raise NormscaleError(f"the file '{self.path}' is an empty SQLite database, not a "
                                 "normscale run store")
        if str(version) != str(SCHEMA_VERSION):
            self._conn.close()
            raise NormscaleError(
                f"the store '{self.path}' has schema version {version}; "
                f"this normscale reads version {SCHEMA_VERSION}")

    # -- plumbing -----------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken eagerly so concurrent writers queue."""
        if self.readonly:
            raise NormscaleError(f"the store '{self.path}' is open read-only")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- runs -----------------------------------------------------------------------
    def start_run(self, run_id: str, config: Mapping[str, Any], *,
                  ensemble_id: str | None = None, fresh: bool = False) -> None:
        """Mark ``run_id`` running, creating it if new.

        With ``fresh=True`` its old records are deleted (a forced re-run);
        otherwise they are kept (a resume), and records logged again replace
        those with the same step.
        """
        now = time.time()
        with self._write() as conn:
            if fresh:
                conn.execute("DELETE FROM records WHERE run_id = ?", (run_id,))
            conn.execute(
                """INSERT INTO runs (run_id, config, status, error, ensemble_id, created_at,
                                     updated_at, finished_at, wall_time, versions, host)
                   VALUES (?, ?, 'running', NULL, ?, ?, ?, NULL, NULL, ?, ?)
                   ON CONFLICT (run_id) DO UPDATE SET
                       status = 'running', error = NULL, finished_at = NULL,
                       stop_reason = NULL,
                       updated_at = excluded.updated_at, versions = excluded.versions,
                       host = excluded.host,
                       ensemble_id = COALESCE(excluded.ensemble_id, runs.ensemble_id)""",
                (run_id, _dumps(dict(config)), ensemble_id, now, now,
                 _dumps(_versions()), socket.gethostname()),
            )

    def finish_run(self, run_id: str, *, status: str, error: str | None = None,
                   wall_time: float | None = None, stop_reason: str | None = None) -> None:
        """Set the final ``status`` (finished, diverged or failed) of a run, and why it
        stopped (``stop_reason``, one of :data:`~normscale.store.schema.STOP_REASONS`)."""
        check_param("Store.finish_run", "status", status, Options(STATUSES[1:]))
        if stop_reason is not None:
            check_param("Store.finish_run", "stop_reason", stop_reason, Options(STOP_REASONS))
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, error = ?, wall_time = ?, updated_at = ?, "
                "finished_at = ?, stop_reason = ? WHERE run_id = ?",
                (status, error, wall_time, now, now, stop_reason, run_id))
            if cur.rowcount == 0:
                raise NormscaleError(f"no run '{run_id}' in the store '{self.path}'")

    def run(self, run_id: str) -> RunInfo | None:
        """The run ``run_id``, or None if the store does not hold it."""
        rows = self._runs("WHERE r.run_id = ?", (run_id,))
        return rows[0] if rows else None

    def runs(self, *, status: str | None = None, ensemble_id: str | None = None) -> list[RunInfo]:
        """All runs, optionally those with one status or of one ensemble."""
        clauses, params = [], []
        if status is not None:
            check_param("Store.runs", "status", status, Options(STATUSES))
            clauses.append("r.status = ?")
            params.append(status)
        if ensemble_id is not None:
            clauses.append("r.ensemble_id = ?")
            params.append(ensemble_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._runs(where, tuple(params))

    def _runs(self, where: str, params: tuple) -> list[RunInfo]:
        rows = self._conn.execute(
            f"""SELECT r.*, (SELECT COUNT(*) FROM records c WHERE c.run_id = r.run_id) AS n
                FROM runs r {where} ORDER BY r.created_at, r.run_id""", params).fetchall()
        return [RunInfo(run_id=r["run_id"], config=json.loads(r["config"]), status=r["status"],
                        error=r["error"], ensemble_id=r["ensemble_id"],
                        created_at=r["created_at"], updated_at=r["updated_at"],
                        finished_at=r["finished_at"], wall_time=r["wall_time"],
                        versions=json.loads(r["versions"]), host=r["host"], n_records=r["n"],
                        stop_reason=r["stop_reason"] if "stop_reason" in r.keys() else None)
                for r in rows]

    # -- records ------------------------------------------------------------------
    def add_records(self, run_id: str, records: Iterable[Record]) -> int:
        """Store logged points of ``run_id``; a point with a step already stored replaces it.

        Returns the number of records written.
        """
        rows = [(run_id, int(r.step), float(r.epoch), _sql(r.test_error), _sql(r.test_loss),
                 _sql(r.train_error), _sql(r.train_loss), _sql(r.wall_time),
                 _dumps({k: float(v) for k, v in r.norms.items()}))
                for r in records]
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                raise NormscaleError(
                    f"no run '{run_id}' in the store '{self.path}': call start_run first")
            conn.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             rows)
        return len(rows)

    def records(self, run_id: str) -> list[Record]:
        """The logged points of ``run_id`` in step order."""
        rows = self._conn.execute(
            "SELECT * FROM records WHERE run_id = ? ORDER BY step", (run_id,)).fetchall()
        return [_record(r) for r in rows]

    def iter_records(self) -> Iterator[tuple[str, Record]]:
        """Every ``(run_id, record)`` of the store, by run then step."""
        for r in self._conn.execute("SELECT * FROM records ORDER BY run_id, step"):
            yield r["run_id"], _record(r)


def _open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing, non-empty file; nothing is created or changed."""
    if not path.exists():
        raise NormscaleError(f"no store '{path}' (train or sweep create one)")
    if not path.is_file():
        raise NormscaleError(f"the store '{path}' is not a regular file")
    if path.stat().st_size == 0:
        raise NormscaleError(f"the store '{path}' is an empty file, not a normscale run store")
    # no -wal file: no connection holds the store, so read it as immutable (no -shm/-wal
    # files are created); otherwise share the writers' WAL index read-only
    quiescent = not Path(f"{path}-wal").exists()
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if quiescent else "")
    try:
        return sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise NormscaleError(f"cannot open the store '{path}' for reading: {exc}") from None


def _sql(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _record(r: sqlite3.Row) -> Record:
    row = {k: r[k] for k in ("epoch", "step", "test_error", "test_loss", "train_error",
                             "train_loss", "wall_time")}
    row.update(json.loads(r["norms"]))
    return Record.from_row(row)
