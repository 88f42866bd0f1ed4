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

import asyncio
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.events import Event, check_metadata, error_event
from ..core.extensions import table_of
from ..core.runner import Runner, bound_runner
from ..errors import NodeError, UnsupportedError
from .raw import SampleHandler

if TYPE_CHECKING:
    import pyarrow as pa

    from .context import Context

__all__ = ["Node", "dora_engine_only"]

#: Where the dora engine is asked for, in the errors of what only it does.
DORA_ENGINE = "the dora engine (`%dora_start --engine dora`, `Dataflow.start(engine='dora')`)"

# The threads that have run each custom node's code, in order: a hot swap of
# the node runs its new code on a new thread, and that counts as a restart.
_starts: weakref.WeakKeyDictionary[Runner, list[threading.Thread]] = weakref.WeakKeyDictionary()
_starts_lock = threading.Lock()


def dora_engine_only(name: str, what: str, node_id: str | None = None) -> UnsupportedError:
    """The error for ``name``, which needs ``what``: only the dora engine has it.

    >>> print(dora_engine_only("Node.merge_external_events", "dora-rs's ROS 2 bridge", "n"))
    ... # doctest: +NORMALIZE_WHITESPACE
    node 'n': Node.merge_external_events needs dora-rs's ROS 2 bridge, which the
    embedded engine does not have: run the dataflow on the dora engine
    (`%dora_start --engine dora`, `Dataflow.start(engine='dora')`)
    """
    where = f"node {node_id!r}: " if node_id is not None else ""
    return UnsupportedError(
        f"{where}{name} needs {what}, which the embedded engine does not have: "
        f"run the dataflow on {DORA_ENGINE}"
    )


def _request_id() -> str:
    """A UUID v7 (time-ordered), as dora-rs 1.1 makes request ids."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


class Node:
    """A custom node's handle on the running dataflow.

    ``node_id`` is accepted for dora compatibility; inside a node's own
    thread it may be omitted (or must name that node).
    """

    def __init__(self, node_id: str | None = None, daemon_port: int | None = None) -> None:
        # node_id and daemon_port have no meaning in one process: the node
        # attaches to its own engine, whatever id and port a dynamic node would
        # have used (dora-rs does the same for a node its dataflow started, and
        # node-hub nodes pass their package's name: Node("opencv-video-capture")).
        runner = bound_runner()
        if runner is None:
            raise NodeError(
                "Node() works inside a custom node's code while its dataflow runs "
                "(a %%dora_node cell, add_node(), or a node script of a descriptor)"
            )
        self._runner = runner
        self._engine = runner.engine
        # The node's main thread (its code may call from others, asyncio's among them).
        self._thread = runner.thread or threading.current_thread()
        with _starts_lock:
            starts = _starts.setdefault(runner, [])
            if self._thread not in starts:
                starts.append(self._thread)
            self._restarts = starts.index(self._thread)
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

    # -- receiving in an asyncio loop -------------------------------------------

    async def recv_async(self, timeout: float | None = None) -> Event | None:
        """``await node.recv_async()``: the next event, as :meth:`next` gives it, without
        blocking the event loop.

        The wait runs in the loop's default executor; it takes nothing from
        the queue, so an ``await`` that is cancelled loses no event.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        cancelled = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            ready = await loop.run_in_executor(None, self._await_event, deadline, cancelled)
        except asyncio.CancelledError:
            with self._engine.lock:
                cancelled.set()
                self._runner.cond.notify_all()
            raise
        if ready:
            return self.next(timeout=0)  # cannot time out: an event or the end is there
        return error_event(f"Timeout event stream error: Receiver timed out after {timeout} s")

    def _await_event(self, deadline: float | None, cancelled: threading.Event) -> bool:
        """Until an event is queued or the stream ended (True), or the deadline (False)."""
        runner = self._runner
        with self._engine.lock:
            while not (runner.has_event() or runner.stop_delivered or runner.finished):
                remaining = None if deadline is None else deadline - time.monotonic()
                if cancelled.is_set() or (remaining is not None and remaining <= 0):
                    return False
                runner.waiting += 1
                try:
                    runner.cond.wait(remaining)
                finally:
                    runner.waiting -= 1
            return True

    # -- sending -------------------------------------------------------------------

    def send_output_raw(
        self, output_id: str, data_length: int, metadata: dict[str, Any] | None = None
    ) -> SampleHandler:
        """A :class:`~dora_notebook.api.raw.SampleHandler` of ``data_length`` bytes to fill,
        then sent on ``output_id`` without a copy.

        .. code-block:: python

            with node.send_output_raw("frame", 640 * 480 * 3, {"width": 640}) as buf:
                numpy.frombuffer(buf, numpy.uint8)[:] = pixels
        """
        if output_id not in self._runner.routes:
            self._engine.send(self._runner, output_id, b"")  # raises: names the outputs
        meta = check_metadata(metadata)

        def deliver(array: pa.Array) -> None:
            self._engine.send(self._runner, output_id, array, meta)

        return SampleHandler(data_length, deliver)

    def send_service_request(
        self, output_id: str, data: object, metadata: dict[str, Any] | None = None
    ) -> str:
        """Send a request on ``output_id``, its metadata given a fresh ``request_id``; returns it.

        The server gets it as an ``INPUT`` whose metadata has that
        ``request_id`` and answers with :meth:`send_service_response`,
        passing that metadata on; the answer arrives here as an ``INPUT``
        with the same ``request_id``, on the input wired to the server's
        response output (as in dora-rs 1.1, routing is the dataflow's).
        """
        meta = check_metadata(metadata)
        if "request_id" in meta:
            self.log_warn(
                "send_service_request: overwriting caller-provided 'request_id' with "
                "auto-generated value"
            )
        meta["request_id"] = request_id = _request_id()
        self._engine.send(self._runner, output_id, data, meta)
        return request_id

    def send_service_response(self, output_id: str, data: object, metadata: dict[str, Any]) -> None:
        """Answer a request: ``metadata`` is the request's (it carries its ``request_id``)."""
        meta = check_metadata(metadata)
        if "request_id" not in meta:
            self.log_warn(
                "send_service_response: metadata is missing 'request_id' "
                "\u2014 response will not be matched to a request"
            )
        self._engine.send(self._runner, output_id, data, meta)

    # -- logging -------------------------------------------------------------------

    def log(
        self,
        level: str,
        message: str,
        target: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        """A log record on the node's panel: ``level`` is error, warn, info, debug or trace."""
        self._runner.context.report_record(level, message, target, fields)

    def log_error(self, message: str) -> None:
        """``log("error", message)``."""
        self.log("error", message)

    def log_warn(self, message: str) -> None:
        """``log("warn", message)``."""
        self.log("warn", message)

    def log_info(self, message: str) -> None:
        """``log("info", message)``."""
        self.log("info", message)

    def log_debug(self, message: str) -> None:
        """``log("debug", message)``."""
        self.log("debug", message)

    def log_trace(self, message: str) -> None:
        """``log("trace", message)``."""
        self.log("trace", message)

    # -- this run of the node --------------------------------------------------------

    def is_restart(self) -> bool:
        """Whether this node's code runs again in this run: on the embedded engine, after
        a hot swap (redefining a running ``%%dora_node``); there is no restart policy."""
        return self._restarts > 0

    def restart_count(self) -> int:
        """How many times this node's code was started again in this run (hot swaps)."""
        return self._restarts

    def timestamp(self) -> datetime:
        """Now, as a UTC datetime that never goes backwards (dora reads its HLC).

        In a replay (``%dora_replay``) it is the recorded time of the event being handled.
        """
        return self._engine.now(self._runner)

    # -- the extension store ---------------------------------------------------------

    def extension_store(self, namespace: str, key: str, value: bytes) -> None:
        """Keep ``value`` under ``namespace/key`` for the dataflow's nodes, until this
        node's code exits or someone drops it (see :mod:`dora_notebook.core.extensions`)."""
        if not isinstance(value, bytes):
            raise TypeError(
                f"node {self._runner.id!r}: extension_store value must be bytes, "
                f"not {type(value).__name__}"
            )
        table_of(self._engine).store(self._runner.id, self._thread, namespace, key, value)

    def extension_load(self, namespace: str, key: str, remove: bool = False) -> bytes | None:
        """The value under ``namespace/key``, or None; ``remove=True`` drops it too."""
        return table_of(self._engine).load(self._runner.id, self._thread, namespace, key, remove)

    def extension_drop(self, namespace: str, key: str) -> None:
        """Drop ``namespace/key`` (absent is fine); everyone who touched it is told."""
        table_of(self._engine).drop(namespace, key)

    def drain_dropped_extension_keys(self, namespace: str) -> list[str]:
        """The keys of ``namespace`` this node touched that were dropped since the last call."""
        return table_of(self._engine).drain(self._runner.id, namespace)

    # -- what only the dora engine has -------------------------------------------------

    def merge_external_events(self, subscription: object) -> None:
        """Raises: merging ROS 2 events needs dora-rs's ROS 2 bridge (the dora engine)."""
        raise dora_engine_only(
            "Node.merge_external_events", "dora-rs's ROS 2 bridge", self._runner.id
        )

    def register_tensor_pool(self, tensor_info: dict[str, Any], device: str = "cpu") -> pa.Array:
        """Raises: see :meth:`_tensor_pool`."""
        raise self._tensor_pool("register_tensor_pool")

    def write_tensor_pool(self, tensor_pool_id: pa.Array, tensor_info: dict[str, Any]) -> None:
        """Raises: see :meth:`_tensor_pool`."""
        raise self._tensor_pool("write_tensor_pool")

    def read_tensor_pool(self, tensor_pool_id: pa.Array) -> dict[str, Any]:
        """Raises: see :meth:`_tensor_pool`."""
        raise self._tensor_pool("read_tensor_pool")

    def free_tensor_pool(self, tensor_pool_id: pa.Array) -> None:
        """Raises: see :meth:`_tensor_pool`."""
        raise self._tensor_pool("free_tensor_pool")

    def _tensor_pool(self, method: str) -> UnsupportedError:
        """The tensor pool is an opt-in feature of dora-rs builds; the dora-rs 1.1.0
        wheel on PyPI is built without it (its ``Node`` has none of these methods)."""
        return UnsupportedError(
            f"node {self._runner.id!r}: Node.{method} needs dora-rs's tensor pool, which the "
            "embedded engine does not have (send_output already hands receivers the very "
            "array sent) and which the dora-rs 1.1.0 wheel on PyPI lacks too (built without "
            f"the `tensor-pool` feature): run on {DORA_ENGINE} with a dora-rs built with it"
        )
