"""Shared pieces of the CLI: results, grids, output folders, logging."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normscale import safeio
from normscale.errors import NormscaleError
from normscale.jsonable import to_jsonable  # noqa: F401  (re-exported: the CLI's JSON)
from normscale.progress import Progress

if TYPE_CHECKING:  # numpy is imported where a grid is parsed: `--help` must stay fast
    import numpy as np


@dataclass
class Result:
    """What a subcommand returns: JSON-able ``data`` for ``--json``, ``text`` otherwise."""

    data: Any
    text: str = ""
    exit_code: int = 0


#: most bootstrap replicates a command runs: 1e4 resolves a 95% interval's ends to about
#: 0.5%, and each replicate refits every curve (a larger count is a typo, not a need)
MAX_BOOT = 10_000
#: most CPU threads or workers one option may ask for (far above any node's cores; a
#: larger count exhausts the process limit instead of running)
MAX_THREADS = 1024

#: most points of one grid: a bound on memory and time, far above any curve worth drawing
MAX_GRID_POINTS = 100_000


def parse_grid(text: str, *, name: str, positive: bool = True, integer: bool = False) -> np.ndarray:
    """Parse a grid given on the command line.

    ``"2.5"`` is one value, ``"1,2,5"`` a list, and ``"lo:hi:n"`` n log-spaced
    values from lo up to hi (both included; lo < hi when n > 1). ``name`` is the
    flag (``"--lam"``). Raises ``argparse.ArgumentTypeError`` with a one-line
    message naming the flag and the bad value.
    """
    import numpy as np

    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
            if not 1 <= n <= MAX_GRID_POINTS:
                raise argparse.ArgumentTypeError(
                    f"{name} {text!r} must have 1 to {MAX_GRID_POINTS} points n (lo:hi:n)")
            if positive and (not lo > 0 or not hi > 0):  # "not >": NaN too
                raise argparse.ArgumentTypeError(
                    f"{name} must hold values > 0; got {lo if not lo > 0 else hi:g} in {text!r}")
            if n > 1 and not lo < hi:
                raise argparse.ArgumentTypeError(
                    f"{name} {text!r} runs from lo to hi: give lo < hi (or n = 1)")
            values = np.geomspace(lo, hi, n)
        else:
            items = text.split(",")
            if len(items) > MAX_GRID_POINTS:
                raise argparse.ArgumentTypeError(
                    f"{name} holds {len(items)} values; at most {MAX_GRID_POINTS}")
            if len(items) > 1 and any(v.strip() == "" for v in items):
                raise argparse.ArgumentTypeError(f"{name} {text!r} has an empty item")
            values = np.array([float(v) for v in items if v.strip() != ""])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"cannot read {name} {text!r}: use a value, a list 'a,b,c' or 'lo:hi:n'"
        ) from None
    if values.size == 0:
        raise argparse.ArgumentTypeError(f"{name} {text!r} is empty")
    if not np.all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"{name} {text!r} holds a non-finite value")
    if positive and np.any(values <= 0):
        bad = values[values <= 0][0]
        raise argparse.ArgumentTypeError(
            f"{name} must hold values > 0; got {bad:g} in {text!r}")
    if integer:
        if np.any(values != np.round(values)):
            raise argparse.ArgumentTypeError(f"{name} {text!r} must hold integers")
        return values.astype(int)
    return values


def grid_type(name: str, *, positive: bool = True, integer: bool = False):
    """An argparse ``type=`` for :func:`parse_grid`."""

    def convert(text: str) -> np.ndarray:
        return parse_grid(text, name=name, positive=positive, integer=integer)

    convert.__name__ = name
    return convert


def _int_type(name: str, *, minimum: int, maximum: int | None = None):
    bound = f"an int >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")

    def convert(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {bound}; got {text!r}") from None
        if v < minimum or (maximum is not None and v > maximum):
            raise argparse.ArgumentTypeError(f"{name} must be {bound}; got {v}")
        return v

    convert.__name__ = name
    return convert


def positive_int(name: str, *, maximum: int | None = None):
    """An argparse ``type=`` for an int >= 1 (and <= ``maximum``) with a message naming it."""
    return _int_type(name, minimum=1, maximum=maximum)


def nonnegative_int(name: str, *, maximum: int | None = None):
    """An argparse ``type=`` for an int >= 0 (and <= ``maximum``) with a message naming it."""
    return _int_type(name, minimum=0, maximum=maximum)


def _float_type(name: str, *, allow_zero: bool, maximum: float | None = None):
    bound = "a float >= 0" if allow_zero else "a float > 0"
    if maximum is not None:
        bound += f" and <= {maximum:g}"

    def convert(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {bound}; got {text!r}") from None
        if not (math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
                and (maximum is None or v <= maximum)):
            raise argparse.ArgumentTypeError(f"{name} must be {bound}; got {text}")
        return v

    convert.__name__ = name
    return convert


def positive_float(name: str, *, maximum: float | None = None):
    """An argparse ``type=`` for a float > 0 (and <= ``maximum``) with a message naming it."""
    return _float_type(name, allow_zero=False, maximum=maximum)


def nonnegative_float(name: str, *, maximum: float | None = None):
    """An argparse ``type=`` for a float >= 0 (and <= ``maximum``) with a message naming it."""
    return _float_type(name, allow_zero=True, maximum=maximum)


def input_file(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a Path when it is a readable regular file; else a one-line error naming
    ``flag``.

    A missing path, a folder, a named pipe and a device get their own messages
    (:func:`normscale.safeio.check_input`); the file is remembered as an input
    of the command, so that no output of the command overwrites it.
    """
    return safeio.check_input(path, flag)


def _under_cwd(p: Path) -> bool:
    try:
        p.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return False
    return True


def make_parent(path: str | os.PathLike, flag: str, *, mkdir: bool = False) -> Path:
    """Check (and create if allowed) the folder that will hold the file ``path``.

    A missing folder is created only under the current directory or when the
    user asked (``--mkdir``); a typo such as ``/nonexistent/runs.db`` then
    stops with exit code 2 instead of creating folders anywhere.
    """
    p = Path(path)
    if p.is_dir():
        raise NormscaleError(f"{flag} '{p}' is a folder, not a file")
    _make_folder(p.parent, flag, mkdir=mkdir, what=f"the folder of {flag} '{p}'")
    return p


def _make_folder(folder: Path, flag: str, *, mkdir: bool, what: str, named: bool = False
                 ) -> None:
    """Create ``folder``; a missing parent of it only under the current directory or with
    ``mkdir``. ``named``: the folder is itself the named output (its own level is free)."""
    if folder.is_dir():
        return
    existing = next((a for a in (folder, *folder.parents) if a.exists()), None)
    if existing is not None and not existing.is_dir():
        raise NormscaleError(f"{what}: '{existing}' is a file, not a folder")
    free = named and folder.parent.is_dir()
    if not (free or mkdir or _under_cwd(folder)):
        raise NormscaleError(f"{what} does not exist: create it, or give --mkdir")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NormscaleError(f"cannot create {what}: {exc.strerror or exc}") from None


def output_dir(path: str | os.PathLike, flag: str = "--out", *, mkdir: bool = False) -> Path:
    """Create the folder ``path`` if allowed and check that files can be written in it.

    The folder itself is created when its parent exists; missing parents only
    under the current directory or with ``mkdir`` (``--mkdir``), as in
    :func:`make_parent`.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise NormscaleError(f"{flag} '{p}' is a file, not a folder")
    _make_folder(p, flag, mkdir=mkdir, what=f"the folder of {flag} '{p}'", named=True)
    try:
        with tempfile.NamedTemporaryFile(dir=p, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise NormscaleError(
            f"the output folder '{p}' cannot be written: {exc.strerror or exc}") from None
    return p


def writable_file(path: str | os.PathLike, flag: str, *, mkdir: bool = False) -> Path:
    """Check before any work that the file ``path`` can be written (creating its folder
    if allowed, as :func:`make_parent`); nothing is left behind by the check.

    The path must be missing or a regular file that is no input of the command
    (:func:`normscale.safeio.check_output`: no device, pipe, socket or symbolic
    link); write it with :func:`normscale.safeio.atomic_write`.
    """
    p = make_parent(path, flag, mkdir=mkdir)
    safeio.check_output(p, flag)  # a regular file or nothing, and none of the inputs
    try:
        with tempfile.NamedTemporaryFile(dir=p.parent, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise NormscaleError(
            f"{flag} '{p}' cannot be written in its folder: {exc.strerror or exc}") from None
    return p


def torch_device(name: str, flag: str = "--device") -> str:
    """Check a torch device name (``cpu``, ``cuda``, ``cuda:1``, ``auto``) before any work."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise NormscaleError(f"unknown {flag} {name!r}: use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise NormscaleError(f"{flag} {name} asked for, but no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise NormscaleError(f"{flag} {name}: this machine has "
                                 f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise NormscaleError(f"{flag} {name} asked for, but no MPS device is available")
    elif dev.type not in ("cpu", "mps"):  # meta, xpu, ...: nothing trains there
        raise NormscaleError(f"unsupported {flag} {name!r}: use cpu, cuda, cuda:N or auto")
    return name


def log(args: argparse.Namespace, message: str) -> None:
    """A log line on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


#: seconds between plain progress lines when stderr is not a terminal (a log file, a cluster job)
LOG_EVERY_S = 30.0


def progress(args: argparse.Namespace, total: int, label: str) -> Progress:
    """Progress on stderr: a bar on a terminal, a plain line every ``LOG_EVERY_S``
    seconds otherwise, nothing with ``--quiet``."""
    quiet = getattr(args, "quiet", False)
    tty = sys.stderr.isatty()
    return Progress(total, label, enabled=not quiet and tty,
                    log_every=None if quiet or tty else LOG_EVERY_S)
