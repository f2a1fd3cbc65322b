"""Import an optional library or say which extra brings it."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, what: str) -> ModuleType:
    """``import module``, or an ImportError that names ``pip install 'normscale[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs the {module!r} package: pip install "
                          f"'normscale[{extra}]' ({exc})") from None
