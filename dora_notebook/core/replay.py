"""Replay: a node's recorded inputs fed into its current definition, alone, and the diff.

:func:`replay` takes one node's spec (as it is defined now) and a
:class:`~.record.Recording`, and runs that node by itself on a private
:class:`~.engine.EmbeddedEngine`: the live graph, running or not, is not
touched. Its inputs get the recorded messages of the edges they are wired to
now, in the order they were sent in the recorded run, with their metadata
(see :mod:`.playback`); ``speed`` 0 plays them as fast as the node's queues
take them, dropping none. Time in the replay is the recorded time: the
``timestamp`` the node sees and ``node.timestamp()`` are the recorded send
times, so a deterministic node replayed twice sends the very same messages.

What the node sends is compared, output by output, with what it sent in the
recording on the same inputs (its recorded messages from the first replayed
input on): message by message, each is the **same** (equal value and
metadata, ``timestamp`` aside), **changed**, **new** (sent now, not in the
recording) or **missing** (recorded, not sent now).

>>> import pyarrow as pa
>>> from .graph import InputSpec, NodeSpec
>>> from .record import Recording
>>> rec = Recording()
>>> for i in range(4):
...     rec.record("src", "n", pa.array([i]), {})
...     rec.record("double", "out", pa.array([2 * i]), {})
>>> fixed = '''
... class Operator:
...     def on_event(self, event, send_output):
...         if event["type"] == "INPUT":
...             n = event["value"][0].as_py()
...             send_output("out", pa.array([2 * n if n < 3 else 0]))
... '''
>>> spec = NodeSpec("double", "operator", {"n": InputSpec("n", "src/n")}, ["out"],
...                 source="import pyarrow as pa" + fixed)
>>> from dora_notebook.api.embedded import NODE_API
>>> print(replay(spec, rec, NODE_API).summary())  # doctest: +ELLIPSIS
replay of double (operator) on 4 recorded inputs (n: 4) at speed 0: finished in ... s
double/out: 3 same, 1 changed (first: #3), 0 new, 0 missing
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import pyarrow as pa

from ..errors import DataflowError
from .engine import EmbeddedEngine
from .graph import REPLAY_PREFIX, Graph, InputSpec, NodeSpec
from .observe import Report
from .playback import Plan, check_speed, select
from .record import TIMER_NODE, Columns, Entry, Recorded, source_edge
from .record import recorded as to_recorded
from .runner import NodeApi

__all__ = [
    "MAX_LINES",
    "Messages",
    "OutputDiff",
    "ReplayError",
    "ReplayResult",
    "ReplayedOutput",
    "Sent",
    "check_options",
    "diff_messages",
    "replay",
]

#: How many log lines, warnings and errors of the replayed node a result keeps.
MAX_LINES = 1000
#: The key the replayed node's inputs are played from (see EmbeddedEngine.replay_routes).
_FEED = "@replay"


class ReplayError(DataflowError, ValueError):
    """A replay that cannot run as asked; the one line says why and what to do."""


@dataclass(frozen=True)
class OutputDiff:
    """How one output compares, message by message: counts of each class, and where
    the first message that is not the same is (its number, from 0, and its class)."""

    node: str
    output: str
    same: int = 0
    changed: int = 0
    new: int = 0
    missing: int = 0
    first: int | None = None
    first_kind: str | None = None

    @property
    def identical(self) -> bool:
        return self.first is None

    def line(self) -> str:
        """``op/out: 98 same, 2 changed (first: #17), 0 new, 0 missing``."""
        parts = []
        for kind in ("same", "changed", "new", "missing"):
            text = f"{getattr(self, kind)} {kind}"
            if kind == self.first_kind:
                text += f" (first: #{self.first})"
            parts.append(text)
        return f"{self.node}/{self.output}: " + ", ".join(parts)


@dataclass(frozen=True)
class ReplayedOutput:
    """One output's messages: as recorded (on the replayed inputs) and as sent now."""

    recorded: Sequence[Recorded]
    replayed: Sequence[Recorded]


@dataclass
class ReplayResult:
    """What a replay of one node gave: its outputs beside the recorded ones, and the diff.

    ``outputs`` and ``diff`` by output id; ``inputs``: how many recorded
    messages each input was given; ``previews`` (slot -> payload, the
    latest), ``logs`` (printed lines and log records), ``warnings`` and
    ``errors`` of the replayed node; ``status`` as a node's (``finished`` or
    ``failed``); ``estimated``: whether the recorded outputs compared with
    ``last`` are estimated from the outputs per input (the recording does not
    say which input caused which output: the dora engine's, an older file).
    The notebook shows it with the diff side by side
    (:mod:`dora_notebook.jupyter.replayview`).
    """

    node: str
    kind: str
    speed: float
    inputs: dict[str, int]
    outputs: dict[str, ReplayedOutput]
    diff: dict[str, OutputDiff]
    status: str = "finished"
    seconds: float = 0.0
    previews: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    estimated: bool = False

    @property
    def identical(self) -> bool:
        """Whether every output sent what it sent in the recording, and nothing failed."""
        return not self.errors and all(d.identical for d in self.diff.values())

    def first_difference(self, output: str) -> tuple[int, Recorded | None, Recorded | None] | None:
        """``(number, recorded, replayed)`` of ``output``'s first differing message, or None."""
        found = self.diff[output]
        if found.first is None:
            return None
        pair = self.outputs[output]
        index = found.first

        def at(messages: list[Recorded]) -> Recorded | None:
            return messages[index] if index < len(messages) else None

        return index, at(pair.recorded), at(pair.replayed)

    def summary(self) -> str:
        """A header line, one line per output (see :meth:`OutputDiff.line`), then any errors."""
        total = sum(self.inputs.values())
        given = ", ".join(f"{name}: {count}" for name, count in self.inputs.items())
        estimate = (
            "; the recorded outputs they answered are estimated from the outputs per input "
            "(the recording does not say which input caused which output)"
            if self.estimated
            else ""
        )
        lines = [
            f"replay of {self.node} ({self.kind}) on {total} recorded inputs ({given}) at "
            f"speed {self.speed:g}: {self.status} in {self.seconds:.2f} s{estimate}"
        ]
        lines += [d.line() for d in self.diff.values()]
        if not self.diff:
            lines.append(f"{self.node} has no outputs to compare")
        for error in self.errors:
            lines.append(f"error: {error.strip().splitlines()[-1] if error.strip() else error}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def replay(
    spec: NodeSpec,
    recording: Any,
    api: NodeApi,
    *,
    last: int | None = None,
    speed: float = 0.0,
) -> ReplayResult:
    """Feed ``spec``'s recorded inputs into it, alone, and compare what it sends.

    ``recording``: a :class:`~.record.Recording` (or anything with its
    ``columns``, ``recorded_edges``, ``edges`` and ``graph``). ``last``: only
    the last N input messages. ``speed``: 0 as fast as the node's queues
    allow (nothing dropped), X times the recorded pace otherwise. Blocks until
    the node has handled them all; an interrupt stops it. Raises
    :class:`ReplayError` in one line when there is nothing to replay.
    """
    speed = check_options(last, speed)
    edges = _input_edges(spec, recording)
    kept = recording.columns()  # as held: no object is made per message to replay them
    feed = _Feed(spec.id, kept, edges, last)
    if not feed.plan:
        wired = ", ".join(f"{i} <- {'/'.join(e)}" for i, e in edges.items())
        raise ReplayError(f"the recording has no message for {spec.id!r}'s inputs ({wired})")
    outputs_now = _outputs(spec, recording)
    sent = select(kept, lambda r: [(r.node, r.output)] if r.node == spec.id else [])
    windows = {out: _recorded_window(sent.only([(spec.id, out)]).rows, feed) for out in outputs_now}
    recorded = {out: Messages(kept, rows) for out, (rows, _) in windows.items()}
    run = _Run(spec.id)
    private = copy.copy(spec)
    private.inputs = {
        input_id: InputSpec(
            input_id, f"{REPLAY_PREFIX}{_FEED}/{spec.id}/{input_id}", inp.queue_size
        )
        for input_id, inp in spec.inputs.items()
    }
    graph = Graph()
    graph.add(private)
    engine = EmbeddedEngine(
        graph,
        run.report,
        api,
        recordings={_FEED: feed},
        replay_speed=speed,
        recorded_time=to_recorded(kept.entry(feed.plan.rows[0])).send_time,
    )
    for output in spec.outputs:
        engine.tap(spec.id, output, run.sink(output))
    began = time.monotonic()
    engine.start()
    try:
        while not engine.wait(0.1):  # short waits: an interrupt stops the replay
            pass
    finally:
        engine.stop()
    seconds = time.monotonic() - began
    outputs = {
        out: ReplayedOutput(recorded[out], run.sent.get(out) or Sent(spec.id, out))
        for out in recorded
    }
    return ReplayResult(
        node=spec.id,
        kind=spec.kind,
        speed=speed,
        inputs=feed.counts,
        outputs=outputs,
        diff={
            out: diff_messages(spec.id, out, pair.recorded, pair.replayed)
            for out, pair in outputs.items()
        },
        status=run.status,
        seconds=seconds,
        previews=run.previews,
        logs=run.logs,
        warnings=run.warnings,
        errors=run.errors,
        estimated=any(estimated for _, estimated in windows.values()),
    )


def check_options(last: object, speed: object) -> float:
    """``speed`` as a float, if it and ``last`` are valid; else :class:`ReplayError`.

    >>> check_options(None, 0)
    0.0
    >>> check_options(2.5, 1)
    Traceback (most recent call last):
    dora_notebook.core.replay.ReplayError: last must be a whole number >= 1, not 2.5
    """
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
        raise ReplayError(f"last must be a whole number >= 1, not {last!r}")
    try:
        return check_speed(speed)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None


def diff_messages(
    node: str, output: str, recorded: Sequence[Recorded], replayed: Sequence[Recorded]
) -> OutputDiff:
    """Compare two lists of one output's messages, position by position.

    >>> old = [Recorded("op", "out", i, None, None, {}, pa.array([i])) for i in range(3)]
    >>> new = [Recorded("op", "out", i, None, None, {}, pa.array([i % 2])) for i in range(4)]
    >>> diff_messages("op", "out", old, new).line()
    'op/out: 2 same, 1 changed (first: #2), 1 new, 0 missing'
    """
    counts = {"same": 0, "changed": 0, "new": 0, "missing": 0}
    first: int | None = None
    first_kind: str | None = None
    old, new = _contents(recorded), _contents(replayed)
    for index in range(max(len(old), len(new))):
        if index >= len(old):
            kind = "new"
        elif index >= len(new):
            kind = "missing"
        else:
            kind = "same" if _same(old[index], new[index]) else "changed"
        counts[kind] += 1
        if kind != "same" and first is None:
            first, first_kind = index, kind
    return OutputDiff(node, output, **counts, first=first, first_kind=first_kind)


def same_message(a: Recorded, b: Recorded) -> bool:
    """Equal values (type and content) and equal metadata, ``timestamp`` aside.

    Metadata is compared as it is saved (JSON), so that a loaded recording
    compares equal with the same messages sent again.
    """
    return _same(_content(a), _content(b))


def _same(a: tuple[Any, list[Any]], b: tuple[Any, list[Any]]) -> bool:
    """Two messages as :meth:`Messages.content` gives them: value, metadata's keys then values."""
    if not _same_value(a[0], b[0]):
        return False
    if a[1] == b[1]:  # a node that forwards its input's metadata: the timestamp too
        return True
    old, new = _untimed(_as_dict(a[1])), _untimed(_as_dict(b[1]))
    return old == new or _metadata_text(old) == _metadata_text(new)


def _untimed(metadata: dict[str, Any]) -> dict[str, Any]:
    if "timestamp" not in metadata:
        return metadata
    return {k: v for k, v in metadata.items() if k != "timestamp"}


def _contents(messages: Sequence[Recorded]) -> Sequence[tuple[Any, list[Any]]]:
    """Each message as :meth:`Messages.content` gives it (made as it is read, where it can be)."""
    if isinstance(messages, Messages):
        return _Contents(messages)
    return [_content(m) for m in messages]


def _content(message: Recorded) -> tuple[Any, list[Any]]:
    return message.value, [*message.metadata, *message.metadata.values()]


def _as_dict(items: list[Any]) -> dict[str, Any]:
    """Metadata from its keys then its values."""
    half = len(items) // 2
    return dict(zip(items[:half], items[half:], strict=True))


class _Contents(Sequence[tuple[Any, list[Any]]]):
    """The values and metadata of :class:`Messages`, each read when asked for."""

    def __init__(self, messages: Messages) -> None:
        self._messages = messages

    def __len__(self) -> int:
        return len(self._messages)

    def __getitem__(self, index: int) -> tuple[Any, list[Any]]:  # type: ignore[override]
        return self._messages.content(index)


def _same_value(a: Any, b: Any) -> bool:
    if a is b:  # a node that forwards its input: the very array played to it
        return True
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if isinstance(b, pa.ChunkedArray):
        b = b.combine_chunks()
    if isinstance(a, pa.Array) and isinstance(b, pa.Array):
        if a.type != b.type or len(a) != len(b):
            return False
        if a.equals(b):
            return True
        # NaN is not equal to itself in Arrow's comparison; the same bits are the same value.
        return pa.types.is_floating(a.type) and _float_bits_equal(a, b)
    try:
        return bool(a == b)
    except Exception:  # an object whose == does not give a bool (a numpy array)
        return repr(a) == repr(b)


def _float_bits_equal(a: pa.Array, b: pa.Array) -> bool:
    x = a.to_numpy(zero_copy_only=False)
    y = b.to_numpy(zero_copy_only=False)
    return bool(((x == y) | ((x != x) & (y != y))).all()) and a.null_count == b.null_count


def _metadata_text(metadata: Mapping[str, Any]) -> str:
    return json.dumps(_untimed(dict(metadata)), default=str, sort_keys=True)


def _recorded_window(sent: list[int], feed: _Feed) -> tuple[list[int], bool]:
    """The recorded messages of one output that answer the replayed inputs, and whether
    they are estimated.

    Where the engine numbered the messages (the embedded engine's recordings,
    see :mod:`.record`), exactly: those caused by a replayed input, and those
    caused by none (sent on INPUT_CLOSED, STOP, a parameter change) from the
    first replayed input on. Otherwise (the dora engine's recordings, files
    saved before the numbers were): those sent from the first replayed input
    on; with ``last``, a source faster than the node leaves outputs of
    earlier inputs after that point, so their number is then estimated from
    the whole recording's outputs per input, and the window is that many, up
    to the end.
    """
    columns = feed.plan.columns
    times, numbers, causes = columns.times, columns.numbers, columns.causes
    start = times[feed.plan.rows[0]]
    inputs = {numbers[row] for row in feed.plan.rows}
    if -1 not in inputs and all(numbers[row] >= 0 for row in sent):
        return [
            row
            for row in sent
            if causes[row] in inputs or (causes[row] < 0 and times[row] >= start)
        ], False
    window = [row for row in sent if times[row] >= start]
    if feed.total > len(feed.plan):
        expected = round(len(sent) * len(feed.plan) / feed.total)
        return window[len(window) - expected :] if expected < len(window) else window, True
    return window, False


def _input_edges(spec: NodeSpec, recording: Any) -> dict[str, tuple[str, str]]:
    """Each input's recorded edge, by its wiring now; a missing one is one line."""
    if not spec.inputs:
        raise ReplayError(f"node {spec.id!r} has no inputs: there is nothing to replay into it")
    seen = set(recording.recorded_edges())
    edges = {}
    for input_id, inp in spec.inputs.items():
        try:
            edge = source_edge(inp.source)
        except ValueError as exc:
            raise ReplayError(f"node {spec.id!r}: input {input_id!r}: {exc}") from None
        if "/".join(edge) not in seen and not _was_recorded(recording, *edge):
            listed = ", ".join(sorted(seen)) or "none"
            raise ReplayError(
                f"cannot replay {spec.id!r}: its input {input_id!r} ({inp.source}) was not "
                f"recorded (recorded edges: {listed}); record it too, or wire the input "
                "to a recorded edge"
            )
        edges[input_id] = edge
    return edges


def _was_recorded(recording: Any, node: str, output: str) -> bool:
    """Whether ``node/output`` was recorded, though it sent nothing while it was."""
    if recording.edges is not None:
        return (node, output) in recording.edges
    graph: dict[str, dict[str, Any]] = recording.graph or {}
    if node == TIMER_NODE:
        source = f"{node}/{output}"
        return any(source in (n.get("inputs") or {}).values() for n in graph.values())
    return output in (graph.get(node) or {}).get("outputs", [])


def _outputs(spec: NodeSpec, recording: Any) -> list[str]:
    """The outputs to compare: the node's now, then any it had in the recording."""
    recorded = [e.partition("/")[2] for e in recording.recorded_edges() if _edge_of(e, spec.id)]
    described = (recording.graph or {}).get(spec.id, {}).get("outputs", [])
    return list(dict.fromkeys([*spec.outputs, *described, *recorded]))


def _edge_of(edge: str, node: str) -> bool:
    return edge.partition("/")[0] == node


class _Feed:
    """The replayed node's inputs as a playback source (``dora/replay/@replay/NODE/INPUT``):
    the recorded messages of each input's edge, in the order they were sent, the last
    ``last`` of them, each played into the input (or inputs) wired to its edge."""

    def __init__(
        self,
        node: str,
        kept: Columns,
        edges: dict[str, tuple[str, str]],
        last: int | None,
    ) -> None:
        by_edge: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for input_id, edge in edges.items():
            by_edge.setdefault(edge, []).append((node, input_id))
        plan = select(kept, lambda recorder: by_edge.get((recorder.node, recorder.output), []))
        self.total = len(plan)  # before last: what the recording holds
        self.plan = plan.last(last)
        self.counts = {input_id: 0 for input_id in edges}
        for _, input_id in self.plan.edges:
            self.counts[input_id] += 1
        self._edges = sorted({"/".join(key) for key in set(self.plan.edges)})

    def in_order(self, edges: Collection[tuple[str, str]]) -> Plan:
        """What :class:`~.playback.Playback` plays: the plan, of the inputs it plays."""
        return self.plan.only(edges)

    def columns(self) -> Columns:
        """The recording's columns the plan's rows are of."""
        return self.plan.columns

    def recorded_edges(self) -> list[str]:
        return self._edges


class _Edge:
    """The edge of a message that no recording holds (an :data:`~.record.Entry`'s first item)."""

    __slots__ = ("node", "output")

    def __init__(self, node: str, output: str) -> None:
        self.node = node
        self.output = output


class Messages(Sequence[Recorded]):
    """Messages of one output, each made a :class:`~.record.Recorded` message when it is
    read: a replay of 100,000 messages need not make 100,000 objects to compare them.

    Here: rows of a recording's :class:`~.record.Columns`; :class:`Sent` keeps
    what a replayed node sends.
    """

    def __init__(self, columns: Columns | None = None, rows: list[int] | None = None) -> None:
        self._columns = columns
        self._rows: list[int] = [] if rows is None else rows

    def __len__(self) -> int:
        return len(self._rows)

    def entry(self, index: int) -> Entry:
        """Message ``index`` as an :data:`~.record.Entry` (made now)."""
        assert self._columns is not None
        return self._columns.entry(self._rows[index])

    def content(self, index: int) -> tuple[Any, list[Any]]:
        """Message ``index``'s value, and its metadata's keys then values (``timestamp``
        included), as kept: what the diff compares, without making a dict."""
        assert self._columns is not None
        columns, row = self._columns, self._rows[index]
        return columns.values[row], columns.items(row)

    @overload
    def __getitem__(self, index: int) -> Recorded: ...
    @overload
    def __getitem__(self, index: slice) -> list[Recorded]: ...

    def __getitem__(self, index: int | slice) -> Recorded | list[Recorded]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return to_recorded(self.entry(index))


class Sent(Messages):
    """What the replayed node sent on one output, kept as the recording keeps messages:
    no object per message that Python's garbage collector would walk over again and again
    while the replay runs (each message's metadata as its keys then its values, in one
    list), an entry made when one is read.

    The engine hands it each message (:meth:`record`, as a tap: its lock held).
    """

    def __init__(self, node: str, output: str) -> None:
        super().__init__()
        self._edge = _Edge(node, output)
        self._values: list[Any] = []
        self._counts: list[int] = []  # how many keys each message's metadata has
        self._flat: list[Any] = []
        self._times: list[int] = []  # when each was sent, time.monotonic_ns()
        self._starts: list[int] = []  # where each message's metadata begins, once read
        self._offset = time.time_ns() - time.monotonic_ns()

    def record(
        self,
        value: Any,
        metadata: dict[str, Any],
        sent_ns: int = 0,
        number: int = -1,
        cause: int = -1,
    ) -> None:
        """Keep one message: four list calls and no clock read (the engine's send time)."""
        self._values.append(value)
        self._counts.append(len(metadata))
        flat = self._flat
        flat += metadata
        flat += metadata.values()
        self._times.append(sent_ns or time.monotonic_ns())

    def __len__(self) -> int:
        return len(self._values)

    def entry(self, index: int) -> Entry:
        value, items = self.content(index)
        size = value.get_total_buffer_size() if isinstance(value, pa.Array) else 0
        edge, time_ns = self._edge, self._times[index] + self._offset
        return (edge, index, _as_dict(items), value, time_ns, size, -1, -1)  # type: ignore[return-value]

    def content(self, index: int) -> tuple[Any, list[Any]]:
        starts, counts = self._starts, self._counts
        if len(starts) < len(counts):  # made when first read, once the node has sent them all
            starts[:] = [0, *itertools.accumulate(2 * n for n in counts)][: len(counts)]
        start = starts[index]
        return self._values[index], self._flat[start : start + 2 * self._counts[index]]


class _Run:
    """What the replayed node did: its messages per output, previews, lines, status."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.sent: dict[str, Sent] = {}
        self.previews: dict[str, dict[str, Any]] = {}
        self.logs: list[str] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.status = "running"
        self._lock = threading.Lock()

    def sink(self, output: str) -> Sent:
        """What the engine hands what the node sends on ``output`` (a tap)."""
        return self.sent.setdefault(output, Sent(self.node, output))

    def report(self, report: Report) -> None:
        kind, data = report.kind, report.data
        with self._lock:
            if kind == "status":
                self.status = data
            elif kind == "preview":
                self.previews[str(data["slot"])] = data["payload"]
            elif kind == "log":
                _keep(self.logs, str(data.get("line", "")))
            elif kind == "warning":
                _keep(self.warnings, str(data))
            elif kind == "error":
                _keep(self.errors, str(data))


def _keep(lines: list[str], line: str) -> None:
    if len(lines) < MAX_LINES:
        lines.append(line)
