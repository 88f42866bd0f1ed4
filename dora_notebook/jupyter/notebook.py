"""The graph a notebook defines, read without running it (``dora-notebook export``).

Every code cell is read in order, as running the notebook top to bottom
would define the graph:

* ``%%dora_operator`` and ``%%dora_node`` cells add (or redefine) a node;
* ``%%dora_dataflow`` cells and ``%dora_dataflow PATH`` lines load a dora
  descriptor; relative paths resolve against the notebook's folder;
* a ``%dora_reset`` line forgets every node defined so far.

Magic lines are parsed with the magics' own argument definitions
(:mod:`dora_notebook.jupyter.arguments`). Other code is not run: a graph built
with the Python API inside cells is not seen. This module needs
``nbformat`` (installed with Jupyter) and never imports IPython.

>>> import nbformat, tempfile, pathlib
>>> nb = nbformat.v4.new_notebook(cells=[
...     nbformat.v4.new_code_cell("%load_ext dora_notebook"),
...     nbformat.v4.new_code_cell("%%dora_operator sink --inputs x=dora/timer/secs/1\\n"
...                               "class Operator:\\n    def on_event(self, e, c): pass\\n"),
... ])
>>> with tempfile.TemporaryDirectory() as folder:
...     path = pathlib.Path(folder, "demo.ipynb")
...     nbformat.write(nb, path)
...     [spec.id for spec in dataflow_from_notebook(path).graph]
['sink']
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..core.graph import descriptor_path
from ..dataflow import Dataflow
from ..errors import DataflowError, GraphError
from . import arguments

__all__ = ["dataflow_from_notebook", "read_notebook"]

_LINE_MAGIC = re.compile(r"^\s*%(dora_dataflow|dora_reset)(?:\s+(.*))?$")


def read_notebook(path: Path) -> Any:
    """The notebook at ``path`` (nbformat v4); one-line :class:`GraphError` if it can't be read."""
    try:
        import nbformat
    except ImportError:
        raise GraphError(
            "reading a notebook needs nbformat (pip install nbformat, or install Jupyter)"
        ) from None
    if not path.is_file():
        raise GraphError(f"notebook {str(path)!r} does not exist")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises many kinds, all meaning "not a notebook"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GraphError(f"{path.name} is not a readable notebook: {first}") from None


def dataflow_from_notebook(path: str | Path) -> Dataflow:
    """A :class:`~dora_notebook.Dataflow` holding the graph the notebook's magics define.

    Errors are one-line :class:`GraphError` naming the notebook and cell.
    """
    path = Path(path)
    notebook = read_notebook(path)
    folder = path.resolve().parent
    flow = Dataflow(echo=False)
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        try:
            _apply(flow, str(cell.get("source", "")), folder)
        except (DataflowError, arguments.ArgumentError) as exc:
            raise GraphError(f"{path.name}, cell {number}: {exc}") from None
    return flow


def _apply(flow: Dataflow, source: str, folder: Path) -> None:
    """Apply one code cell's graph magics to ``flow``."""
    lines = source.splitlines(keepends=True)
    while lines and not lines[0].strip():  # IPython skips leading empty lines
        lines.pop(0)
    if lines and lines[0].startswith("%%"):
        # As IPython reads a cell magic: name, then its line, then the body.
        name, _, line = lines[0][2:].rstrip().partition(" ")
        body = "".join(lines[1:])
        if name in ("dora_operator", "dora_node"):
            _define(flow, name, line, body)
        elif name == "dora_dataflow":
            if arguments.parse(name, line).path is not None:
                raise GraphError(
                    "give either a descriptor PATH (%dora_dataflow PATH) or YAML as the "
                    "body of %%dora_dataflow, not both"
                )
            _load(flow, body, folder)
        return
    for text in lines:
        found = _LINE_MAGIC.match(text.rstrip("\r\n"))
        if found is None:
            continue
        name, line = found.group(1), found.group(2) or ""
        if name == "dora_reset":
            flow.clear()
            continue
        args = arguments.parse(name, line)
        if args.path is None:
            raise GraphError("%dora_dataflow needs a descriptor PATH (or use %%dora_dataflow)")
        _load(flow, args.path, folder)


def _define(flow: Dataflow, name: str, line: str, body: str) -> None:
    args = arguments.parse(name, line)
    arguments.check_cell(name.removeprefix("dora_"), args.node_id, body)
    add = flow.add_operator if name == "dora_operator" else flow.add_node
    add(
        args.node_id,
        body,
        inputs=args.inputs,
        outputs=args.outputs,
        queue_size=args.queue_size,
        machine=args.machine,
        replace=args.node_id in flow.graph,  # re-running a cell redefines its node
    )


def _load(flow: Dataflow, source: str, folder: Path) -> None:
    """Load a descriptor given as a path or as YAML text, as the magic does."""
    path = descriptor_path(source)
    if path is not None:
        flow.load_yaml(folder / path)
    else:
        flow.load_yaml(source, base_dir=folder)
