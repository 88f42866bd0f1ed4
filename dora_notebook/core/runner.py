"""The live state of one node during a run: its input queues and its counters.

Every method here runs with the engine's lock held. Each input has a bounded
queue that drops its oldest message when full, as dora does, counts the
drop and logs dora's warning for it (:meth:`Runner.discard`); close markers
queue behind an input's last message, so INPUT_CLOSED comes after
everything that was sent.
"""

from __future__ import annotations

import threading
import time
import types
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from . import capture
from .events import Event, closed_event, input_event, stop_event
from .graph import NodeSpec
from .logs import LogRecord

if TYPE_CHECKING:
    import logging
    from datetime import datetime

    from .clock import Clock
    from .tap import Sink

__all__ = [
    "LATENCY_RING",
    "Control",
    "Host",
    "InputQueue",
    "Lent",
    "Message",
    "NodeApi",
    "Runner",
    "StopRequested",
    "bind_runner",
    "bound_runner",
    "closed_marker",
    "latency_p50",
]


class NodeContext(Protocol):
    """The context a runner hands its node: told of each event before the node sees it,
    and given the records its code logs with Python's ``logging``."""

    def _set_event(self, event: Event) -> None: ...
    def _metadata(self) -> dict[str, Any] | None: ...
    def log_record(self, record: logging.LogRecord) -> None: ...


class NodeApi(Protocol):
    """What node code is given, supplied by the layer above the engine.

    The engine cannot import that layer (:mod:`dora_notebook.api`), so the
    caller passes it in: ``dora`` is what ``import dora`` gives node code,
    ``context(runner)`` builds a node's context.
    """

    dora: types.ModuleType

    def context(self, runner: Runner) -> NodeContext: ...


class Host(Protocol):
    """What runners, and node code through them, may ask of their engine.

    :class:`~dora_notebook.core.engine.Engine` implements it; runners and the
    node API are typed against this, so they never import the engine.
    """

    lock: threading.Lock
    api: NodeApi
    runners: dict[str, Runner]
    descriptor: dict[str, Any]
    job_id: str
    clock: Clock
    room_wanted: int

    def next_seq(self) -> int: ...
    def made_room(self) -> None: ...
    def now(self, runner: Runner) -> datetime: ...
    def replay_routes(self, source: str) -> list[tuple[Runner, InputQueue]]: ...
    def emit(self, node_id: str, kind: str, data: Any) -> None: ...
    def wake(self, runner: Runner) -> None: ...
    def timer_routes(self, spec: str) -> list[tuple[Runner, InputQueue]]: ...
    def log_routes(self, source: str) -> list[tuple[Runner, InputQueue]]: ...
    def send(
        self,
        runner: Runner,
        output_id: str,
        data: object,
        metadata: dict[str, Any] | None = None,
        convert: bool = True,
    ) -> None: ...
    def node_ready(self, runner: Runner) -> None: ...
    def next_event(self, runner: Runner, timeout: float | None) -> Event | None: ...
    def node_error(self, runner: Runner, error: str) -> None: ...
    def finish_node(self, runner: Runner) -> None: ...
    def blocked(self, runner: Runner) -> str | None: ...


#: The warning dora-rs 1.1 logs for each message a full input queue drops, and its target.
DISCARDING = "Discarding event for input `{}` due to queue size limit"
_SCHEDULER = "dora_node_api::event_stream::scheduler"


class _Bound(threading.local):
    runner: Runner | None = None


_bound = _Bound()


def bind_runner(runner: Runner | None) -> None:
    """Make ``Node()`` in the calling thread attach to ``runner`` (engine use)."""
    _bound.runner = runner


def bound_runner() -> Runner | None:
    """The node whose code the calling thread runs on the embedded engine, if any."""
    return _bound.runner


class StopRequested(BaseException):
    """Raised inside node code that did not return when the graph was stopped."""


class Closed:
    """Marks the end of an input; queued behind that input's last message."""

    __slots__ = ("seq",)

    def __init__(self, seq: int) -> None:
        self.seq = seq


class Message:
    """A queued message; ``sent`` is its ``time.monotonic_ns()`` at send (0: unknown)."""

    __slots__ = ("metadata", "sent", "seq", "value")

    def __init__(self, value: pa.Array, metadata: dict[str, Any], seq: int, sent: int = 0) -> None:
        self.value = value
        self.metadata = metadata
        self.seq = seq
        self.sent = sent


#: How many of an input's latest send-to-receive times it keeps (a power of two, for ``&``).
LATENCY_RING = 64


def latency_p50(ring: list[int]) -> float | None:
    """The median, in seconds, of the times kept in an input's ring (-1: a free slot).

    >>> latency_p50([2_000_000, 1_000_000, 3_000_000, -1]), latency_p50([-1, -1])
    (0.002, None)
    """
    times = sorted(t for t in list(ring) if t >= 0)  # a copy: the ring changes as we read
    return times[len(times) // 2] / 1e9 if times else None


class Control:
    """An event of no input (a parameter change), queued in the node's control queue.

    It is never dropped: only messages count against a queue's capacity.
    """

    __slots__ = ("event", "seq")

    def __init__(self, event: Event, seq: int) -> None:
        self.event = event
        self.seq = seq


#: An item :meth:`Runner.lend` took for the runtime thread: (arrival number,
#: operator, its input queue, the message or close marker); a due STOP is
#: (-1, operator, None, its reason).
Lent = tuple[int, "Runner", "InputQueue | None", "Message | Closed | str"]


class InputQueue:
    """The bounded queue of one input; its counters are the edge's counters."""

    __slots__ = (
        "capacity",
        "closed",
        "dropped",
        "input_id",
        "items",
        "latency",
        "lent",
        "received",
        "source",
        "timer",
    )

    def __init__(self, input_id: str, source: str, capacity: int) -> None:
        self.input_id = input_id
        self.source = source
        # Ticks and log records are nobody's messages (a recording played is).
        self.timer = source.startswith("dora/") and not source.startswith("dora/replay/")
        self.capacity = capacity
        self.items: deque[Message | Closed] = deque()
        # Items the runtime thread took with Runner.lend and has not handled yet.
        self.lent = 0
        self.received = 0
        self.dropped = 0
        self.closed = False
        # The latest send-to-receive times in ns, slot ``received % LATENCY_RING``: one
        # store per message; the UI takes the median when it draws (latency_p50).
        self.latency = [-1] * LATENCY_RING


def closed_marker(engine: Host) -> Closed:
    """A close marker numbered in the engine's arrival order."""
    return Closed(engine.next_seq())


class Runner:
    """The live state of one node during a run."""

    # Slots, not a __dict__: CPython 3.11 shares an instance dict's keys only up to 30
    # attributes, and past that every attribute access on the hot path loses its
    # specialisation (a 30th attribute cost the benchmark chain 4,500 instructions a
    # message, callgrind).
    __slots__ = (
        "__weakref__",  # the node API keeps per-runner state in weak mappings
        "busy_ns",
        "busy_since",
        "cause",
        "cond",
        "context",
        "control",
        "dropped",
        "engine",
        "error",
        "finished",
        "id",
        "instance",
        "interrupted",
        "is_operator",
        "open_inputs",
        "pending",
        "queues",
        "ready",
        "received",
        "reloading",
        "routes",
        "scheduled",
        "sent",
        "sink",
        "spec",
        "status",
        "stop_delivered",
        "stop_reason",
        "taps",
        "thread",
        "waiting",
    )

    def __init__(self, engine: Host, spec: NodeSpec) -> None:
        self.engine = engine
        self.spec = spec
        self.id = spec.id
        self.is_operator = spec.kind == "operator"
        self.queues = {i: InputQueue(i, s.source, s.capacity) for i, s in spec.inputs.items()}
        # Events of no input (Control), in the same arrival order as the inputs' messages.
        self.control = InputQueue("", "", 0)
        # Where each output goes, filled in by the engine once every runner exists.
        self.routes: dict[str, list[tuple[Runner, InputQueue]]] = {o: [] for o in spec.outputs}
        self.pending = 0  # items queued over all inputs
        # Output id -> what takes its messages (a tap, a recording), for such outputs only.
        self.taps: dict[str, Sink] = {}
        self.open_inputs = len(self.queues)
        self.status = "defined"
        self.error: str | None = None
        self.received = 0
        self.sent = 0
        self.dropped = 0
        # Handling time in ns (see busy): what is closed, and when the open stretch began.
        self.busy_ns = 0
        self.busy_since = 0
        # The number of the input message the node's code is handling (-1: none), which
        # a recording keeps beside what it sends: an operator's in on_event, a custom
        # node's the last one next() returned.
        self.cause = -1
        self.ready = False
        self.finished = False
        # Engine.stop() gave up waiting for its code: its next send raises StopRequested.
        self.interrupted = False
        self.stop_reason: str | None = None
        self.stop_delivered = False
        self.scheduled = False
        # Threads of the node's code waiting for an event: more than one while an
        # ``await recv_async()`` that was cancelled has not returned yet.
        self.waiting = 0
        self.instance: Any = None
        self.thread: threading.Thread | None = None
        self.cond = threading.Condition(engine.lock)
        self.context = engine.api.context(self)
        self.sink = capture.LineSink(self._log, self.context.log_record)
        self.reloading = False

    def _log(self, line: str, stdio: str) -> None:
        self.engine.emit(self.id, "log", {"line": line, "stdio": stdio})

    def __repr__(self) -> str:
        return f"<{self.spec.kind} {self.id}: {self.status}>"

    @property
    def blocked(self) -> str | None:
        """Where the node's code is still blocked after a stop gave up on it, or None."""
        return self.engine.blocked(self)

    @property
    def busy(self) -> float:
        """Seconds the node's code has spent handling events so far (read without a lock).

        An operator's: the time in ``on_event``. A custom node's: the time from
        each event ``next()`` returned to the next call of ``next()`` (its wait
        for an event is not counted; nor is code before its first ``next()``).
        """
        since = self.busy_since
        return (self.busy_ns + (time.monotonic_ns() - since if since else 0)) / 1e9

    @property
    def threads_left(self) -> int:
        """How many threads the node's code started are still alive (pool workers too)."""
        return len(self.sink.running_threads())

    # All of the following run with engine.lock held.

    def has_event(self) -> bool:
        if self.stop_reason is not None:
            return not self.stop_delivered
        return self.pending > 0

    def take(self) -> Event | None:
        """The next event in arrival order, or None when nothing is queued."""
        self.cause = -1
        if self.stop_reason is not None:
            if self.stop_delivered:
                return None  # nothing follows a STOP
            self.stop_delivered = True
            return stop_event(self.stop_reason)
        if not self.pending:
            return None
        best: InputQueue | None = None
        for queue in self.queues.values():
            if queue.items and (best is None or queue.items[0].seq < best.items[0].seq):
                best = queue
        control = self.control.items
        if control and (best is None or control[0].seq < best.items[0].seq):
            self.pending -= 1
            event = control.popleft().event
            self.context._set_event(event)
            return event
        assert best is not None
        item = best.items.popleft()
        self.pending -= 1
        if isinstance(item, Closed):
            if self.close_input(best) and not self.is_operator and self.stop_reason is None:
                self.stop_reason = "ALL_INPUTS_CLOSED"
            event = closed_event(best.input_id)
        else:
            best.received += 1
            self.received += 1
            if self.engine.room_wanted:
                self.engine.made_room()
            if item.sent:
                best.latency[best.received & (LATENCY_RING - 1)] = time.monotonic_ns() - item.sent
            self.cause = item.seq
            event = input_event(best.input_id, item.value, item.metadata)
        self.context._set_event(event)
        return event

    def close_input(self, queue: InputQueue) -> bool:
        """Mark ``queue``'s input closed (its INPUT_CLOSED goes out); True if it was the last."""
        queue.closed = True
        self.open_inputs -= 1
        return self.open_inputs == 0

    def lend(self, batch: list[Lent]) -> None:
        """Append everything queued for this operator to ``batch``, for the runtime thread.

        A due STOP goes alone, before any input. Each queued item leaves its
        queue as ``(seq, runner, queue, item)``; a message stays counted in
        ``queue.lent`` until the runtime thread hands it to the operator,
        drops it (:meth:`outrun`), or gives it back with :meth:`put_back`.
        The runtime thread counts it received, and builds its event, when it
        hands it over.
        """
        if self.stop_reason is not None:
            if not self.stop_delivered:
                self.stop_delivered = True
                batch.append((-1, self, None, self.stop_reason))
            return
        if not self.pending:
            return
        self.pending = 0
        for queue in self.queues.values():
            items = queue.items
            if len(items) == 1:  # the usual case when the operator keeps up
                item = items.popleft()
                queue.lent += type(item) is Message
                batch.append((item.seq, self, queue, item))
            elif items:
                queue.lent += len(items) - (type(items[-1]) is Closed)
                batch.extend([(item.seq, self, queue, item) for item in items])
                items.clear()
        control = self.control
        if control.items:
            batch.extend([(item.seq, self, control, item) for item in control.items])
            control.items.clear()

    def outrun(self, queue: InputQueue) -> bool:
        """Whether the lent message about to be handed out would have been dropped
        had it stayed queued: counted as dropped if so.

        Called after ``queue.lent`` stopped counting it: the lent messages still
        to come and the messages queued since are all newer.
        """
        items = queue.items
        queued = len(items) - (bool(items) and type(items[-1]) is Closed)
        if queue.lent + queued < queue.capacity:
            return False
        self.discard(queue)
        return True

    def put_back(self, queue: InputQueue | None, item: Message | Closed | str) -> None:
        """Return a lent item the runtime thread did not handle; newest first.

        The queue then holds what it would hold had the item never left it:
        a message that no longer fits is dropped (it is the oldest), and one
        lent by a node that has since finished counts as dropped, as
        :meth:`clear` counts what was queued.
        """
        if queue is None:  # a STOP: it is due again
            self.stop_delivered = False
            return
        message = type(item) is Message
        queue.lent = 0
        if self.finished:
            if message and not queue.timer:
                queue.dropped += 1
                self.dropped += 1
            return
        if message and len(queue.items) >= queue.capacity:
            self.discard(queue)
            return
        queue.items.appendleft(item)  # type: ignore[arg-type]
        self.pending += 1

    def push(self, queue: InputQueue, item: Message | Closed) -> None:
        if self.finished:
            # Nobody will read it: a message a node sent to a finished node counts as
            # dropped (a timer's tick is nobody's message, so it does not).
            if type(item) is Message and not queue.timer:
                queue.dropped += 1
                self.dropped += 1
            return
        items = queue.items
        if len(items) >= queue.capacity and type(item) is Message:
            # Drop the oldest message of this input (never a close marker:
            # nothing is pushed after one).
            items.popleft()
            self.discard(queue)
        else:
            self.pending += 1
        items.append(item)
        if not self.scheduled:
            self.engine.wake(self)

    def discard(self, queue: InputQueue) -> None:
        """Count a message that ``queue`` dropped because it was full, and log it as dora does.

        dora-rs 1.1's node API logs a WARN record for every such drop (measured
        with ``dora run``: one per drop, none held back), which ``dora run``
        prints, ``min_log_level`` filters, and ``send_logs_as`` and ``dora/logs``
        pass on. Drops for a node that finished are counted only: dora has no
        queue left to log them.
        """
        queue.dropped += 1
        self.dropped += 1
        message = DISCARDING.format(queue.input_id)
        record = LogRecord("WARN", message, _SCHEDULER, {"message": message})
        line = f"{_SCHEDULER} {message}"
        self.engine.emit(self.id, "log", {"line": line, "stdio": "warning", "record": record})

    def clear(self) -> None:
        """Discard what is queued (the node finished); sent messages count as dropped."""
        for queue in self.queues.values():
            lost = 0 if queue.timer else sum(1 for item in queue.items if type(item) is Message)
            queue.dropped += lost
            self.dropped += lost
            queue.items.clear()
        self.control.items.clear()
        self.pending = 0
