"""Shared pieces of the CLI: results, grids, output folders, logging."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from normscale.errors import NormscaleError
from normscale.progress import Progress


@dataclass
class Result:
    """What a subcommand returns: JSON-able ``data`` for ``--json``, ``text`` otherwise."""

    data: Any
    text: str = ""
    exit_code: int = 0


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses, paths and DataFrames to JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas DataFrame
        return to_jsonable(obj.to_dict(orient="records"))
    return obj


def parse_grid(text: str, *, name: str, positive: bool = True, integer: bool = False) -> np.ndarray:
    """Parse a grid given on the command line.

    ``"2.5"`` is one value, ``"1,2,5"`` a list, and ``"lo:hi:n"`` n log-spaced
    values from lo to hi (both included). Raises ``argparse.ArgumentTypeError``
    with a one-line message naming the bad value.
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
            if n < 1:
                raise argparse.ArgumentTypeError(
                    f"the {name} grid {text!r} must have n >= 1 points (lo:hi:n)")
            if lo <= 0 or hi <= 0:
                raise argparse.ArgumentTypeError(
                    f"the {name} grid {text!r} is log-spaced and needs lo > 0 and hi > 0")
            values = np.geomspace(lo, hi, n)
        else:
            values = np.array([float(v) for v in text.split(",") if v.strip() != ""])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"cannot read the {name} grid {text!r}: use a value, a list 'a,b,c' or 'lo:hi:n'"
        ) from None
    if values.size == 0:
        raise argparse.ArgumentTypeError(f"the {name} grid {text!r} is empty")
    if not np.all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"the {name} grid {text!r} holds a non-finite value")
    if positive and np.any(values <= 0):
        bad = values[values <= 0][0]
        raise argparse.ArgumentTypeError(
            f"the {name} grid must hold values > 0; got {bad:g} in {text!r}")
    if integer:
        if np.any(values != np.round(values)):
            raise argparse.ArgumentTypeError(f"the {name} grid {text!r} must hold integers")
        return values.astype(int)
    return values


def grid_type(name: str, *, positive: bool = True, integer: bool = False):
    """An argparse ``type=`` for :func:`parse_grid`."""

    def convert(text: str) -> np.ndarray:
        return parse_grid(text, name=name, positive=positive, integer=integer)

    convert.__name__ = f"{name} grid"
    return convert


def _int_type(name: str, *, minimum: int):
    def convert(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be an int >= {minimum}; got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be an int >= {minimum}; got {v}")
        return v

    convert.__name__ = name
    return convert


def positive_int(name: str):
    """An argparse ``type=`` for an int >= 1 with a message naming the value."""
    return _int_type(name, minimum=1)


def nonnegative_int(name: str):
    """An argparse ``type=`` for an int >= 0 with a message naming the value."""
    return _int_type(name, minimum=0)


def _float_type(name: str, *, allow_zero: bool):
    bound = "a float >= 0" if allow_zero else "a float > 0"

    def convert(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {bound}; got {text!r}") from None
        if not (math.isfinite(v) and (v >= 0 if allow_zero else v > 0)):
            raise argparse.ArgumentTypeError(f"{name} must be {bound}; got {text}")
        return v

    convert.__name__ = name
    return convert


def positive_float(name: str):
    """An argparse ``type=`` for a float > 0 with a message naming the value."""
    return _float_type(name, allow_zero=False)


def nonnegative_float(name: str):
    """An argparse ``type=`` for a float >= 0 with a message naming the value."""
    return _float_type(name, allow_zero=True)


def output_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check that files can be written in it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise NormscaleError(
            f"the output folder '{p}' cannot be written: {exc.strerror or exc}") from None
    return p


def log(args: argparse.Namespace, message: str) -> None:
    """A log line on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def progress(args: argparse.Namespace, total: int, label: str) -> Progress:
    """A progress bar on stderr: only on a terminal, never with ``--quiet``."""
    enabled = not getattr(args, "quiet", False) and sys.stderr.isatty()
    return Progress(total, label, enabled=enabled)
