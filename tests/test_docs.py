"""The documentation site: a strict build that fails on any warning, API pages that render
numpydoc (Sphinx roles, dataclass fields as an Attributes table), and docs whose images
and included files exist and come from a command."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ROLE = re.compile(r":(?:py:)?(?:func|class|mod|data|attr|meth|obj|exc|const):`")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="no docs extra (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
                           "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def _config() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    r = _build(ROOT / "mkdocs.yml", out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "WARNING" not in r.stderr, r.stderr[-3000:]
    return out


def _nav_pages(nav) -> list[str]:
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _without(nav, page: str):
    out = []
    for item in nav:
        if isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                out.append({title: _without(value, page)})
            elif value != page:
                out.append(item)
        elif item != page:
            out.append(item)
    return out


def test_build_fails_when_a_page_leaves_nav(tmp_path):
    """The strict build is a check that can fail: drop one page from nav, the build aborts."""
    yaml = pytest.importorskip("yaml")
    config = _config()
    page = "theory.md"
    assert page in _nav_pages(config["nav"])
    config["nav"] = _without(config["nav"], page)
    config["docs_dir"] = str(DOCS)
    # paths in the config are relative to the config file: point them at the repository
    handler = next(p["mkdocstrings"] for p in config["plugins"] if isinstance(p, dict)
                   and "mkdocstrings" in p)["handlers"]["python"]
    handler["paths"] = [str(ROOT / p) for p in handler["paths"]]
    handler["options"]["extensions"] = [str(ROOT / e) for e in handler["options"]["extensions"]]
    config["hooks"] = [str(ROOT / h) for h in config.get("hooks", [])]
    for ext in config["markdown_extensions"]:
        if isinstance(ext, dict) and "pymdownx.snippets" in ext:
            opts = ext["pymdownx.snippets"]
            opts["base_path"] = [str(ROOT / p) for p in opts["base_path"]]
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config))
    r = _build(path, tmp_path / "site")
    log = r.stdout + r.stderr
    assert r.returncode != 0, log
    assert "not included in the \"nav\"" in log and f"  - {page}\n" in log, log
    assert "Aborted with" in log and "in strict mode" in log, log


def test_make_docs_is_strict_and_part_of_make_test():
    """`--quiet` hides warnings from strict mode: the docs target must not use it."""
    make = (ROOT / "Makefile").read_text()
    docs = re.search(r"^docs:.*\n((?:\t.*\n)+)", make, re.MULTILINE)
    assert docs is not None and "mkdocs build --strict" in docs.group(1)
    assert "--quiet" not in docs.group(1) and " -q" not in docs.group(1)
    assert re.search(r"^test:.*\bdocs\b", make, re.MULTILINE)


def test_api_pages_show_no_sphinx_roles(site):
    pages = sorted((site / "api").rglob("*.html"))
    assert len(pages) >= 10
    leaks = {p.relative_to(site).as_posix(): len(ROLE.findall(p.read_text())) for p in pages}
    assert not {k: v for k, v in leaks.items() if v}, leaks
    assert not ROLE.search((site / "search" / "search_index.json").read_text())
    # roles became links where their target is rendered
    assert sum(p.read_text().count("autorefs-internal") for p in pages) >= 20


def _rendered(site: Path) -> dict[str, str]:
    """Every object rendered on an API page: its id -> the HTML of its block."""
    blocks = {}
    for page in (site / "api").rglob("*.html"):
        text = page.read_text()
        heads = [(m.group(1), m.start()) for m in
                 re.finditer(r'<h\d id="(normscale\.[\w.]+)" class="doc doc-heading"', text)]
        for i, (ident, start) in enumerate(heads):
            end = next((s for other, s in heads[i + 1:] if not other.startswith(ident + ".")),
                       len(text))
            blocks[ident] = text[start:end]
    return blocks


def _dataclass(ident: str):
    module, _, name = ident.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return obj if isinstance(obj, type) and dataclasses.is_dataclass(obj) else None


def test_result_dataclasses_render_an_attributes_table(site):
    """Each dataclass on an API page lists every public field (dataclasses.fields, independent
    of the docs tooling) in a rendered Attributes table."""
    checked = 0
    for ident, block in _rendered(site).items():
        cls = _dataclass(ident)
        if cls is None:
            continue
        names = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
        head = block.find('doc-section-title">Attributes:')
        assert head >= 0, f"{ident}: no Attributes table"
        table = block[head:block.find("</table>", head)]
        shown = [name.strip() for names in  # "name, kind : str" documents two fields
                 re.findall(r'<td><code><span title="[^"]+">([^<]+)</span></code></td>', table)
                 for name in names.split(",")]
        missing = [n for n in names if n not in shown]
        assert not missing, f"{ident}: fields missing from its Attributes table: {missing}"
        checked += 1
    assert checked >= 10


#: modules whose dataclasses need not describe every field yet: normscale.laws (its fields are
#: described in prose paragraphs, not per field) and the fixed-norm path of the perceptron
NOT_YET_DESCRIBED: tuple[str, ...] = ()
_DEFAULT_HTML = re.compile(r"\s*Default <code>[^<]*</code>\.\s*(?=</p>\s*$)")
_DEFAULT_TEXT = re.compile(r"\s*Default `[^`]*`\.\s*$")


def test_every_field_in_an_attributes_table_has_a_description(site):
    """A field table lists every field *with* a description: the field's row has text beyond
    the default the extension adds (for every dataclass on an API page but those of
    ``NOT_YET_DESCRIBED``)."""
    row = re.compile(r'<tr class="doc-section-item">\s*<td><code><span title="[^"]+">([^<]+)'
                     r'</span></code></td>.*?<div class="doc-md-description">(.*?)</div>', re.S)
    undescribed, checked = {}, 0
    for ident, block in _rendered(site).items():
        cls = _dataclass(ident)
        if cls is None or cls.__module__.startswith(NOT_YET_DESCRIBED):
            continue
        head = block.find('doc-section-title">Attributes:')
        assert head >= 0, f"{ident}: no Attributes table"
        described = set()
        for names, cell in row.findall(block[head:block.find("</table>", head)]):
            text = re.sub(r"<[^>]+>", "", _DEFAULT_HTML.sub("", cell.strip())).strip()
            if text:
                described.update(n.strip() for n in names.split(","))
        fields = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
        if missing := [n for n in fields if n not in described]:
            undescribed[ident] = missing
        checked += len(fields)
    assert not undescribed, f"fields without a description in the API pages: {undescribed}"
    assert checked >= 300


def test_every_public_dataclass_describes_its_fields():
    """Rendered on an API page or not: every public dataclass of normscale (but those of
    ``NOT_YET_DESCRIBED``) gives each field a description the docs extension finds (an
    Attributes entry, an attribute docstring or a line comment), read with griffe as the API
    pages read it."""
    griffe = pytest.importorskip("griffe")
    ext = _extension()
    loader = griffe.GriffeLoader(search_paths=[str(ROOT / "src")], docstring_parser="numpy",
                                 extensions=griffe.load_extensions(ext.NumpydocForMkdocs()))
    pkg = loader.load("normscale")
    loader.resolve_aliases(implicit=False, external=False)
    undescribed, classes = {}, 0
    for obj in ext._walk(pkg):
        if not (obj.is_class and "dataclass" in obj.labels
                and not obj.path.startswith(NOT_YET_DESCRIBED)
                and not any(part.startswith("_") for part in obj.path.split("."))):
            continue
        described = set()
        for section in obj.docstring.parsed if obj.docstring is not None else ():
            if section.kind.value == "attributes":
                described.update(n.strip() for a in section.value for n in a.name.split(",")
                                 if _DEFAULT_TEXT.sub("", a.description or "").strip())
        cls = _dataclass(obj.path)
        assert cls is not None, f"{obj.path}: griffe's dataclass is not importable as one"
        fields = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
        if missing := [n for n in fields if n not in described]:
            undescribed[obj.path] = missing
        classes += 1
    assert not undescribed, f"fields without a description: {undescribed}"
    assert classes >= 60


# -- the griffe extension, on a small package of its own -----------------------------------


def _extension():
    spec = importlib.util.spec_from_file_location("griffe_numpydoc",
                                                  DOCS / "_hooks" / "griffe_numpydoc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(tmp_path: Path, files: dict[str, str]):
    griffe = pytest.importorskip("griffe")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    loader = griffe.GriffeLoader(search_paths=[str(tmp_path)], docstring_parser="numpy",
                                 extensions=griffe.load_extensions(
                                     _extension().NumpydocForMkdocs()))
    pkg = loader.load("pkg")
    loader.resolve_aliases(implicit=False, external=False)
    return pkg


def test_roles_become_optional_cross_references(tmp_path):
    pkg = _load(tmp_path, {
        "pkg/__init__.py": '"""Top."""\nfrom pkg.core import fit\n__all__ = ["fit"]\n',
        "pkg/core.py": (
            '"""Core: see :func:`fit`, :func:`~pkg.fit`, :mod:`numpy`,\n'
            ':class:`the result <Result>`, :meth:`Result.total` and :func:`pkg.missing`."""\n'
            "class Result:\n    def total(self):\n        pass\n"
            "def fit():\n    pass\n")})
    text = pkg["core"].docstring.value
    assert ":func:" not in text and ":class:" not in text and ":meth:" not in text
    ref = '<autoref identifier="{}" optional><code>{}</code></autoref>'
    # a local name and an alias both resolve to the canonical path; ~ shows the last part
    assert text.count(ref.format("pkg.core.fit", "fit")) == 2
    assert ref.format("pkg.core.Result", "the result") in text
    assert ref.format("pkg.core.Result.total", "Result.total") in text
    # outside the package, or not found: plain code, never a broken link
    assert "<code>numpy</code>" in text and "<code>pkg.missing</code>" in text
    assert 'identifier="numpy"' not in text


def test_dataclass_fields_become_an_attributes_section(tmp_path):
    pkg = _load(tmp_path, {"pkg/__init__.py": (
        "from dataclasses import dataclass, field\n"
        "@dataclass(frozen=True)\nclass Fit:\n"
        '    """A fit.\n\n    Attributes\n    ----------\n    slope : float\n'
        '        The slope, as written.\n\n    Notes\n    -----\n    Closing notes.\n    """\n\n'
        "    slope: float\n"
        "    err: float  # its standard error\n"
        "    names: tuple = field(default=(), repr=False)\n"
        '    """The names of the points."""\n'
        "    _cache: dict = field(default_factory=dict)\n\n"
        "    @property\n    def z(self) -> float:\n"
        '        """The slope in standard errors.\n\n        More text."""\n'
        "        return self.slope / self.err\n")})
    doc = pkg["Fit"].docstring
    sections = {s.kind.value: s for s in doc.parsed}
    attrs = {a.name: a for a in sections["attributes"].value}
    assert list(attrs) == ["slope", "err", "names", "z"]  # source order, properties last
    assert attrs["slope"].description == "The slope, as written."  # the docstring's own entry
    assert attrs["err"].description == "its standard error"  # the comment on its line
    assert attrs["names"].description == "The names of the points. Default `()`."
    assert attrs["z"].description.strip() == "The slope in standard errors. (property)"
    assert str(attrs["err"].annotation) == "float"
    assert doc.value.index("Attributes") < doc.value.index("Notes")  # numpydoc's order


# -- figures and numbers: every file a page shows exists and comes from a command ---------

IMAGE = re.compile(r"!\[[^\]]*\]\((?P<src>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
SNIPPET = re.compile(r"^\s*-{1,}8<-{1,}\s+\"(?P<src>[^\"]+)\"", re.MULTILINE)


def _pages() -> list[Path]:
    excluded = ("_hooks",)
    return [p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).parts[0] not in excluded]


def _numbers():
    spec = importlib.util.spec_from_file_location("numbers_hook", DOCS / "_hooks" / "numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _make_outputs(target: str) -> list[Path]:
    """The --out paths of the commands ``make target`` runs (make -n: nothing runs)."""
    r = subprocess.run(["make", "-n", "-s", target, "STAMP=Makefile"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    outs = [ROOT / m for m in OUT.findall(r.stdout)]
    assert outs and all(o.is_relative_to(DOCS) for o in outs), r.stdout
    return outs


OUT = re.compile(r"--out\s+([^\s`'\";,)]+)")  # --out PATH, in a command or in prose


def _shown_files(page: Path, text: str, numbers) -> list[Path]:
    """The images, included tables and quoted JSON files of a page."""
    files = [(page.parent / m["src"]).resolve() for m in IMAGE.finditer(text)
             if not re.match(r"[a-z]+://", m["src"])]
    files += [DOCS / m["src"] for m in SNIPPET.finditer(text)
              if not (ROOT / "examples" / m["src"]).exists()]
    files += [DOCS / m["file"] for m in numbers.QUOTE.finditer(text)]
    return files


def test_every_image_table_and_number_in_the_docs_comes_from_a_command():
    """Each file a page shows (image, included table, quoted number) exists and lies in the
    --out path of a command: one of `make docs-figures`, or one the page itself gives (an
    example page names the commands that made it)."""
    made = _make_outputs("docs-figures")
    numbers = _numbers()
    orphans, missing, from_make = [], [], 0
    for page in _pages():
        text = page.read_text()
        own = [ROOT / m for m in OUT.findall(text)]
        for f in _shown_files(page, text, numbers):
            where = f"{page.relative_to(DOCS)}: {f.relative_to(ROOT)}"
            if not f.is_file():
                missing.append(where)
            elif any(f == o or f.is_relative_to(o) for o in made):
                from_make += 1
            elif not any(f == o or f.is_relative_to(o) for o in own):
                orphans.append(where)
    assert not missing, f"shown but missing: {missing}"
    assert not orphans, f"written by no command of make docs-figures or of their page: {orphans}"
    assert from_make >= 3  # the user guide shows what make docs-figures writes


def test_quoted_numbers_are_read_from_their_file(tmp_path):
    numbers = _numbers()
    (tmp_path / "fit.json").write_text('{"gamma": 0.51234, "fits": [{"z": -1.25}]}')
    text = "g = {{ fit.json#gamma | .3f }}, z = {{fit.json#fits.0.z|+.1f}}, {{ fit.json#gamma }}"
    assert numbers.substitute(text, tmp_path) == "g = 0.512, z = -1.2, 0.51234"
    with pytest.MonkeyPatch.context() as mp:
        warned = []
        mp.setattr(numbers.log, "warning", lambda *a: warned.append(a))
        out = numbers.substitute("{{ fit.json#beta | .3f }} {{ none.json#a }}", tmp_path, "p.md")
    assert out == "{{ fit.json#beta | .3f }} {{ none.json#a }}"  # left as written, and warned
    assert len(warned) == 2 and "p.md" in warned[0]


QUOTED = re.compile(r"\b(?P<name>gamma1|gamma2|gamma_pred|gamma_meas) = (?P<value>\d+\.\d+) ± "
                    r"(?P<err>\d+\.\d+)")


def test_exponents_typed_on_example_pages_equal_their_fit():
    """An example page that types "gamma2 = 0.562 ± 0.153" must agree with the laws.json
    its report wrote (any of its groups), to the digits it prints; better, it quotes them
    ({{ example-x/figures/laws.json#0.gamma2 | .3f }})."""
    wrong, checked = [], 0
    for page in sorted(DOCS.glob("example-*/README.md")):
        laws = page.parent / "figures" / "laws.json"
        if not laws.is_file():
            continue
        fits = json.loads(laws.read_text())
        for m in QUOTED.finditer(page.read_text()):
            digits = len(m["value"].split(".")[1])
            ok = any(f.get(m["name"]) is not None
                     and round(f[m["name"]], digits) == float(m["value"])
                     and round(f[m["name"] + "_err"], digits) == float(m["err"]) for f in fits)
            checked += 1
            if not ok:
                wrong.append(f"{page.relative_to(DOCS)}: {m[0]}")
    assert not wrong, f"typed exponents that differ from the page's laws.json: {wrong}"
    assert checked >= 1
