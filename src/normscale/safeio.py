"""Every file normscale reads or writes goes through here: one loader, one writer, one namer.

Writing (:func:`atomic_write`, :func:`check_output`)
    An output is written to a temporary file beside it and renamed over it,
    so a reader never sees half a file and a killed process leaves the old
    file intact. The path must be missing or a regular file: devices
    (``/dev/full``), named pipes, sockets and folders are refused, and so is
    a symbolic link (it is never followed: renaming over it would replace
    the link, following it would let whoever planted it choose the file we
    overwrite; give the target's own path). A file that is an input of the
    same command (the same inode: ``norms c.pt --csv c.pt``,
    ``import csv w.csv --out w.csv``, a checkpoint over the store) is
    refused before it is touched. On any error, an interrupt included, the
    temporary file is removed; a full disk (``ENOSPC``, ``EDQUOT``) is
    reported in one line and the previous file stays as it was.

Reading (:func:`check_input`, :func:`read_bytes`, :func:`read_text`, :func:`load_torch`,
:func:`load_yaml`)
    An input must be a regular file (a named pipe would block forever, a
    device never ends), readable, and under a size bound where the format
    allows one. Each input is remembered for the running command (see
    :func:`command`), which is how the writer knows what not to overwrite.
    PyTorch files are loaded with ``torch.load(weights_only=True)``: tensors
    and plain values only, never pickled code. YAML is read with
    ``yaml.safe_load``: no ``!!python`` tags.

Naming (:func:`file_stems`, :func:`plot_label`)
    Values from a table (a group's model or dataset name) become file names
    only through :func:`file_stems`: safe characters, bounded length, and two
    groups never share a file. :func:`plot_label` makes a value safe to show
    in a matplotlib label (no mathtext, no control characters).

Every failure is a :class:`~normscale.errors.NormscaleError` with one line
that names the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from normscale.errors import NormscaleError

#: default bound on a text input read whole (a sweep file, hparams.yaml): far above any
#: real one, far below what would fill the memory
MAX_TEXT_BYTES = 16 * 2**20
#: errno values that mean "the disk (or the quota) is full"
_FULL = {errno.ENOSPC, errno.EDQUOT}

# -- the inputs of the running command ------------------------------------------------------

_inputs: ContextVar[set[tuple[int, int]] | None] = ContextVar("normscale_inputs", default=None)


@contextlib.contextmanager
def command() -> Iterator[None]:
    """The scope of one command: inputs read inside it are never overwritten inside it.

    The CLI runs each subcommand in one; library calls outside any scope
    are checked only against the ``inputs`` they pass explicitly.
    """
    token = _inputs.set(set())
    try:
        yield
    finally:
        _inputs.reset(token)


def register_input(path: str | os.PathLike) -> None:
    """Remember ``path`` (its device and inode) as an input of the running command."""
    seen = _inputs.get()
    if seen is None:
        return
    with contextlib.suppress(OSError):
        st = os.stat(path)
        seen.add((st.st_dev, st.st_ino))


def _is_input(st: os.stat_result, inputs: Iterable[str | os.PathLike]) -> bool:
    key = (st.st_dev, st.st_ino)
    if key in (_inputs.get() or set()):
        return True
    for p in inputs:
        with contextlib.suppress(OSError):
            other = os.stat(p)
            if (other.st_dev, other.st_ino) == key:
                return True
    return False


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _why(exc: OSError) -> str:
    if exc.errno in _FULL:
        return "the disk is full (no space left on device)"
    return exc.strerror or str(exc).splitlines()[0]


# -- writing ----------------------------------------------------------------------------------

def check_output(path: str | os.PathLike, what: str = "the output", *,
                 inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check that ``path`` may be written: missing, or a writable regular file that is no input.

    Parameters
    ----------
    path : path-like
        The file to be written.
    what : str
        How the message names it (``"--out"``, ``"the checkpoint"``).
    inputs : iterable of path-like
        Inputs of the caller besides those read in the running :func:`command`.

    Returns
    -------
    Path

    Raises
    ------
    NormscaleError
        One line naming ``what`` and the path: a folder, a device, a named
        pipe, a socket, a symbolic link, a read-only file, or an input.
    """
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return p
    except OSError as exc:
        raise NormscaleError(f"{what} '{p}' cannot be written: {_why(exc)}") from None
    if not stat.S_ISREG(st.st_mode):
        hint = "; give the path of its target" if stat.S_ISLNK(st.st_mode) else ""
        raise NormscaleError(f"{what} '{p}' is {_kind(st.st_mode)}, not a regular file: "
                             f"normscale writes only regular files{hint}")
    if _is_input(st, inputs):
        raise NormscaleError(f"{what} '{p}' is also an input of this command; writing it would "
                             "destroy the input: give another output path")
    if not os.access(p, os.W_OK):
        raise NormscaleError(f"{what} '{p}' is not writable")
    return p


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, what: str = "the output", *,
                 inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block ends.

    Write the whole file to the yielded path (``df.to_csv(tmp)``,
    ``torch.save(obj, tmp)``). The target is checked with
    :func:`check_output` before and again just before the rename. The
    temporary file is synced to disk before the rename and removed on any
    error; an ``OSError`` becomes one line naming ``what`` (a full disk says
    so). A new file gets the usual permissions (0666 less the umask); a
    replaced file keeps its own.

    Examples
    --------
    >>> with atomic_write("curves.csv", "--out") as tmp:    # doctest: +SKIP
    ...     table.to_csv(tmp, index=False)
    """
    inputs = list(inputs)
    target = check_output(path, what, inputs=inputs)
    folder = target.parent
    if not folder.is_dir():
        raise NormscaleError(f"the folder of {what} '{target}' does not exist")
    tmp = folder / f".{target.name[:200]}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode) if target.exists() else None
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        if old_mode is not None:
            os.chmod(tmp, old_mode)
        yield tmp
        with open(tmp, "rb+") as fh:  # the bytes reach the disk before the name does
            os.fsync(fh.fileno())
        check_output(target, what, inputs=inputs)
        os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        raise NormscaleError(f"cannot write {what} '{target}': {_why(exc)}; the file was "
                             "left as it was") from None
    except BaseException as exc:
        _remove(tmp)
        full = _full_disk_cause(exc)
        if full is not None:
            raise NormscaleError(f"cannot write {what} '{target}': {_why(full)}; the file "
                                 "was left as it was") from None
        raise


def _full_disk_cause(exc: BaseException) -> OSError | None:
    """A full disk reported by a library under another type (torch.save: RuntimeError)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in _FULL:
            return exc
        if isinstance(exc, RuntimeError) and re.search(
                r"No space left|file write failed|unexpected pos", str(exc)):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()


def write_with(path: str | os.PathLike, write: Callable[[Path], Any], what: str = "the output",
               *, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """``write(tmp)`` then rename, as :func:`atomic_write`; return ``path``."""
    with atomic_write(path, what, inputs=inputs) as tmp:
        write(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, what: str = "the output", *,
               inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`."""
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what,
                      inputs=inputs)


def write_bytes(path: str | os.PathLike, data: bytes, what: str = "the output", *,
                inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_write`."""
    return write_with(path, lambda tmp: tmp.write_bytes(data), what, inputs=inputs)


# -- reading ------------------------------------------------------------------------------------

def check_input(path: str | os.PathLike, what: str = "the file", *,
                max_bytes: int | None = None, register: bool = True) -> Path:
    """Check that ``path`` is a readable regular file (of at most ``max_bytes``); remember it.

    A symbolic link is followed (reading through one changes nothing). The
    file is registered as an input of the running :func:`command` unless
    ``register`` is False: a state file the command itself updates (the
    checkpoint a run resumes from and then replaces).

    Raises
    ------
    NormscaleError
        One line naming ``what`` and the path: missing, a folder, a named
        pipe, a device, a socket, unreadable, or too large.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise NormscaleError(f"{what} '{p}' does not exist") from None
    except OSError as exc:
        raise NormscaleError(f"cannot read {what} '{p}': {_why(exc)}") from None
    if not stat.S_ISREG(st.st_mode):
        raise NormscaleError(f"{what} '{p}' is {_kind(st.st_mode)}, not a regular file")
    if not os.access(p, os.R_OK):
        raise NormscaleError(f"cannot read {what} '{p}': permission denied")
    if max_bytes is not None and st.st_size > max_bytes:
        raise NormscaleError(f"{what} '{p}' holds {st.st_size} bytes; at most {max_bytes} are "
                             "read (it is not the file it should be)")
    if register:
        register_input(p)
    return p


def read_bytes(path: str | os.PathLike, what: str = "the file", *,
               max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (:func:`check_input`)."""
    p = check_input(path, what, max_bytes=max_bytes)
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise NormscaleError(f"cannot read {what} '{p}': {_why(exc)}") from None
    if len(data) > max_bytes:  # it grew since the check
        raise NormscaleError(f"{what} '{p}' holds more than {max_bytes} bytes")
    return data


def read_text(path: str | os.PathLike, what: str = "the file", *,
              max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``."""
    data = read_bytes(path, what, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise NormscaleError(f"{what} '{path}' is not a UTF-8 text file") from None


def load_torch(path: str | os.PathLike, what: str = "the file", *,
               map_location: Any = "cpu", register: bool = True) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain values, never code.

    A file that holds any other object (a pickled class, a function, a
    ``__reduce__`` that would run a command) is refused before anything in
    it runs: the restricted unpickler of ``weights_only`` stops at the
    first global it does not allow.

    Raises
    ------
    NormscaleError
        Missing, not a regular file, corrupt, or holding objects other than
        tensors and plain values; the message names the file.
    """
    import pickle

    import torch

    p = check_input(path, what, register=register)
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise NormscaleError(
            f"{what} '{p}' holds objects other than tensors and plain values; it is refused "
            "because loading them could run code (see docs/security.md)") from None
    except Exception as exc:  # noqa: BLE001 -- torch raises many types for a damaged file
        raise NormscaleError(f"{what} '{p}' is corrupt or not a PyTorch file "
                             f"({type(exc).__name__})") from None


def load_yaml(path: str | os.PathLike, what: str = "the file", *,
              max_bytes: int = 2**20) -> Any:
    """``yaml.safe_load`` of a small text file: no ``!!python`` tags, no code.

    Raises
    ------
    NormscaleError
        Missing, not a regular file, too large, not UTF-8, not YAML, or a tag
        that plain YAML does not have; the message names the file.
    """
    import yaml

    text = read_text(path, what, max_bytes=max_bytes)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NormscaleError(f"{what} '{path}' is not plain YAML ({first})") from None
    except RecursionError:
        raise NormscaleError(f"{what} '{path}' nests too deeply") from None


# -- names from data ----------------------------------------------------------------------------

#: longest file-name stem made from data (most file systems allow 255 bytes a name)
MAX_STEM = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def file_stems(names: Iterable[Any]) -> list[str]:
    """One file-name stem per name, made of ``[A-Za-z0-9_-]``, never two alike.

    A name is cleaned (other characters, dots and path separators included,
    become ``-``; a leading ``-`` is dropped, so no stem reads as a flag)
    and cut to :data:`MAX_STEM` characters. When two names give one stem, or
    a stem was cut, 8 hex digits of the name's SHA-256 are appended, so two
    groups never share a file and the same name gives the same stem on
    every run.

    Examples
    --------
    >>> file_stems(["cnn_mnist_0.001", "cnn_mnist_0-001", "../etc"])
    ['cnn_mnist_0-001-dbbb8f4f', 'cnn_mnist_0-001-041ed6f1', 'etc']
    """
    names = [str(n) for n in names]
    clean = [_UNSAFE.sub("-", n).strip("-")[:MAX_STEM] or "x" for n in names]
    counts: dict[str, int] = {}
    for c in clean:
        counts[c] = counts.get(c, 0) + 1
    out = []
    for name, c in zip(names, clean, strict=True):
        cut = len(_UNSAFE.sub("-", name).strip("-")) > MAX_STEM
        if counts[c] > 1 or cut:
            c = f"{c}-{hashlib.sha256(name.encode('utf-8', 'replace')).hexdigest()[:8]}"
        out.append(c)
    if len(set(out)) < len(out):  # two equal names: numbered in order
        seen: dict[str, int] = {}
        for i, c in enumerate(out):
            seen[c] = seen.get(c, 0) + 1
            if seen[c] > 1:
                out[i] = f"{c}-{seen[c]}"
    return out


#: longest label made from data (a plot title stays readable)
MAX_LABEL = 120


def plot_label(value: Any) -> str:
    """``value`` as text safe for a matplotlib label: ``$`` escaped, control characters
    dropped, at most :data:`MAX_LABEL` characters."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    if len(text) > MAX_LABEL:
        text = text[:MAX_LABEL - 3] + "..."
    return text.replace("$", r"\$")
