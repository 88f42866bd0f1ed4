"""Normalise what a node passes to ``context.preview(payload)`` into a JSON payload.

This is the pure half of an OOMOL/oocana-style preview: it turns a DataFrame, a
figure, a string, some data or an explicit ``{"type": T, "data": ...}`` dict into
``{"type": T, "data": ...}`` that ``json.dumps(..., allow_nan=False)`` accepts.
Showing the payload is someone else's job, so this module imports neither
IPython nor ipywidgets, and matplotlib only lazily (never ``pyplot``). This
module dispatches and builds tables; cells and json data are made safe by
``_jsonsafe``, images, media and figures by ``_media``.

Rules worth knowing:

* **Tables** (pandas DataFrame or Series, pyarrow Table, RecordBatch, Array or
  ChunkedArray) keep at most :data:`MAX_ROWS_WHOLE` rows: a longer table shows
  its first :data:`HEAD` rows, one row of ``"..."`` and its last :data:`TAIL`
  rows, and ``row_count`` gives the full length. Columns are capped the same way
  (a ``"..."`` column, plus ``column_count``). Only the rows and columns shown
  are read, so a huge or very wide table takes the same time as a small one.
* **The index** of a DataFrame is shown only when it is named (any level of a
  MultiIndex); it then comes first, one column per level, unnamed levels called
  ``level_<i>``. A default or filtered index is row bookkeeping, not data. A
  Series is different: its labels usually carry meaning (``df.sum()``), so its
  index is shown whenever it is named *or* is not a plain ``RangeIndex``. An
  unnamed Series shows its values in a column called ``value``.
* **Cells** become JSON scalars: NaN, NaT, NA, None and infinities become
  ``None``; date/time values ISO 8601 text; durations pandas' text
  (``"0 days 03:00:00"``); ``Decimal`` its exact text; bytes a short ``b'...'``
  repr; nested lists and dicts are converted recursively (at most
  :data:`MAX_CELL_ITEMS` items each); long text and anything else is cut to
  :data:`MAX_CELL_CHARS` characters.
* **Figures** are drawn with Agg into a PNG data URL. See :func:`normalize`.
* ``normalize`` is idempotent: a normalised payload normalises to itself.

>>> normalize("hello")
{'type': 'text', 'data': 'hello'}
>>> normalize({"type": "markdown", "data": "# Title", "title": "notes"})
{'type': 'markdown', 'data': '# Title', 'title': 'notes'}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..errors import PreviewError
from .frames import Frame, frame_from, frame_from_event, frame_or_none, is_image_event
from .jsonsafe import (
    MAX_ARRAY_ELEMENTS,
    MAX_CELL_CHARS,
    MAX_CELL_ITEMS,
    array_json,
    cell,
    is_json_scalar,
    json_data,
    label_text,
    loaded_pandas,
    one_line,
    plain_str,
    safe_str,
    type_name,
)
from .media import data_url, iframe_data, image_data, image_or_none, media_data, sniff_image

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DOTS",
    "HEAD",
    "HEAD_COLUMNS",
    "KNOWN_TYPES",
    "MAX_ARRAY_ELEMENTS",
    "MAX_CELL_CHARS",
    "MAX_CELL_ITEMS",
    "MAX_COLUMNS_WHOLE",
    "MAX_ROWS_WHOLE",
    "TAIL",
    "TAIL_COLUMNS",
    "PreviewError",
    "frame_payload",
    "normalize",
    "payload_size",
]

#: A table with at most this many rows is shown whole.
MAX_ROWS_WHOLE = 10
#: Rows shown from the start and from the end of a longer table.
HEAD = 5
TAIL = 5
#: The same for columns.
MAX_COLUMNS_WHOLE = 10
HEAD_COLUMNS = 5
TAIL_COLUMNS = 5
#: The text of the row and of the column that stand for what was left out.
DOTS = "..."
#: Payload types a consumer knows how to show.
KNOWN_TYPES = (
    "table",
    "text",
    "json",
    "image",
    "markdown",
    "html",
    "iframe",
    "video",
    "audio",
    "csv",
)

_TEXT_TYPES = ("text", "markdown", "html")


# --------------------------------------------------------------------------- API


def normalize(payload: Any, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return ``{"type": T, "data": ...}`` for *payload*, ready for ``json.dumps``.

    Images are the exception: a numpy uint8 ``HxW[xC]`` array, a PIL image, a
    dora INPUT event whose metadata has an image ``encoding``, or any value
    given with such ``metadata`` become ``{"type": "image", "data": Frame,
    "width": W, "height": H, "encoding": E}``, the pixels kept by reference
    and encoded only when shown (see :mod:`~dora_notebook.preview.frames`).
    Another dora INPUT event previews its ``value``.

    Accepted: a pandas DataFrame or Series, a pyarrow Table, RecordBatch, Array
    or ChunkedArray (-> ``table``); anything with a callable ``savefig``, such as
    a matplotlib Figure, and a PIL Image (-> ``image``, a PNG data URL); a str
    (-> ``text``); a dict without a ``"type"`` key, a list, tuple or set, a
    number, bool, None, date/time, ``Decimal`` or numpy array (-> ``json``;
    arrays beyond :data:`MAX_ARRAY_ELEMENTS` elements are cut, with a
    ``"note"``); bytes that are a PNG, JPEG, GIF or WebP image (-> ``image``);
    and an explicit ``{"type": T, "data": ...}`` with T in :data:`KNOWN_TYPES`,
    which is validated (extra keys such as ``"title"`` are kept when they are
    JSON-serialisable, dropped otherwise). Anything else raises
    :class:`PreviewError`.

    Explicit payloads: ``table`` data is a frame (as above) or a
    ``{"columns", "rows"}`` dict, which passes through uncut with its cells made
    safe and ``row_count`` added if missing; ``text``, ``markdown`` and ``html``
    need a str; ``csv`` a str or a DataFrame (all of it, index as for tables);
    ``json`` data is converted like cells, except that what has no JSON form (an
    arbitrary object, a DataFrame, a cycle) raises instead of becoming text, and
    the same holds for implicit dicts and lists; ``image`` takes a
    ``data:image/...;base64,`` or http(s) URL, image bytes, a figure or a PIL
    image; ``iframe`` an http(s) URL or ``{"src" or "url": ...}`` (that dict's
    other keys, such as ``height``, move beside ``data``); ``video`` and
    ``audio`` a URL, or bytes that become a data URL of the sniffed type.

    A matplotlib figure is drawn by a fresh ``FigureCanvasAgg`` while holding
    matplotlib's own figure render lock (so no other thread draws any figure
    meanwhile): the figure's canvas is swapped for the Agg one, as
    ``Figure.savefig(backend="agg")`` itself does, and put back afterwards, so
    pyplot, the figure manager and the GUI canvas are never touched and the
    figure stays usable. An object that merely has ``savefig`` (or whose
    ``.figure`` is a matplotlib figure, as a seaborn grid) is handled the same
    way or, failing that, asked to ``savefig(buffer, format="png")``.

    >>> import pandas as pd
    >>> normalize(pd.DataFrame({"x": [1.5, float("nan")]}))
    {'type': 'table', 'data': {'columns': ['x'], 'rows': [[1.5], [None]], 'row_count': 2}}
    >>> normalize(pd.Series(pd.to_datetime(["2024-05-01"]), name="when"))["data"]["rows"]
    [['2024-05-01T00:00:00']]
    >>> normalize({"a": [1, float("inf")]})
    {'type': 'json', 'data': {'a': [1, None]}}
    >>> normalize({"type": "chart", "data": []})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dora_notebook.errors.PreviewError: unknown preview type 'chart': expected one of table, ...
    """
    if metadata is not None:
        return frame_payload(frame_from(payload, metadata))
    if is_image_event(payload):
        return frame_payload(frame_from_event(payload))
    if isinstance(payload, Mapping) and payload.get("type") == "INPUT" and "value" in payload:
        return normalize(payload["value"])  # a dora event: its data
    if isinstance(payload, Mapping) and "type" in payload:
        return _explicit(payload)
    frame = frame_or_none(payload)
    if frame is not None:
        return frame_payload(frame)
    table = _table_or_none(payload)
    if table is not None:
        return {"type": "table", "data": table}
    image = image_or_none(payload)
    if image is not None:
        return {"type": "image", "data": image}
    if isinstance(payload, str):
        return {"type": "text", "data": plain_str(payload)}
    if isinstance(payload, (bytes, bytearray, memoryview)):
        raw = bytes(payload)
        mime = sniff_image(raw)
        if mime is None:
            raise PreviewError(
                f"cannot preview {len(raw)} bytes: they are not a PNG, JPEG, GIF or WebP image; "
                "pass {'type': 'video'/'audio', 'data': bytes} for media"
            )
        return {"type": "image", "data": data_url(mime, raw)}
    if isinstance(payload, np.ndarray):
        return array_json(payload)
    if isinstance(payload, (Mapping, list, tuple, set, frozenset)) or is_json_scalar(payload):
        return {"type": "json", "data": json_data(payload)}
    raise PreviewError(_cannot_preview(payload))


def frame_payload(frame: Frame) -> dict[str, Any]:
    """The payload of an image frame: the frame itself, and its size and encoding as JSON.

    >>> frame_payload(frame_or_none(np.zeros((2, 4), np.uint8)))["width"]
    4
    """
    return {
        "type": "image",
        "data": frame,
        "width": frame.width,
        "height": frame.height,
        "encoding": frame.encoding,
    }


def payload_size(payload: Mapping[str, Any]) -> int:
    """Return the size in bytes of a normalised payload's compact UTF-8 JSON.

    A frame counts as its raw pixels (it is encoded only when shown).

    >>> payload_size(normalize("héllo"))  # {"type":"text","data":"héllo"}
    31
    """
    if isinstance(payload.get("data"), Frame):
        frame = payload["data"]
        pixels = frame.pixels
        return int(pixels.nbytes if isinstance(pixels, np.ndarray) else frame.width * frame.height)
    try:
        text = json.dumps(payload, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise PreviewError(f"payload is not JSON-serialisable: {one_line(exc)}") from None
    return len(text.encode("utf-8"))


# ------------------------------------------------------------ explicit payloads


def _explicit(payload: Mapping[str, Any]) -> dict[str, Any]:
    kind = payload["type"]
    if not isinstance(kind, str) or kind not in KNOWN_TYPES:
        raise PreviewError(
            f"unknown preview type {kind!r}: expected one of {', '.join(KNOWN_TYPES)} "
            "(wrap plain data as {'type': 'json', 'data': ...})"
        )
    if "data" not in payload:
        raise PreviewError(f"preview payload of type {kind!r} has no 'data'")
    extras = {k: v for k, v in payload.items() if k not in ("type", "data")}
    data = _explicit_data(kind, payload["data"], extras)
    result: dict[str, Any] = (
        frame_payload(data) if isinstance(data, Frame) else {"type": kind, "data": data}
    )
    for key, value in extras.items():
        if not isinstance(key, str) or key in result:
            continue
        try:
            result[key] = json_data(value)
        except PreviewError:
            continue  # extras are decoration: keep only what serialises
    return result


def _explicit_data(kind: str, data: Any, extras: dict[Any, Any]) -> Any:
    """The checked ``data`` of an explicit payload (a :class:`Frame` for an image array)."""
    if kind == "table":
        table = _table_or_none(data)
        if table is not None:
            return table
        if isinstance(data, Mapping):
            return _table_dict(data)
        raise PreviewError(
            f"table data must be a DataFrame, Series, pyarrow Table or RecordBatch, or "
            f"{{'columns': [...], 'rows': [[...], ...]}}, got {type_name(data)}"
        )
    if kind in _TEXT_TYPES:
        return _need_str(kind, data)
    if kind == "csv":
        pandas = loaded_pandas()
        if pandas is not None and isinstance(data, (pandas.DataFrame, pandas.Series)):
            return data.to_csv(index=_show_index(data))
        return _need_str(kind, data, "or a DataFrame")
    if kind == "json":
        if isinstance(data, np.ndarray):
            converted = array_json(data)
            if "note" in converted:
                extras.setdefault("note", converted["note"])
            return converted["data"]
        return json_data(data)
    if kind == "image":
        frame = data if isinstance(data, Frame) else frame_or_none(data)
        if frame is not None:
            return frame
        return image_data(data)
    if kind == "iframe":
        return iframe_data(data, extras)
    return media_data(kind, data)  # video, audio


def _need_str(kind: str, data: Any, alternative: str = "") -> str:
    if isinstance(data, str):
        return plain_str(data)
    also = f" {alternative}" if alternative else ""
    raise PreviewError(f"{kind} data must be a str{also}, got {type_name(data)}")


def _table_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    columns = data.get("columns")
    rows = data.get("rows")
    if not isinstance(columns, (list, tuple)):
        raise PreviewError(
            f"table data 'columns' must be a list of names, got {type_name(columns)}"
        )
    if not isinstance(rows, (list, tuple)):
        raise PreviewError(f"table data 'rows' must be a list of lists, got {type_name(rows)}")
    width = len(columns)
    out_rows = []
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)):
            raise PreviewError(f"table row {i} must be a list, got {type_name(row)}")
        if len(row) != width:
            raise PreviewError(f"table row {i} has {len(row)} cells, expected {width} (columns)")
        out_rows.append([cell(value) for value in row])
    result: dict[str, Any] = {
        "columns": [label_text(c) for c in columns],
        "rows": out_rows,
        "row_count": _count(data, "row_count", len(out_rows)),
    }
    if "column_count" in data:
        result["column_count"] = _count(data, "column_count", width)
    for key, value in data.items():
        if isinstance(key, str) and key not in result and key not in ("columns", "rows"):
            try:
                result[key] = json_data(value)
            except PreviewError:
                continue
    return result


def _count(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if is_int and value >= 0:
        return int(value)
    raise PreviewError(f"table data {key!r} must be a non-negative int, got {value!r}")


# ----------------------------------------------------------------------- tables


def _table_or_none(obj: Any) -> dict[str, Any] | None:
    pandas = loaded_pandas()
    if pandas is not None and isinstance(obj, pandas.DataFrame):
        return _build_table(_FrameSource(obj, _show_index(obj)))
    if pandas is not None and isinstance(obj, pandas.Series):
        name = "value" if obj.name is None else obj.name
        return _build_table(_FrameSource(obj.to_frame(name=name), _show_index(obj)))
    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        return _build_table(_ArrowSource(obj))
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        return _build_table(_ArrowSource(pa.table({"value": obj})))
    return None


def _show_index(obj: pd.DataFrame | pd.Series) -> bool:
    pandas = loaded_pandas()  # obj is a pandas object: pandas is loaded
    index = obj.index
    if any(name is not None for name in index.names):
        return True
    if isinstance(obj, pandas.Series):
        plain = isinstance(index, pandas.RangeIndex) and index.start == 0 and index.step == 1
        return not plain
    return False


class _FrameSource:
    """The columns of a DataFrame, with its index levels first when shown."""

    def __init__(self, frame: pd.DataFrame, with_index: bool) -> None:
        self.frame = frame
        self.index_levels = frame.index.nlevels if with_index else 0
        self.n_rows = len(frame.index)
        self.n_cols = self.index_levels + frame.shape[1]

    def name(self, j: int) -> str:
        if j < self.index_levels:
            label = self.frame.index.names[j]
            if label is None:
                return "index" if self.index_levels == 1 else f"level_{j}"
            return label_text(label)
        return label_text(self.frame.columns[j - self.index_levels])

    def values(self, j: int, segments: list[tuple[int, int]]) -> list[Any]:
        out: list[Any] = []
        if j < self.index_levels:
            index = self.frame.index
            for start, stop in segments:
                out.extend(index[start:stop].get_level_values(j).tolist())
            return out
        column = self.frame.iloc[:, j - self.index_levels]  # a view: no copy of the rows
        for start, stop in segments:
            part = column.iloc[start:stop]
            try:
                out.extend(part.tolist())
            except Exception:  # pragma: no cover - exotic extension dtypes
                out.extend(part.iloc[i] for i in range(len(part)))
        return out


class _ArrowSource:
    """The columns of a pyarrow Table or RecordBatch, read through ``slice``."""

    def __init__(self, table: pa.Table | pa.RecordBatch) -> None:
        self.table = table
        self.n_rows = table.num_rows
        self.n_cols = table.num_columns
        self._parts: dict[tuple[int, int], Any] = {}

    def name(self, j: int) -> str:
        return label_text(self.table.schema.names[j])

    def values(self, j: int, segments: list[tuple[int, int]]) -> list[Any]:
        out: list[Any] = []
        for start, stop in segments:
            part = self._parts.get((start, stop))
            if part is None:
                part = self._parts[start, stop] = self.table.slice(start, stop - start)
            out.extend(_arrow_values(part.column(j)))
        return out


def _arrow_values(array: pa.Array | pa.ChunkedArray) -> list[Any]:
    try:
        return array.to_pylist()
    except Exception:  # e.g. a timestamp beyond datetime's years: numpy has no such limit
        pass
    try:
        return list(array.to_numpy(zero_copy_only=False))
    except Exception:
        pass
    values: list[Any] = []
    for i in range(len(array)):
        scalar = array[i]
        try:
            values.append(scalar.as_py())
        except Exception:
            values.append(safe_str(scalar))
    return values


def _segments(total: int, whole: int, head: int, tail: int) -> list[tuple[int, int]]:
    if total <= whole:
        return [(0, total)]
    return [(0, head), (total - tail, total)]


def _build_table(source: _FrameSource | _ArrowSource) -> dict[str, Any]:
    n_rows, n_cols = source.n_rows, source.n_cols
    row_segments = _segments(n_rows, MAX_ROWS_WHOLE, HEAD, TAIL)
    shown = sum(stop - start for start, stop in row_segments)
    col_segments = _segments(n_cols, MAX_COLUMNS_WHOLE, HEAD_COLUMNS, TAIL_COLUMNS)
    names: list[str] = []
    cells: list[list[Any]] = []
    for k, (start, stop) in enumerate(col_segments):
        if k:
            names.append(DOTS)
            cells.append([DOTS] * shown)
        for j in range(start, stop):
            names.append(source.name(j))
            cells.append([cell(v) for v in source.values(j, row_segments)])
    rows = [[column[i] for column in cells] for i in range(shown)]
    if len(row_segments) > 1:
        rows.insert(HEAD, [DOTS] * len(names))
    data: dict[str, Any] = {"columns": names, "rows": rows, "row_count": n_rows}
    if len(col_segments) > 1:
        data["column_count"] = n_cols
    return data


def _cannot_preview(value: Any) -> str:
    return (
        f"cannot preview {type_name(value)}: pass a DataFrame, a figure, a str, a dict/list, "
        f"or {{'type': T, 'data': ...}} with T in {', '.join(KNOWN_TYPES)}"
    )
