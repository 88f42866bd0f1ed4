"""Recordings played as sources: recorded messages pushed into input queues, in order, at a pace.

An input ``dora/replay/PATH/NODE/OUTPUT`` (:class:`~.graph.ReplaySource`)
gets the recorded messages of ``NODE/OUTPUT``, with their metadata, their
recorded send time as ``timestamp``. The embedded engine plays every such
edge of one recording with one :class:`Playback`, so that edges of one
recording keep their recorded order between them. When the last message is
played the inputs are closed, as when a source node finishes.

``speed`` X > 0 plays them X times as fast as they were recorded (the gaps
between them divided by X), and a full queue drops its oldest message, as in
a live run; 0 plays them as fast as the queues take them: it waits for room
in a full queue and never drops. :func:`~dora_notebook.core.replay.replay`
feeds one node this way.

>>> import pyarrow as pa
>>> from dora_notebook.core.record import Recording
>>> rec = Recording()
>>> for i in range(3):
...     rec.record("cam", "frame", pa.array([i]), {})
>>> plan = in_order(rec, {("cam", "frame")})
>>> plan.edges, [plan.columns.values[row][0].as_py() for row in plan.rows]
([('cam', 'frame'), ('cam', 'frame'), ('cam', 'frame')], [0, 1, 2])
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .record import recorded
from .runner import Closed, InputQueue, Message, Runner

if TYPE_CHECKING:
    from .record import Columns

__all__ = ["Plan", "Playback", "PlaybackHost", "Source", "check_speed", "in_order", "select"]

Route = tuple[Runner, InputQueue]
Edge = tuple[str, str]

#: How many messages a playback pushes per hold of the engine's lock at most: the
#: lock is let go now and then, so that the nodes it feeds run meanwhile.
_CHUNK = 64


class Source(Protocol):
    """What a playback reads: a :class:`~.record.Recording`, or anything as one."""

    def columns(self) -> Columns: ...

    def recorded_edges(self) -> list[str]: ...


class PlaybackHost(Protocol):
    """What a playback needs of its engine (:class:`~.engine.EmbeddedEngine`).

    ``room`` is a condition on ``lock``, notified when a queue a playback
    waits on may have room (while ``room_wanted`` is non-zero), when a node
    finishes and when the run stops (``stopping``).
    """

    lock: threading.Lock
    all_ready: threading.Event
    room: threading.Condition
    room_wanted: int

    @property
    def stopping(self) -> threading.Event: ...

    def next_seq(self) -> int: ...


def check_speed(speed: object, name: str = "speed") -> float:
    """``speed`` as a float: 0 (as fast as queues allow) or a positive finite factor.

    >>> check_speed(2), check_speed(0)
    (2.0, 0.0)
    >>> check_speed(-1)
    Traceback (most recent call last):
    ValueError: speed must be 0 (as fast as queues allow) or a positive number, not -1
    """
    ok = isinstance(speed, int | float) and not isinstance(speed, bool)
    if not ok or not (speed == 0 or 0 < speed < math.inf):  # type: ignore[operator]
        raise ValueError(
            f"{name} must be 0 (as fast as queues allow) or a positive number, not {speed!r}"
        )
    return float(speed)  # type: ignore[arg-type]


@dataclass
class Plan:
    """What a playback plays, in order: each message's edge (as the engine subscribed
    it) and its row in ``columns``, in two lists (one new object per message would be
    100,000 for the garbage collector to walk over, again and again, while it lives)."""

    columns: Columns
    edges: list[Edge] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def last(self, count: int | None) -> Plan:
        """The last ``count`` messages (all of them for None)."""
        if count is None:
            return self
        return Plan(self.columns, self.edges[-count:], self.rows[-count:])

    def only(self, edges: Collection[Edge]) -> Plan:
        """The messages of ``edges`` alone."""
        wanted = set(edges)
        if wanted.issuperset(self.edges):
            return self
        kept = [i for i, edge in enumerate(self.edges) if edge in wanted]
        return Plan(self.columns, [self.edges[i] for i in kept], [self.rows[i] for i in kept])


def select(columns: Columns, keys_of: Callable[[Any], list[Edge]]) -> Plan:
    """The rows whose recorder ``keys_of`` gives edges for, each under each of its edges,
    in the order they were sent in the run.

    That is the order they were recorded in (their receive time), not their
    ``send_time``: a node that forwards its input's metadata sends the
    upstream message's ``timestamp``, which dora keeps. ``keys_of`` is asked
    once per recorded edge (a row's :class:`~.record.EdgeRecorder`).
    """
    known: dict[Any, list[Edge]] = {}
    edges: list[Edge] = []
    rows: list[int] = []
    for row, recorder in enumerate(columns.edges):
        keys = known.get(recorder)
        if keys is None:
            keys = known[recorder] = keys_of(recorder)
        for key in keys:
            edges.append(key)
            rows.append(row)
    times = columns.times
    order = sorted(range(len(rows)), key=lambda i: times[rows[i]])  # stable: ties as recorded
    return Plan(columns, [edges[i] for i in order], [rows[i] for i in order])


def in_order(source: Source, edges: Collection[Edge]) -> Plan:
    """The messages of ``edges`` in ``source``, in the order they were sent (see
    :func:`select`). A source that plans itself (an ``in_order(edges)`` method) is asked to.
    """
    own = getattr(source, "in_order", None)
    if own is not None:
        return own(edges)
    wanted = set(edges)

    def keys_of(recorder: Any) -> list[Edge]:
        edge = (recorder.node, recorder.output)
        return [edge] if edge in wanted else []

    return select(source.columns(), keys_of)


class Playback:
    """Plays the recorded messages of some edges of one recording into input queues.

    The engine asks it for the subscriber list of each edge it plays
    (:meth:`routes`, under the engine's lock) before :meth:`start`; its thread
    waits until every node is ready, then plays.
    """

    def __init__(self, label: str, source: Source, speed: float, host: PlaybackHost) -> None:
        self.label = label  # the recording's path as the graph names it
        self.source = source
        self.speed = check_speed(speed)
        self._host = host
        self._edges: dict[Edge, list[Route]] = {}
        self.thread = threading.Thread(
            target=self._run, name=f"dora-replay-{label[-40:]}", daemon=True
        )
        self.played = 0

    @property
    def started(self) -> bool:
        return self.thread.ident is not None

    def routes(self, node: str, output: str) -> list[Route]:
        """The subscribers of ``node/output`` (made if new). Engine lock held."""
        return self._edges.setdefault((node, output), [])

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        host = self._host
        host.all_ready.wait()
        with host.lock:
            edges = {edge: list(routes) for edge, routes in self._edges.items()}
        plan = in_order(self.source, edges)
        if plan:
            self._play(plan, edges)
        with host.lock:
            if host.stopping.is_set():
                return
            for routes in edges.values():  # the source is done: its inputs close
                for runner, queue in routes:
                    runner.push(queue, Closed(host.next_seq()))

    def _play(self, plan: Plan, edges: dict[Edge, list[Route]]) -> None:
        """Push ``plan``'s messages in order, each when due (``speed`` > 0) or when
        there is room (0).

        Messages go in chunks of :data:`_CHUNK`: each is made ready (its
        metadata dict) without the engine's lock, then pushed under one hold
        of it, which is let go while waiting (``room`` is a condition on it).
        """
        host, speed, stopping = self._host, self.speed, self._host.stopping
        columns, keys, rows = plan.columns, plan.edges, plan.rows
        times, values, metadata = columns.times, columns.values, columns.metadata
        began, first = time.monotonic(), times[rows[0]]
        for start in range(0, len(rows), _CHUNK):
            chunk = [
                (edges[keys[i]], rows[i], metadata(rows[i]))
                for i in range(start, min(len(rows), start + _CHUNK))
            ]
            for _, row, meta in chunk:
                if "timestamp" not in meta:  # recorded without one: sent when recorded
                    meta["timestamp"] = recorded(columns.entry(row)).send_time
            with host.lock:
                for routes, row, meta in chunk:
                    if stopping.is_set():
                        return
                    if speed:
                        gap = (times[row] - first) / 1e9 / speed
                        while (delay := began + gap - time.monotonic()) > 0:
                            host.room.wait(delay)  # woken early, or due: look again
                            if stopping.is_set():
                                return
                    elif _full(routes):
                        host.room_wanted += 1
                        try:
                            while _full(routes) and not stopping.is_set():
                                host.room.wait()
                        finally:
                            host.room_wanted -= 1
                        if stopping.is_set():
                            return
                    _push(host, routes, values[row], meta)
                self.played = start + len(chunk)


def _full(routes: list[Route]) -> bool:
    """Whether a live subscriber's queue has no room (lent messages count: see Runner.lend)."""
    if len(routes) == 1:  # the usual: one input takes the edge (a replay's node)
        runner, queue = routes[0]
        return len(queue.items) + queue.lent >= queue.capacity and not runner.finished
    for runner, queue in routes:
        if len(queue.items) + queue.lent >= queue.capacity and not runner.finished:
            return True
    return False


def _push(host: PlaybackHost, routes: list[Route], value: Any, meta: dict[str, Any]) -> None:
    """Queue one recorded message on every subscriber, as it was sent (lock held).

    ``meta`` is the receiver's own (a new dict); each further receiver gets a copy.
    """
    seq, sent = host.next_seq(), time.monotonic_ns()
    if len(routes) == 1:
        runner, queue = routes[0]
        runner.push(queue, Message(value, meta, seq, sent))
        return
    for runner, queue in routes:
        runner.push(queue, Message(value, dict(meta), seq, sent))
