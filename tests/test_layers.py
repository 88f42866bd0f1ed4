"""The layers are real: the import graph, read from the source, has no cycle and no
upward edge, and only the notebook layer imports the notebook stack.

Every ``import`` and ``from ... import`` counts wherever it stands: at the top of a
module, under ``if TYPE_CHECKING:`` or inside a function. A type-only cycle is
still a cycle a reader has to untangle, and a function-local import still
couples the layers. The order, top to bottom::

    cli, __init__  ->  jupyter  ->  dataflow  ->  dora_rs  ->  api  ->  preview
                   ->  core  ->  errors, _version

(a layer imports only layers below it, and modules of its own layer).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "dora_notebook"

#: What each layer may import besides itself; a layer is a subpackage or a top-level module.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "_version": set(),
    "core": {"errors", "_version"},
    "preview": {"core", "errors", "_version"},
    "api": {"preview", "core", "errors", "_version"},
    "dora_rs": {"api", "preview", "core", "errors", "_version"},
    "dataflow": {"dora_rs", "api", "preview", "core", "errors", "_version"},
    "jupyter": {"dataflow", "dora_rs", "api", "preview", "core", "errors", "_version"},
}
TOP = {"cli", "__init__"}  # the public face may import anything

#: The notebook stack (the ``[jupyter]`` extra): only ``jupyter/`` imports it.
NOTEBOOK_STACK = {"IPython", "ipywidgets", "ipykernel", "traitlets", "matplotlib"}
#: preview/media.py draws a figure node code passed in, so matplotlib is already
#: loaded then; it may import matplotlib inside the function that draws.
LAZY_ALLOWED = {("preview", "matplotlib")}
#: Imported only where such an object is handled (a base install has no pandas).
LAZY_ONLY = {"pandas"}


@dataclass(frozen=True)
class Import:
    """One imported module, as one statement of *source* names it."""

    source: str  # the importing module, e.g. "pkg.core.graph"
    target: str  # the imported module, e.g. "pkg.errors" or "numpy"
    line: int
    kind: str  # "top", "type" (under TYPE_CHECKING) or "local" (in a function)

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line}, {self.kind})"


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package at *root*, by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.Module) -> Iterable[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with where it stands: "top", "type" or "local"."""

    def walk(node: ast.AST, kind: str) -> Iterable[tuple[ast.Import | ast.ImportFrom, str]]:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, kind
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test) and kind == "top":
            for child in node.body:
                yield from walk(child, "type")
            for child in node.orelse:
                yield from walk(child, kind)
            return
        inner = "local" if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else kind
        for child in ast.iter_child_nodes(node):
            yield from walk(child, inner)

    yield from walk(tree, "top")


def import_graph(root: Path) -> list[Import]:
    """Every import of every module of the package at *root*, relative ones resolved.

    ``from pkg import name`` imports the module ``pkg.name`` when there is one, else
    ``pkg``; imports of other distributions are kept by their top-level name.
    """
    modules = module_names(root)
    found = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for statement, kind in _statements(tree):
            if isinstance(statement, ast.Import):
                targets = [alias.name for alias in statement.names]
            else:
                base = statement.module or ""
                if statement.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (statement.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in statement.names
                ]
            for target in targets:
                if not target.startswith(f"{root.name}.") and target != root.name:
                    target = target.partition(".")[0]
                found.append(Import(name, target, statement.lineno, kind))
    return list(dict.fromkeys(found))  # `from x import a, b` is one import of x


def layer(module: str) -> str:
    """The layer of a module of the package: its subpackage, or itself at the top level.

    >>> layer("pkg.core.graph"), layer("pkg.core"), layer("pkg.cli"), layer("pkg")
    ('core', 'core', 'cli', '__init__')
    """
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted.

    >>> cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    [['a', 'b', 'c']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def problems(root: Path) -> list[str]:
    """Every broken layering rule of the package at *root*, one line each."""
    imports = import_graph(root)
    ours = [i for i in imports if i.target == root.name or i.target.startswith(f"{root.name}.")]
    out = []

    module_edges: dict[str, set[str]] = {}
    layer_edges: dict[str, set[str]] = {}
    for i in ours:
        module_edges.setdefault(i.source, set()).add(i.target)
        if layer(i.source) != layer(i.target):
            layer_edges.setdefault(layer(i.source), set()).add(layer(i.target))
    for component in cycles(module_edges):
        members = set(component)
        links = [str(i) for i in ours if i.source in members and i.target in members]
        out.append(f"import cycle between modules {component}: {'; '.join(links)}")
    for component in cycles(layer_edges):
        members = set(component)
        links = [
            str(i)
            for i in ours
            if layer(i.source) in members
            and layer(i.target) in members
            and layer(i.source) != layer(i.target)
        ]
        out.append(f"import cycle between layers {component}: {'; '.join(links)}")

    for i in ours:
        source, target = layer(i.source), layer(i.target)
        if source == target or source in TOP:
            continue
        if target not in ALLOWED.get(source, set()):
            out.append(f"upward import from layer {source!r} into {target!r}: {i}")

    for i in imports:
        source = layer(i.source)
        lazy_ok = (source, i.target) in LAZY_ALLOWED and i.kind == "local"
        if i.target in NOTEBOOK_STACK and source != "jupyter" and not lazy_ok:
            out.append(f"{i.target} imported outside jupyter/: {i}")
        if i.target in LAZY_ONLY and i.kind == "top" and source != "jupyter":
            out.append(f"{i.target} imported at import time (import it where it is used): {i}")
    return out


def test_the_package_keeps_its_layers() -> None:
    found = problems(PACKAGE_DIR)
    assert not found, "\n".join(found)


def test_the_graph_sees_every_kind_of_import() -> None:
    # Guards the checker itself: a graph that missed type-only or local imports
    # would pass for the wrong reason.
    edges = {(i.source, i.target, i.kind) for i in import_graph(PACKAGE_DIR)}
    assert ("dora_notebook.api.context", "dora_notebook.core.runner", "type") in edges
    assert ("dora_notebook.api.context", "dora_notebook.preview.normalize", "local") in edges
    assert ("dora_notebook.preview.media", "matplotlib", "local") in edges
    assert ("dora_notebook.api.embedded", "dora_notebook.api.dora", "top") in edges  # from . import


def _package(root: Path, files: Mapping[str, str]) -> Path:
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return package


def test_the_checker_fails_on_cycles_upward_imports_and_the_notebook_stack(
    tmp_path: Path,
) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "",
            "core/__init__.py": "",
            "core/graph.py": """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from .engine import Engine
                """,
            "core/engine.py": "from . import graph\nfrom ..errors import E\n",
            "core/runner.py": "def run():\n    from ..api.node import Node\n",
            "api/__init__.py": "",
            "api/node.py": "import pandas\nfrom ..core import runner\n",
            "preview/__init__.py": "",
            "preview/media.py": "import matplotlib\n\ndef draw():\n    import matplotlib.figure\n",
            "dora_rs/__init__.py": "",
            "dora_rs/shim.py": "def f():\n    import ipywidgets\n",
        },
    )
    found = problems(package)
    assert found == [
        "import cycle between modules ['pkg.api.node', 'pkg.core.runner']: "
        "pkg.api.node -> pkg.core.runner (line 2, top); "
        "pkg.core.runner -> pkg.api.node (line 2, local)",
        "import cycle between modules ['pkg.core.engine', 'pkg.core.graph']: "
        "pkg.core.engine -> pkg.core.graph (line 1, top); "
        "pkg.core.graph -> pkg.core.engine (line 3, type)",
        "import cycle between layers ['api', 'core']: "
        "pkg.api.node -> pkg.core.runner (line 2, top); "
        "pkg.core.runner -> pkg.api.node (line 2, local)",
        "upward import from layer 'core' into 'api': pkg.core.runner -> pkg.api.node "
        "(line 2, local)",
        "pandas imported at import time (import it where it is used): "
        "pkg.api.node -> pandas (line 1, top)",
        "ipywidgets imported outside jupyter/: pkg.dora_rs.shim -> ipywidgets (line 2, local)",
        "matplotlib imported outside jupyter/: pkg.preview.media -> matplotlib (line 1, top)",
    ]


def test_the_checker_passes_a_well_layered_package(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "def load():\n    from .jupyter import magics\n",
            "errors.py": "",
            "core/__init__.py": "",
            "core/graph.py": "from ..errors import E\n",
            "api/__init__.py": "",
            "api/node.py": "from ..core.graph import G\n\ndef f():\n    import pandas\n",
            "preview/__init__.py": "",
            "preview/media.py": "def draw():\n    import matplotlib.figure\n",
            "jupyter/__init__.py": "",
            "jupyter/magics.py": "import IPython\nfrom ..api import node\n",
        },
    )
    assert problems(package) == []


#: The modules that are the notebook layer proper (the rest of jupyter/ is pure).
NOTEBOOK_ONLY = {
    f"dora_notebook.jupyter.{name}"
    for name in ("magics", "session", "widgets", "chart", "frameview")
}


def test_nothing_outside_the_notebook_layer_loads_the_notebook_stack() -> None:
    # The same rule at run time: import every module that must work without the
    # [jupyter] extra (the package root itself loads its parts lazily).
    modules = sorted(set(module_names(PACKAGE_DIR)) - NOTEBOOK_ONLY)
    assert "dora_notebook.dora_rs.shim" in modules and "dora_notebook.cli" in modules
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(NOTEBOOK_STACK)}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
