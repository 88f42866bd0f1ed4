"""The bridge: the dynamic node that joins a dora-rs dataflow for the kernel, and its protocol.

:func:`bridge_main` runs in a process of its own per run. It joins the
dataflow as :data:`BRIDGE_ID`, and passes each dora event on to the kernel as
one line of JSON (:func:`relay_event`): of a message, only the strings of an
Arrow string array, never anything to unpickle or evaluate. The kernel reads
those lines (:func:`protocol_message`) and keeps only the reports that carry
the run's secret and come from the node they name (:func:`accept_reports`).
"""

from __future__ import annotations

import hmac
import json
import os
import sys
import time
from typing import Any

from ..core.observe import KINDS
from .procs import error_text

__all__ = ["BRIDGE_ID", "accept_reports", "bridge_main", "protocol_message", "relay_event"]

#: The id of the kernel's dynamic node in the exported dataflow.
BRIDGE_ID = "dora-notebook-bridge"


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

    ``argv``: the daemon's dynamic-node port. One process per run, so the
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
    send({"type": "JOINED"})
    while True:
        event = node.next(timeout=1.0)
        message = {"type": "STOP"} if event is None else relay_event(event)
        if message is not None:
            send(message)
            if message["type"] == "STOP":
                return 0


if __name__ == "__main__":
    raise SystemExit(bridge_main())
