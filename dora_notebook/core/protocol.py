"""The one interface every engine implements, so nothing above asks which runs.

:class:`~dora_notebook.Dataflow` builds an engine by name (``"embedded"``:
:class:`~dora_notebook.core.engine.EmbeddedEngine`; ``"dora"``:
:class:`~dora_notebook.dora_rs.engine.DoraEngine`) and from then on only
talks to it through :class:`Engine`; the magics and widgets see the
:class:`~dora_notebook.Dataflow` alone.

>>> EdgeCounts(delivered=3, dropped=1)
EdgeCounts(delivered=3, dropped=1, queued=0, note='', latency=None)
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .events import Event
from .graph import NodeSpec
from .record import Recording
from .tap import Tap

__all__ = ["Counters", "EdgeCounts", "Engine"]


class Counters(Protocol):
    """A node's live counters, as a panel reads them (read without a lock: ints).

    ``blocked`` says where the node's code is still blocked after :meth:`Engine.stop`
    gave up on it (``still blocked in time.sleep, line 4``), until that code returns;
    ``threads_left`` counts the threads the node's code started that still run
    (a stop cannot end them).
    """

    status: str
    received: int
    sent: int
    dropped: int

    @property
    def blocked(self) -> str | None: ...

    @property
    def threads_left(self) -> int: ...

    @property
    def busy(self) -> float | None:
        """Seconds the node's code has spent handling events so far, or None where the
        engine does not measure it; a view's busy share is its growth over wall time."""


@dataclass(frozen=True)
class EdgeCounts:
    """One input's counters: what reached it, what its queue dropped, what waits.

    ``note`` says what the numbers mean where an engine counts otherwise than
    the embedded one (which counts each input's queue itself), or why one is 0;
    ``queued`` is None where the engine cannot see the queue.
    ``latency`` is the median, in seconds, of the send-to-receive times of the
    input's latest messages (the embedded engine keeps 64), None where the
    engine does not report it (``note`` then says so) or nothing came yet.
    """

    delivered: int = 0
    dropped: int = 0
    queued: int | None = 0
    note: str = ""
    latency: float | None = None


@runtime_checkable
class Engine(Protocol):
    """One run of one graph. Made by the :class:`~dora_notebook.Dataflow`, started once."""

    #: The name it is registered under (``Dataflow.start(engine=NAME)``).
    name: str
    #: What :meth:`stop` does to a node that did not stop in time, for messages.
    stuck_fate: str
    #: Set once every node has finished and the run is cleaned up.
    done: threading.Event

    def start(self) -> None:
        """Start the run in the background and return at once."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends; False if ``timeout`` seconds passed first."""

    def stop(self, timeout: float = 2.0) -> list[str]:
        """End the run within about ``timeout`` seconds; return the nodes that were stuck."""

    def reload(self, spec: NodeSpec) -> Future[str | None]:
        """Hot-swap a live node to ``spec``; the future holds an error text, or None.

        An engine that cannot hot-swap at all sets a
        :class:`~dora_notebook.errors.ReloadError` on the future instead,
        whose one line says what to do.
        """

    def live(self, node_id: str) -> bool:
        """Whether ``node_id`` is part of this run and has not finished."""

    def counters(self, node_id: str) -> Counters | None:
        """The live counters of ``node_id`` in this run (None if it is not part of it)."""

    def tap(self, node_id: str, output_id: str, tap: Tap) -> None:
        """Record what ``node_id`` sends on ``output_id`` into ``tap`` from now on."""

    def record(self, recording: Recording) -> None:
        """Hand ``recording`` what is sent on the outputs it wants from now on.

        Before :meth:`start`, from the first message. It replaces a recording
        given before, and is stopped when the run ends.
        """

    def edge(self, node_id: str, input_id: str) -> EdgeCounts:
        """The counters of one input of one node (zeros where the engine cannot tell)."""

    def param(self, node_id: str, event: Event) -> bool:
        """Give running node ``node_id`` a ``PARAM_UPDATE`` or ``PARAM_DELETED`` event.

        Before :meth:`start`, the node gets it when the run starts, before any
        input. False if the node does not run (any more); an engine that
        cannot deliver it to that node raises
        :class:`~dora_notebook.errors.DataflowError` in one line.
        """
