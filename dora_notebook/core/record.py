"""Recordings: the messages of a run's edges, kept by reference within a memory budget.

A :class:`Recording` is what ``%dora_record`` and :meth:`Dataflow.record
<dora_notebook.Dataflow.record>` fill while a graph runs. The engine hands it
each message it sends on a recorded output (:meth:`Recording.record`): the
Arrow array itself, never a copy, with its metadata. Past the budget the
oldest messages go, and are counted (:attr:`Recording.dropped`); a gap in an
output's ``seq`` shows where.

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
=============  ==========================  ===========================================

The file's schema metadata (key ``dora_notebook.recording``) holds, as JSON,
the graph's wiring and code when the recording started (``graph``: node id ->
``{"kind", "inputs", "outputs", "code"}``), the edges asked for, and the drop
counts.

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

import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .events import utcnow

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_MAX_MB",
    "SCHEMA",
    "SCHEMA_KEY",
    "Recorded",
    "Recording",
    "RecordingError",
    "decode_value",
    "encode_value",
]

#: The memory budget of a recording when none is given (megabytes).
DEFAULT_MAX_MB = 256
#: The key of the file's schema metadata that holds the recording's description.
SCHEMA_KEY = b"dora_notebook.recording"
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
    ]
)
_SUFFIXES = (".arrow", ".parquet")


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

    @property
    def edge(self) -> str:
        """``node/output``."""
        return f"{self.node}/{self.output}"


class Recording:
    """The messages of some outputs of a run, oldest first, within ``max_bytes``.

    ``edges``: the ``(node, output)`` pairs to keep, None for every one.
    ``graph``: the wiring and code of the graph's nodes when it started (see
    the module's docstring), which replay and :meth:`to_pytest` use.
    Thread-safe: the engine records from its threads while the notebook reads.
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
        self._items: deque[Recorded] = deque()
        self._lock = threading.Lock()
        self._seq: dict[tuple[str, str], int] = {}
        self._dropped: dict[tuple[str, str], int] = {}
        self._bytes = 0
        self._active = True
        self.path: Path | None = None  # the file it was loaded from or last saved to

    # -- filling --------------------------------------------------------------------

    def wants(self, node: str, output: str) -> bool:
        """Whether messages of ``node/output`` are to be recorded now."""
        return self._active and (self.edges is None or (node, output) in self.edges)

    def record(
        self,
        node: str,
        output: str,
        value: Any,
        metadata: dict[str, Any],
        received: datetime | None = None,
    ) -> None:
        """Keep one message sent on ``node/output`` (a no-op once stopped or not wanted).

        ``metadata["timestamp"]``, when there, is its send time; the rest is
        kept as it is. The value is kept by reference: the engine never
        mutates a sent Arrow array.
        """
        if not self.wants(node, output):
            return
        now = received or utcnow()
        meta = dict(metadata)
        sent = meta.pop("timestamp", None)
        size = _nbytes(value)
        key = (node, output)
        with self._lock:
            if not self._active:
                return
            seq = self._seq.get(key, 0)
            self._seq[key] = seq + 1
            item = Recorded(node, output, seq, _utc(sent) or now, now, meta, value, size)
            self._items.append(item)
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                old = self._items.popleft()
                self._bytes -= old.nbytes
                gone = (old.node, old.output)
                self._dropped[gone] = self._dropped.get(gone, 0) + 1

    def stop(self) -> None:
        """Stop recording; what was kept stays."""
        with self._lock:
            self._active = False

    # -- reading --------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether it still records."""
        return self._active

    @property
    def nbytes(self) -> int:
        """The bytes of the values kept."""
        return self._bytes

    @property
    def dropped(self) -> int:
        """Messages the budget let go, all edges together."""
        with self._lock:
            return sum(self._dropped.values())

    def dropped_by_edge(self) -> dict[str, int]:
        """Messages the budget let go, per ``node/output``."""
        with self._lock:
            return {f"{n}/{o}": count for (n, o), count in sorted(self._dropped.items())}

    def __len__(self) -> int:
        return len(self._items)

    def messages(self, node: str | None = None, output: str | None = None) -> list[Recorded]:
        """The kept messages, oldest first; only ``node``'s (and its ``output``'s) if given."""
        with self._lock:
            items = list(self._items)
        return [
            m
            for m in items
            if (node is None or m.node == node) and (output is None or m.output == output)
        ]

    def recorded_edges(self) -> list[str]:
        """The ``node/output`` pairs with at least one message seen, sorted."""
        with self._lock:
            return [f"{n}/{o}" for n, o in sorted(self._seq)]

    def status(self) -> str:
        """One line: recording or stopped, messages, edges, memory against the budget, drops."""
        with self._lock:
            count, edges = len(self._items), len(self._seq)
            dropped = sum(self._dropped.values())
        state = "recording" if self._active else "stopped"
        plural = "" if edges == 1 else "s"
        return (
            f"{state}: {count} messages on {edges} edge{plural}, "
            f"{_size(self._bytes)} of {_size(self.max_bytes)}, {dropped} dropped"
        )

    def __repr__(self) -> str:
        return f"<Recording {self.status()}>"

    # -- files ----------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """The kept messages as one table of :data:`SCHEMA` (values as Arrow IPC bytes)."""
        items = self.messages()
        columns = {
            "node": [m.node for m in items],
            "output": [m.output for m in items],
            "seq": [m.seq for m in items],
            "send_time": [m.send_time for m in items],
            "receive_time": [m.receive_time for m in items],
            "metadata": [json.dumps(m.metadata, default=str) for m in items],
            "type": [str(_as_array(m.value).type) for m in items],
            "value": [encode_value(m.value) for m in items],
        }
        table = pa.Table.from_pydict(columns, schema=SCHEMA)
        return table.replace_schema_metadata({SCHEMA_KEY: json.dumps(self._description())})

    def save(self, path: str | Path) -> Path:
        """Write it to ``path``: Arrow IPC (``.arrow``) or Parquet (``.parquet``), by suffix."""
        target = Path(path).expanduser()
        suffix = target.suffix.lower()
        if suffix not in _SUFFIXES:
            raise RecordingError(
                f"cannot save a recording as {target.name!r}: the name must end in "
                ".arrow (Arrow IPC) or .parquet"
            )
        table = self.to_arrow()
        target.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, target)
        else:
            with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
        self.path = target
        return target

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        """A recording saved by :meth:`save` (stopped; values decoded lazily per message)."""
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
        missing = [name for name in SCHEMA.names if name not in table.schema.names]
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
        columns = table.select(SCHEMA.names).to_pydict()
        for i in range(table.num_rows):
            value = decode_value(columns["value"][i])
            size = _nbytes(value)
            recording._items.append(
                Recorded(
                    columns["node"][i],
                    columns["output"][i],
                    columns["seq"][i],
                    columns["send_time"][i],
                    columns["receive_time"][i],
                    json.loads(columns["metadata"][i] or "{}"),
                    value,
                    size,
                )
            )
            recording._bytes += size
            key = (columns["node"][i], columns["output"][i])
            recording._seq[key] = max(recording._seq.get(key, 0), columns["seq"][i] + 1)
        for edge, count in (description.get("dropped") or {}).items():
            node, _, output = edge.partition("/")
            recording._dropped[node, output] = int(count)
        recording._active = False
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
            }
            for m in items
        ]
        return pd.DataFrame(rows, columns=[*SCHEMA.names[:6], "value"])

    def to_pytest(self, node: str, path: str | Path, code: str | Path | None = None) -> Path:
        """Write a pytest file that replays ``node``'s recorded inputs into its code.

        Beside ``path`` (``test_scale.py``) go the node's recorded inputs and
        outputs (``test_scale.arrow``) and its code as recorded, or ``code``
        (``scale_node.py``). The test passes while the node sends what it sent
        in the recording, and names the first differing message when it does
        not; see :mod:`~dora_notebook.core.testgen`.
        """
        from .testgen import write_pytest

        return write_pytest(self, node, path, code)

    def _description(self) -> dict[str, Any]:
        return {
            "version": 1,
            "edges": None if self.edges is None else sorted(f"{n}/{o}" for n, o in self.edges),
            "max_bytes": self.max_bytes,
            "dropped": self.dropped_by_edge(),
            "graph": self.graph,
        }


def encode_value(value: Any) -> bytes:
    """A message's value as Arrow IPC stream bytes of one column ``value``.

    >>> decode_value(encode_value(pa.array([1, 2]))).to_pylist()
    [1, 2]
    """
    array = _as_array(value)
    batch = pa.record_batch([array], names=["value"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def decode_value(data: bytes) -> pa.Array:
    """The Arrow array :func:`encode_value` wrote."""
    reader = pa.ipc.open_stream(pa.py_buffer(data))
    batches = list(reader)
    if not batches:
        return pa.array([], type=reader.schema.field("value").type)
    return pa.concat_arrays([b.column(0) for b in batches])


def _as_array(value: Any) -> pa.Array:
    if isinstance(value, pa.ChunkedArray):
        return pa.concat_arrays(value.chunks)
    if isinstance(value, pa.Array):
        return value
    return pa.array(value if isinstance(value, list | tuple) else [value])


def _nbytes(value: Any) -> int:
    if isinstance(value, pa.Array | pa.ChunkedArray):
        return int(value.nbytes)
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return 64  # a Python value a node sent as it is: counted, not measured


def _utc(stamp: Any) -> datetime | None:
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)
    return None


def _size(nbytes: float) -> str:
    """``1.5 MB``-style text (1024-based)."""
    value = float(nbytes)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
