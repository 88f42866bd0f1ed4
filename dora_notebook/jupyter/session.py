"""The notebook side of the kernel's one dataflow: its panels, UI pump and graph view.

The magics call these functions; they hold no logic of the engine, only the
glue between :func:`~dora_notebook.current` and the widgets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.loader import forget_helpers
from ..dataflow import Dataflow, current
from .widgets import GraphView, NodePanel, UIPump

__all__ = [
    "current",
    "define",
    "export",
    "export_note",
    "graph_view",
    "load_yaml",
    "panel",
    "pump",
    "reset",
    "shutdown",
    "start",
    "stop",
    "summary",
]

_pump: UIPump | None = None


def pump() -> UIPump:
    """The kernel's one UI pump; it redraws while the graph runs or a node is blocked."""
    global _pump
    if _pump is None:
        _pump = UIPump(lambda: current().running or bool(current().blocked()))
    return _pump


def panel(node_id: str) -> NodePanel:
    return pump().panel(current().node(node_id))


def graph_view() -> GraphView:
    view = GraphView(current(), max_hz=2.0)
    pump().track(view)
    return view


def define(
    kind: str,
    node_id: str,
    source: str,
    inputs: list[str],
    outputs: list[str],
    queue_size: int | None,
    machine: str | None,
) -> str | None:
    """Add or redefine a node from a cell; return a note for the user, if any."""
    flow = current()
    add = flow.add_operator if kind == "operator" else flow.add_node
    engine = flow.engine
    joins_later = flow.running and engine is not None and engine.counters(node_id) is None
    add(
        node_id,
        source,
        inputs=inputs,
        outputs=outputs,
        queue_size=queue_size,
        machine=machine,
        replace=node_id in flow.graph,
    )
    if flow.running:
        pump().start()
    if joins_later:
        return (
            f"{node_id!r} is defined; the running graph does not include it yet: "
            "%dora_stop then %dora_start to run it"
        )
    return None


def load_yaml(source: str) -> list[str]:
    """Load a descriptor from a path or YAML text; relative files resolve against the cwd."""
    return current().load_yaml(source)


def export(directory: str, force: bool = False) -> list[Path]:
    """Export the kernel's graph to ``directory`` (relative to the working directory)."""
    from ..dora_rs.export import export as export_graph

    flow = current()
    return export_graph(flow.graph, Path(directory), top=flow.descriptor_extra(), force=force)


def export_note(written: list[Path]) -> str:
    """What ``%dora_export`` prints: the files written and how to run them."""
    from ..dora_rs.export import summary

    return summary(written, current().graph)


def start(engine: str = "embedded", **options: Any) -> None:
    """Start the kernel's graph on ``engine`` (``dora``: on dora-rs, see Dataflow.start)."""
    current().start(engine=engine, **options)
    pump().start()


def stop() -> list[str]:
    """Stop the graph; return the nodes that did not stop in time.

    A node left blocked in a C call shows so on its panel until the call returns.
    """
    flow = current()
    try:
        return flow.stop()
    finally:  # an interrupt too: the stop completed, the pump follows it
        pump().stop()
        if flow.blocked():
            pump().start()


def reset() -> list[str]:
    """Stop the graph and forget every node and panel, and the helper modules they loaded."""
    stuck = current().clear()
    forget_helpers()
    pump().stop()
    pump().forget()
    return stuck


def summary() -> str:
    """One line per node: status and counts (stable text for stored outputs)."""
    flow: Dataflow = current()
    return "\n".join(flow.node(spec.id).summary() for spec in flow.graph)


def shutdown() -> None:
    """Stop everything this module started (kernel shutdown, extension unload)."""
    global _pump
    current().stop()
    if _pump is not None:
        _pump.stop()
        _pump = None
