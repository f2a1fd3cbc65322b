"""The embedded run store: one SQLite file in WAL mode.

Several processes may write one store at once: every write is one short
``BEGIN IMMEDIATE`` transaction and waits (``busy_timeout``) for the others
instead of failing, so no row is lost. A sweep driver that receives finished
records from workers can be the single writer through the same API
(:meth:`Store.add_records`).

Only an empty file or a normscale store is ever written: a file with other
tables, or with a ``meta`` table that lacks normscale's ``schema_version``
row and the ``runs`` and ``records`` tables, is refused before any write
(no table, no WAL switch). A store that cannot be written (its file or its
folder) is refused as read-only, and a failed open removes the ``-wal`` and
``-shm`` files it created. Columns that are not what the schema says (a
config or norms value that is not a JSON object, a step that is not a
number) are reported in one line naming the store, the run and the column.

A writer may *claim* a run (``start_run(..., owner=...)``, as
:class:`~normscale.integrations.RunTracker` does): a second writer of a run
claimed by a live owner is refused by name, until the owner finishes it.
An owner on this host is live while its process is (and, in this process,
until it releases the claim); one on another host until its run has not
been updated for :data:`CLAIM_STALE_S` seconds. A killed writer's claim
thus never blocks its resume on the same host.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import socket
import sqlite3
import stat
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from normscale import __version__, safeio
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
#: the tables of a normscale store, and those SQLite adds by itself
_OUR_TABLES = frozenset({"meta", "runs", "records"})
_SQLITE_TABLES = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"})
#: seconds without an update after which another host's claim on a run counts as abandoned
#: (an hour: longer than any evaluation interval between two logged points)
CLAIM_STALE_S = 3600.0
#: claims held by trackers of this process (owner strings), released when they finish
_LIVE_CLAIMS: set[str] = set()


def new_owner() -> str:
    """A fresh owner name for :meth:`Store.start_run`: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def _owner_alive(owner: str, updated_at: float) -> bool:
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return False
    host, pid_text, _ = parts
    if host != socket.gethostname():
        return time.time() - updated_at < CLAIM_STALE_S
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return owner in _LIVE_CLAIMS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True


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
            safeio.register_input(self.path)
            return
        _check_writable(self.path)
        sidecars = [Path(f"{self.path}{s}") for s in ("-wal", "-shm", "-journal")]
        existed = {p for p in sidecars if p.exists()}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise NormscaleError(f"cannot open the store '{self.path}': {exc}") from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            found = self._normscale_tables()  # a foreign file is refused before any write
            if found is not None and str(found) != str(SCHEMA_VERSION):
                self._check_schema(found)  # another version's store: not written either
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            with self._write():
                for statement in DDL.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                columns = {r[1] for r in self._conn.execute("PRAGMA table_info(runs)")}
                for column in ("stop_reason", "owner"):  # a store written before them
                    if column not in columns:
                        self._conn.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
                self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                   (str(SCHEMA_VERSION),))
            version = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        except (sqlite3.DatabaseError, NormscaleError) as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            for p in set(sidecars) - existed:  # leave no -wal/-shm of a failed open behind
                with contextlib.suppress(OSError):
                    p.unlink()
            if isinstance(exc, NormscaleError):
                raise
            if "readonly" in str(exc).replace(" ", "").lower():
                raise NormscaleError(f"the store '{self.path}' is read-only ({exc})") from None
            raise NormscaleError(
                f"the store '{self.path}' is not a normscale run store or is corrupt ({exc})"
            ) from None
        self._check_schema(version)
        safeio.register_input(self.path)

    def _normscale_tables(self) -> str | None:
        """The schema version of a normscale store, None for a new (table-less) file.

        Raises :class:`NormscaleError` naming the file when it is not SQLite,
        or is an SQLite file that is not a normscale store: other tables, or
        a ``meta`` table without normscale's ``schema_version`` row or without
        the ``runs`` and ``records`` tables (nothing is written to it).
        """
        try:
            tables = {r[0] for r in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")} - _SQLITE_TABLES
            if not tables:
                return None
            foreign = NormscaleError(
                f"the file '{self.path}' is an SQLite database but not a normscale run "
                f"store (its tables: {', '.join(sorted(tables)[:8])}"
                f"{', ...' if len(tables) > 8 else ''}); give a new or empty path")
            if "meta" not in tables:
                raise foreign
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(meta)")}
            if columns != {"key", "value"}:
                raise foreign
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                raise foreign
            if str(row[0]) == str(SCHEMA_VERSION) and not (
                    {"runs", "records"} <= tables <= _OUR_TABLES):
                raise foreign  # another version may have other tables: said by its number
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise NormscaleError(
                f"the store '{self.path}' is not a normscale run store or is corrupt ({exc})"
            ) from None
        except NormscaleError:
            self._conn.close()
            raise
        return row[0]

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
                  ensemble_id: str | None = None, fresh: bool = False,
                  owner: str | None = None) -> None:
        """Mark ``run_id`` running, creating it if new.

        With ``fresh=True`` its old records are deleted (a forced re-run) in
        the same transaction; otherwise they are kept (a resume), and records
        logged again replace those with the same step.

        ``owner`` (from :func:`new_owner`) claims the run until
        :meth:`finish_run`: a run claimed by another live owner is refused
        (:class:`NormscaleError` naming the run and the owner), so two
        writers of one run never mix their points.
        """
        now = time.time()
        with self._write() as conn:
            if owner is not None:
                row = conn.execute("SELECT status, owner, updated_at FROM runs WHERE run_id = ?",
                                   (run_id,)).fetchone()
                if row is not None and row["status"] == "running" and row["owner"] \
                        and row["owner"] != owner \
                        and _owner_alive(row["owner"], float(row["updated_at"])):
                    raise NormscaleError(
                        f"the run {run_id} in the store '{self.path}' is being written by "
                        f"{row['owner']} (host:pid:claim); a second writer of one run would mix "
                        "their points: wait until it finishes, or give this run another config")
                _LIVE_CLAIMS.add(owner)
            if fresh:
                conn.execute("DELETE FROM records WHERE run_id = ?", (run_id,))
            conn.execute(
                """INSERT INTO runs (run_id, config, status, error, ensemble_id, created_at,
                                     updated_at, finished_at, wall_time, versions, host, owner)
                   VALUES (?, ?, 'running', NULL, ?, ?, ?, NULL, NULL, ?, ?, ?)
                   ON CONFLICT (run_id) DO UPDATE SET
                       status = 'running', error = NULL, finished_at = NULL,
                       stop_reason = NULL, owner = excluded.owner,
                       updated_at = excluded.updated_at, versions = excluded.versions,
                       host = excluded.host,
                       ensemble_id = COALESCE(excluded.ensemble_id, runs.ensemble_id)""",
                (run_id, _dumps(dict(config)), ensemble_id, now, now,
                 _dumps(_versions()), socket.gethostname(), owner),
            )

    @staticmethod
    def release(owner: str) -> None:
        """Forget this process's claim ``owner`` (a tracker that closes without finishing)."""
        _LIVE_CLAIMS.discard(owner)

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
                "finished_at = ?, stop_reason = ?, owner = NULL WHERE run_id = ?",
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
        return [self._run_info(r) for r in rows]

    def _run_info(self, r: sqlite3.Row) -> RunInfo:
        """One row of ``runs`` as a RunInfo; a malformed column is one line naming it."""
        run_id = r["run_id"]
        config = _json_object(r["config"], self.path, run_id, "config")
        versions = _json_object(r["versions"], self.path, run_id, "versions")
        try:
            return RunInfo(run_id=str(run_id), config=config, status=str(r["status"]),
                           error=r["error"], ensemble_id=r["ensemble_id"],
                           created_at=float(r["created_at"]), updated_at=float(r["updated_at"]),
                           finished_at=_opt_float(r["finished_at"]),
                           wall_time=_opt_float(r["wall_time"]), versions=versions,
                           host=str(r["host"]), n_records=int(r["n"]),
                           stop_reason=r["stop_reason"] if "stop_reason" in r.keys() else None)
        except (TypeError, ValueError):
            raise NormscaleError(f"the store '{self.path}' is damaged: the run {run_id!r} has "
                                 "a time column that is not a number") from None

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
            conn.execute("UPDATE runs SET updated_at = ? WHERE run_id = ?",  # a live writer
                         (time.time(), run_id))
        return len(rows)

    def records(self, run_id: str) -> list[Record]:
        """The logged points of ``run_id`` in step order."""
        rows = self._conn.execute(
            "SELECT * FROM records WHERE run_id = ? ORDER BY step", (run_id,)).fetchall()
        return [_record(r, self.path) for r in rows]

    def iter_records(self) -> Iterator[tuple[str, Record]]:
        """Every ``(run_id, record)`` of the store, by run then step."""
        for r in self._conn.execute("SELECT * FROM records ORDER BY run_id, step"):
            yield r["run_id"], _record(r, self.path)


def _check_writable(path: Path) -> None:
    """Refuse, before SQLite touches anything, a store path that is not a regular file or
    cannot be written (its file, or its folder, where SQLite keeps the -wal file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise NormscaleError(f"cannot open the store '{path}': {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise NormscaleError(f"the store '{path}' is not a regular file (a device, pipe or "
                             "socket): give the path of a store file")
    if not os.access(path, os.W_OK):
        raise NormscaleError(f"the store '{path}' is read-only: a writer needs to write it "
                             "(readers such as export, table and report read it as it is)")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise NormscaleError(f"the store '{path}' is in a read-only folder: a writer needs to "
                             "create its -wal file beside it (readers such as export, table and "
                             "report read it as it is)")


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


def _record(r: sqlite3.Row, path: Path) -> Record:
    """One row of ``records``; a column that is not what the schema says is one line."""
    run_id = r["run_id"]
    row = {k: r[k] for k in ("epoch", "step", "test_error", "test_loss", "train_error",
                             "train_loss", "wall_time")}
    norms = _json_object(r["norms"], path, run_id, "norms")
    bad = next((k for k, v in norms.items()
                if v is not None and (isinstance(v, bool) or not isinstance(v, int | float))),
               None)
    if bad is not None:
        raise NormscaleError(f"the store '{path}' is damaged: the norms of run {run_id!r} hold "
                             f"{bad!r} = {_short(norms[bad])}, not a number")
    clash = set(norms) & set(row)
    if clash:
        raise NormscaleError(f"the store '{path}' is damaged: the norms of run {run_id!r} name "
                             f"a fixed column ({sorted(clash)[0]})")
    row.update(norms)
    try:
        if isinstance(row["step"], float) or not isinstance(row["step"], int):
            raise ValueError
        return Record.from_row(row)
    except (TypeError, ValueError, OverflowError):
        raise NormscaleError(f"the store '{path}' is damaged: a record of run {run_id!r} "
                             "has a step or an error column that is not a number") from None


def _json_object(text: Any, path: Path, run_id: Any, column: str) -> dict[str, Any]:
    """A column that holds a JSON object, as a dict; anything else is one line naming it."""
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else None
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise NormscaleError(f"the store '{path}' is damaged: the {column} of run {run_id!r} "
                             f"is not a JSON object ({_short(text)})")
    return value


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
