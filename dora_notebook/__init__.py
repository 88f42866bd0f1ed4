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
from .context import Context
from .dataflow import Dataflow
from .errors import DataflowError, GraphError, NodeError
from .events import DoraStatus
from .node import Node
from .observe import LogLine, NodeState, Report

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
]
