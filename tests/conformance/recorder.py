"""What a conformance node received, as JSON lines in ``out/<node_id>.jsonl``.

The harness copies this file next to the node files of a dataflow before
running it, so node scripts and operators use it with a plain
``import recorder``, under real dora-rs and under ``dora-notebook run``
alike. The path is relative to the working directory, which both engines set
to the descriptor's folder.

Every line is one JSON object. Events become ``{"event": TYPE, ...}``
(see :func:`describe`); :meth:`Recorder.note` writes free-form facts. Lines
are flushed at once so that a run that is cut short still leaves them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TextIO

import pyarrow.compute as pc

__all__ = [
    "OUT_DIR",
    "OUT_DIR_ENV",
    "Recorder",
    "builtin_error",
    "describe",
    "outcome",
    "plain",
    "timestamp_kind",
]

#: Where the records go, relative to the node's working directory.
OUT_DIR = "out"
#: If set in a node's environment, the folder to write records to instead: for
#: runs whose nodes work in a folder the harness does not keep (the dora engine
#: of ``%dora_start --engine dora`` runs them in a private export it removes).
OUT_DIR_ENV = "CONFORMANCE_OUT_DIR"


def plain(value: Any) -> Any:
    """``value`` as JSON-friendly data that still tells types apart.

    >>> plain({"b": b"ab", "t": (1, 2.5)})
    {'b': {'bytes': '6162'}, 't': [1, 2.5]}
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return {"repr": f"{type(value).__name__}:{value!r}"}


def timestamp_kind(value: object) -> str:
    """``"utc-datetime"`` for a timezone-aware UTC ``datetime``, else what it is.

    >>> from datetime import timezone
    >>> timestamp_kind(datetime(2024, 1, 2, tzinfo=timezone.utc))
    'utc-datetime'
    >>> timestamp_kind(datetime(2024, 1, 2))
    'naive datetime'
    """
    if not isinstance(value, datetime):
        return f"not a datetime: {type(value).__name__}"
    if value.tzinfo is None or value.utcoffset() is None:
        return "naive datetime"
    if value.utcoffset() != timedelta(0):
        return f"datetime at UTC{value.utcoffset()}"
    return "utc-datetime"


def builtin_error(exc: BaseException) -> str:
    """The name of the first built-in class of ``exc``: what an ``except`` can rely on.

    >>> class NodeError(RuntimeError): ...
    >>> builtin_error(NodeError("x"))
    'RuntimeError'
    """
    return next(c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins")


def outcome(call: Callable[[], Any]) -> str:
    """``repr`` of what ``call()`` returns, or ``raises <built-in class>``.

    >>> outcome(lambda: [1]), outcome(lambda: 1 / 0)
    ('[1]', 'raises ZeroDivisionError')
    """
    try:
        return repr(call())
    except Exception as exc:
        return f"raises {builtin_error(exc)}"


def describe(event: Mapping[str, Any], *, summarize: bool = False) -> dict[str, Any]:
    """One event as a record: type, id, payload and metadata, engine-neutral.

    ``keys`` lists the event dict's keys; an ``INPUT`` also gets its value as
    a Python list (with ``summarize``, only the length and sum of a large
    numeric array), its Arrow type and array class, its metadata without
    ``timestamp`` and what kind of ``timestamp`` it carried. An ``ERROR``
    keeps only that it had an ``error`` text, whose wording is engine-specific.
    """
    record: dict[str, Any] = {"event": event.get("type"), "keys": sorted(event.keys())}
    if "id" in event:
        record["id"] = event["id"]
    if "kind" in event:
        record["kind"] = event["kind"]
    if "error" in event:
        record["error_is_str"] = isinstance(event["error"], str)
    if "value" in event:
        value = event["value"]
        if summarize:
            record["value"] = {"length": len(value), "sum": pc.sum(value).as_py()}
        else:
            record["value"] = plain(value.to_pylist())
        record["arrow_type"] = str(value.type)
        record["array_class"] = type(value).__name__
    if "metadata" in event:
        metadata = dict(event["metadata"])
        record["timestamp"] = timestamp_kind(metadata.pop("timestamp", None))
        record["metadata"] = plain(metadata)
    return record


class Recorder:
    """Writes the records of one node to ``out/<node_id>.jsonl``.

    The node id is passed explicitly: under ``dora-notebook run`` every node
    shares one process, so this module cannot find it out by itself.
    """

    def __init__(self, node_id: str) -> None:
        folder = os.environ.get(OUT_DIR_ENV) or OUT_DIR
        os.makedirs(folder, exist_ok=True)
        self.node_id = node_id
        self.path = os.path.join(folder, f"{node_id}.jsonl")
        self._file: TextIO = open(self.path, "w", encoding="utf-8")  # noqa: SIM115

    def event(
        self, event: Mapping[str, Any], *, summarize: bool = False, **extra: Any
    ) -> dict[str, Any]:
        """Record ``event`` (see :func:`describe`), plus ``extra`` fields; return the record."""
        record = {**describe(event, summarize=summarize), **{k: plain(v) for k, v in extra.items()}}
        self._write(record)
        return record

    def note(self, **fields: Any) -> None:
        """Record a free-form fact, such as a summary at the end of a run."""
        self._write({"note": {k: plain(v) for k, v in fields.items()}})

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file (records are already flushed)."""
        self._file.close()
