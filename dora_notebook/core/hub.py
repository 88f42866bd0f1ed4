"""Nodes of dora's node hub: ``path: NAME`` naming an installed package's console script.

dora-rs's node hub publishes each node as a Python package with a console
script (``pip install opencv-video-capture`` installs the command
``opencv-video-capture``, whose ``main()`` makes a ``Node()`` and loops over
its events); a descriptor names the command in ``path:``, and ``dora run``
finds it on ``PATH``. The embedded engine runs such a node in-process:

* **Lookup.** ``NAME`` is looked up among the ``console_scripts`` entry
  points of the kernel's Python (:mod:`importlib.metadata`), which give the
  entry's module and function and the package that holds them.
* **A private copy of the package.** The entry's top-level package is loaded
  afresh for the node, under ``dora_notebook.hub.<node id>.<package>``, with
  the node's builtins (:mod:`.loader`): every module of it gets the engine's
  ``dora`` and the node's ``sys.argv``, ``os.environ`` and ``argparse``
  views, and its imports of its own package name get the private copy. So
  the package's ``import dora`` means this implementation for that node only,
  while ``import opencv_video_capture`` anywhere else in the kernel gives the
  ordinary module, with the real dora-rs. Other packages it imports
  (``cv2``, ``numpy``) are the ordinary, shared modules. Each start loads
  the package anew, as a new process would.
* **The call.** The entry function runs in the node's thread; what it
  returns is the node's exit code, as a console script's ``sys.exit(main())``.

What the private copy does not cover: a module of the package fetched with
``importlib.import_module("pkg.x")`` (not an ``import`` statement) is the
ordinary one, and another package that imports ``dora`` itself (a helper
library) gets the ordinary ``dora``.

Refused before start, in one line that points to ``--engine dora``: a
command that is no console script of this Python (a Rust or C++ node, a
shell script, a script of another environment), and a package that holds
compiled modules (a node built with pyo3 or maturin talks to dora-rs from
its compiled code, not through ``import dora``). A name that is neither a
file nor an installed command says how to install it.

>>> find("no-such-node-hub-command") is None
True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import shutil
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import GraphError
from .graph import NodeSpec
from .loader import _builtins_for

__all__ = ["Script", "check", "find", "run"]

_ENGINE = "use %dora_start --engine dora"
_PRIVATE = "dora_notebook.hub"


@dataclass(frozen=True)
class Script:
    """A console script: ``NAME = module:attr`` of a distribution."""

    name: str
    module: str
    attr: str
    distribution: str

    @property
    def package(self) -> str:
        """The top-level package (or module) that holds the entry."""
        return self.module.partition(".")[0]


def find(name: str) -> Script | None:
    """The console script ``name`` of an installed Python package, or None."""
    for entry in importlib.metadata.entry_points(group="console_scripts", name=name):
        dist = entry.dist
        label = f"{dist.name} {dist.version}" if dist is not None else entry.module
        return Script(name, entry.module, entry.attr, label)
    return None


def check(spec: NodeSpec) -> Script:
    """The script a node runs, or a one-line :class:`GraphError` saying why it cannot."""
    assert spec.script is not None
    where = f"node {spec.id!r}: path: {spec.script!r}"
    if Path(spec.script).is_absolute():  # a program named by its file (see graph)
        if not Path(spec.script).is_file():
            raise GraphError(f"{where} does not exist yet: run its build: (%dora_build)")
        raise GraphError(
            f"{where} is a program, not a Python script; the embedded engine runs Python "
            f"nodes only ({_ENGINE})"
        )
    script = find(spec.script)
    if script is None:
        program = shutil.which(spec.script)
        if program is not None:
            raise GraphError(
                f"{where} is the program {program}, not a console script of a Python package "
                f"installed in this kernel's environment; the embedded engine runs Python "
                f"nodes only ({_ENGINE})"
            )
        folder = f"a file in {spec.build_dir} nor " if spec.build_dir is not None else ""
        raise GraphError(
            f"{where} is neither {folder}an installed command: install its package in this "
            f"kernel's environment (pip install {spec.script}), or run its build: (%dora_build)"
        )
    compiled = _compiled_module(script.package)
    if compiled is not None:
        raise GraphError(
            f"{where} runs package {script.distribution}, which has a compiled module "
            f"({compiled}) that talks to dora-rs itself; the embedded engine runs pure "
            f"Python nodes only ({_ENGINE})"
        )
    return script


def _package_spec(package: str) -> importlib.machinery.ModuleSpec:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"the package {package!r} of a console script cannot be found")
    return spec


def _compiled_module(package: str) -> str | None:
    """The file name of a compiled module in ``package``, or None if it is pure Python."""
    spec = _package_spec(package)
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    assert spec.origin is not None
    files = [Path(spec.origin)]
    for folder in spec.submodule_search_locations or ():
        files += Path(folder).rglob("*")
    for file in files:
        if file.name.endswith(suffixes):
            return file.name
    return None


# -- running ------------------------------------------------------------------------------

_lock = threading.Lock()
# Private package name -> the builtins its modules get (one entry per hub node).
_tables: dict[str, dict[str, object]] = {}


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Loads a module of a private copy with the node's builtins."""

    def __init__(self, fullname: str, path: str, table: dict[str, object]) -> None:
        super().__init__(fullname, path)
        self._table = table

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__builtins__"] = self._table
        super().exec_module(module)


class _PrivateFinder(importlib.abc.MetaPathFinder):
    """Finds the submodules of private copies, however they are imported
    (``from . import x``, ``importlib.import_module``), in the real package's folders."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PRIVATE + "."):
            return None
        with _lock:
            roots = [root for root in _tables if fullname.startswith(root + ".")]
            # The longest: node ids may have dots, so one root may hold another.
            table = _tables[max(roots, key=len)] if roots else None
        if table is None:
            return None
        found = importlib.machinery.PathFinder.find_spec(fullname.rpartition(".")[2], path)
        if found is None:
            return None
        return _private_spec(fullname, found, table)


_FINDER = _PrivateFinder()


def _private_spec(
    fullname: str, found: importlib.machinery.ModuleSpec, table: dict[str, object]
) -> importlib.machinery.ModuleSpec:
    if not isinstance(found.loader, importlib.machinery.SourceFileLoader):
        raise ImportError(f"{found.name!r} is not Python source; a node-hub node runs from source")
    assert found.origin is not None
    spec = importlib.util.spec_from_file_location(
        fullname,
        found.origin,
        loader=_SourceLoader(fullname, found.origin, table),
        submodule_search_locations=found.submodule_search_locations,
    )
    assert spec is not None
    return spec


def run(spec: NodeSpec, dora: types.ModuleType) -> None:
    """Run the node's console script in this thread, its package loaded afresh.

    A non-zero (or text) return value ends the node as ``sys.exit`` would.
    """
    script = check(spec)
    root = f"{_PRIVATE}.{spec.id}.{script.package}"
    table = _builtins_for(spec, script.name, dora, own=(script.package, root))
    with _lock:
        if _FINDER not in sys.meta_path:
            # Before the path finders, which would load the real files with
            # the real builtins under the private names.
            sys.meta_path.insert(0, _FINDER)
        _tables[root] = table
        for name in [n for n in sys.modules if n == root or n.startswith(root + ".")]:
            del sys.modules[name]
    top = _private_spec(root, _package_spec(script.package), table)
    module = importlib.util.module_from_spec(top)
    sys.modules[root] = module
    assert top.loader is not None
    top.loader.exec_module(module)
    entry: object = importlib.import_module(root + script.module[len(script.package) :])
    for part in script.attr.split("."):
        entry = getattr(entry, part)
    assert callable(entry)
    result = entry()
    if result is not None:
        raise SystemExit(result)
