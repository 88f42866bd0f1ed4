"""The ``Node`` API of dora-rs custom nodes, on the embedded engine.

Inside a ``%%dora_node`` cell or a node script (run by the engine in a thread
of its own), ``Node()`` attaches to that node:

.. code-block:: python

    from dora import Node

    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            node.send_output("out", event["value"], event["metadata"])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..core.events import Event
from ..core.runner import bound_runner
from ..errors import NodeError

if TYPE_CHECKING:
    from .context import Context

__all__ = ["Node"]


class Node:
    """A custom node's handle on the running dataflow.

    ``node_id`` is accepted for dora compatibility; inside a node's own
    thread it may be omitted (or must name that node).
    """

    def __init__(self, node_id: str | None = None) -> None:
        runner = bound_runner()
        if runner is None:
            raise NodeError(
                "Node() works inside a custom node's code while its dataflow runs "
                "(a %%dora_node cell, add_node(), or a node script of a descriptor)"
            )
        if node_id is not None and node_id != runner.id:
            raise NodeError(f"Node({node_id!r}) called from the code of node {runner.id!r}")
        self._runner = runner
        self._engine = runner.engine
        self._engine.node_ready(runner)

    def __repr__(self) -> str:
        return f"Node({self._runner.id!r})"

    @property
    def context(self) -> Context:
        """The node's oocana-style context (previews, progress, logs, outputs)."""
        return self._runner.context

    def next(self, timeout: float | None = None) -> Event | None:
        """The next event; an ``ERROR`` event after ``timeout`` seconds; ``None`` once closed."""
        return self._engine.next_event(self._runner, timeout)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        event = self.next()
        if event is None:
            raise StopIteration
        return event

    def try_recv(self) -> Event | None:
        """The next event if one is queued, else ``None`` (never blocks)."""
        with self._engine.lock:
            return self._runner.take()

    def drain(self) -> list[Event]:
        """Every event queued right now, oldest first.

        Raises ``RuntimeError`` once the event stream has ended, as dora does.
        """
        events = []
        with self._engine.lock:
            if self._runner.stop_delivered or self._runner.finished:
                raise NodeError("Could not drain events. Channel is closed")
            while (event := self._runner.take()) is not None:
                events.append(event)
        return events

    def is_empty(self) -> bool:
        """True when no event is queued."""
        with self._engine.lock:
            return not self._runner.has_event()

    def send_output(
        self, output_id: str, data: object, metadata: dict[str, Any] | None = None
    ) -> None:
        """Send ``data`` (``bytes`` or a pyarrow Array) on ``output_id``."""
        self._engine.send(self._runner, output_id, data, metadata)

    def dataflow_descriptor(self) -> dict[str, Any]:
        """The whole dataflow as a dora descriptor mapping."""
        return self._engine.descriptor

    def node_config(self) -> dict[str, Any]:
        """This node's inputs and outputs, as dora gives them."""
        spec = self._runner.spec
        return {
            "inputs": {i: s.to_yaml() for i, s in spec.inputs.items()},
            "outputs": list(spec.outputs),
        }

    def dataflow_id(self) -> str:
        """The id of this run of the dataflow."""
        return self._engine.job_id
