"""Recordings: the messages of a run's edges, kept by reference within a memory budget.

A :class:`Recording` is what ``%dora_record`` and :meth:`Dataflow.record
<dora_notebook.Dataflow.record>` fill while a graph runs. The engine holds
one :class:`EdgeRecorder` per recorded output and hands it each message sent
there: the Arrow array itself, never a copy, with its metadata. Past the
budget the oldest messages go, and are counted (:attr:`Recording.dropped`);
a gap in an output's ``seq`` shows where. Timer ticks are recorded as node
``dora``, output ``timer/millis/20`` (the timer's spec as ``dora expand``
spells it), so that a timer-driven node can be replayed.

On disk (:meth:`Recording.save`, by suffix ``.arrow`` for Arrow IPC or
``.parquet``) a recording is one row per message, readable with plain
pyarrow or pandas:

=============  ==========================  ===========================================
column         Arrow type                  what
=============  ==========================  ===========================================
node           string                      the node that sent it (``dora`` for timers)
output         string                      its output (``timer/millis/20`` for timers)
seq            int64                       its number on that output, from 0
send_time      timestamp[ns, UTC]          when it was sent (its ``timestamp``)
receive_time   timestamp[ns, UTC]          when the recording got it
metadata       string                      its other metadata, as JSON
type           string                      the Arrow type of its value
value          binary                      its value: Arrow IPC of one column ``value``
number         int64                       the engine's number for it, unique in the run
                                           (-1: the engine does not number messages)
cause          int64                       the ``number`` of the input its node was
                                           handling when it sent it (-1: none)
=============  ==========================  ===========================================

``number`` and ``cause`` say which input an output answered (what
``%dora_replay --last N`` compares exactly). The embedded engine fills them:
an operator's cause is the input ``on_event`` was handling, a custom node's
the last input ``next()`` returned. On the dora engine, and in files saved
before these columns, they are -1.

The file's schema metadata (key ``dora_notebook.recording``) holds, as JSON,
the graph's wiring and code when the recording started (``graph``: node id ->
``{"kind", "inputs", "outputs", "code"}``, see :func:`describe_graph`), the
edges asked for, and the counts of messages dropped (the budget) and lost (in
transport, see :meth:`EdgeRecorder.skip`) per edge.

>>> import pyarrow as pa
>>> rec = Recording(max_bytes=1 << 20)
>>> for i in range(3):
...     rec.record("src", "n", pa.array([i]), {"i": i})
>>> [m.value.to_pylist() for m in rec.messages("src", "n")]
[[0], [1], [2]]
>>> rec.stop(); rec.status()
'stopped: 3 messages on 1 edge, 24 B of 1.0 MB, 0 dropped'
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .graph import Graph, NodeSpec, Timer

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_MAX_MB",
    "SCHEMA",
    "SCHEMA_KEY",
    "TIMER_NODE",
    "Columns",
    "EdgeRecorder",
    "Entry",
    "Recorded",
    "Recording",
    "RecordingError",
    "decode_value",
    "describe_graph",
    "encode_value",
    "recorded",
    "size_text",
    "source_edge",
]

#: The memory budget of a recording when none is given (megabytes).
DEFAULT_MAX_MB = 256
#: The key of the file's schema metadata that holds the recording's description.
SCHEMA_KEY = b"dora_notebook.recording"
#: The node a timer's ticks are recorded under (its output: ``timer/millis/20``).
TIMER_NODE = "dora"
#: The columns of a saved recording (see the module's docstring).
SCHEMA = pa.schema(
    [
        ("node", pa.string()),
        ("output", pa.string()),
        ("seq", pa.int64()),
        ("send_time", pa.timestamp("ns", tz="UTC")),
        ("receive_time", pa.timestamp("ns", tz="UTC")),
        ("metadata", pa.string()),
        ("type", pa.string()),
        ("value", pa.binary()),
        ("number", pa.int64()),
        ("cause", pa.int64()),
    ]
)
#: The columns a file saved before ``number`` and ``cause`` existed has (it still loads).
_REQUIRED = SCHEMA.names[:8]
#: The fields of a message's header in :class:`_Kept` (see there).
_HEADER = 8
_SUFFIXES = (".arrow", ".parquet")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Rows per batch of a saved file: at most this many value bytes (binary offsets are int32).
_BATCH_BYTES = 16 << 20

# One kept message: (its edge, seq, metadata as sent, value, receive time in ns, bytes,
# number, cause).
_Item = tuple["EdgeRecorder", int, dict[str, Any], Any, int, int, int, int]
#: One kept message as one tuple (:meth:`Columns.entry`): (its edge's
#: :class:`EdgeRecorder`, with ``node`` and ``output``; seq; metadata as sent, its
#: ``timestamp`` included where it had one; value; receive time in ns since the epoch;
#: bytes; the engine's number for it; the number of the input that caused it; -1 for
#: either where unknown).
Entry = _Item


class RecordingError(ValueError):
    """A recording that cannot be read or written as asked (one line that says why)."""


@dataclass(frozen=True)
class Recorded:
    """One recorded message."""

    node: str
    output: str
    seq: int
    send_time: datetime
    receive_time: datetime
    metadata: dict[str, Any]
    value: Any  # a pyarrow Array (by reference) or, for a value dora cannot send, as sent
    nbytes: int = field(default=0, compare=False)
    #: The engine's number for it, and that of the input its node was handling when it
    #: sent it (-1: unknown, or no input): see the module's docstring.
    number: int = field(default=-1, compare=False)
    cause: int = field(default=-1, compare=False)

    @property
    def edge(self) -> str:
        """``node/output``."""
        return f"{self.node}/{self.output}"


class EdgeRecorder:
    """What an engine holds for one recorded output: :meth:`record` per message sent.

    It numbers the output's messages and counts what the budget let go of
    them, and what never reached it (:meth:`skip`). Made by
    :meth:`Recording.recorder`.
    """

    __slots__ = (
        "_base",
        "_flat",
        "_head",
        "active",
        "dropped",
        "lost",
        "node",
        "output",
        "recording",
        "seq",
    )

    def __init__(self, recording: Recording, node: str, output: str) -> None:
        self.recording = recording
        self.node = node
        self.output = output
        self.active = recording._active
        self.seq = 0  # messages seen on this output, kept or not
        self.dropped = 0
        self.lost = 0
        self._base = 0  # seq of a loaded recording's first message not counted as dropped
        self._head = recording._kept.heads.extend
        self._flat = recording._kept.flat.extend

    @property
    def kept(self) -> int:
        """How many of its messages the recording holds."""
        return self.seq - self._base - self.dropped - self.lost

    def skip(self, count: int) -> None:
        """Count ``count`` messages sent on this output that never reached the recording.

        The dora engine knows them by the gaps in its nodes' own numbering of
        what they send (dora-rs 1.1 loses a few on the way to the kernel's
        bridge); the next message's ``seq`` leaves the same gap.
        """
        self.seq += count
        self.lost += count

    def record(
        self,
        value: Any,
        metadata: dict[str, Any],
        received_ns: int = 0,
        number: int = -1,
        cause: int = -1,
    ) -> None:
        """Keep one message (a no-op once the recording stopped).

        ``received_ns``: when it was sent or received, ``time.monotonic_ns()``
        (the embedded engine's send time, which it takes anyway; 0: now).
        ``number``, ``cause``: the engine's numbers for the message and for the
        input its node was handling (see the module's docstring).

        The engine calls it on its hot path, one call at a time (the embedded
        engine holds its lock, the dora engine has one bridge thread), so it
        takes no lock of its own (see :class:`_Kept` for how readers cope).
        The value is kept by reference (the engine never mutates a sent Arrow
        array), the metadata's keys and values as they are now (a receiver
        may change the dict it was handed), the time as an integer. It costs
        three ``deque.extend`` calls and the value's size; nothing made per
        message outlives the call (see :class:`_Kept`).
        """
        if not self.active:
            return
        try:  # every buffer the array keeps alive; nbytes costs 30 times more
            size = value.get_total_buffer_size()
        except AttributeError:
            size = _nbytes(value)
        flat, seq = self._flat, self.seq
        flat(metadata)  # as it is now: a receiver may change the dict it is handed
        flat(metadata.values())
        at = received_ns or time.monotonic_ns()
        # The header last, in one call: the message is complete once it is there.
        self._head((self, seq, len(metadata), value, at, size, number, cause))
        self.seq = seq + 1
        rec = self.recording
        rec._bytes += size
        if rec._bytes > rec.max_bytes:
            rec._evict()


class _Kept:
    """The kept messages in two deques, oldest first, not one object per message.

    Python's garbage collector makes a full pass over the whole heap (156 ms
    in the benchmark's process) when enough new objects have survived, and
    counts every new dict or tuple, tracked or not. A tuple per message holding
    its dict and array stayed tracked for good, and even one new dict per
    message (a copy of its metadata) made those passes come half again as
    often in the benchmark chain. So a message is kept as a run of items: in
    ``heads``, :data:`_HEADER` fields (its :class:`EdgeRecorder`, seq, how
    many metadata keys, value, time, bytes, number, cause); in ``flat``, its
    metadata's keys, then their values. The writer adds a message with three
    ``extend`` calls (the header's tuple is gone once they return): nothing
    is made per message but the engine's own objects, and a dict only when
    read; a reader takes each field with one slice. Times are kept on
    ``time.monotonic_ns()``'s clock; ``offset`` turns them into nanoseconds
    since the epoch as they are read.

    The one writer extends the deques without a lock, the header last; each
    ``extend`` is whole to a reader (the GIL is held through it). A reader
    holding the recording's lock (under which alone the oldest are let go)
    copies ``heads`` first (the messages complete now), then ``flat``, which
    holds at least their metadata.
    """

    __slots__ = ("flat", "heads", "offset")

    def __init__(self, offset: int) -> None:
        self.heads: deque[Any] = deque()
        self.flat: deque[Any] = deque()
        self.offset = offset

    def append(self, row: _Item) -> None:
        """Add one row (a loaded recording's: its time since the epoch, as ``offset`` is 0)."""
        edge, seq, meta, value, received_ns, size, number, cause = row
        self.flat.extend(meta)
        self.flat.extend(meta.values())
        self.heads.extend((edge, seq, len(meta), value, received_ns, size, number, cause))
        edge.seq = max(edge.seq, seq + 1)

    def popleft(self) -> tuple[EdgeRecorder, int]:
        """Let the oldest message go (the recording's lock held): its edge and bytes."""
        pop = self.heads.popleft
        edge, _, count, _, _, size, _, _ = (pop() for _ in range(_HEADER))
        pop = self.flat.popleft
        for _ in range(2 * count):
            pop()
        return edge, size

    def columns(self) -> Columns:
        """Every complete message, field by field (the recording's lock held), oldest first."""
        heads = list(self.heads)  # first: the messages complete now
        edges, seqs, counts, values, times, sizes, numbers, causes = (
            heads[k::_HEADER] for k in range(_HEADER)
        )
        starts = [0, *itertools.accumulate(map((2).__mul__, counts))]
        flat = list(itertools.islice(self.flat, starts.pop()))
        if self.offset:
            times = [t + self.offset for t in times]
        return Columns(edges, seqs, values, times, sizes, starts, counts, flat, numbers, causes)

    def rows(self) -> list[_Item]:
        """Every complete row (the recording's lock held), oldest first."""
        columns = self.columns()
        return [columns.entry(i) for i in range(len(columns))]


@dataclass(frozen=True)
class Columns:
    """The kept messages field by field, oldest first (:meth:`Recording.columns`): row
    ``i`` is ``edges[i]`` (its :class:`EdgeRecorder`), ``seqs[i]``, ``values[i]``,
    ``times[i]`` (receive ns since the epoch), ``sizes[i]``, ``numbers[i]``,
    ``causes[i]``, and its metadata as sent: ``counts[i]`` keys at
    ``flat[starts[i]:]``, then their values (:meth:`metadata` makes the dict).

    Nothing is made per message to read them so (Python's garbage collector would
    walk each new object again and again while they live, see :class:`_Kept`).
    """

    edges: list[EdgeRecorder]
    seqs: list[int]
    values: list[Any]
    times: list[int]
    sizes: list[int]
    starts: list[int]
    counts: list[int]
    flat: list[Any]
    numbers: list[int]
    causes: list[int]

    def __len__(self) -> int:
        return len(self.starts)

    def metadata(self, index: int) -> dict[str, Any]:
        """Row ``index``'s metadata as sent, ``timestamp`` included: a new dict."""
        start, count, flat = self.starts[index], self.counts[index], self.flat
        # A replay makes one per message it plays. A display for dora's usual one or two
        # keys (the timestamp and one more) takes half the time of a comprehension, which
        # takes half that of dict(zip(...)) of two slices (no slices, no zip; timeit).
        if count == 1:
            return {flat[start]: flat[start + 1]}
        if count == 2:
            return {flat[start]: flat[start + 2], flat[start + 1]: flat[start + 3]}
        return {flat[i]: flat[i + count] for i in range(start, start + count)}

    def items(self, index: int) -> list[Any]:
        """Row ``index``'s metadata as kept: its keys, then their values (a new list)."""
        start = self.starts[index]
        return self.flat[start : start + 2 * self.counts[index]]

    def entry(self, index: int) -> Entry:
        """Row ``index`` as an :data:`Entry` (a new tuple and metadata dict)."""
        return (
            self.edges[index],
            self.seqs[index],
            self.metadata(index),
            self.values[index],
            self.times[index],
            self.sizes[index],
            self.numbers[index],
            self.causes[index],
        )


class Recording:
    """The messages of some outputs of a run, oldest first, within ``max_bytes``.

    ``edges``: the ``(node, output)`` pairs to keep, None for every one
    (timers included: ``("dora", "timer/millis/20")``).
    ``graph``: the wiring and code of the graph's nodes when it started (see
    :func:`describe_graph`), which replay and :meth:`to_pytest` use.
    One writer at a time (an engine records one message at a time, see
    :meth:`EdgeRecorder.record`) while any thread reads.
    """

    def __init__(
        self,
        edges: Iterable[tuple[str, str]] | None = None,
        max_bytes: int = DEFAULT_MAX_MB << 20,
        graph: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise RecordingError(f"the memory budget must be positive, not {max_bytes} bytes")
        self.edges = None if edges is None else frozenset(edges)
        self.max_bytes = max_bytes
        self.graph: dict[str, dict[str, Any]] = dict(graph or {})
        self._kept = _Kept(_monotonic_to_epoch())
        self._lock = threading.Lock()
        self._recorders: dict[tuple[str, str], EdgeRecorder] = {}
        self._bytes = 0
        self._active = True
        #: When a run began feeding it (:meth:`begin`); None while it waits for one.
        self.started: datetime | None = None
        #: What the engine could not record, in a few words (shown by :meth:`status`).
        self.note = ""
        self.path: Path | None = None  # the file it was loaded from or last saved to

    # -- filling --------------------------------------------------------------------

    def wants(self, node: str, output: str) -> bool:
        """Whether messages of ``node/output`` are to be recorded now."""
        return self._active and (self.edges is None or (node, output) in self.edges)

    def begin(self, graph: dict[str, dict[str, Any]]) -> None:
        """A run starts feeding it: ``graph`` is its description (see :func:`describe_graph`).

        The engine then hands it messages, and sets :attr:`note` if there is
        something it cannot record.
        """
        self.graph = dict(graph)
        self.started = datetime.now(timezone.utc)

    def recorder(self, node: str, output: str) -> EdgeRecorder:
        """The one :class:`EdgeRecorder` of ``node/output`` (made on first use)."""
        key = (node, output)
        with self._lock:
            edge = self._recorders.get(key)
            if edge is None:
                edge = self._recorders[key] = EdgeRecorder(self, node, output)
            return edge

    def record(
        self,
        node: str,
        output: str,
        value: Any,
        metadata: dict[str, Any],
        received: datetime | None = None,
        number: int = -1,
        cause: int = -1,
    ) -> None:
        """Keep one message sent on ``node/output`` (a no-op once stopped or not wanted).

        ``metadata["timestamp"]``, when there, is its send time; the rest is
        kept as it is. The value is kept by reference: the engine never
        mutates a sent Arrow array. ``number`` and ``cause``: see the
        module's docstring.
        """
        if self.wants(node, output):
            at = _ns(received) - self._kept.offset if received else 0
            self.recorder(node, output).record(value, metadata, at, number, cause)

    def stop(self) -> None:
        """Stop recording; what was kept stays."""
        with self._lock:
            self._active = False
            for edge in self._recorders.values():
                edge.active = False

    def _evict(self) -> None:
        """Let the oldest messages go until the rest fit the budget (by the one writer)."""
        kept = self._kept
        with self._lock:
            while self._bytes > self.max_bytes and kept.heads:
                edge, size = kept.popleft()
                self._bytes -= size
                edge.dropped += 1

    # -- reading --------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether it still records."""
        return self._active

    @property
    def nbytes(self) -> int:
        """The bytes of the values kept (every buffer they keep alive)."""
        return self._bytes

    @property
    def dropped(self) -> int:
        """Messages the budget let go, all edges together."""
        with self._lock:
            return sum(e.dropped for e in self._recorders.values())

    def dropped_by_edge(self) -> dict[str, int]:
        """Messages the budget let go, per ``node/output`` (edges that lost some)."""
        with self._lock:
            edges = sorted(self._recorders.items())
        return {f"{n}/{o}": e.dropped for (n, o), e in edges if e.dropped}

    def lost_by_edge(self) -> dict[str, int]:
        """Messages sent that never reached the recording, per ``node/output`` (see
        :meth:`EdgeRecorder.skip`); only the dora engine can tell, for cell nodes."""
        with self._lock:
            edges = sorted(self._recorders.items())
        return {f"{n}/{o}": e.lost for (n, o), e in edges if e.lost}

    def __len__(self) -> int:
        with self._lock:
            return sum(e.kept for e in self._recorders.values())

    def _snapshot(self) -> list[_Item]:
        with self._lock:
            return self._kept.rows()

    def columns(self) -> Columns:
        """The kept messages field by field, oldest first (:class:`Columns`).

        The cheap read, for replay: nothing is made per message (100,000
        messages: 0.02 s, against 0.8 s for :meth:`messages`).
        """
        with self._lock:
            return self._kept.columns()

    def messages(self, node: str | None = None, output: str | None = None) -> list[Recorded]:
        """The kept messages, oldest first; only ``node``'s (and its ``output``'s) if given."""
        items = self._snapshot()
        if node is not None:
            items = [item for item in items if item[0].node == node]
        if output is not None:
            items = [item for item in items if item[0].output == output]
        return [recorded(item) for item in items]

    def recorded_edges(self) -> list[str]:
        """The ``node/output`` pairs with at least one message seen, sorted."""
        with self._lock:
            edges = sorted(k for k, e in self._recorders.items() if e.seq)
        return [f"{n}/{o}" for n, o in edges]

    def status(self) -> str:
        """One line: recording or stopped, messages, edges, memory against the budget, drops.

        A recording armed before the graph started says it waits for the start.
        """
        with self._lock:
            count = sum(e.kept for e in self._recorders.values())
            edges = sum(1 for e in self._recorders.values() if e.seq)
            dropped = sum(e.dropped for e in self._recorders.values())
            lost = sum(e.lost for e in self._recorders.values())
        if not self._active:
            state = "stopped"
        elif self.started is None and not count:
            state = "armed (records from the next %dora_start)"
        else:
            state = "recording"
        plural = "" if edges == 1 else "s"
        note = f", {lost} lost in transport" if lost else ""
        note += f" ({self.note})" if self.note else ""
        return (
            f"{state}: {count} messages on {edges} edge{plural}, "
            f"{size_text(self._bytes)} of {size_text(self.max_bytes)}, {dropped} dropped{note}"
        )

    def __repr__(self) -> str:
        return f"<Recording {self.status()}>"

    # -- files ----------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """The kept messages as one table of :data:`SCHEMA` (values as Arrow IPC bytes)."""
        batches = [batch for batch, _ in _batches(self._snapshot())]
        schema = self._schema()
        return pa.Table.from_batches(batches, schema) if batches else schema.empty_table()

    def _schema(self) -> pa.Schema:
        return SCHEMA.with_metadata({SCHEMA_KEY: json.dumps(self._description())})

    def save(self, path: str | Path) -> Path:
        """Write it to ``path``: Arrow IPC (``.arrow``) or Parquet (``.parquet``), by suffix.

        Written batch by batch (the values are serialised once, into batches
        of about 16 MB), the next batch made by a thread while the last is
        written (see :func:`_write_batches`), to a ``.part`` file renamed into
        place at the end: a failed save leaves no half file under the name
        asked for.
        """
        target = Path(path).expanduser()
        suffix = target.suffix.lower()
        if suffix not in _SUFFIXES:
            raise RecordingError(
                f"cannot save a recording as {target.name!r}: the name must end in "
                ".arrow (Arrow IPC) or .parquet"
            )
        items = self._snapshot()
        schema = self._schema()
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        try:
            if suffix == ".parquet":
                import pyarrow.parquet as pq

                with pq.ParquetWriter(part, schema) as writer:
                    _write_batches(items, writer.write_batch)
            else:
                with pa.OSFile(str(part), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
                    _write_batches(items, writer.write_batch)
            os.replace(part, target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        self.path = target
        return target

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        """A recording saved by :meth:`save` (stopped; its values read without a copy)."""
        source = Path(path).expanduser()
        if not source.is_file():
            raise RecordingError(f"no recording at {str(source)!r}")
        try:
            if source.suffix.lower() == ".parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(source)
            else:
                with pa.memory_map(str(source)) as mapped:
                    table = pa.ipc.open_file(mapped).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise RecordingError(f"{source.name}: not a recording ({exc})") from exc
        missing = [name for name in _REQUIRED if name not in table.schema.names]
        if missing:
            raise RecordingError(f"{source.name}: not a recording (no column {missing[0]!r})")
        raw = (table.schema.metadata or {}).get(SCHEMA_KEY)
        description = json.loads(raw) if raw else {}
        edges = description.get("edges")
        recording = cls(
            None if edges is None else [tuple(e.split("/", 1)) for e in edges],
            max(int(description.get("max_bytes", 0)), 1),
            description.get("graph"),
        )
        if description.get("started"):
            recording.started = datetime.fromisoformat(description["started"])
        recording.note = str(description.get("note") or "")
        columns = table.select(["node", "output", "seq", "metadata"]).to_pydict()
        ints = {
            name: table.column(name).cast(pa.int64()).to_pylist()
            if name in table.schema.names
            else [-1] * table.num_rows  # saved before the engine's numbers were
            for name in ("send_time", "receive_time", "number", "cause")
        }
        recording._kept.offset = 0  # the file's times are since the epoch
        values = table.column("value")
        rows: dict[EdgeRecorder, int] = {}
        row = 0
        for chunk in values.chunks:
            for cell in chunk:
                value = decode_value(cell.as_buffer())
                meta = json.loads(columns["metadata"][row] or "{}")
                meta["timestamp"] = _from_ns(ints["send_time"][row])
                edge = recording.recorder(columns["node"][row], columns["output"][row])
                rows[edge] = rows.get(edge, 0) + 1
                size = _nbytes(value)
                received, number, cause = (
                    ints[k][row] for k in ("receive_time", "number", "cause")
                )
                recording._kept.append(
                    (edge, columns["seq"][row], meta, value, received, size, number, cause)
                )
                recording._bytes += size
                row += 1
        for edge_name, count in (description.get("dropped") or {}).items():
            node, _, output = edge_name.partition("/")
            recording.recorder(node, output).dropped = int(count)
        for edge_name, count in (description.get("lost") or {}).items():
            node, _, output = edge_name.partition("/")
            recording.recorder(node, output).lost = int(count)
        for edge in recording._recorders.values():  # what it holds is what was loaded
            edge._base = edge.seq - edge.dropped - edge.lost - rows.get(edge, 0)
        recording.stop()
        recording.path = source
        return recording

    def to_pandas(self) -> pd.DataFrame:
        """One row per message: its columns as saved, ``value`` as Python values."""
        items = self.messages()
        import pandas as pd

        rows = [
            {
                "node": m.node,
                "output": m.output,
                "seq": m.seq,
                "send_time": m.send_time,
                "receive_time": m.receive_time,
                "metadata": m.metadata,
                "value": m.value.to_pylist() if isinstance(m.value, pa.Array) else m.value,
                "number": m.number,
                "cause": m.cause,
            }
            for m in items
        ]
        return pd.DataFrame(rows, columns=[*SCHEMA.names[:6], "value", "number", "cause"])

    def to_pytest(self, node: str, path: str | Path, code: str | Path | None = None) -> Path:
        """Write a pytest file that replays ``node``'s recorded inputs into its code.

        Beside ``path`` (``test_scale.py``) go the node's recorded inputs and
        outputs (``test_scale.arrow``) and its code as recorded, or ``code``
        (``scale_node.py``). The test passes while the node sends what it sent
        in the recording, and names the first differing message when it does
        not; see :mod:`~dora_notebook.core.testgen`.
        """
        from .testgen import UnfitRecording, write_pytest

        try:
            return write_pytest(self, node, path, code)
        except UnfitRecording as exc:
            raise RecordingError(str(exc)) from None

    def _description(self) -> dict[str, Any]:
        return {
            "version": 1,
            "edges": None if self.edges is None else sorted(f"{n}/{o}" for n, o in self.edges),
            "max_bytes": self.max_bytes,
            "dropped": self.dropped_by_edge(),
            "lost": self.lost_by_edge(),
            "started": None if self.started is None else self.started.isoformat(),
            "note": self.note,
            "graph": self.graph,
        }


def source_edge(source: str) -> tuple[str, str]:
    """The recorded ``(node, output)`` of an input's ``source`` (a timer's spec normalised).

    >>> source_edge("cam/image"), source_edge("dora/timer/hz/50")
    (('cam', 'image'), ('dora', 'timer/millis/20'))
    """
    if source.startswith(f"{TIMER_NODE}/timer/"):
        source = Timer.parse(source).spec
    node, _, output = source.partition("/")
    return node, output


def describe_graph(graph: Graph | Iterable[NodeSpec]) -> dict[str, dict[str, Any]]:
    """Node id -> ``{"kind", "inputs", "outputs", "code"}`` of a graph, as a recording keeps it.

    ``inputs`` maps each input id to its source (``node/output``, a timer in
    the spelling :func:`source_edge` records it under, ``dora/logs...``);
    ``code`` is the node's source text (None where there is none to read:
    a node-hub package's console script, a builtin).

    >>> from .graph import InputSpec
    >>> spec = NodeSpec("op", "operator", {"tick": InputSpec("tick", "dora/timer/hz/50")},
    ...                 ["out"], source="class Operator: ...")
    >>> describe_graph([spec])["op"]["inputs"]
    {'tick': 'dora/timer/millis/20'}
    """
    described = {}
    for spec in graph:
        inputs = {}
        for input_id, inp in spec.inputs.items():
            inputs[input_id] = "/".join(source_edge(inp.source)) if inp.is_timer else inp.source
        described[spec.id] = {
            "kind": spec.kind,
            "inputs": inputs,
            "outputs": list(spec.outputs),
            "code": _code_of(spec),
        }
    return described


def _code_of(spec: NodeSpec) -> str | None:
    if spec.source is not None:
        return spec.source
    if spec.path is not None:
        try:
            return spec.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    if spec.obj is not None:
        try:
            return inspect.getsource(spec.obj)
        except (OSError, TypeError):
            return None
    return None


def encode_value(value: Any) -> bytes:
    """A message's value as Arrow IPC stream bytes of one column ``value``.

    >>> decode_value(encode_value(pa.array([1, 2]))).to_pylist()
    [1, 2]
    """
    sink = pa.BufferOutputStream()
    _write_value(sink, value)
    return sink.getvalue().to_pybytes()


def decode_value(data: bytes | pa.Buffer) -> pa.Array:
    """The Arrow array :func:`encode_value` wrote (without a copy of a buffer's bytes)."""
    reader = pa.ipc.open_stream(data)
    batches = list(reader)
    if not batches:
        return pa.array([], type=reader.schema.field("value").type)
    if len(batches) == 1:
        return batches[0].column(0)
    return pa.concat_arrays([b.column(0) for b in batches])


def _write_value(sink: pa.NativeFile, value: Any) -> None:
    batch = pa.record_batch([_as_array(value)], names=["value"])
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)


def _batches(
    items: list[_Item], buffer: Callable[[int], pa.Buffer] = pa.allocate_buffer
) -> Iterator[tuple[pa.RecordBatch, pa.Buffer]]:
    """The rows of ``items`` as record batches of :data:`SCHEMA`, each value serialised once.

    A batch's values are written one after the other into one buffer of at
    least the size asked of ``buffer`` (a new one by default), which becomes
    the binary column as it is (no second copy); each batch comes with that
    buffer.
    """
    start = 0
    while start < len(items):
        end, bound = start, 0
        while end < len(items) and (end == start or bound < _BATCH_BYTES):
            bound += _ipc_bound(items[end][3])
            end += 1
        chunk = items[start:end]
        scratch = buffer(bound)
        data, offsets = _serialise([item[3] for item in chunk], scratch)
        if offsets[-1] >= 1 << 31:
            raise RecordingError(f"a message of {size_text(offsets[-1])} is too large to save")
        values = pa.BinaryArray.from_buffers(
            pa.binary(), len(chunk), [None, pa.array(offsets, pa.int32()).buffers()[1], data]
        )
        metas = [dict(item[2]) for item in chunk]
        sent = [_ns(meta.pop("timestamp", None)) for meta in metas]
        received = [item[4] for item in chunk]
        columns = [
            pa.array([item[0].node for item in chunk], pa.string()),
            pa.array([item[0].output for item in chunk], pa.string()),
            pa.array([item[1] for item in chunk], pa.int64()),
            pa.array([s or r for s, r in zip(sent, received, strict=True)], SCHEMA.field(3).type),
            pa.array(received, SCHEMA.field(4).type),
            pa.array([json.dumps(meta, default=str) for meta in metas], pa.string()),
            pa.array([str(_as_array(item[3]).type) for item in chunk], pa.string()),
            values,
            pa.array([item[6] for item in chunk], pa.int64()),
            pa.array([item[7] for item in chunk], pa.int64()),
        ]
        yield pa.record_batch(columns, schema=SCHEMA), scratch
        start = end


def _write_batches(items: list[_Item], write: Callable[[pa.RecordBatch], None]) -> None:
    """``write`` the batches of ``items``, a thread making the next while the last is written.

    Two buffers take turns, each reused once its batch is written (``write``
    must keep nothing of a batch): memory touched for the first time costs
    more than the copy into it (on the 2-core VM, filling 256 MB took 1 s the
    first time, 0.05 s again), and the file's write runs without the GIL.
    """
    free: queue.Queue[pa.Buffer | None] = queue.Queue()
    for _ in range(2):
        free.put(None)
    made: queue.Queue[tuple[pa.RecordBatch, pa.Buffer] | BaseException | None] = queue.Queue()

    def take(size: int) -> pa.Buffer:
        buffer = free.get()
        if buffer is _STOP:
            raise _Stopped
        return buffer if buffer is not None and buffer.size >= size else pa.allocate_buffer(size)

    def make() -> None:
        try:
            for pair in _batches(items, take):
                made.put(pair)
            made.put(None)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the writing thread, which raises it
            made.put(exc)

    thread = threading.Thread(target=make, name="dora-record-save", daemon=True)
    thread.start()
    try:
        while (got := made.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            batch, buffer = got
            write(batch)
            del batch, got
            free.put(buffer)
    finally:
        free.put(_STOP)  # a maker waiting for a buffer ends
        thread.join()


class _Stopped(Exception):
    """The save stopped: the thread making its batches ends."""


_STOP: Any = object()


def _ipc_bound(value: Any) -> int:
    """At least the bytes of ``value`` as Arrow IPC (its buffers, their padding, the headers)."""
    array = _as_array(value)
    return array.get_total_buffer_size() + 64 * len(array.buffers()) + 4096


def _serialise(values: list[Any], scratch: pa.Buffer) -> tuple[pa.Buffer, list[int]]:
    """``values`` as Arrow IPC one after the other, in ``scratch`` if they fit; their ends."""
    offsets = [0]
    try:
        sink = pa.FixedSizeBufferWriter(scratch)
        for value in values:
            _write_value(sink, value)
            offsets.append(sink.tell())
        return scratch.slice(0, offsets[-1]), offsets
    except OSError:  # larger than _ipc_bound said (headers of a very nested type)
        grown = pa.BufferOutputStream()
        offsets = [0]
        for value in values:
            _write_value(grown, value)
            offsets.append(grown.tell())
        return grown.getvalue(), offsets


def recorded(entry: Entry) -> Recorded:
    """The :class:`Recorded` message of an :data:`Entry` (see :meth:`Columns.entry`).

    >>> rec = Recording()
    >>> rec.record("cam", "frame", pa.array([7]), {"k": 1})
    >>> recorded(rec.columns().entry(0)) == rec.messages()[0]
    True
    """
    edge, seq, meta, value, received_ns, size, number, cause = entry
    meta = dict(meta)
    received = _from_ns(received_ns)
    sent = _utc(meta.pop("timestamp", None)) or received
    return Recorded(edge.node, edge.output, seq, sent, received, meta, value, size, number, cause)


def _as_array(value: Any) -> pa.Array:
    if isinstance(value, pa.ChunkedArray):
        return pa.concat_arrays(value.chunks)
    if isinstance(value, pa.Array):
        return value
    return pa.array(value if isinstance(value, list | tuple) else [value])


def _nbytes(value: Any) -> int:
    if isinstance(value, pa.Array | pa.ChunkedArray):
        return int(value.get_total_buffer_size())
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return 64  # a Python value a node sent as it is: counted, not measured


def _utc(stamp: Any) -> datetime | None:
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)
    return None


def _ns(stamp: Any) -> int:
    """A datetime as integer nanoseconds since the epoch, exactly (0 for anything else)."""
    when = _utc(stamp)
    if when is None:
        return 0
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


def _monotonic_to_epoch() -> int:
    """What to add to a ``time.monotonic_ns()`` to read it in ns since the epoch.

    Receive times are kept as the engine takes them (its send time, for the
    edge's latency), read since the epoch. Never early: the monotonic clock is
    read first, and a microsecond is added, since a send ``timestamp`` is the
    wall clock rounded to the microsecond and a receive time must not precede it.
    """
    before = time.monotonic_ns()
    return time.time_ns() - before + 1000


def _from_ns(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def size_text(nbytes: float) -> str:
    """``1.5 MB``-style text (1024-based).

    >>> size_text(512), size_text(1536), size_text(3 << 30)
    ('512 B', '1.5 KB', '3.0 GB')
    """
    value = float(nbytes)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
