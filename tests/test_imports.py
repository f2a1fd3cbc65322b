"""The package imports downwards only: no circle among its modules' top-level imports."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import normscale


def _module_graph() -> dict[str, set[str]]:
    """Every normscale module -> the normscale modules it imports at its top level.

    Imports inside functions are lazy by design (the CLI's parsers, optional extras) and are
    left out; ``from package import submodule`` depends on the submodule, not on the package's
    ``__init__``.
    """
    root = Path(normscale.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                subs = {f"{base}.{a.name}" for a in node.names} & modules.keys()
                graph[name] |= subs or ({base} & modules.keys())
        graph[name].discard(name)
    return graph


def test_no_module_imports_itself_in_a_circle():
    graph = _module_graph()
    assert len(graph) > 100  # every module was read
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError on a circle
    assert set(order) == set(graph)


def test_the_graph_sees_a_circle_when_there_is_one():
    """The check can fail: a planted edge back from a leaf closes a circle."""
    graph = _module_graph()
    graph["normscale.errors"].add("normscale.laws.fit")
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        return
    raise AssertionError("a planted circle was not seen")
