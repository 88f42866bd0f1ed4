"""Turn a normalised preview payload into a Jupyter MIME bundle.

The frontend's own renderers then show it: ``text/html`` for tables,
iframes and media, ``image/png`` for figures, ``text/markdown``,
``application/json``. Pure: no widget and no IPython import, so the
bundle can be tested (and stored in a notebook) as data.

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

import csv
import html
import io
import json
from typing import Any

__all__ = ["mimebundle", "table_html"]

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


def table_html(data: dict[str, Any]) -> str:
    """An HTML table with a caption giving the row (and column) count."""
    columns = data.get("columns", [])
    rows = data.get("rows", [])
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
    return (
        f'<table style="{_TABLE_STYLE}"><caption style="caption-side:bottom;text-align:left;'
        f'color:#666">{caption}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _table_text(data: dict[str, Any]) -> str:
    columns = [str(c) for c in data.get("columns", [])]
    lines = ["\t".join(columns)]
    lines += ["\t".join("" if v is None else str(v) for v in row) for row in data.get("rows", [])]
    lines.append(f"[{data.get('row_count', len(data.get('rows', [])))} rows]")
    return "\n".join(lines)


def _csv_html(text: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return "<pre></pre>"
    shown = rows[1:]
    data = {"columns": rows[0], "rows": shown, "row_count": len(shown)}
    if len(shown) > 10:
        data["rows"] = [*shown[:5], ["..."] * len(rows[0]), *shown[-5:]]
    return table_html(data)


def mimebundle(payload: dict[str, Any]) -> dict[str, Any]:
    """The MIME bundle that shows a :func:`~dora_notebook.preview.normalize.normalize` result."""
    kind, data = payload.get("type"), payload.get("data")
    if kind == "table":
        return {"text/html": table_html(data), "text/plain": _table_text(data)}
    if kind == "image":
        prefix = "data:image/png;base64,"
        if isinstance(data, str) and data.startswith(prefix):
            return {"image/png": data[len(prefix) :], "text/plain": "<image>"}
        return {"text/html": f'<img src="{html.escape(str(data))}">', "text/plain": "<image>"}
    if kind == "markdown":
        return {"text/markdown": data, "text/plain": data}
    if kind == "html":
        return {"text/html": data, "text/plain": "<html>"}
    if kind == "json":
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
        return {"text/html": _csv_html(data), "text/plain": data}
    return {"text/plain": str(data)}
