"""Sweep files: a base config and grids to expand (TOML).

A sweep file::

    name = "cpu/cnn-mnist"
    description = "The CNN on MNIST, reduced to finish on a laptop"

    [base]                      # fields of normscale.train.TrainConfig
    model = "cnn"
    dataset = "mnist"
    epochs = 100

    ensemble = true             # optional: the seeds of each cell train as one ensemble

    [grid]                      # the cartesian product of these is run
    P = [250, 500, 1000]
    seed = {range = [0, 3]}     # 0, 1, 2 (Python's range: stop excluded)
    # also: {geomspace = [lo, hi, n]} (rounded for integer fields), and
    # cells = [{P = 250, epochs = 400}, {P = 8000, epochs = 40}]: fields that
    # vary together (one grid axis whose values set several fields)

    [analysis]                  # optional: how `normscale table` groups this sweep
    group_by = ["model", "dataset"]
    norms = ["spectral_complexity"]

Presets ship in the package under ``normscale/presets/sweeps/<family>/<name>.toml``
and are named ``<family>/<name>``, e.g. ``paper/cnn-mnist`` or ``cpu/cnn-mnist``.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from normscale import safeio
from normscale.errors import NormscaleError
from normscale.train.config import TrainConfig

_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
CELLS = "cells"  # the grid axis whose values are tables of fields set together
_INT_FIELDS = {"P", "seed", "epochs", "steps", "batch_size", "n_log"}
#: most runs in one sweep file: a bound on what expanding a grid may allocate (a typo such
#: as {range = [0, 1e12]} must not fill the memory); the paper's largest sweep has 60
MAX_RUNS = 100_000
#: largest sweep file read: the paper's presets are under 2 KiB
MAX_SPEC_BYTES = 2**20
#: deepest nesting of arrays and tables (a grid of cells is 3 deep; 100,000 nested arrays
#: would exhaust the parser's recursion)
MAX_SPEC_NESTING = 32


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file.

    Attributes
    ----------
    name : str
        The preset name or the file's stem.
    base : dict
        Fields of :class:`~normscale.train.TrainConfig` shared by every run.
    grid : dict of str to list
        Expanded values of the swept fields (the cartesian product is run).
    analysis : dict
        Optional hints for ``normscale table`` (``group_by``, ``norms``).
    description : str
        The file's top-level ``description``: free text for people (what the
        sweep is, which values are the paper's); empty when the file has none.
    source : str
        Where it was read from.
    ensemble : bool
        Train the seeds of each cell (runs equal but for the seed) as one seed
        ensemble (:func:`normscale.train.ensemble.train_ensemble`); set by a
        top-level ``ensemble = true`` or by ``ensemble = true`` in ``[base]``.
    """

    name: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    analysis: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    ensemble: bool = False

    def configs(self) -> list[TrainConfig]:
        """Every run of the sweep, in grid order (later keys vary fastest)."""
        keys = list(self.grid)
        n_runs = int(np.prod([len(self.grid[k]) for k in keys], dtype=float))
        if n_runs > MAX_RUNS:
            raise NormscaleError(f"sweep {self.name!r}: its grid makes {n_runs:g} runs; at most "
                                 f"{MAX_RUNS}")
        missing = [f.name for f in _FIELDS.values()
                   if f.default is dataclasses.MISSING and f.name not in self.base
                   and f.name not in self.grid
                   and not all(f.name in cell for cell in self.grid.get(CELLS, [{}]))]
        if missing:
            raise NormscaleError(f"sweep {self.name!r} does not set {', '.join(missing)}: give "
                                 "them in [base] or [grid]")
        out = []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            params = dict(self.base)
            for key, value in zip(keys, values, strict=True):
                params.update(value if key == CELLS else {key: value})
            try:
                cfg = TrainConfig(**params)
                cfg.run_id  # noqa: B018 -- a value JSON cannot write (a TOML date) fails here
            except NormscaleError as exc:
                raise NormscaleError(f"sweep {self.name!r}: {exc}") from None
            except (TypeError, ValueError, OverflowError) as exc:
                raise NormscaleError(f"sweep {self.name!r}: a run's parameters "
                                     f"{_short(params)} are not valid ({exc})") from None
            out.append(cfg)
        return out


def _short(obj: Any, limit: int = 200) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[:limit] + "..."


def _expand_cells(name: str, value: Any) -> list[dict[str, Any]]:
    """The ``cells`` axis: a list of tables, each setting several fields together."""
    if not isinstance(value, list) or not value or not all(isinstance(c, dict) for c in value):
        raise NormscaleError(f"sweep {name!r}: 'cells' must be a non-empty list of tables, "
                             "e.g. [{P = 250, epochs = 400}]")
    return [{k: _expand(name, k, [v])[0] for k, v in cell.items()} for cell in value]


def _expand(name: str, key: str, value: Any) -> list[Any]:
    """A grid entry: a list, ``{range = [a, b(, step)]}`` or ``{geomspace = [lo, hi, n]}``."""
    if key == CELLS:
        return _expand_cells(name, value)
    try:
        if isinstance(value, list):
            values = value
        elif isinstance(value, dict) and set(value) == {"range"}:
            span = range(*[int(v) for v in value["range"]])
            if len(span) > MAX_RUNS:
                raise ValueError(f"{len(span)} values; at most {MAX_RUNS}")
            values = list(span)
        elif isinstance(value, dict) and set(value) == {"geomspace"}:
            lo, hi, n = value["geomspace"]
            lo, hi, n = float(lo), float(hi), int(n)
            if not (lo > 0 and hi > 0 and 1 <= n <= MAX_RUNS):
                raise ValueError(f"needs lo > 0, hi > 0 and 1 <= n <= {MAX_RUNS}")
            values = np.geomspace(lo, hi, n).tolist()
        else:
            values = [value]
        if key in _INT_FIELDS:
            values = [int(round(v)) if isinstance(v, float) else v for v in values]
    except (TypeError, ValueError, OverflowError) as exc:
        raise NormscaleError(
            f"sweep {name!r}: cannot expand the grid of {key!r} = {_short(value)} ({exc}); use "
            "a list, {range = [a, b]} or {geomspace = [lo, hi, n]}") from None
    if not values:
        raise NormscaleError(f"sweep {name!r}: the grid of {key!r} is empty")
    return values


def parse_spec(data: dict[str, Any], *, name: str, source: str = "") -> SweepSpec:
    """Check and expand the contents of a sweep file."""
    unknown = set(data) - {"name", "description", "base", "grid", "analysis", "ensemble"}
    if unknown:
        raise NormscaleError(f"sweep {name!r}: unknown table(s) {sorted(unknown)}; "
                             "expected base, grid, analysis")
    name = str(data.get("name", name))
    for table in ("base", "grid", "analysis"):
        if not isinstance(data.get(table, {}), dict):
            raise NormscaleError(f"sweep {name!r}: [{table}] must be a table of keys; got "
                                 f"{_short(data[table])}")
    base, grid = dict(data.get("base", {})), dict(data.get("grid", {}))
    ensemble = base.pop("ensemble", data.get("ensemble", False))
    if not isinstance(ensemble, bool):
        raise NormscaleError(f"sweep {name!r}: 'ensemble' must be true or false; "
                             f"got {ensemble!r}")
    cells = grid.get(CELLS, [])  # not a list: _expand_cells says what it must be
    cell_keys = [k for cell in (cells if isinstance(cells, list) else [])
                 if isinstance(cell, dict) for k in cell]
    for key in [*base, *(k for k in grid if k != CELLS), *cell_keys]:
        if key not in _FIELDS:
            raise NormscaleError(f"sweep {name!r}: {key!r} is not a training parameter; "
                                 f"known: {', '.join(_FIELDS)}")
    both = (set(base) | set(grid)) & set(cell_keys) or set(base) & set(grid)
    if both:
        raise NormscaleError(f"sweep {name!r}: {sorted(both)} set twice (in base, grid or cells)")
    spec = SweepSpec(name=name, base=base,
                     grid={k: _expand(name, k, v) for k, v in grid.items()},
                     analysis=dict(data.get("analysis", {})),
                     description=data.get("description", ""), source=source,
                     ensemble=ensemble)
    spec.configs()  # validate every run now, not halfway through the sweep
    return spec


def _preset_root():
    return resources.files("normscale") / "presets" / "sweeps"


def list_presets() -> list[str]:
    """Names of the shipped presets, ``family/name``."""
    names = []
    for family in _preset_root().iterdir():
        if family.is_dir():
            names += [f"{family.name}/{f.name[:-5]}" for f in family.iterdir()
                      if f.name.endswith(".toml")]
    return sorted(names)


def load_spec(file_or_preset: str | Path) -> SweepSpec:
    """Read a sweep file, or a shipped preset by name (``paper/cnn-mnist``).

    Raises
    ------
    NormscaleError
        When the file is missing, is not valid TOML, or names an unknown field;
        the message names the file.
    """
    path = Path(file_or_preset)
    if path.suffix == ".toml" or path.exists():
        if path.is_dir():
            raise NormscaleError(f"the sweep file '{path}' is a folder, not a file")
        if not path.exists():
            raise NormscaleError(f"no sweep file '{path}'")
        try:
            text = safeio.read_text(path, "the sweep file", max_bytes=MAX_SPEC_BYTES)
        except NormscaleError as exc:
            if "UTF-8" in str(exc):
                raise NormscaleError(f"the sweep file '{path}' is not a text (TOML) file"
                                     ) from None
            raise
        name, source = path.stem, str(path)
    else:
        name = str(file_or_preset)
        parts = name.split("/")
        entry = _preset_root().joinpath(*parts[:-1], parts[-1] + ".toml") if parts else None
        if entry is None or not entry.is_file():
            raise NormscaleError(f"no sweep file or preset {name!r}; presets: "
                                 + ", ".join(list_presets()))
        text, source = entry.read_text(), f"preset {name}"
    depth = _nesting(text)
    if depth > MAX_SPEC_NESTING:
        raise NormscaleError(f"the sweep file '{source}' nests arrays or tables {depth} deep; "
                             f"a sweep needs at most {MAX_SPEC_NESTING}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NormscaleError(f"the sweep file '{source}' is not valid TOML: {exc}") from None
    except RecursionError:
        raise NormscaleError(f"the sweep file '{source}' nests too deeply") from None
    return parse_spec(data, name=name, source=source)


def _nesting(text: str) -> int:
    """An upper bound on how deep the brackets and braces of ``text`` nest (in strings and
    comments too): a bound checked before the parser recurses into them."""
    depth = most = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            most = max(most, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return most
