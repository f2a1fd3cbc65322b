"""A griffe extension that makes normscale's numpydoc render on the API pages.

mkdocstrings reads numpydoc but not Sphinx, so two things needed a mechanism
rather than hundreds of edited docstrings:

- **Sphinx roles** (``:func:`fit_laws```, ``:class:`~normscale.train.TrainConfig```,
  ``:mod:``, ``:data:``, ``:attr:``, ``:meth:``, ...) become cross-references:
  the target is resolved the way Sphinx would (a full path, or a name in the
  scope of the documented object), and written as an *optional* autorefs
  reference, so a target rendered on some API page becomes a link and any other
  target (a private helper, numpy) stays plain code, never a broken link.
- **Result dataclasses** get a numpydoc ``Attributes`` section built from their
  fields (and public properties), so mkdocstrings renders a field table: name,
  type, description. A field's description is, first found: its entry in an
  ``Attributes`` section the class docstring already has, its attribute
  docstring (a string literal after the field), the comment at the end of its
  line (``gamma1: float  # the early-training exponent``), or for a property
  the first paragraph of its docstring. Defaults are added from the code.

Configured in mkdocs.yml (``plugins.mkdocstrings.handlers.python.options.extensions``);
``tests/test_docs.py`` checks the rendered site for leftover roles and for the
tables.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import griffe

# :role:`target`, :role:`~target`, :role:`title <target>`, with an optional py: domain
ROLE = re.compile(r":(?:py:)?(?P<role>func|class|mod|data|attr|meth|obj|exc|const|type)"
                  r":`(?P<body>[^`]+)`")
_HEADER = re.compile(r"^(?P<name>[A-Za-z][A-Za-z ]*)\n-{3,}\s*$", re.MULTILINE)
_ENTRY = re.compile(r"^(?P<names>[A-Za-z_*][\w*, ]*?)\s*(?::\s*(?P<type>.*))?$")
# numpydoc sections that come after Attributes, in numpydoc's order
_AFTER_ATTRIBUTES = ("Methods", "See Also", "Notes", "References", "Examples")


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The full path ``target`` names, seen from ``obj`` (None where it is not ours)."""
    target = target.lstrip(".")
    head, _, rest = target.partition(".")
    root = obj.package
    if head == root.name:
        found = _lookup(root, rest) if rest else root
        return _canonical(found) if found is not None else None
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            full = scope.resolve(head)
        except (griffe.NameResolutionError, ValueError, AttributeError):
            scope = scope.parent
            continue
        if not full.startswith(root.name + "."):
            return None
        path = full + ("." + rest if rest else "")
        found = _lookup(root, path.split(".", 1)[1])
        return _canonical(found) if found is not None else path
    return None


def _lookup(root: griffe.Object, dotted: str) -> griffe.Object | None:
    try:
        return root[dotted]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _canonical(found: griffe.Object | griffe.Alias) -> str:
    try:
        return found.final_target.path if isinstance(found, griffe.Alias) else found.path
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return found.path


def roles_to_refs(text: str, obj: griffe.Object) -> str:
    """Replace every Sphinx role in ``text`` by an optional autorefs cross-reference.

    ``:func:`~normscale.laws.fit_laws``` shows ``fit_laws``; without the tilde the
    target as written; ``:class:`title <target>``` shows ``title``.
    """

    def replace(match: re.Match) -> str:
        body = match["body"].strip()
        titled = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>", body)
        if titled:
            shown, target = titled["title"], titled["target"]
        elif body.startswith("~"):
            target = body[1:]
            shown = target.rsplit(".", 1)[-1]
        else:
            shown = target = body
        target = target.rstrip("()")
        code = f"<code>{html.escape(shown)}</code>"
        full = _resolve(obj, target)
        if full is None:
            return code
        return f'<autoref identifier="{html.escape(full)}" optional>{code}</autoref>'

    return ROLE.sub(replace, text)


def _sections(text: str) -> list[tuple[str, int, int]]:
    """(name, start of header, start of body) of each numpydoc section in ``text``."""
    return [(m["name"].strip(), m.start(), m.end()) for m in _HEADER.finditer(text)]


def _documented(text: str) -> set[str]:
    """Names an existing ``Attributes`` section of ``text`` documents already."""
    spans = _sections(text)
    names: set[str] = set()
    for i, (name, _, body) in enumerate(spans):
        if name != "Attributes":
            continue
        end = spans[i + 1][1] if i + 1 < len(spans) else len(text)
        for line in text[body:end].splitlines():
            if line and not line[0].isspace() and (m := _ENTRY.match(line.strip())):
                names.update(n.strip() for n in m["names"].split(","))
    return names


def _is_field(attr: griffe.Object) -> bool:
    return (attr.is_attribute and "instance-attribute" in attr.labels
            and attr.annotation is not None
            and not str(attr.annotation).startswith(("ClassVar", "InitVar", "typing.ClassVar")))


def _comment(attr: griffe.Object) -> str:
    """The comment at the end of the line that declares ``attr`` (its first line)."""
    try:
        line = attr.module.lines[attr.lineno - 1]
    except (IndexError, TypeError, AttributeError):
        return ""
    code, hash_, comment = line.partition("  #")
    return comment.strip() if hash_ and ":" in code else ""


def _default(attr: griffe.Object) -> str | None:
    value = attr.value
    if value is None:
        return None
    if isinstance(value, griffe.ExprCall) and str(value.function).endswith("field"):
        for arg in value.arguments:
            if isinstance(arg, griffe.ExprKeyword) and arg.name == "default":
                return str(arg.value)
            if isinstance(arg, griffe.ExprKeyword) and arg.name == "default_factory":
                return f"{arg.value}()"
        return None
    return str(value)


def _first_paragraph(doc: griffe.Docstring | None) -> str:
    if doc is None:
        return ""
    return " ".join(doc.value.strip().split("\n\n", 1)[0].split())


def attributes_section(cls: griffe.Class) -> str:
    """The numpydoc ``Attributes`` entries a dataclass's docstring lacks ("" if none)."""
    have = _documented(cls.docstring.value if cls.docstring else "")
    entries = []
    members = [m for name, m in cls.members.items()
               if not name.startswith("_") and not m.is_alias and name not in have]
    fields = sorted((m for m in members if _is_field(m)), key=lambda m: m.lineno or 0)
    props = [m for m in members if m.is_attribute and "property" in m.labels]
    for m in fields + props:
        if "property" in m.labels:
            text = _first_paragraph(m.docstring)
            annotation = m.annotation if m.annotation is not None else ""
            text = (text + " (property)").strip()
        else:
            text = _first_paragraph(m.docstring) or _comment(m)
            annotation = m.annotation
            default = _default(m)
            if default is not None:
                text = (text + f" Default `{default}`.").strip()
        entries.append(f"{m.name} : {annotation}".rstrip(" :") + "\n"
                       + (f"    {text}\n" if text else ""))
    return "".join(entries)


def _with_attributes(text: str, entries: str) -> str:
    spans = _sections(text)
    for name, start, _ in spans:
        if name == "Attributes":  # extend the section the docstring has
            nxt = [s for _, s, _ in spans if s > start]
            end = nxt[0] if nxt else len(text)
            return text[:end].rstrip("\n") + "\n" + entries + "\n" + text[end:]
    after = [start for name, start, _ in spans if name in _AFTER_ATTRIBUTES]
    block = "Attributes\n----------\n" + entries
    if after:
        return text[:after[0]] + block + "\n" + text[after[0]:]
    return text.rstrip("\n") + "\n\n" + block


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


class NumpydocForMkdocs(griffe.Extension):
    """Roles to cross-references, dataclass fields to an ``Attributes`` table."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader | None = None,
                   **kwargs) -> None:
        parser = loader.docstring_parser if loader is not None else None
        options = loader.docstring_options if loader is not None else {}
        for obj in _walk(pkg):
            if obj.is_class and "dataclass" in obj.labels:
                entries = attributes_section(obj)
                if entries:
                    if obj.docstring is None:
                        obj.docstring = griffe.Docstring("", parent=obj, parser=parser,
                                                         parser_options=options)
                    obj.docstring.value = _with_attributes(obj.docstring.value, entries)
            if obj.docstring is not None:
                obj.docstring.value = roles_to_refs(obj.docstring.value, obj)
