"""Turn arbitrary Python values into JSON-safe data for previews.

This module owns the conversion of table cells (:func:`cell`: always succeeds,
bounded in size) and of json data (:func:`json_data`: complete, but raises
:class:`~dora_notebook.errors.PreviewError` on what has no JSON form), together
with the small text helpers the preview modules share (truncation, type names,
one-line error messages).

>>> import datetime
>>> cell([1.5, float("nan"), b"\\x00"])
[1.5, None, "b'\\\\x00'"]
>>> json_data({"when": datetime.date(2024, 5, 1), "n": [1, float("inf")]})
{'when': '2024-05-01', 'n': [1, None]}
>>> json_data([object()])
Traceback (most recent call last):
...
dora_notebook.errors.PreviewError: json data at [0]: cannot serialise object
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import pathlib
import sys
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import PreviewError

#: Longest text a table cell keeps (longer text ends with "…").
MAX_CELL_CHARS = 200
#: Most items a list or dict inside a table cell keeps (the last one says how many more).
MAX_CELL_ITEMS = 100
#: Most elements of a numpy array shown as json.
MAX_ARRAY_ELEMENTS = 1000

_MAX_DEPTH = 100
_MAX_BYTES_SHOWN = 32
_DAY_NS = 86_400 * 10**9
#: Nanoseconds per numpy timedelta64 unit (months and years have no fixed length,
#: and pandas, whose text :func:`duration_text` writes, stops at nanoseconds).
_UNIT_NS = {
    "W": 7 * _DAY_NS,
    "D": _DAY_NS,
    "h": 3_600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "ns": 1,
    "generic": 1,
}


class _Unserialisable(Exception):
    def __init__(self, path: str, what: str) -> None:
        super().__init__(path, what)
        self.path = path
        self.what = what


def cell(value: Any) -> Any:
    """A table cell: always succeeds, bounded in size."""
    return _convert(value, strict=False, path="", seen=set(), depth=0)


def json_data(value: Any) -> Any:
    """JSON data: converted fully; raises :class:`PreviewError` on what has no JSON form."""
    try:
        return _convert(value, strict=True, path="", seen=set(), depth=0)
    except _Unserialisable as exc:
        where = f" at {exc.path}" if exc.path else ""
        raise PreviewError(f"json data{where}: {exc.what}") from None


def is_json_scalar(value: Any) -> bool:
    return value is None or isinstance(
        value,
        (bool, int, float, complex, Decimal, np.generic, _dt.date, _dt.time, _dt.timedelta),
    )


def array_json(array: np.ndarray) -> dict[str, Any]:
    """A ``json`` payload for *array*, cut to :data:`MAX_ARRAY_ELEMENTS` with a ``"note"``."""
    if array.size <= MAX_ARRAY_ELEMENTS:
        return {"type": "json", "data": json_data(array)}
    if array.ndim == 1:
        head = array[:MAX_ARRAY_ELEMENTS]
        how = ""
    else:
        head = np.asarray(array.flat[:MAX_ARRAY_ELEMENTS])
        how = " (flattened)"
    note = (
        f"numpy array of shape {tuple(array.shape)} and dtype {array.dtype}: "
        f"showing the first {MAX_ARRAY_ELEMENTS} of {array.size} elements{how}"
    )
    return {"type": "json", "data": json_data(head), "note": note}


def label_text(label: Any) -> str:
    """The text of a column label or dict key (tuples of a MultiIndex joined by " / ")."""
    if isinstance(label, str):
        return plain_str(label)
    if isinstance(label, tuple):
        return " / ".join(
            label_text(part) for part in label if not (isinstance(part, str) and not part)
        )
    if isinstance(label, (_dt.date, _dt.time, np.datetime64)):
        text = cell(label)
        return text if isinstance(text, str) else str(label)
    return str(label)


def _convert(value: Any, *, strict: bool, path: str, seen: set[int], depth: int) -> Any:
    # Scalars first: they are by far the most common.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = plain_str(value)
        return text if strict else truncate(text)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    pandas = loaded_pandas()
    if pandas is not None and (value is pandas.NA or value is pandas.NaT):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes_repr(bytes(value))
    if isinstance(value, np.generic):
        return _numpy_scalar(value, strict=strict, path=path, seen=seen, depth=depth)
    if isinstance(value, (_dt.date, _dt.time)):  # datetime and pd.Timestamp included
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return duration_text(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, enum.Enum):
        return _convert(value.value, strict=strict, path=path, seen=seen, depth=depth)
    if isinstance(value, (uuid.UUID, pathlib.PurePath)):
        return str(value)
    if isinstance(value, pa.Scalar):
        try:
            inner = value.as_py()
        except Exception:
            return _fallback(value, strict, path)
        return _convert(inner, strict=strict, path=path, seen=seen, depth=depth)

    is_container = isinstance(value, (Mapping, list, tuple, set, frozenset, np.ndarray))
    if not is_container:
        return _fallback(value, strict, path)
    if id(value) in seen:
        if strict:
            raise _Unserialisable(path, "circular reference")
        return "<circular reference>"
    if depth >= _MAX_DEPTH:
        if strict:
            raise _Unserialisable(path, f"nested more than {_MAX_DEPTH} levels deep")
        return truncate(safe_str(value))
    seen.add(id(value))
    try:
        if isinstance(value, Mapping):
            return _convert_mapping(value, strict=strict, path=path, seen=seen, depth=depth)
        if isinstance(value, np.ndarray):
            return _convert_array(value, strict=strict, path=path, seen=seen, depth=depth)
        items = list(value)
        if isinstance(value, (set, frozenset)):
            items = _sorted_if_possible(items)
        return _convert_items(items, strict=strict, path=path, seen=seen, depth=depth)
    finally:
        seen.discard(id(value))


def _convert_items(
    items: Sequence[Any], *, strict: bool, path: str, seen: set[int], depth: int
) -> list[Any]:
    more = 0
    if not strict and len(items) > MAX_CELL_ITEMS:
        more = len(items) - (MAX_CELL_ITEMS - 1)
        items = items[: MAX_CELL_ITEMS - 1]
    out = [
        _convert(item, strict=strict, path=f"{path}[{i}]", seen=seen, depth=depth + 1)
        for i, item in enumerate(items)
    ]
    if more:
        out.append(f"… ({more} more)")
    return out


def _convert_mapping(
    value: Mapping[Any, Any], *, strict: bool, path: str, seen: set[int], depth: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limit = None if strict or len(value) <= MAX_CELL_ITEMS else MAX_CELL_ITEMS - 1
    for n, (key, item) in enumerate(value.items()):
        if limit is not None and n >= limit:
            out["…"] = f"{len(value) - limit} more"
            break
        name = key if isinstance(key, str) else label_text(key)
        out[name] = _convert(
            item, strict=strict, path=f"{path}[{name!r}]", seen=seen, depth=depth + 1
        )
    return out


def _convert_array(
    value: np.ndarray, *, strict: bool, path: str, seen: set[int], depth: int
) -> Any:
    if value.ndim == 0:
        return _convert(value[()], strict=strict, path=path, seen=seen, depth=depth)
    cut = not strict and len(value) > MAX_CELL_ITEMS
    part = value[: MAX_CELL_ITEMS - 1] if cut else value
    # tolist() gives Python scalars for plain numbers and text; datetimes would come
    # out as epoch ints, so those (and objects, records) go element by element.
    items = part.tolist() if part.dtype.kind in "biufUS" else list(part)
    out = _convert_items(items, strict=strict, path=path, seen=seen, depth=depth)
    if cut:
        out.append(f"… ({len(value) - len(part)} more)")
    return out


def _numpy_scalar(value: np.generic, *, strict: bool, path: str, seen: set[int], depth: int) -> Any:
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else str(np.datetime_as_string(value))
    if isinstance(value, np.timedelta64):  # before np.integer: it is a subclass
        return None if np.isnat(value) else duration_text(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.complexfloating):
        return str(complex(value))
    item = value.item()
    if isinstance(item, np.generic):  # pragma: no cover - no Python equivalent
        return _fallback(value, strict, path)
    return _convert(item, strict=strict, path=path, seen=seen, depth=depth)


def loaded_pandas() -> Any:
    """pandas if it is imported already, else None.

    A pandas object cannot exist before pandas is imported, so asking "is this a
    DataFrame?" never needs to import it: previews work without pandas installed
    and never pay its import.
    """
    return sys.modules.get("pandas")


def duration_text(value: _dt.timedelta | np.timedelta64) -> str:
    """A duration as pandas writes it (``str(pd.Timedelta(value))``), without pandas.

    A numpy duration in months, years or below a nanosecond is written as numpy
    writes it, since it has no fixed length in nanoseconds.

    >>> duration_text(_dt.timedelta(hours=3))
    '0 days 03:00:00'
    >>> duration_text(np.timedelta64(-7, "ns"))
    '-1 days +23:59:59.999999993'
    """
    if isinstance(value, np.timedelta64):
        unit, count = np.datetime_data(value.dtype)
        if unit not in _UNIT_NS:
            return str(value)
        total = int(value.astype(np.int64)) * count * _UNIT_NS[unit]
    else:  # a pandas Timedelta is a timedelta with nanoseconds besides
        micros = (value.days * 86_400 + value.seconds) * 10**6 + value.microseconds
        total = micros * 1000 + int(getattr(value, "nanoseconds", 0))
    days, rest = divmod(total, _DAY_NS)
    seconds, nanos = divmod(rest, 10**9)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{days} days {'+' if total < 0 else ''}{hours:02}:{minutes:02}:{seconds:02}"
    if nanos:
        fraction = f"{nanos:09}"
        text += f".{fraction if nanos % 1000 else fraction[:6]}"
    return text


def _fallback(value: Any, strict: bool, path: str) -> str:
    if strict:
        raise _Unserialisable(path, f"cannot serialise {type_name(value)}")
    return truncate(safe_str(value))


def _bytes_repr(raw: bytes) -> str:
    if len(raw) <= _MAX_BYTES_SHOWN:
        return repr(raw)
    shown = repr(raw[:_MAX_BYTES_SHOWN])
    return f"{shown[:-1]}...{shown[-1]} ({len(raw)} bytes)"


def _sorted_if_possible(items: list[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return items


# ----------------------------------------------------------------- shared text


def safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not break the preview
        return f"<{type_name(value)}>"


def plain_str(text: str) -> str:
    """*text* as a plain ``str`` (a subclass would serialise its own way)."""
    return text if type(text) is str else str.__str__(text)


def truncate(text: str, limit: int = MAX_CELL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def type_name(value: Any) -> str:
    kind = type(value)
    module = kind.__module__
    if module == "builtins":
        return kind.__qualname__
    return f"{module}.{kind.__qualname__}"


def one_line(exc: BaseException | str) -> str:
    """The first line of *exc*'s message (its type name if empty), cut to fit a message."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return truncate(first, MAX_CELL_CHARS)
