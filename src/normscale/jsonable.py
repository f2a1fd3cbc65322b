"""Plain JSON types from the results of normscale (numpy values, dataclasses, paths, tables).

Shared by the CLI's ``--json`` and the files the library writes (laws.json,
scaling.json), so no library module has to import the CLI.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses, paths and DataFrames to JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    # numpy is looked up, not imported: an object can only be a numpy one once numpy is loaded,
    # and the CLI's parser (``--help``) must not pay for importing it
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if np is not None and isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas DataFrame
        return to_jsonable(obj.to_dict(orient="records"))
    return obj
