"""The run store: runs (config, status, timings) and their logged points, in SQLite.

``Store`` reads and writes one store file; ``long_table`` and ``write_table``
turn it into the long-format table that ``normscale fit`` reads.
"""

from normscale.store.schema import STATUSES, Record, RunInfo
from normscale.store.store import Store

__all__ = ["STATUSES", "Record", "RunInfo", "Store", "long_table", "write_table"]


def __getattr__(name: str):
    """``long_table`` and ``write_table`` on first use: they need pandas, which the commands
    that only read a store's schema (their parsers, at start-up) never import."""
    if name in ("long_table", "write_table"):
        from normscale.store import export

        return getattr(export, name)
    raise AttributeError(f"module 'normscale.store' has no attribute {name!r}")
