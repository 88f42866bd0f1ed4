"""dora's words: :class:`DoraStatus`, the event dict, and the data conversions
``send_output`` performs.

>>> import pyarrow as pa
>>> ev = input_event("x", pa.array([1, 2], pa.uint8()), {"k": 1})
>>> ev["type"], ev["id"], ev["data"]
('INPUT', 'x', b'\\x01\\x02')
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from ..errors import NodeError

__all__ = [
    "DataTypeError",
    "DoraStatus",
    "Event",
    "check_metadata",
    "closed_event",
    "error_event",
    "input_event",
    "reload_event",
    "status_value",
    "stop_event",
    "to_arrow",
    "utcnow",
    "value_bytes",
]


class DataTypeError(NodeError, TypeError):
    """``send_output`` got data that is neither ``bytes`` nor a pyarrow Array."""


class DoraStatus(enum.Enum):
    """What ``on_event`` returns: go on, stop this operator, or stop the graph."""

    CONTINUE = 0
    STOP = 1
    STOP_ALL = 2


_CONTINUE, _STOP, _STOP_ALL = DoraStatus.CONTINUE, DoraStatus.STOP, DoraStatus.STOP_ALL


def status_value(result: object) -> int:
    """The numeric status of whatever ``on_event`` returned.

    ``None`` counts as CONTINUE; any object with a ``.value`` (dora-rs's own
    enum included) is read through it.

    >>> status_value(DoraStatus.STOP), status_value(None)
    (1, 0)
    """
    # Identity checks first: reading an enum's .value, or a member off its
    # class, is comparatively slow.
    if result is None or result is _CONTINUE:
        return 0
    if result is _STOP:
        return 1
    if result is _STOP_ALL:
        return 2
    value = getattr(result, "value", result)
    if isinstance(value, int) and value in (0, 1, 2):
        return int(value)
    raise TypeError(
        f"on_event must return a DoraStatus (CONTINUE, STOP or STOP_ALL), not {result!r}"
    )


class Event(dict):
    """A dora event: a plain dict whose ``data`` key is computed on first read.

    ``data`` is the value's bytes; computing it copies, so an operator that
    only uses ``value`` never pays for it.
    """

    __slots__ = ()

    def __missing__(self, key: str) -> Any:
        if key == "data" and "value" in self:
            data = value_bytes(dict.__getitem__(self, "value"))
            self["data"] = data
            return data
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (key == "data" and dict.__contains__(self, "value"))


def value_bytes(value: pa.Array) -> bytes:
    """The bytes of an Arrow array's values, as dora's ``data`` documents.

    Fixed-width arrays give their value buffer, binary and string arrays the
    concatenation of their items.
    """
    kind = value.type
    if pa.types.is_primitive(kind) and not pa.types.is_boolean(kind) and value.null_count == 0:
        width = kind.bit_width // 8
        buffer = value.buffers()[1]
        if buffer is None:
            return b""
        start = value.offset * width
        return buffer.to_pybytes()[start : start + len(value) * width]
    if pa.types.is_binary(value.type) or pa.types.is_large_binary(value.type):
        return b"".join(x.as_py() or b"" for x in value)
    if pa.types.is_string(value.type) or pa.types.is_large_string(value.type):
        return "".join(x.as_py() or "" for x in value).encode()
    return value.to_numpy(zero_copy_only=False).tobytes()


def to_arrow(data: object) -> pa.Array:
    """Convert what ``send_output`` accepts, as dora-rs does: ``bytes`` or an Arrow array.

    ``bytes`` become a ``UInt8Array`` over the same memory. Anything else
    raises :class:`DataTypeError`, a ``RuntimeError`` as in dora-rs (and a
    ``TypeError``, which is what it is).
    """
    if isinstance(data, pa.Array):
        return data
    if isinstance(data, bytes):
        buffer = pa.py_buffer(data)
        return pa.Array.from_buffers(pa.uint8(), len(data), [None, buffer])
    raise DataTypeError(
        f"invalid `data` type {type(data).__name__!r}, must be `PyBytes` or arrow array "
        "(wrap values with pyarrow.array(...))"
    )


_INT64 = (-(2**63), 2**63 - 1)


_PLAIN = (str, bool, float)


def _metadata_value(key: str, value: object) -> object:
    """One metadata value as dora-rs 1.1 keeps it, coerces it, or refuses it."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64[0] <= value <= _INT64[1]:
            raise OverflowError(f"metadata {key!r}: Python int too large to convert to C long")
        return value
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, datetime):
        # dora reads a naive datetime as UTC.
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        if len(kinds) > 1 or not kinds <= {int, float, str, bool}:
            raise TypeError(f"metadata {key!r}: a list must hold one type of int, float or str")
        for item in value:
            _metadata_value(key, item)
        return list(value)
    # Like dora: values it has no type for travel as their text.
    return str(value)


def check_metadata(metadata: object) -> dict[str, Any]:
    """``send_output``'s metadata, checked and coerced the way dora-rs 1.1 does.

    Refused: a non-dict (TypeError), non-str keys (RuntimeError), ints beyond
    64 bits (OverflowError), mixed lists (TypeError). Coerced: a naive
    datetime to UTC, other values (dict, None, bytes...) to their ``str``.

    >>> check_metadata({"n": 1, "d": {"a": 1}, "none": None})
    {'n': 1, 'd': "{'a': 1}", 'none': 'None'}
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
    # Most metadata holds only str keys and values kept as they are: one copy
    # in C and one scan. Anything else takes the full check below.
    checked = dict(metadata)
    low, high = _INT64
    for key, value in checked.items():
        kind = type(value)
        if type(key) is not str:
            break
        if kind is int:
            if not low <= value <= high:
                break
        elif kind is datetime:
            if not value.tzinfo:
                break
        elif not (kind is str or kind is float or kind is bool):
            break
    else:
        return checked
    checked = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise DataTypeError(f"Parsing metadata keys: key {key!r} is not a str")
        checked[key] = _metadata_value(key, value)
    return checked


def utcnow() -> datetime:
    """Now, as the timezone-aware UTC datetime event metadata carries."""
    return datetime.now(timezone.utc)


def input_event(input_id: str, value: pa.Array, metadata: dict[str, Any]) -> Event:
    return Event(kind="dora", type="INPUT", id=input_id, value=value, metadata=metadata)


def closed_event(input_id: str) -> Event:
    return Event(kind="dora", type="INPUT_CLOSED", id=input_id)


def stop_event(reason: str) -> Event:
    """A STOP event; ``reason`` is ``MANUAL`` or ``ALL_INPUTS_CLOSED``."""
    return Event(kind="dora", type="STOP", id=reason)


def reload_event(operator_id: str | None = None) -> Event:
    return Event(kind="dora", type="RELOAD", id=operator_id)


def error_event(error: str) -> Event:
    return Event(kind="dora", type="ERROR", error=error)
