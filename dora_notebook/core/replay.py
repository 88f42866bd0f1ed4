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
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from ..errors import DataflowError
from .engine import EmbeddedEngine
from .graph import REPLAY_PREFIX, Graph, InputSpec, NodeSpec
from .observe import Report
from .playback import check_speed
from .record import TIMER_NODE, Recorded, source_edge
from .runner import NodeApi

__all__ = [
    "MAX_LINES",
    "OutputDiff",
    "ReplayError",
    "ReplayResult",
    "ReplayedOutput",
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

    recorded: list[Recorded]
    replayed: list[Recorded]


@dataclass
class ReplayResult:
    """What a replay of one node gave: its outputs beside the recorded ones, and the diff.

    ``outputs`` and ``diff`` by output id; ``inputs``: how many recorded
    messages each input was given; ``previews`` (slot -> payload, the
    latest), ``logs`` (printed lines and log records), ``warnings`` and
    ``errors`` of the replayed node; ``status`` as a node's (``finished`` or
    ``failed``). The notebook shows it with the diff side by side
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
        lines = [
            f"replay of {self.node} ({self.kind}) on {total} recorded inputs ({given}) at "
            f"speed {self.speed:g}: {self.status} in {self.seconds:.2f} s"
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
    ``messages``, ``recorded_edges``, ``edges`` and ``graph``). ``last``: only
    the last N input messages. ``speed``: 0 as fast as the node's queues
    allow (nothing dropped), X times the recorded pace otherwise. Blocks until
    the node has handled them all; an interrupt stops it. Raises
    :class:`ReplayError` in one line when there is nothing to replay.
    """
    speed = check_options(last, speed)
    edges = _input_edges(spec, recording)
    feed = _Feed(spec.id, recording, edges, last)
    if not feed.items:
        wired = ", ".join(f"{i} <- {'/'.join(e)}" for i, e in edges.items())
        raise ReplayError(f"the recording has no message for {spec.id!r}'s inputs ({wired})")
    recorded = {
        out: _recorded_window(recording.messages(spec.id, out), feed)
        for out in _outputs(spec, recording)
    }
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
        recorded_time=feed.items[0].send_time,
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
        out: ReplayedOutput(recorded.get(out, []), run.sent.get(out, [])) for out in recorded
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
    node: str, output: str, recorded: list[Recorded], replayed: list[Recorded]
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
    for index in range(max(len(recorded), len(replayed))):
        if index >= len(recorded):
            kind = "new"
        elif index >= len(replayed):
            kind = "missing"
        else:
            kind = "same" if same_message(recorded[index], replayed[index]) else "changed"
        counts[kind] += 1
        if kind != "same" and first is None:
            first, first_kind = index, kind
    return OutputDiff(node, output, **counts, first=first, first_kind=first_kind)


def same_message(a: Recorded, b: Recorded) -> bool:
    """Equal values (type and content) and equal metadata, ``timestamp`` aside.

    Metadata is compared as it is saved (JSON), so that a loaded recording
    compares equal with the same messages sent again.
    """
    return _same_value(a.value, b.value) and _metadata_text(a.metadata) == _metadata_text(
        b.metadata
    )


def _same_value(a: Any, b: Any) -> bool:
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
    meta = {k: v for k, v in metadata.items() if k != "timestamp"}
    return json.dumps(meta, default=str, sort_keys=True)


def _recorded_window(sent: list[Recorded], feed: _Feed) -> list[Recorded]:
    """The recorded messages of one output that answer the replayed inputs.

    Those sent from the first replayed input on. With ``last``, a source
    faster than the node leaves outputs of earlier inputs after that point,
    and a recording does not say which input an output answered: their
    number is then estimated from the whole recording's outputs per input,
    and the window is that many, up to the end.
    """
    start = feed.items[0].receive_time
    window = [m for m in sent if m.receive_time >= start]
    if feed.total > len(feed.items):
        expected = round(len(sent) * len(feed.items) / feed.total)
        window = window[len(window) - expected :] if expected < len(window) else window
    return window


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
    ``last`` of them, each addressed to the input it is played into."""

    def __init__(
        self,
        node: str,
        recording: Any,
        edges: dict[str, tuple[str, str]],
        last: int | None,
    ) -> None:
        by_edge: dict[tuple[str, str], list[str]] = {}
        for input_id, edge in edges.items():
            by_edge.setdefault(edge, []).append(input_id)
        picked = [
            (m, input_id)
            for m in recording.messages()
            if (m.node, m.output) in by_edge
            for input_id in by_edge[m.node, m.output]
        ]
        picked.sort(key=lambda pair: pair[0].receive_time)  # stable: see playback.in_order
        self.total = len(picked)  # before last: what the recording holds
        if last is not None:
            picked = picked[-last:]
        self.items = [_addressed(m, node, input_id) for m, input_id in picked]
        self.counts = {input_id: 0 for input_id in edges}
        for _, input_id in picked:
            self.counts[input_id] += 1
        self._edges = sorted({f"{node}/{input_id}" for _, input_id in picked})

    def messages(self, node: str | None = None, output: str | None = None) -> list[Recorded]:
        return [
            m
            for m in self.items
            if (node is None or m.node == node) and (output is None or m.output == output)
        ]

    def recorded_edges(self) -> list[str]:
        return self._edges


def _addressed(message: Recorded, node: str, input_id: str) -> Recorded:
    return Recorded(
        node,
        input_id,
        message.seq,
        message.send_time,
        message.receive_time,
        message.metadata,
        message.value,
        message.nbytes,
    )


class _Run:
    """What the replayed node did: its messages per output, previews, lines, status."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.sent: dict[str, list[Recorded]] = {}
        self.previews: dict[str, dict[str, Any]] = {}
        self.logs: list[str] = []
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.status = "running"
        self._lock = threading.Lock()

    def sink(self, output: str) -> _Sink:
        return _Sink(self, output)

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


class _Sink:
    """Takes what the replayed node sends on one output (the engine's tap hook, lock held)."""

    __slots__ = ("_messages", "_output", "_run")

    def __init__(self, run: _Run, output: str) -> None:
        self._run = run
        self._output = output
        self._messages = run.sent.setdefault(output, [])

    def record(self, value: Any, metadata: dict[str, Any]) -> None:
        meta = dict(metadata)
        stamp = meta.pop("timestamp", None)
        when = stamp if isinstance(stamp, datetime) else None
        size = value.nbytes if isinstance(value, pa.Array) else 0
        index = len(self._messages)
        self._messages.append(
            Recorded(self._run.node, self._output, index, when, when, meta, value, size)  # type: ignore[arg-type]
        )


def _keep(lines: list[str], line: str) -> None:
    if len(lines) < MAX_LINES:
        lines.append(line)
