"""The cache folder, MD5 checksums and downloads with verification.

Downloads go to ``$NORMSCALE_DATA`` (default: ``~/.cache/normscale``, or
``$XDG_CACHE_HOME/normscale``). A file is written under a temporary name and
renamed only once its MD5 matches, so an interrupted or corrupt download never
leaves a file that looks complete.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from normscale.errors import DataError
from normscale.progress import Progress

_CHUNK = 1 << 20  # 1 MiB: read/hash unit


@dataclass(frozen=True)
class RemoteFile:
    """A file of an official data set.

    Attributes
    ----------
    name : str
        File name as published (``"train-images-idx3-ubyte.gz"``).
    md5 : str
        MD5 of the published file.
    raw_md5 : str or None
        MD5 of the decompressed content for ``.gz`` files, when known: a
        re-compressed copy with the right content is accepted too.
    """

    name: str
    md5: str
    raw_md5: str | None = None


def cache_dir() -> Path:
    """The download cache: ``$NORMSCALE_DATA``, else ``$XDG_CACHE_HOME/normscale``,
    else ``~/.cache/normscale`` (not created here)."""
    env = os.environ.get("NORMSCALE_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "normscale"


def md5_file(path: Path, *, gunzip: bool = False) -> str:
    """MD5 hex digest of a file (of its decompressed content when ``gunzip``)."""
    h = hashlib.md5()
    opener = gzip.open if gunzip else open
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except (OSError, EOFError) as exc:  # gzip CRC/truncation errors are OSError/EOFError
        raise DataError(f"cannot read '{path}': {exc}") from None
    return h.hexdigest()


def verify(path: Path, spec: RemoteFile) -> None:
    """Raise :class:`DataError` naming ``path`` unless its checksum is one of ``spec``'s.

    The published file's MD5 is tried first; for ``.gz`` files whose
    decompressed MD5 is known, a copy with the right content but another
    compression is accepted, and so is an uncompressed copy (checked against
    the content MD5 when known). A truncated gzip fails here too.
    """
    got = md5_file(path)
    if spec.name.endswith(".gz") and path.suffix != ".gz":  # an uncompressed twin
        if spec.raw_md5 is None or got == spec.raw_md5:
            return
        raise DataError(
            f"checksum mismatch for '{path}': md5 {got}, expected {spec.raw_md5}; "
            "the file is corrupt or truncated: delete it and download it again"
        )
    if got == spec.md5:
        return
    if spec.raw_md5 is not None and path.suffix == ".gz":
        raw = md5_file(path, gunzip=True)
        if raw == spec.raw_md5:
            return
        got = f"{got} (content {raw})"
    raise DataError(
        f"checksum mismatch for '{path}': md5 {got}, expected {spec.md5}"
        + (f" (content {spec.raw_md5})" if spec.raw_md5 else "")
        + "; the file is corrupt or truncated: delete it and download it again"
    )


Fetcher = Callable[[str, Path, Progress | None], None]


def _urlopen_fetch(url: str, dest: Path, bar: Progress | None) -> None:
    """Copy ``url`` (http, https or file) into ``dest``, updating ``bar`` in bytes."""
    with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:  # noqa: S310
        total = int(resp.headers.get("Content-Length") or 0)
        if bar is not None and total:
            bar.total = total
        while chunk := resp.read(_CHUNK):
            out.write(chunk)
            if bar is not None:
                bar.update(len(chunk))


def download(
    spec: RemoteFile,
    mirrors: Sequence[str],
    folder: Path,
    *,
    progress: bool = True,
    fetcher: Fetcher | None = None,
) -> Path:
    """Fetch ``spec`` from the first mirror that works into ``folder``; verify its MD5.

    Parameters
    ----------
    spec : RemoteFile
        The file and its checksum.
    mirrors : sequence of str
        Base URLs (``"https://.../"``, ``"file:///..."``) tried in order.
    folder : Path
        Destination; created if needed.
    progress : bool
        Show a byte progress bar on stderr (only on a terminal).
    fetcher : callable, optional
        ``fetcher(url, dest, bar)``; default: :mod:`urllib` (tests pass their own).

    Returns
    -------
    Path of the verified file. Raises :class:`DataError` when every mirror
    fails or the checksum does not match (the partial file is removed).
    """
    fetch = fetcher or _urlopen_fetch
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / spec.name
    tmp = folder / f".{spec.name}.part"
    errors = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + spec.name
        bar = Progress(0, f"download {spec.name}", enabled=None if progress else False)
        try:
            with bar:
                fetch(url, tmp, bar)
        except OSError as exc:  # URLError, HTTPError, timeouts are OSError
            errors.append(f"{url}: {exc}")
            tmp.unlink(missing_ok=True)
            continue
        try:
            verify(tmp, spec)
        except DataError:
            got = md5_file(tmp)
            tmp.unlink(missing_ok=True)
            raise DataError(
                f"checksum mismatch for '{spec.name}' downloaded from {url}: md5 {got}, "
                f"expected {spec.md5}; nothing was kept"
            ) from None
        tmp.replace(dest)
        return dest
    raise DataError(f"could not download '{spec.name}' ({'; '.join(errors)})")
