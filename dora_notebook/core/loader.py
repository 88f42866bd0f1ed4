"""Run node code as a module of its own.

Each operator or custom node executes in a fresh module whose builtins carry
an ``__import__`` that answers ``dora`` with the module the engine was given
(:mod:`dora_notebook.api.dora` on the embedded engine), and ``sys``/``os``
with views that hold the node's own ``args`` and ``env``. Everything else in
the process, ``import dora`` included, is untouched: only code compiled into
that module sees the substitutions.

>>> import types
>>> from dora_notebook.core.graph import NodeSpec
>>> fake_dora = types.ModuleType("dora")
>>> fake_dora.DoraStatus = "the engine's DoraStatus"
>>> spec = NodeSpec("n", "operator", source="from dora import DoraStatus\\nS = DoraStatus")
>>> load_module(spec, fake_dora).S
"the engine's DoraStatus"
"""

from __future__ import annotations

import argparse
import builtins
import importlib
import importlib.machinery
import importlib.util
import linecache
import os
import sys
import threading
import types
from collections.abc import Mapping
from typing import Any

from .graph import NodeSpec

__all__ = ["load_module", "load_operator_class"]

_real_import = builtins.__import__
_local_lock = threading.RLock()
# Helper modules by (folder, name): two dataflows from different folders may
# each have a `helpers.py`, and each node must get the one beside it. None
# records that the folder has no such module (the name is a real package).
_local_modules: dict[tuple[str, str], types.ModuleType | None] = {}


class _ModuleView(types.ModuleType):
    """A module that reads through to ``real`` except for a few overridden names."""

    def __init__(self, real: types.ModuleType, overrides: Mapping[str, Any]) -> None:
        super().__init__(real.__name__, real.__doc__)
        object.__setattr__(self, "_real", real)
        for key, value in overrides.items():
            object.__setattr__(self, key, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_real"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:
            object.__setattr__(self, name, value)
        else:
            setattr(object.__getattribute__(self, "_real"), name, value)


def _views(spec: NodeSpec, argv0: str) -> dict[str, types.ModuleType]:
    """``sys``, ``os`` and ``argparse`` as this node's code sees them:
    ``sys.argv`` and ``os.environ`` carry the node's own ``args`` and ``env``,
    and an ``ArgumentParser`` parses those args (argparse itself reads the
    process's ``sys.argv``, which in a kernel holds the kernel's own).

    (Threads the node starts keep its print capture through
    :mod:`~dora_notebook.core.capture`'s thread-start hook, not a view.)
    """
    if not spec.args and not spec.env and spec.kind == "operator":
        return {}
    environ = dict(os.environ)
    environ.update(spec.env)
    argv = [argv0, *spec.args]

    def getenv(key: str, default: str | None = None) -> str | None:
        return environ.get(key, default)

    return {
        "sys": _ModuleView(sys, {"argv": argv}),
        "os": _ModuleView(os, {"environ": environ, "getenv": getenv}),
        "argparse": _ModuleView(argparse, {"ArgumentParser": _parser_for(argv)}),
    }


def _parser_for(argv: list[str]) -> type[argparse.ArgumentParser]:
    """``argparse.ArgumentParser`` reading ``argv`` where it would read ``sys.argv``.

    >>> parser = _parser_for(["/bin/camera", "--width", "64"])()
    >>> _ = parser.add_argument("--width", type=int)
    >>> parser.parse_args().width, parser.prog
    (64, 'camera')
    """

    class ArgumentParser(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if not args:  # prog is the first positional parameter
                kwargs.setdefault("prog", os.path.basename(argv[0]))
            super().__init__(*args, **kwargs)

        def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
            return super().parse_known_args(argv[1:] if args is None else args, namespace)

        def parse_known_intermixed_args(self, args: Any = None, namespace: Any = None) -> Any:
            return super().parse_known_intermixed_args(
                argv[1:] if args is None else args, namespace
            )

    ArgumentParser.__qualname__ = ArgumentParser.__name__
    return ArgumentParser


def _node_dir(spec: NodeSpec) -> str:
    """Where the node's own modules live: its file's folder, or the working directory."""
    return str(spec.path.parent) if spec.path is not None else os.getcwd()


def _load_local(name: str, folder: str, table: dict[str, Any]) -> types.ModuleType | None:
    """Import module ``name`` from the node's folder with the node's builtins, if it is there.

    A helper module next to a node script then sees the same ``dora`` as the
    node (as under dora-rs, where both import the one installed package).
    """
    found = importlib.machinery.PathFinder.find_spec(name, [folder])
    if found is None or found.submodule_search_locations or not str(found.origin).endswith(".py"):
        return None
    module = importlib.util.module_from_spec(found)
    module.__dict__["__builtins__"] = table
    # Registered while it runs (a circular import of it must find it) and
    # afterwards (dataclasses and pickle look classes' modules up by name).
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        assert found.loader is not None
        found.loader.exec_module(module)
    except BaseException:
        if previous is None:
            del sys.modules[name]
        else:
            sys.modules[name] = previous
        raise
    return module


def forget_helpers() -> None:
    """Forget every helper module loaded so far: the next run loads them anew.

    ``%dora_reset`` calls it, so that a helper edited since is seen, as a
    new ``dora run`` would see it.
    """
    with _local_lock:
        for (_, name), module in _local_modules.items():
            if module is not None and sys.modules.get(name) is module:
                del sys.modules[name]
        _local_modules.clear()


def _builtins_for(
    spec: NodeSpec, argv0: str, dora: types.ModuleType, own: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The builtins of the node's code: ``__import__`` answers ``dora``, the
    views, and modules beside the node's file.

    ``own`` is ``(package, private name)`` for a package loaded afresh for the
    node (:mod:`.hub`): its imports of ``package`` get the private copy, and
    no folder's modules are looked up (a console script's folder is not the
    package's).
    """
    views = _views(spec, argv0)
    folder = None if own is not None else _node_dir(spec)
    # As dora starts a script, its folder comes first on the module path.
    if folder is not None and folder not in sys.path:
        sys.path.insert(0, folder)
    table = dict(builtins.__dict__)

    def node_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> types.ModuleType:
        if level == 0:
            if name == "dora":
                return dora
            if name.startswith("dora."):
                raise ImportError(
                    f"{name!r} is not available on the embedded engine; "
                    "`from dora import Node, DoraStatus` is"
                )
            top = name.partition(".")[0]
            if own is not None and top == own[0]:
                module = _real_import(own[1] + name[len(top) :], globals, locals, fromlist, 0)
                return module if fromlist else sys.modules[own[1]]
            if top in views and (name == top or not fromlist):
                if name != top:
                    _real_import(name, globals, locals, fromlist, level)
                return views[top]
            if folder is not None and "." not in name:
                # Under one lock, so that a module two nodes import at once is
                # never seen half-executed.
                with _local_lock:
                    key = (folder, name)
                    if key in _local_modules:
                        local = _local_modules[key]
                    else:
                        local = _load_local(name, folder, table)
                        _local_modules[key] = local
                if local is not None:
                    return local
        return _real_import(name, globals, locals, fromlist, level)

    table["__import__"] = node_import
    return table


def _source_of(spec: NodeSpec) -> str:
    if spec.source is not None:
        return spec.source
    assert spec.path is not None
    return spec.path.read_text(encoding="utf-8")


def load_module(
    spec: NodeSpec, dora: types.ModuleType, *, as_main: bool = False
) -> types.ModuleType:
    """Execute the node's source in a new module and return it.

    ``dora`` is what ``import dora`` gives the node's code.

    ``as_main`` sets ``__name__`` to ``"__main__"``, as a custom-node script
    run by dora sees it. Exceptions from the code propagate to the caller.
    """
    filename = spec.code_name()
    source = _source_of(spec)
    # Registering the text lets tracebacks show the lines of cell-defined code.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    name = f"dora_notebook.nodes.{spec.id}"
    module = types.ModuleType("__main__" if as_main else name)
    module.__file__ = filename
    module.__dict__["__builtins__"] = _builtins_for(spec, filename, dora)
    code = compile(source, filename, "exec")
    if not as_main:
        # dataclasses and typing look classes' modules up in sys.modules.
        sys.modules[name] = module
    exec(code, module.__dict__)
    return module


def load_operator_class(spec: NodeSpec, dora: types.ModuleType) -> type:
    """The ``Operator`` class of an operator node (from source, file or object)."""
    if spec.obj is not None:
        if not isinstance(spec.obj, type):
            raise TypeError(f"node {spec.id!r}: an operator object must be a class")
        return spec.obj
    module = load_module(spec, dora)
    operator = getattr(module, "Operator", None)
    if not isinstance(operator, type):
        raise TypeError(f"node {spec.id!r}: the operator code must define `class Operator`")
    return operator
