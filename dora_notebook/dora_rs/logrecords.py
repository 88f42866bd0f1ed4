"""dora-rs's log records, as its ``dora/logs`` input gives them, turned into panel lines.

dora-rs 1.1 hands a node with a ``dora/logs`` input every node's log record
as JSON text (its ``LogMessage``): every line a node prints (level
``stdout``), every ``node.log`` record and dora's own warnings (level and
target), and a Python ``logging`` record, which dora 1.1 prints as a line of
tracing's JSON on the node's stdout. The kernel's bridge subscribes to it,
so that the panel of every node shows its log, the nodes of plain dora
files and node-hub packages included (:func:`panel_log`), as the embedded
engine shows them; and dora's warning for each message a full input queue
drops is counted per input (:func:`dropped_input`).

>>> text = ('{"node_id":"sensor","level":"WARN","target":"temp","message":"hot",'
...         '"timestamp":"2026-01-01T00:00:00.5Z","fields":null}')
>>> node_id, record = parse_record(text)
>>> node_id, panel_log(record)["line"], panel_log(record)["stdio"]
('sensor', 'temp hot', 'warning')
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from ..core.logs import STDOUT, LogRecord

__all__ = ["dropped_input", "panel_log", "parse_record"]

#: The panel's word for each of dora's levels (the embedded engine's ``stdio``).
_STDIO = {"ERROR": "error", "WARN": "warning", "INFO": "info", "DEBUG": "debug", "TRACE": "trace"}
_LEVELS = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE", STDOUT}
#: dora-rs 1.1's warning for each message a full queue drops (see core.runner.DISCARDING).
_DISCARDING = re.compile(r"^Discarding event for input `([^`]+)` due to queue size limit$")
_SCHEDULER = "dora_node_api::event_stream::scheduler"


def parse_record(text: object) -> tuple[str, LogRecord] | None:
    """The node id and record of one ``dora/logs`` text, or None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, dict):
        return None
    node_id, level, message = raw.get("node_id"), raw.get("level"), raw.get("message")
    if not isinstance(node_id, str) or level not in _LEVELS or not isinstance(message, str):
        return None
    fields = raw.get("fields")
    line = raw.get("line")
    record = LogRecord(
        level,
        message,
        _text(raw.get("target")),
        {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else None,
        file=_text(raw.get("file")),
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        module_path=_text(raw.get("module_path")),
        time_ns=_time_ns(raw.get("timestamp")),
    )
    return node_id, record


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _time_ns(stamp: object) -> int:
    """dora's RFC 3339 time (up to nanoseconds) as nanoseconds since the epoch; 0 if unreadable."""
    if not isinstance(stamp, str):
        return 0
    found = re.match(r"^(.*?T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$", stamp)
    if found is None:
        return 0
    whole, fraction, zone = found.groups()
    try:
        seconds = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).timestamp()
    except ValueError:
        return 0
    return int(seconds) * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def panel_log(record: LogRecord) -> dict[str, Any]:
    """The ``log`` report of one record, as the embedded engine reports the same line.

    A printed line is ``stdout``; a record shows its level and, as ``dora
    run`` prints it, its target before the message; a Python ``logging``
    record (dora 1.1's JSON line) shows its level and message.

    >>> panel_log(LogRecord("stdout", "tick 3"))["line"]
    'tick 3'
    >>> python = ('{"timestamp":"t","level":"WARN","fields":{"message":"hot","target":"x"},'
    ...           '"target":"dora"}')
    >>> {k: v for k, v in panel_log(LogRecord("stdout", python)).items() if k != "record"}
    {'line': 'hot', 'stdio': 'warning'}
    """
    if record.level == STDOUT:
        python = _python_record(record.message)
        if python is not None:
            return {"line": python[1], "stdio": _STDIO[python[0]], "record": record}
        return {"line": record.message, "stdio": "stdout", "record": record}
    target = record.target
    text = f"{target} {record.message}" if target else record.message
    fields = dict(record.fields) if record.fields else {}
    stdio = _STDIO[record.level]
    return {"line": text, "stdio": stdio, "target": target, "fields": fields, "record": record}


def _python_record(message: str) -> tuple[str, str] | None:
    """Level and message of a Python ``logging`` record as dora 1.1 prints it, or None."""
    if not message.startswith('{"timestamp"'):
        return None
    try:
        raw = json.loads(message)
    except (ValueError, RecursionError):
        return None
    fields = raw.get("fields") if isinstance(raw, dict) else None
    level = raw.get("level") if isinstance(raw, dict) else None
    if raw.get("target") != "dora" or level not in _STDIO or not isinstance(fields, dict):
        return None
    text = fields.get("message")
    return (level, text) if isinstance(text, str) else None


def dropped_input(record: LogRecord) -> str | None:
    """The input whose full queue dropped a message, if ``record`` is dora's warning of that.

    >>> dropped_input(LogRecord("WARN", "Discarding event for input `x` due to queue size limit",
    ...                         "dora_node_api::event_stream::scheduler"))
    'x'
    """
    if record.level != "WARN" or record.target != _SCHEDULER:
        return None
    found = _DISCARDING.match(record.message)
    return found.group(1) if found else None
