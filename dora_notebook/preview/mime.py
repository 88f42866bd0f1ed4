"""Turn a normalised preview payload into a Jupyter MIME bundle.

The frontend's own renderers then show it: ``text/html`` for tables,
iframes and media, ``image/png`` for figures, ``text/markdown``,
``application/json``. Pure: no widget and no IPython import, so the
bundle can be tested (and stored in a notebook) as data.

What a panel sends is bounded, whatever a node previews: a table shows at
most :data:`MAX_ROWS` rows and each text type at most :data:`MAX_CHARS`
characters, with a visible ``... N more rows`` / ``... N more characters``.
Only the bundle is cut: the payload itself (``flow.node(id).previews[slot]``)
stays whole. Images and media are never cut (a panel's byte budget paces them).

>>> table = {"columns": ["a"], "rows": [[1]], "row_count": 1}
>>> bundle = mimebundle({"type": "table", "data": table})
>>> sorted(bundle)
['text/html', 'text/plain']
>>> print(bundle["text/plain"])
a
1
[1 rows]
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from typing import Any

from .frames import Frame, FrameEncoder

__all__ = ["MAX_CHARS", "MAX_ROWS", "mimebundle", "table_html"]

#: The most characters of one text MIME type a bundle carries.
MAX_CHARS = 50_000
#: The most table rows a bundle shows.
MAX_ROWS = 100

_TABLE_STYLE = (
    "border-collapse:collapse;font-size:12px;font-family:var(--jp-code-font-family,monospace)"
)
_CELL_STYLE = "border:1px solid #ccc;padding:2px 6px;text-align:right"


def _cell(value: Any) -> str:
    if value is None:
        return '<span style="color:#999">null</span>'
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    return html.escape(str(value))


def _more(count: int, what: str) -> str:
    return f"... {count:,} more {what}"


def _cut(text: str, html_text: bool = False) -> str:
    """``text`` up to :data:`MAX_CHARS`, then how much more there was.

    HTML gets the note first: cut anywhere, its end may be inside a tag.
    """
    if len(text) <= MAX_CHARS:
        return text
    more = _more(len(text) - MAX_CHARS, "characters")
    if html_text:
        return (
            f'<div style="color:#777">{more} (first {MAX_CHARS:,} shown)</div>' + text[:MAX_CHARS]
        )
    return f"{text[:MAX_CHARS]}\n{more}"


def _rows(data: dict[str, Any]) -> tuple[list[Any], int]:
    """The rows a bundle shows (at most :data:`MAX_ROWS`) and how many it leaves out."""
    rows = data.get("rows", [])
    return rows[:MAX_ROWS], max(0, len(rows) - MAX_ROWS)


def table_html(data: dict[str, Any]) -> str:
    """An HTML table with a caption giving the row (and column) count.

    At most :data:`MAX_ROWS` rows are shown; a last row says how many more there are.
    """
    columns = data.get("columns", [])
    rows, more = _rows(data)
    row_count = data.get("row_count", len(rows))
    column_count = data.get("column_count", len(columns))
    caption = f"{row_count} row{'s' if row_count != 1 else ''}"
    if column_count != len(columns) or "..." in columns:
        caption += f", {column_count} columns"
    head = "".join(f'<th style="{_CELL_STYLE}">{html.escape(str(c))}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL_STYLE}">{_cell(v)}</td>' for v in row) + "</tr>"
        for row in rows
    )
    if more:
        note = f'<td colspan="{len(columns)}" style="{_CELL_STYLE}">{_more(more, "rows")}</td>'
        body += f"<tr>{note}</tr>"
    return (
        f'<table style="{_TABLE_STYLE}"><caption style="caption-side:bottom;text-align:left;'
        f'color:#666">{caption}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _table_text(data: dict[str, Any]) -> str:
    columns = [str(c) for c in data.get("columns", [])]
    lines = ["\t".join(columns)]
    rows, more = _rows(data)
    lines += ["\t".join("" if v is None else str(v) for v in row) for row in rows]
    lines += [_more(more, "rows")] if more else []
    lines.append(f"[{data.get('row_count', len(data.get('rows', [])))} rows]")
    return "\n".join(lines)


def _csv_html(text: str) -> str:
    # Only what is shown is parsed: the text was cut to MAX_CHARS already.
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return "<pre></pre>"
    shown = rows[1:]
    data = {"columns": rows[0], "rows": shown, "row_count": len(shown)}
    if len(shown) > 10:
        data["rows"] = [*shown[:5], ["..."] * len(rows[0]), *shown[-5:]]
    return table_html(data)


def mimebundle(payload: dict[str, Any]) -> dict[str, Any]:
    """The MIME bundle that shows a :func:`~dora_notebook.preview.normalize.normalize` result.

    Text types are cut to :data:`MAX_CHARS` characters, tables to :data:`MAX_ROWS` rows:

    >>> mimebundle({"type": "text", "data": "x" * (MAX_CHARS + 10_000)})["text/plain"][-30:]
    'xxx\\n... 10,000 more characters'
    """
    kind, data = payload.get("type"), payload.get("data")
    if kind == "table":  # a very wide table is cut by characters too
        return {"text/html": _cut(table_html(data), True), "text/plain": _cut(_table_text(data))}
    if kind == "image" and isinstance(data, Frame):
        # The static form (a notebook's output, nbval): encoded here, once.
        mime, raw = FrameEncoder().encode(data)
        return {mime: base64.b64encode(raw).decode("ascii"), "text/plain": f"<{data.describe()}>"}
    if kind == "image":
        prefix = "data:image/png;base64,"
        if isinstance(data, str) and data.startswith(prefix):
            return {"image/png": data[len(prefix) :], "text/plain": "<image>"}
        return {"text/html": f'<img src="{html.escape(str(data))}">', "text/plain": "<image>"}
    if kind == "markdown":
        text = _cut(data)
        return {"text/markdown": text, "text/plain": text}
    if kind == "html":
        return {"text/html": _cut(data, True), "text/plain": "<html>"}
    if kind == "json":
        if len(json.dumps(data)) > MAX_CHARS:
            return {"text/plain": _cut(json.dumps(data, indent=1))}
        return {
            "application/json": data if isinstance(data, dict) else {"value": data},
            "text/plain": json.dumps(data, indent=1)[:2000],
        }
    if kind == "iframe":
        src = html.escape(str(data))
        height = int(payload.get("height", 300))
        return {
            "text/html": f'<iframe src="{src}" style="width:100%;height:{height}px;border:0">'
            "</iframe>",
            "text/plain": f"<iframe {data}>",
        }
    if kind in ("video", "audio"):
        src = html.escape(str(data))
        return {"text/html": f'<{kind} controls src="{src}"></{kind}>', "text/plain": f"<{kind}>"}
    if kind == "csv":
        more = len(data) - MAX_CHARS
        note = f'<div style="color:#777">{_more(more, "characters")}</div>' if more > 0 else ""
        return {"text/html": _csv_html(data[:MAX_CHARS]) + note, "text/plain": _cut(data)}
    return {"text/plain": _cut(str(data))}
