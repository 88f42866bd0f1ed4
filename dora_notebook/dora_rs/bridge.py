"""The bridge: the dynamic node that joins a dora-rs dataflow for the kernel, and its protocol.

:func:`bridge_main` runs in a process of its own per run. It joins the
dataflow as :data:`BRIDGE_ID`, and passes each dora event on to the kernel as
one line of JSON (:func:`relay_event`): of a message, only the strings of an
Arrow string array, never anything to unpickle or evaluate. The kernel reads
those lines (:func:`protocol_message`) and keeps only the reports that carry
the run's secret and come from the node they name (:func:`accept_reports`).

Besides the reports, the bridge has one :data:`TAP_PREFIX` input per
output of every node (plain dora files and node-hub packages included). The
number of messages seen on each goes to the kernel in batches
(:class:`Relay`, at most every :data:`FLUSH_S`); the value of a message goes
only for an output someone taps or records (the kernel writes ``TAP
INPUT_ID`` on the bridge's standard input), as Arrow IPC (:func:`tap_line`),
never as anything to unpickle. A run recorded from its start also gives the
bridge one :data:`TIMER_PREFIX` input per timer the graph uses, whose ticks
go the same way (uncounted).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
import sys
import threading
import time
from datetime import datetime
from typing import Any, TextIO

from ..core.observe import KINDS
from .procs import error_text

__all__ = [
    "BRIDGE_ID",
    "TAP_PREFIX",
    "TIMER_PREFIX",
    "Relay",
    "accept_reports",
    "bridge_main",
    "protocol_message",
    "read_tap",
    "relay_event",
    "tap_line",
]

#: The id of the kernel's dynamic node in the exported dataflow.
BRIDGE_ID = "dora-notebook-bridge"
#: The bridge's inputs from the nodes' outputs are this plus a number.
TAP_PREFIX = "dora_notebook_tap_"
#: The bridge's inputs from the graph's timers (a recorded run only) are this plus a number.
TIMER_PREFIX = "dora_notebook_timer_"
#: The file the exported nodes wait for; the bridge makes it once it has joined.
BRIDGE_READY_ENV = "DORA_NOTEBOOK_BRIDGE_READY_FILE"
#: Counts wait at most this long in the bridge (seconds).
FLUSH_S = 0.1
#: After STOP, the bridge ends once no event came for this long (seconds; see _drain).
DRAIN_S = 0.2


def relay_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """What the bridge process passes on of one dora event (one line of JSON), or None.

    Of a message, only the strings of an Arrow string array leave the bridge
    process; any other value is passed on as a count of refused elements,
    never read (nothing is unpickled or evaluated).

    >>> import pyarrow as pa
    >>> relay_event({"type": "INPUT", "id": "a", "value": pa.array(['{"kind": "log"}'])})
    {'type': 'INPUT', 'id': 'a', 'texts': ['{"kind": "log"}']}
    >>> relay_event({"type": "INPUT", "id": "a", "value": pa.array([b"\\x80\\x04K\\x01."])})
    {'type': 'INPUT', 'id': 'a', 'refused': 1}
    """
    import pyarrow as pa

    kind = event.get("type")
    if kind == "INPUT":
        value = event.get("value")
        message: dict[str, Any] = {"type": kind, "id": str(event.get("id"))}
        if not isinstance(value, pa.Array):
            message["refused"] = 1
        elif pa.types.is_string(value.type) or pa.types.is_large_string(value.type):
            message["texts"] = value.to_pylist()
        else:
            message["refused"] = max(1, len(value))
        return message
    if kind in ("INPUT_CLOSED", "NODE_FAILED"):
        return {"type": kind, "id": str(event.get("id"))}
    if kind == "STOP":
        return {"type": kind}
    return None  # ERROR (a timeout of next()), RELOAD...: nothing for the kernel


def tap_line(input_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """One message of a tapped output as a line for the kernel: Arrow IPC and JSON metadata.

    The metadata's datetimes (dora's ``timestamp``) travel as ISO text, named
    in ``times``; other values JSON has no form for as their ``str``.

    >>> import pyarrow as pa
    >>> line = tap_line("t0", {"value": pa.array([1, 2]), "metadata": {"k": "v"}})
    >>> read_tap(line)[0].to_pylist(), read_tap(line)[1]
    ([1, 2], {'k': 'v'})
    """
    import pyarrow as pa

    value = event.get("value")
    if not isinstance(value, pa.Array):
        value = pa.array([], pa.null())
    sink = pa.BufferOutputStream()
    batch = pa.RecordBatch.from_arrays([value], ["value"])
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    raw = event.get("metadata")
    metadata = dict(raw) if isinstance(raw, dict) else {}
    times = [k for k, v in metadata.items() if isinstance(v, datetime)]
    for key in times:
        metadata[key] = metadata[key].isoformat()
    return {
        "type": "TAP",
        "id": input_id,
        "metadata": json.loads(json.dumps(metadata, default=str)),
        "times": times,
        "arrow": base64.b64encode(sink.getvalue().to_pybytes()).decode(),
    }


def read_tap(message: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The value (an Arrow array) and metadata of a :func:`tap_line`; ValueError if malformed."""
    import pyarrow as pa

    try:
        data = base64.b64decode(str(message["arrow"]), validate=True)
        table = pa.ipc.open_stream(data).read_all()
        table.validate(full=True)
        value = table.column(0).combine_chunks()
        metadata = dict(message.get("metadata") or {})
        for key in message.get("times") or []:
            metadata[key] = datetime.fromisoformat(metadata[key])
    except (KeyError, TypeError, AttributeError, pa.ArrowException) as exc:
        raise ValueError(f"a malformed tap message: {exc}") from None
    return value, metadata


class Relay:
    """What the bridge sends the kernel besides reports: tap counts and tapped values.

    The counts (running totals per tap input) go at most once per
    :data:`FLUSH_S`; a tapped message goes at once. ``taps`` is the set of
    tap inputs whose values are wanted (the kernel adds to it through the
    bridge's standard input).

    >>> import pyarrow as pa
    >>> lines = []
    >>> relay = Relay(lines.append, {TAP_PREFIX + "1"})
    >>> for tap in "0", "0", "1":
    ...     relay.event({"type": "INPUT", "id": TAP_PREFIX + tap, "value": pa.array([1])})
    >>> relay.flush(); [line["type"] for line in lines][-2:]
    ['TAP', 'COUNTS']
    >>> lines[-1]
    {'type': 'COUNTS', 'counts': {'dora_notebook_tap_0': 2, 'dora_notebook_tap_1': 1}}
    """

    def __init__(self, send: Any, taps: set[str] | None = None) -> None:
        self.send = send
        self.taps: set[str] = set() if taps is None else taps
        self._counts: dict[str, int] = {}
        self._changed = False
        self._flushed = time.monotonic()

    def event(self, event: dict[str, Any]) -> None:
        """Relay one dora event (an INPUT_CLOSED or NODE_FAILED after what came before it)."""
        kind = event.get("type")
        input_id = str(event.get("id"))
        if kind == "INPUT" and input_id.startswith(TAP_PREFIX):
            self._counts[input_id] = self._counts.get(input_id, 0) + 1
            self._changed = True
            if input_id in self.taps:
                self.send(tap_line(input_id, event))
        elif input_id.startswith(TIMER_PREFIX):
            if kind == "INPUT" and input_id in self.taps:  # ticks: recorded, not counted
                self.send(tap_line(input_id, event))
        else:
            message = relay_event(event)
            if message is not None:
                if message["type"] != "INPUT":
                    self.flush()  # what came before an end goes before it
                self.send(message)
        if time.monotonic() - self._flushed >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        """Send the counts, if any changed since the last flush."""
        self._flushed = time.monotonic()
        if self._changed:
            self._changed = False
            self.send({"type": "COUNTS", "counts": dict(self._counts)})


def accept_reports(
    texts: list[object], token: str, node_id: str | None
) -> tuple[list[dict[str, Any]], int]:
    """The reports among the texts of one message from ``node_id``, and how many were refused.

    A text counts only if it is a JSON object that carries this run's
    ``token``, names ``node_id`` (the node dora delivered it from: one node
    cannot speak for another), has a known kind and, if any, integer
    counters. ``node_id`` None (an input the bridge does not know) refuses
    everything.

    >>> good = '{"kind": "progress", "node": "a", "data": 5.0, "token": "t0k"}'
    >>> accept_reports([good, good.replace("t0k", "bad"), "not json"], "t0k", "a")
    ([{'kind': 'progress', 'node': 'a', 'data': 5.0, 'token': 't0k'}], 2)
    """
    if node_id is None:
        return [], max(1, len(texts))
    accepted: list[dict[str, Any]] = []
    refused = 0
    for text in texts:
        record = _report_record(text, token, node_id)
        if record is None:
            refused += 1
        else:
            accepted.append(record)
    return accepted, refused


def _report_record(text: object, token: str, node_id: str) -> dict[str, Any] | None:
    """One report if ``text`` is a valid one from ``node_id`` with ``token``; else None."""
    if not isinstance(text, str):
        return None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    supplied = record.get("token")
    # Constant-time: a node of another dataflow learns nothing from timing.
    if not isinstance(supplied, str) or not token:
        return None
    if not hmac.compare_digest(supplied.encode(), token.encode()):
        return None
    if record.get("node") != node_id or record.get("kind") not in KINDS or "data" not in record:
        return None
    for counter in ("received", "sent"):
        value = record.get(counter, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            return None
    return record


def protocol_message(line: bytes) -> dict[str, Any] | None:
    """One line of the bridge process as a message (a JSON object with a ``type``), or None."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return None
    return message


def bridge_main(argv: list[str] | None = None) -> int:
    """The bridge process: join the dataflow as :data:`BRIDGE_ID`, relay its events as JSON lines.

    ``argv``: the daemon's dynamic-node port, then the tap inputs wanted
    from the start (more come as ``TAP INPUT_ID`` lines on standard input,
    see :class:`Relay`). One process per run, so the
    kernel never loads dora-rs's node library: in dora-rs 1.1 it keeps
    process-wide state, and two nodes in one process (two runs at once)
    disturb each other (one's dataflow ends early, messages go missing); its
    native code also logs to file descriptor 1, which a notebook would show.
    Here descriptor 1 is the log (the process's stderr) and the lines for
    the kernel go out on a descriptor of their own; what they carry is
    :func:`relay_event`'s, and the kernel validates every report in them.
    """
    args = sys.argv[1:] if argv is None else argv
    daemon_port = int(args[0])
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    import dora  # dora-rs itself: only this process loads it

    deadline = time.monotonic() + 30.0
    while True:
        try:
            node = dora.Node(BRIDGE_ID, daemon_port=daemon_port)
            break
        except Exception as exc:  # not started yet: retried until the deadline
            if time.monotonic() > deadline:
                send({"type": "FAILED", "error": error_text(str(exc))})
                return 1
            time.sleep(0.1)
    ready = os.environ.get(BRIDGE_READY_ENV)
    if ready:  # the nodes wait for this file: made here, they need not wait for the kernel
        with contextlib.suppress(OSError):
            open(ready, "ab").close()
    send({"type": "JOINED"})
    relay = Relay(send, set(args[1:]))
    threading.Thread(target=_read_taps, args=(sys.stdin, relay.taps), daemon=True).start()
    while True:
        # A short timeout: the counts go out when nothing else comes.
        event = node.next(timeout=FLUSH_S)
        if event is None:
            relay.flush()
            send({"type": "STOP"})
            return 0
        if event.get("type") == "STOP":
            _drain(node, relay)
            relay.event(event)
            return 0
        relay.event(event)
        if event.get("type") == "ERROR":  # a timeout of next()
            relay.flush()


def _drain(node: Any, relay: Relay) -> None:
    """Relay what is still queued for the bridge once dora-rs sent it STOP.

    dora-rs 1.1 can hand a node its STOP ahead of inputs still queued for
    it (measured under load: of the 3000 lines a node printed just before it
    ended, 620 to 2385 came after the bridge's STOP). They come at once; the
    bridge ends when its event stream does, or after :data:`DRAIN_S`
    without an event.
    """
    while True:
        event = node.next(timeout=DRAIN_S)
        if event is None or event.get("type") in ("ERROR", "STOP"):
            return
        relay.event(event)


def _read_taps(stream: TextIO, taps: set[str]) -> None:
    """Add each ``TAP INPUT_ID`` line of ``stream`` to ``taps`` (the kernel's requests)."""
    for line in stream:
        word, _, input_id = line.strip().partition(" ")
        if word == "TAP" and input_id.startswith((TAP_PREFIX, TIMER_PREFIX)):
            taps.add(input_id)


if __name__ == "__main__":
    raise SystemExit(bridge_main())
