"""How a notebook shows a replay (``%dora_replay``, ``Dataflow.replay``): the summary, and
for each output that differs its first differing message, recorded beside replayed.

A message is shown as what it holds: a table (an Arrow struct array, a
DataFrame) as an HTML table, an image (dora's ``width``/``height``/``encoding``
metadata, or a uint8 ``HxW[xC]`` array) as a small JPEG or PNG, anything else
as text; its metadata under it. Then the replayed node's previews, as its
panel would show them, and its last printed lines. Pure HTML (no widget), so
the output is saved with the notebook as it was shown.

>>> import pyarrow as pa
>>> from datetime import datetime, timezone
>>> from dora_notebook.core.record import Recorded
>>> from dora_notebook.core.replay import ReplayResult, ReplayedOutput, diff_messages
>>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> old = [Recorded("op", "out", 0, t, t, {}, pa.array([1]))]
>>> new = [Recorded("op", "out", 0, t, t, {}, pa.array([2]))]
>>> result = ReplayResult("op", "operator", 0.0, {"x": 1}, {"out": ReplayedOutput(old, new)},
...                       {"out": diff_messages("op", "out", old, new)})
>>> html_text = replay_html(result)
>>> "recorded #0" in html_text and "replayed #0" in html_text
True
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from ..core.record import Recorded
from ..core.replay import ReplayResult
from ..preview.frames import ENCODINGS, frame_from, frame_or_none, thumbnail
from ..preview.mime import mimebundle, table_html
from ..preview.normalize import normalize

__all__ = ["message_html", "replay_html"]

#: The most characters of a value shown as text, and of the log lines shown.
_TEXT_LIMIT = 2000
_LOG_LINES = 20
_CELL = "border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left"
_CHANGED = {"changed": "#fff4e5", "new": "#e8f5e9", "missing": "#fdecea"}


def replay_html(result: ReplayResult) -> str:
    """The whole view of ``result`` as one HTML fragment."""
    parts = [f"<pre>{html.escape(result.summary())}</pre>"]
    for output, found in result.diff.items():
        first = result.first_difference(output)
        if first is None:
            continue
        index, recorded, replayed = first
        color = _CHANGED.get(found.first_kind or "", "#fff")
        parts.append(
            f'<div style="margin:6px 0"><b>{html.escape(result.node)}/{html.escape(output)}'
            f"</b>: first differing message, #{index} ({found.first_kind})</div>"
            f'<table style="border-collapse:collapse;background:{color}"><thead><tr>'
            f'<th style="{_CELL}">recorded #{index}</th>'
            f'<th style="{_CELL}">replayed #{index} (now)</th></tr></thead>'
            f'<tbody><tr><td style="{_CELL}">{message_html(recorded)}</td>'
            f'<td style="{_CELL}">{message_html(replayed)}</td></tr></tbody></table>'
        )
    if result.previews:
        parts.append("<div style='margin:6px 0'><b>previews of the replay</b></div>")
        for slot, payload in result.previews.items():
            parts.append(
                f"<div><span style='color:#666'>{html.escape(slot)}:</span> "
                f"{_payload_html(payload)}</div>"
            )
    if result.logs:
        shown = result.logs[-_LOG_LINES:]
        more = len(result.logs) - len(shown)
        head = f"printed lines ({len(result.logs)}" + (
            f", last {len(shown)} shown)" if more else ")"
        )
        parts.append(
            f"<details><summary>{head}</summary><pre>"
            + html.escape("\n".join(shown))
            + "</pre></details>"
        )
    return "<div class='dora-replay'>" + "".join(parts) + "</div>"


def message_html(message: Recorded | None) -> str:
    """One message: its value as what it holds, and its metadata (``none`` if there is none)."""
    if message is None:
        return "<i style='color:#777'>none</i>"
    meta = json.dumps(message.metadata, default=str, sort_keys=True)
    return (
        _value_html(message.value, message.metadata)
        + f"<div style='color:#666;font-size:11px'>metadata: {html.escape(_cut(meta))}</div>"
    )


def _value_html(value: Any, metadata: Mapping[str, Any]) -> str:
    image = _image(value, metadata)
    if image is not None:
        return image
    table = _table(value)
    if table is not None:
        return table
    if isinstance(value, pa.Array | pa.ChunkedArray):
        text = f"{value.type} {value.to_pylist()!r}"
    else:
        text = repr(value)
    return f"<pre style='margin:0'>{html.escape(_cut(text))}</pre>"


def _image(value: Any, metadata: Mapping[str, Any]) -> str | None:
    """An ``<img>`` of ``value`` if it is an image (dora's metadata, or a uint8 array)."""
    try:
        if metadata.get("encoding") in ENCODINGS:
            frame = frame_from(value, metadata)
        elif isinstance(value, np.ndarray):
            frame = frame_or_none(value)
            if frame is None:
                return None
        else:
            return None
        mime, data = thumbnail(frame)
    except Exception:  # not the image its metadata says: shown as what it is
        return None
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<img src="data:{mime};base64,{encoded}" alt="{html.escape(frame.describe())}">'
        f"<div style='color:#666;font-size:11px'>{html.escape(frame.describe())}</div>"
    )


def _table(value: Any) -> str | None:
    """An HTML table of ``value`` if it is tabular (a struct array, a Table, a DataFrame)."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.StructArray):
        value = pa.Table.from_struct_array(value)
    is_frame = hasattr(value, "__dataframe__") and hasattr(value, "to_dict")
    if not isinstance(value, pa.Table | pa.RecordBatch) and not is_frame:
        return None
    try:
        payload = normalize(value)
    except Exception:
        return None
    return table_html(payload["data"]) if payload.get("type") == "table" else None


def _payload_html(payload: dict[str, Any]) -> str:
    """A preview payload as the panel shows it: its MIME bundle's richest form."""
    bundle = mimebundle(payload)
    if "text/html" in bundle:
        return bundle["text/html"]
    for mime in ("image/png", "image/jpeg"):
        if mime in bundle:
            return f'<img src="data:{mime};base64,{bundle[mime]}">'
    text = bundle.get("text/markdown") or bundle.get("text/plain", "")
    return f"<pre style='margin:0'>{html.escape(_cut(str(text)))}</pre>"


def _cut(text: str) -> str:
    more = len(text) - _TEXT_LIMIT
    return text if more <= 0 else f"{text[:_TEXT_LIMIT]}... ({more:,} more characters)"
