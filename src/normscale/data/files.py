"""Where a data set's official files are: in ``root``, else downloaded, else an error that says
what to put where."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from normscale.data.download import RemoteFile, cache_dir, download, verify
from normscale.errors import DataError


def search_dirs(root: str | Path | None, subdir: str) -> list[Path]:
    """Folders searched for a data set's files: ``root`` and ``root/subdir``.

    ``root=None`` means the download cache (:func:`cache_dir`).
    """
    base = Path(root).expanduser() if root is not None else cache_dir()
    return [base, base / subdir]


def find(name: str, dirs: Sequence[Path]) -> Path | None:
    """The first ``dir/name`` that exists, else ``None``."""
    for d in dirs:
        if (d / name).exists():
            return d / name
    return None


def resolve(
    dataset: str,
    specs: Sequence[RemoteFile],
    *,
    mirrors: Sequence[str],
    root: str | Path | None,
    subdir: str,
    download_missing: bool,
    check: bool,
) -> list[Path]:
    """Paths of the files ``specs`` (each verified when ``check``), downloading missing ones.

    A ``.gz`` file may also be present uncompressed (``train-images-idx3-ubyte``,
    as some distributions ship it); that copy is checked against the known
    content MD5, or only structurally (by the reader) when none is known.

    Raises
    ------
    DataError
        A file is missing and ``download_missing`` is false (the message lists
        the files and the folders where they may go), or a checksum fails.
    """
    dirs = search_dirs(root, subdir)
    paths: list[Path | None] = []
    for spec in specs:
        path = find(spec.name, dirs)
        if path is None and spec.name.endswith(".gz"):
            path = find(spec.name[:-3], dirs)
        paths.append(path)
    missing = [s for s, p in zip(specs, paths, strict=True) if p is None]
    if missing and not download_missing:
        names = ", ".join(s.name for s in missing)
        where = " or ".join(f"'{d}'" for d in dirs)
        raise DataError(
            f"{dataset}: missing file(s) {names}; put them in {where} "
            f"(official source: {mirrors[0]}), point --data-root at the folder holding them, "
            "or pass --download"
        )
    out = []
    for spec, path in zip(specs, paths, strict=True):
        if path is None:
            path = download(spec, mirrors, dirs[1])
        elif check:
            verify(path, spec)
        out.append(path)
    return out
