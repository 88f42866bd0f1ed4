"""A graph's ``build:`` commands, run the way ``dora build`` runs them.

Each non-blank line of a node's ``build:`` is one command: split like a
shell splits words (no shell runs it), started in the folder of the
descriptor that declared it, with the node's ``env`` added to the
environment. The first command that fails ends the build. Nothing runs a
build but :func:`run_build` (``%dora_build``, ``dora-notebook run --build``):
starting a graph only lists the commands it did not run.

>>> from .graph import NodeSpec
>>> g = Graph()
>>> g.add(NodeSpec("a", "node", source="pass", extra={"build": "pip install -e ."}))
>>> build_commands(g)
[('a', 'pip install -e .')]
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from ..errors import GraphError
from .graph import Graph, NodeSpec

__all__ = ["build_commands", "not_built_note", "run_build"]


def _build_of(spec: NodeSpec) -> str | None:
    build = spec.extra.get("build")
    operator = spec.extra.get("operator")
    if build is None and isinstance(operator, dict):
        build = operator.get("build")
    return build if isinstance(build, str) and build.strip() else None


def build_commands(graph: Graph) -> list[tuple[str, str]]:
    """``(node id, build text)`` of every node that has a ``build:``, in graph order."""
    return [(spec.id, build) for spec in graph if (build := _build_of(spec)) is not None]


def not_built_note(graph: Graph, how: str = "%dora_build") -> str:
    """One line naming the ``build:`` commands a start does not run, or ``""``.

    >>> g = Graph()
    >>> g.add(NodeSpec("a", "node", source="pass", extra={"build": "make\\nmake install"}))
    >>> not_built_note(g)
    'build: commands not run (run them with %dora_build): a: make && make install'
    """
    commands = build_commands(graph)
    if not commands:
        return ""
    listed = "; ".join(f"{node}: {' && '.join(_lines(text))}" for node, text in commands)
    return f"build: commands not run (run them with {how}): {listed}"


def _lines(build: str) -> list[str]:
    return [line for line in build.splitlines() if line.strip()]


def run_build(graph: Graph, echo: Callable[[str], None] = print) -> int:
    """Run every node's ``build:``; return how many commands ran.

    Raises :class:`GraphError` naming the node and command that failed.
    """
    ran = 0
    for spec in graph:
        build = _build_of(spec)
        if build is None:
            continue
        folder = spec.build_dir or Path.cwd()
        echo(f"{spec.id}: INFO     running build command: `{build}` in {folder}")
        env = {**os.environ, **spec.env}
        for line in _lines(build):
            try:
                argv = shlex.split(line)
            except ValueError as exc:
                raise GraphError(f"node {spec.id!r}: build: {line!r}: {exc}") from None
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=folder,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            except OSError as exc:
                raise GraphError(
                    f"node {spec.id!r}: build: cannot run {line!r}: {exc.strerror}"
                ) from None
            assert proc.stdout is not None
            with proc:
                for out in proc.stdout:
                    echo(f"{spec.id}: stdout   {out.rstrip()}")
            ran += 1
            if proc.returncode != 0:
                raise GraphError(
                    f"node {spec.id!r}: build command {line!r} exited with status {proc.returncode}"
                )
    return ran
