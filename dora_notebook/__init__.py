"""dora-notebook: build dora-rs dataflows interactively, with an embedded
dora-compatible engine.

>>> import dora_notebook
>>> flow = dora_notebook.Dataflow()
>>> spec = flow.add_operator("noop", "class Operator:\\n    def on_event(self, e, send): pass")
>>> spec.id, spec.kind
('noop', 'operator')
"""

from __future__ import annotations

from ._version import __version__
from .api.context import Context
from .api.node import Node
from .core.events import DoraStatus
from .core.observe import LogLine, NodeState, Report
from .dataflow import Dataflow, current
from .errors import DataflowError, GraphError, NodeError

__all__ = [
    "Context",
    "Dataflow",
    "DataflowError",
    "DoraStatus",
    "GraphError",
    "LogLine",
    "Node",
    "NodeError",
    "NodeState",
    "Report",
    "__version__",
    "current",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext dora_notebook``: register the dora magics."""
    import atexit

    from .jupyter import session
    from .jupyter.magics import DoraMagics

    ipython.register_magics(DoraMagics)  # type: ignore[attr-defined]
    # Threads of a running graph must not outlive the kernel.
    atexit.register(session.shutdown)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext dora_notebook``: stop the graph and the UI thread."""
    import atexit

    from .jupyter import session

    session.shutdown()
    atexit.unregister(session.shutdown)
