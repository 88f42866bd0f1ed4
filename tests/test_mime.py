"""MIME bundles: what a panel sends stays bounded, whatever a node previews."""

from __future__ import annotations

import json

from dora_notebook.preview.mime import MAX_CHARS, MAX_ROWS, mimebundle


def test_long_text_markdown_and_html_are_cut_and_say_how_much_more_there_is() -> None:
    text = "x" * 10_000_000
    more = f"... {10_000_000 - MAX_CHARS:,} more characters"
    plain = mimebundle({"type": "text", "data": text})["text/plain"]
    assert plain.startswith("x" * MAX_CHARS) and plain.endswith(more)
    assert len(plain) < MAX_CHARS + 100
    markdown = mimebundle({"type": "markdown", "data": text})
    assert markdown["text/markdown"].endswith(more) and len(markdown["text/markdown"]) < 51_000
    # Cut HTML may end inside a tag: the note comes first, where it always shows.
    page = mimebundle({"type": "html", "data": "<p>" + text})["text/html"]
    assert page.startswith('<div style="color:#777">... 9,950,003 more characters')
    assert len(page) < MAX_CHARS + 200


def test_short_previews_are_sent_as_they_are() -> None:
    assert mimebundle({"type": "text", "data": "hi"}) == {"text/plain": "hi"}
    assert mimebundle({"type": "html", "data": "<b>hi</b>"})["text/html"] == "<b>hi</b>"
    assert mimebundle({"type": "json", "data": {"a": 1}})["application/json"] == {"a": 1}


def test_a_long_table_shows_its_first_rows_and_how_many_more() -> None:
    rows = [[i, f"r{i}"] for i in range(100_000)]
    table = {"columns": ["i", "name"], "rows": rows, "row_count": len(rows)}
    bundle = mimebundle({"type": "table", "data": table})
    page = bundle["text/html"]
    assert f">{MAX_ROWS - 1}</td>" in page and f">{MAX_ROWS}</td>" not in page
    assert f"... {100_000 - MAX_ROWS:,} more rows" in page and "100000 rows" in page
    text = bundle["text/plain"].splitlines()
    assert len(text) == MAX_ROWS + 3  # the header, the rows, "... more rows", the count
    assert text[-2] == f"... {100_000 - MAX_ROWS:,} more rows"
    assert len(page) < MAX_CHARS


def test_a_very_wide_table_is_cut_by_characters() -> None:
    columns = [f"c{i}" for i in range(20_000)]
    table = {"columns": columns, "rows": [list(range(20_000))], "row_count": 1}
    bundle = mimebundle({"type": "table", "data": table})
    assert bundle["text/html"].startswith('<div style="color:#777">... ')
    assert all(len(value) < MAX_CHARS + 200 for value in bundle.values())


def test_large_json_and_csv_are_cut() -> None:
    data = {f"key{i}": "v" * 150 for i in range(1000)}
    bundle = mimebundle({"type": "json", "data": data})
    assert "application/json" not in bundle  # a cut JSON document would not parse
    assert bundle["text/plain"].endswith(
        f"... {len(json.dumps(data, indent=1)) - MAX_CHARS:,} more characters"
    )
    csv_text = "a,b\n" + "".join(f"{i},{i * i}\n" for i in range(100_000))
    bundle = mimebundle({"type": "csv", "data": csv_text})
    more = f"... {len(csv_text) - MAX_CHARS:,} more characters"
    assert bundle["text/plain"].endswith(more) and bundle["text/html"].endswith(f"{more}</div>")
    assert len(bundle["text/html"]) < 10_000  # five first and five last rows of what is shown
