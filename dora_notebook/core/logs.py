"""Log records as dora-rs 1.1 has them: levels, filters, and the text and JSON they become.

dora-rs 1.1 gives every line a node writes, and every record it logs, a
level: ``ERROR``, ``WARN``, ``INFO``, ``DEBUG``, ``TRACE``, or ``stdout`` for
plain output. ``node.log*`` records carry their level; ``print()`` lines are
``stdout``; and so are records of Python's ``logging``, which dora 1.1's
bridge writes as one line of JSON (tracing's format, with a ``line`` number
the daemon cannot read as a string field) on the node's stdout. What passes
a level filter follows dora's rule (:func:`passes`): ``stdout`` passes only a
``stdout`` filter, a level passes a filter of its own severity or lower.

>>> passes("WARN", "info"), passes("stdout", "info"), passes("stdout", None)
(True, False, True)
>>> record = LogRecord("WARN", "hot", target="temp", time_ns=0)
>>> record.pretty("sensor")[9:]
'WARN   sensor: temp hot'
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

__all__ = [
    "STDOUT",
    "LogFilter",
    "LogRecord",
    "from_python",
    "node_level",
    "node_settings",
    "parse_level",
    "passes",
]

#: The level of plain output (``print()``, and Python ``logging`` under dora 1.1).
STDOUT = "stdout"

#: dora's levels, most severe first.
_SEVERITY = {"ERROR": 1, "WARN": 2, "INFO": 3, "DEBUG": 4, "TRACE": 5}

#: What ``node.log(level, ...)`` accepts, as dora-rs 1.1 reads it (anything else is INFO).
_NODE_LEVELS = {
    "error": "ERROR",
    "warn": "WARN",
    "warning": "WARN",
    "info": "INFO",
    "debug": "DEBUG",
    "trace": "TRACE",
}

#: The daemon this process plays: dora's records name theirs.
_DAEMON = str(uuid.uuid4())


@lru_cache(maxsize=64)
def parse_level(text: str) -> str:
    """A ``min_log_level`` (or ``dora/logs/LEVEL``) as dora reads it; ``ValueError`` if unknown.

    >>> parse_level("Warn"), parse_level("stdout")
    ('WARN', 'stdout')
    """
    word = str(text).lower()
    if word == STDOUT:
        return STDOUT
    if word.upper() in _SEVERITY:
        return word.upper()
    raise ValueError(f"unknown log level {text!r} (use error, warn, info, debug, trace or stdout)")


def passes(level: str, minimum: str | None) -> bool:
    """Whether a record of ``level`` passes a filter at ``minimum`` (None lets all pass)."""
    if minimum is None:
        return True
    minimum = parse_level(minimum)
    if level == STDOUT:
        return minimum == STDOUT
    return minimum == STDOUT or _SEVERITY[level] <= _SEVERITY[minimum]


def node_level(level: object) -> str:
    """The level ``node.log(level, ...)`` logs at: dora-rs 1.1's words, INFO otherwise."""
    return _NODE_LEVELS.get(str(level).lower(), "INFO")


def node_settings(extra: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A node's ``min_log_level`` and ``send_logs_as`` (an operator's are in ``operator:``)."""
    operator = extra.get("operator")
    fields = {**extra, **operator} if isinstance(operator, Mapping) else extra
    return fields.get("min_log_level"), fields.get("send_logs_as")


@dataclass(frozen=True)
class LogFilter:
    """A ``dora/logs[/LEVEL[/NODE]]`` input: which nodes' records, from which level.

    >>> LogFilter.parse("dora/logs/warn/camera")
    LogFilter(level='WARN', node='camera')
    >>> LogFilter.parse("dora/logs/info").accepts("DEBUG", "camera")
    False
    """

    level: str | None = None
    node: str | None = None

    @classmethod
    def parse(cls, source: str) -> LogFilter:
        """Parse a ``dora/logs`` source; ``ValueError`` says what is wrong."""
        parts = source.split("/")
        if parts[:2] != ["dora", "logs"] or len(parts) > 4:
            raise ValueError(
                f"{source!r} is not dora/logs, dora/logs/LEVEL or dora/logs/LEVEL/NODE"
            )
        level = None
        if len(parts) > 2:
            level = parse_level(parts[2])
        node = parts[3] if len(parts) == 4 else None
        if node == "":
            raise ValueError(f"{source!r}: the node id after the level is empty")
        return cls(level, node)

    def accepts(self, level: str, node_id: str) -> bool:
        return (self.node is None or self.node == node_id) and passes(level, self.level)


@dataclass(frozen=True)
class LogRecord:
    """One record of a node's log, with dora's fields (its LogMessage, less the ids)."""

    level: str
    message: str
    target: str | None = None
    fields: Mapping[str, str] | None = None
    file: str | None = None
    line: int | None = None
    module_path: str | None = None
    time_ns: int = field(default_factory=time.time_ns)

    def pretty(self, node_id: str) -> str:
        """The line ``dora run`` prints for it: ``12:00:01 WARN   node: target message``."""
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time_ns / 1e9))
        target = f"{self.target} " if self.target else ""
        return f"{stamp} {self.level:<6} {node_id}: {target}{self.message}"

    def to_json(self, node_id: str, dataflow_id: str) -> str:
        """What ``dora/logs`` inputs and ``send_logs_as`` outputs carry: dora's JSON text."""
        return _dumps(
            {
                "build_id": None,
                "dataflow_id": dataflow_id,
                "node_id": node_id,
                "daemon_id": {"machine_id": None, "uuid": _DAEMON},
                "level": self.level,
                "target": self.target,
                "module_path": self.module_path,
                "file": self.file,
                "line": self.line,
                "message": self.message,
                "timestamp": _rfc3339(self.time_ns),
                "fields": dict(self.fields) if self.fields else None,
            }
        )


def from_python(record: logging.LogRecord) -> LogRecord | None:
    """A Python ``logging`` record as dora-rs 1.1 logs it, or None when dora drops it.

    dora's bridge turns the record into a tracing event that its subscriber
    (level INFO and up) writes as JSON on stdout; the daemon cannot parse
    that line as a log message, so it stays a ``stdout`` line whose text is
    the JSON.
    """
    if record.levelno < logging.INFO:
        return None
    level = "ERROR" if record.levelno >= 40 else "WARN" if record.levelno >= 30 else "INFO"
    message = record.getMessage()
    place = {"file": record.pathname, "line": record.lineno}
    span = {**place, "message": message, "target": record.name}
    span["name"] = f"dora.python.log.{level.lower()}"
    stamp = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = _dumps(
        {
            "timestamp": stamp,
            "level": level,
            "fields": {**place, "target": record.name, "message": message},
            "target": "dora",
            "span": span,
            "spans": [span],
        }
    )
    return LogRecord(STDOUT, text, time_ns=int(record.created * 1e9))


def _dumps(value: Any) -> str:
    # As serde_json writes it: no spaces, non-ASCII as it is.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _rfc3339(time_ns: int) -> str:
    """``time_ns`` as chrono writes a UTC time: as few fraction digits as are exact (0, 3, 6, 9)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    for digits in (0, 3, 6, 9):
        scale = 10 ** (9 - digits)
        if nanos % scale == 0:
            return text + (f".{nanos // scale:0{digits}d}" if digits else "") + "Z"
    raise AssertionError("nanoseconds have at most 9 digits")
