"""dora-notebook: build dora-rs dataflows interactively, with an embedded
dora-compatible engine.

>>> import dora_notebook
>>> flow = dora_notebook.Dataflow()
>>> spec = flow.add_operator("noop", "class Operator:\\n    def on_event(self, e, send): pass")
>>> spec.id, spec.kind
('noop', 'operator')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .api.context import Context
    from .api.node import Node
    from .core.events import DoraStatus
    from .core.observe import LogLine, NodeState, Report
    from .core.record import Recording
    from .core.replay import ReplayResult
    from .dataflow import Dataflow, current
    from .errors import DataflowError, GraphError, NodeError

# Each name is imported on first use (PEP 562): an exported node imports
# ``dora_notebook.dora_rs.shim``, which must not load the engine, pandas or Jupyter.
_LAZY = {
    "Context": "api.context",
    "Dataflow": "dataflow",
    "DataflowError": "errors",
    "DoraStatus": "core.events",
    "GraphError": "errors",
    "LogLine": "core.observe",
    "Node": "api.node",
    "NodeError": "errors",
    "NodeState": "core.observe",
    "Recording": "core.record",
    "ReplayResult": "core.replay",
    "Report": "core.observe",
    "current": "dataflow",
}

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
    "Recording",
    "ReplayResult",
    "Report",
    "__version__",
    "current",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


#: What the notebook layer needs beyond the base install: the ``[jupyter]`` extra.
_JUPYTER_EXTRA = ("ipykernel", "ipywidgets", "matplotlib", "pandas")


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext dora_notebook``: register the dora magics."""
    import atexit
    import importlib.util

    missing = [name for name in _JUPYTER_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        from .errors import MissingExtraError

        raise MissingExtraError(
            f"dora-notebook's notebook layer needs the [jupyter] extra ({', '.join(missing)} "
            "missing): pip install 'dora-notebook[jupyter]'",
            name=missing[0],
        )
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
