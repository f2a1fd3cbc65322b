"""The run store: runs (config, status, timings) and their logged points, in SQLite.

``Store`` reads and writes one store file; ``long_table`` and ``write_table``
turn it into the long-format table that ``normscale fit`` reads.
"""

from normscale.store.export import long_table, write_table
from normscale.store.schema import STATUSES, Record, RunInfo
from normscale.store.store import Store

__all__ = ["STATUSES", "Record", "RunInfo", "Store", "long_table", "write_table"]
