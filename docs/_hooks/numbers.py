"""A mkdocs hook: numbers quoted in the docs are read from the files a command wrote.

In a page, ``{{ figures/theory/theory_laws.json#gamma2 | .3f }}`` becomes the value at
``gamma2`` in that JSON file (a path relative to ``docs/``), formatted with the Python
format spec after the bar (optional). The key is a dotted path; integers index lists
(``laws/laws.json#0.gamma_meas_err``). A missing file, key or bad spec is a warning, so the
strict build fails on it. The files come from ``make docs-figures``.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.numbers")

QUOTE = re.compile(r"\{\{\s*(?P<file>[\w./-]+\.json)#(?P<key>[\w.-]+)\s*"
                   r"(?:\|\s*(?P<spec>[^}\s]*)\s*)?\}\}")


@lru_cache(maxsize=64)
def _load(path: Path, mtime: float) -> object:
    return json.loads(path.read_text())


def lookup(docs_dir: Path, file: str, key: str) -> object:
    """The value at dotted ``key`` in JSON ``file`` under ``docs_dir``."""
    path = docs_dir / file
    value = _load(path, path.stat().st_mtime)
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def substitute(markdown: str, docs_dir: Path, where: str = "") -> str:
    """``markdown`` with every quote replaced by its value; a bad quote logs a warning."""

    def replace(match: re.Match) -> str:
        try:
            value = lookup(docs_dir, match["file"], match["key"])
            return format(value, match["spec"] or "")
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("%s: cannot quote %s: %s: %s", where, match[0], type(exc).__name__,
                        exc)
            return match[0]

    return QUOTE.sub(replace, markdown)


def on_page_markdown(markdown, page, config, files, **kwargs):
    return substitute(markdown, Path(config["docs_dir"]), page.file.src_uri)
