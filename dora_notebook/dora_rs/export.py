"""Export a graph to a folder that ``dora run DIR/dataflow.yml`` runs unchanged.

:func:`export` writes ``DIR/dataflow.yml`` and one Python file per node:

* an operator defined from source (a ``%%dora_operator`` cell) becomes the
  dora operator file ``DIR/<node_id>.py``: the cell's code unchanged, then a
  footer that wraps its ``Operator`` class so that ``on_event`` still gets a
  context under dora-rs (see :mod:`dora_notebook.dora_rs.shim`);
* a custom node defined from source (a ``%%dora_node`` cell) becomes the
  node script ``DIR/<node_id>.py``: a header that gives ``Node`` its
  ``.context`` under dora-rs, then the cell's code unchanged;
* a node read from a file (a loaded descriptor, or ``add_node(id, Path(...))``)
  keeps its file, copied into ``DIR`` under its own name, as are the modules
  next to it that it imports (``import helper`` with ``helper.py`` beside it).
  Two different files with one name are told apart by the node id
  (``sink.py``, then ``sink_<node_id>.py``).
* a node-hub node (``path: opencv-video-capture``, the console script of an
  installed package) keeps its ``path:``: ``dora run`` finds the command on
  ``PATH``, and nothing is copied;
* a node given as a Python class or callable is refused: its source cannot be
  recovered reliably.

A cell's file is ``<node_id>_operator.py`` or ``<node_id>_node.py`` instead
when ``<node_id>`` would hide a module the nodes import (a node called
``json`` or ``pandas``): dora puts the node's folder first on the module path.

Inputs, outputs, queue sizes, timers, ``args``, the node's declared ``env``
and ``--machine NAME`` (dora's ``deploy: {machine: NAME}``) go into
``dataflow.yml``. Nothing else of the exporting process's environment is
written. Exporting the same graph twice writes the same bytes, and no file is
written outside ``DIR``.

An export never replaces a file it did not write: it records what it wrote
(name and SHA-256) in ``DIR/.dora-notebook-export.json`` and replaces only
those files, and only while they are as it wrote them. Any other file in the
way (a user's ``src.py`` or ``dataflow.yml``, or an exported file edited
since) makes it refuse in one line naming the files, before writing anything,
unless ``force=True`` (``--force``). It never deletes a file. The files are
written to a temporary folder inside ``DIR`` and moved into place only once
all of them were written, so a failure leaves ``DIR`` as it was.

>>> import tempfile
>>> from dora_notebook import Dataflow
>>> flow = Dataflow(echo=False)
>>> _ = flow.add_operator("hello", "class Operator:\\n    def on_event(self, e, send): pass\\n")
>>> with tempfile.TemporaryDirectory() as folder:
...     [p.name for p in export(flow.graph, folder)]
['dataflow.yml', 'hello.py']
"""

from __future__ import annotations

import ast
import copy
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core import yaml12
from ..core.graph import Graph, NodeSpec
from ..errors import GraphError

__all__ = ["DESCRIPTOR", "MANIFEST", "export", "render", "summary", "write_files"]

#: The descriptor's file name in an export folder.
DESCRIPTOR = "dataflow.yml"

#: The export's record of the files it wrote (name -> SHA-256), in the export folder.
MANIFEST = ".dora-notebook-export.json"

# Modules every export relies on, besides the standard library: a node file
# must not hide them.
_RELIED_ON = {"dora", "dora_notebook", "pyarrow", "numpy", "pandas", "yaml"}
_STDLIB = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names)


def _installed(name: str) -> bool:
    """Whether ``name`` is a standard module or one every export relies on.

    Such a name is never a user's helper module: the node gets the real one.
    """
    return name in _STDLIB or name in _RELIED_ON


_HEADER = """\
# -- dora-notebook: under dora-rs, `from dora import Node` below gives dora's Node
# -- with a `.context` (see dora_notebook.dora_rs.shim). The node's code follows unchanged.
import dora_notebook.dora_rs.shim

dora_notebook.dora_rs.shim.use_context_node(node_id={node_id}, outputs={outputs})
# -- end of the dora-notebook header --
"""

_FOOTER = """\

# -- dora-notebook: under dora-rs, on_event gets a context that is also dora's
# -- send_output (see dora_notebook.dora_rs.shim). The operator's code is above, unchanged.
import dora_notebook.dora_rs.shim  # noqa: E402

Operator = dora_notebook.dora_rs.shim.operator(Operator, node_id={node_id}, outputs={outputs})
"""

_COMMENT = """\
# Exported by dora-notebook. Run it with `dora run dataflow.yml` (dora-rs) or
# `dora-notebook run dataflow.yml` (the embedded engine).{extra}
"""


def export(
    graph: Graph,
    directory: str | Path,
    *,
    top: Mapping[str, Any] | None = None,
    base_dir: str | Path | None = None,
    force: bool = False,
) -> list[Path]:
    """Write ``graph`` to ``directory``; return the files, ``dataflow.yml`` first.

    ``top`` holds the descriptor's keys other than ``nodes`` (as
    :meth:`~dora_notebook.Dataflow.descriptor_extra` gives them).

    ``base_dir`` is where cell-defined nodes find the modules they import
    (default: the working directory, as on the embedded engine). Raises
    :class:`~dora_notebook.errors.GraphError`, before writing anything, if
    the graph cannot be exported, or if ``directory`` holds files in the way
    that the export did not write (``force=True`` replaces them).
    """
    files = render(graph, top=top, base_dir=base_dir)
    return write_files(files, directory, force=force)


def render(
    graph: Graph,
    *,
    top: Mapping[str, Any] | None = None,
    base_dir: str | Path | None = None,
) -> dict[str, bytes]:
    """The files of an export, by name, ``dataflow.yml`` first; nothing is written."""
    graph.validate()
    if not len(graph):
        raise GraphError("cannot export: the dataflow has no nodes")
    for spec in graph:
        for inp in spec.inputs.values():
            if inp.is_replay:
                raise GraphError(
                    f"node {spec.id!r}: inputs.{inp.input_id}: {inp.source} plays a recording, "
                    "which only the embedded engine does (dora-rs has no dora/replay input)"
                )
    objects = [spec for spec in graph if spec.obj is not None]
    if objects:
        spec = objects[0]
        kind = "a class" if isinstance(spec.obj, type) else "a Python object"
        name = getattr(spec.obj, "__qualname__", type(spec.obj).__qualname__)
        raise GraphError(
            f"cannot export node {spec.id!r}: it is defined by {kind} ({name}), whose source "
            "cannot be exported reliably; define it from source text (a %%dora_"
            f"{'operator' if spec.kind == 'operator' else 'node'} cell, or add_{spec.kind}"
            f"({spec.id!r}, source)) or from a file (add_{spec.kind}({spec.id!r}, Path(...)))"
        )
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    trees = {spec.id: _tree(spec) for spec in graph}
    helpers = _helpers(graph, trees, base)
    imported = set().union(*(_imports(tree) for tree in trees.values() if tree is not None))
    for path in helpers.values():
        imported |= _imports(_parse(path.read_text(encoding="utf-8"), str(path)))
    names = _file_names(graph, helpers, imported)

    files: dict[str, bytes] = {}
    uses_shim = any(_uses_shim(spec, trees[spec.id]) for spec in graph)
    extra = "\n# Node files written from cells need dora-notebook installed." if uses_shim else ""
    if any(spec.machine is not None for spec in graph):
        extra += (
            "\n# Nodes with deploy.machine need a dora cluster: `dora coordinator`, one"
            "\n# `dora daemon --machine-id NAME` per machine, then `dora start dataflow.yml`."
        )
    descriptor = {
        **copy.deepcopy(dict(top or {})),
        **graph.to_descriptor(file_for=lambda spec: names[spec.id]),
    }
    files[DESCRIPTOR] = (_COMMENT.format(extra=extra) + yaml12.dump(descriptor)).encode()
    for spec in graph:
        if spec.script is not None:
            continue  # an installed command, not a file of the export
        name = names[spec.id]
        if name in files:
            continue  # two nodes sharing one file
        if spec.source is None:
            assert spec.path is not None
            files[name] = spec.path.read_bytes()
        elif spec.kind == "operator":
            files[name] = _operator_file(spec).encode()
        else:
            files[name] = _node_file(spec, trees[spec.id]).encode()
    for name, path in sorted(helpers.items()):
        files.setdefault(f"{name}.py", path.read_bytes())
    return files


def write_files(
    files: Mapping[str, bytes], directory: str | Path, *, force: bool = False
) -> list[Path]:
    """Write ``files`` (plain file names) into ``directory``, all or none; return their paths.

    A file already there is replaced only if an earlier export wrote it and it
    is unchanged since (see :data:`MANIFEST`), or with ``force``; a symbolic
    link in the way is replaced, never written through.
    """
    root = Path(directory).expanduser()
    if root.exists() and not root.is_dir():
        raise GraphError(f"cannot export to {str(root)!r}: it is not a folder")
    for name in files:
        if (
            Path(name).name != name
            or name in ("", ".", "..", MANIFEST)
            or "\\" in name
            or "\0" in name
        ):
            raise GraphError(f"cannot export: {name!r} is not a plain file name")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    owned = _owned(root)
    in_the_way = []
    for name in files:
        target = root / name
        if target.exists() and not target.is_symlink() and not target.is_file():
            raise GraphError(f"cannot export: {str(target)!r} exists and is not a file")
        if (target.exists() or target.is_symlink()) and (
            target.is_symlink() or owned.get(name) != _digest(target.read_bytes())
        ):
            in_the_way.append(name)
    if in_the_way and not force:
        if created:
            root.rmdir()
        raise GraphError(
            f"cannot export to {str(root)!r}: it holds {', '.join(sorted(in_the_way))}, not "
            "written by dora-notebook (or changed since); export to another folder, or "
            "use --force (force=True) to replace them"
        )
    # All or nothing: every file is written first, then moved into place.
    staging = Path(tempfile.mkdtemp(prefix=".dora-notebook-export-", dir=root))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        record = {n: d for n, d in owned.items() if (root / n).is_file() and n not in files}
        record.update({name: _digest(data) for name, data in files.items()})
        manifest = {"files": dict(sorted(record.items()))}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        for name in [*files, MANIFEST]:
            os.replace(staging / name, root / name)
    except OSError as exc:
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise GraphError(f"cannot export to {str(root)!r}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [root / name for name in files]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _owned(root: Path) -> dict[str, str]:
    """The files an earlier export wrote into ``root``, by name (empty if none or unreadable)."""
    try:
        record = json.loads((root / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(record, dict):
        return {}
    return {n: d for n, d in record.items() if isinstance(n, str) and isinstance(d, str)}


def summary(written: list[Path], graph: Graph | None = None) -> str:
    """What an export wrote, and how to run it, for people.

    >>> print(summary([Path("/out/dataflow.yml"), Path("/out/a.py")]))
    wrote /out/dataflow.yml, a.py
    run it with: dora run /out/dataflow.yml
    """
    if not written:
        return "nothing written"
    descriptor = written[0]
    names = ", ".join([str(descriptor), *(p.name for p in written[1:])])
    lines = [f"wrote {names}"]
    if graph is not None and any(spec.machine is not None for spec in graph):
        lines.append(
            f"run it on a dora cluster with: dora start {descriptor} "
            "(nodes placed with --machine; dora run refuses deploy)"
        )
    else:
        lines.append(f"run it with: dora run {descriptor}")
    return "\n".join(lines)


# -- file contents -------------------------------------------------------------------


def _literal(value: str | Iterable[str]) -> str:
    return json.dumps(value if isinstance(value, str) else list(value))


def _operator_file(spec: NodeSpec) -> str:
    source = spec.source or ""
    if source and not source.endswith("\n"):
        source += "\n"
    return source + _FOOTER.format(node_id=_literal(spec.id), outputs=_literal(spec.outputs))


def _node_file(spec: NodeSpec, tree: ast.Module | None) -> str:
    source = spec.source or ""
    header = _HEADER.format(node_id=_literal(spec.id), outputs=_literal(spec.outputs))
    # After the docstring and `from __future__` imports, which must come first.
    after = 0
    body = tree.body if tree is not None else []
    index = 0
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
        after, index = first.end_lineno or 0, 1
    while index < len(body):
        statement = body[index]
        if not (isinstance(statement, ast.ImportFrom) and statement.module == "__future__"):
            break
        after, index = statement.end_lineno or after, index + 1
    # Python numbers lines at \n, \r\n and \r, as a newline="" stream splits them.
    lines = io.StringIO(source, newline="").readlines()
    head = "".join(lines[:after])
    if head and not head.endswith(("\n", "\r")):
        head += "\n"
    return head + header + "".join(lines[after:])


# -- source analysis -------------------------------------------------------------------


def _parse(source: str, where: str) -> ast.Module | None:
    try:
        return ast.parse(source, where)
    except (SyntaxError, ValueError):
        return None


def has_context(spec: NodeSpec) -> bool:
    """Whether the node's code, once exported, reports through the context shim.

    True for a cell, and for a file that imports ``dora_notebook`` (an
    earlier export loaded back): the dora engine routes their reports to the
    kernel. A plain dora file reports nothing but its end.
    """
    return spec.obj is None and _uses_shim(spec, _tree(spec))


def _uses_shim(spec: NodeSpec, tree: ast.Module | None) -> bool:
    # A reloaded export's node files are former cells: they import the shim too.
    return spec.source is not None or "dora_notebook" in _imports(tree)


def _tree(spec: NodeSpec) -> ast.Module | None:
    """The node's parsed code; cell code must compile (and an operator define Operator)."""
    if spec.script is not None:
        return None
    if spec.source is None:
        assert spec.path is not None
        try:
            text = spec.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return _parse(text, str(spec.path))
    try:
        tree = ast.parse(spec.source, spec.code_name())
    except SyntaxError as exc:
        raise GraphError(
            f"cannot export node {spec.id!r}: SyntaxError: {exc.msg} (line {exc.lineno})"
        ) from None
    if spec.kind == "operator" and not _binds(tree, "Operator"):
        raise GraphError(
            f"cannot export node {spec.id!r}: its code does not define `class Operator`"
        )
    return tree


def _binds(tree: ast.Module, name: str) -> bool:
    """Whether module code binds ``name`` outside any function or class."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name == name:
                return True
            continue
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name) == name:
            return True
        pending.extend(ast.iter_child_nodes(node))
    return False


def _imports(tree: ast.Module | None) -> set[str]:
    """Top-level names of the modules ``tree`` imports (absolute imports only)."""
    names: set[str] = set()
    if tree is None:
        return names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def _helpers(graph: Graph, trees: Mapping[str, ast.Module | None], base: Path) -> dict[str, Path]:
    """Modules next to node code that it imports: module name -> file.

    Only single-file modules (``name.py``) are found, recursively, and not
    for standard modules or those every export relies on. As under dora,
    where the node's folder comes first on the module path, a file beside
    the code wins over an installed module of the same name. One name for
    two different files is refused.
    """
    found: dict[str, Path] = {}
    owner: dict[str, str] = {}
    pending: list[tuple[str, Path, ast.Module | None]] = [
        (spec.id, spec.path.parent if spec.path is not None else base, trees[spec.id])
        for spec in graph
    ]
    while pending:
        node_id, folder, tree = pending.pop(0)
        for name in sorted(_imports(tree)):
            candidate = folder / f"{name}.py"
            if not candidate.is_file() or _installed(name):
                continue
            candidate = candidate.resolve()
            known = found.get(name)
            if known is not None:
                if known != candidate and known.read_bytes() != candidate.read_bytes():
                    raise GraphError(
                        f"cannot export: node {owner[name]!r} and node {node_id!r} import "
                        f"different modules called {name!r} ({known} and {candidate})"
                    )
                continue
            found[name], owner[name] = candidate, node_id
            text = candidate.read_text(encoding="utf-8", errors="replace")
            pending.append((node_id, candidate.parent, _parse(text, str(candidate))))
    return found


# -- file names --------------------------------------------------------------------------


def _file_names(graph: Graph, helpers: Mapping[str, Path], imported: set[str]) -> dict[str, str]:
    """Each node's file name in the export, decided in a fixed order.

    Names are compared without case, for case-insensitive file systems.
    """
    taken = {DESCRIPTOR.casefold()} | {f"{name}.py".casefold() for name in helpers}
    hidden = _STDLIB | _RELIED_ON | imported
    names: dict[str, str] = {}

    def claim(*candidates: str) -> str:
        for name in candidates:
            if name.casefold() not in taken:
                break
        else:
            stem, _, suffix = candidates[-1].rpartition(".")
            number = 2
            while f"{stem}_{number}.{suffix}".casefold() in taken:
                number += 1
            name = f"{stem}_{number}.{suffix}"
        taken.add(name.casefold())
        return name

    # Cells first: their file is named after the node.
    for spec in graph:
        if spec.source is not None:
            plain = f"{spec.id}.py"
            fallback = f"{spec.id}_{spec.kind}.py"
            names[spec.id] = claim(fallback) if spec.id in hidden else claim(plain, fallback)
    by_path: dict[Path, str] = {}
    helper_paths = {path: f"{name}.py" for name, path in helpers.items()}
    for spec in graph:
        if spec.path is None:
            continue
        path = spec.path.resolve()
        if path in by_path:
            names[spec.id] = by_path[path]
        elif path in helper_paths:  # a node file that another node imports
            names[spec.id] = by_path[path] = helper_paths[path]
        else:
            suffix = path.suffix or ".py"
            names[spec.id] = by_path[path] = claim(path.name, f"{path.stem}_{spec.id}{suffix}")
    return names
