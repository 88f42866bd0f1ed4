"""Preview normalisation: tables at their edges, cells, figures, explicit payloads."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import socket
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.extra import pandas as hpd
from matplotlib.figure import Figure
from PIL import Image

from dora_notebook.errors import DataflowError
from dora_notebook.preview.jsonsafe import duration_text
from dora_notebook.preview.mime import mimebundle
from dora_notebook.preview.normalize import (
    DOTS,
    HEAD,
    KNOWN_TYPES,
    MAX_ARRAY_ELEMENTS,
    MAX_CELL_CHARS,
    MAX_CELL_ITEMS,
    MAX_COLUMNS_WHOLE,
    MAX_ROWS_WHOLE,
    TAIL,
    PreviewError,
    normalize,
    payload_size,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def dumps(payload: dict) -> str:
    """The check every payload must pass: strict JSON."""
    return json.dumps(payload, allow_nan=False)


def table(payload: dict) -> dict:
    assert payload["type"] == "table"
    dumps(payload)
    return payload["data"]


def assert_table_shape(payload: dict, n_rows: int, n_cols: int) -> None:
    data = table(payload)
    shown_rows = n_rows if n_rows <= MAX_ROWS_WHOLE else HEAD + 1 + TAIL
    shown_cols = n_cols if n_cols <= MAX_COLUMNS_WHOLE else 11
    assert data["row_count"] == n_rows
    assert len(data["rows"]) == shown_rows
    assert len(data["columns"]) == shown_cols
    assert all(len(row) == shown_cols for row in data["rows"])
    assert ("column_count" in data) == (n_cols > MAX_COLUMNS_WHOLE)
    if n_cols > MAX_COLUMNS_WHOLE:
        assert data["column_count"] == n_cols
        assert data["columns"][5] == DOTS
        assert all(row[5] == DOTS for row in data["rows"])
    if n_rows > MAX_ROWS_WHOLE:
        assert data["rows"][HEAD] == [DOTS] * shown_cols


def decode_image(payload: dict) -> tuple[str, bytes]:
    assert payload["type"] == "image"
    head, _, body = payload["data"].partition(",")
    assert head.startswith("data:") and head.endswith(";base64")
    return head[len("data:") : -len(";base64")], base64.b64decode(body, validate=True)


def png_size(payload: dict) -> tuple[int, int]:
    mime, raw = decode_image(payload)
    assert mime == "image/png"
    assert raw.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(raw)) as image:
        image.load()
        return image.size


def pixel_size(fig: Figure) -> tuple[int, int]:
    width, height = fig.get_size_inches() * fig.dpi
    return round(width), round(height)


def line_figure(width: float = 3, height: float = 2, dpi: int = 40) -> Figure:
    fig = Figure(figsize=(width, height), dpi=dpi)
    fig.add_subplot().plot([0, 1, 4, 9])
    return fig


def png_bytes(size: tuple[int, int] = (3, 2)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format="PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------ table rule


def test_module_constants_describe_the_rule():
    assert (MAX_ROWS_WHOLE, HEAD, TAIL, MAX_COLUMNS_WHOLE) == (10, 5, 5, 10)


@pytest.mark.parametrize("n_rows", [0, 1, 10, 11])
def test_row_edges(n_rows):
    frame = pd.DataFrame({"a": range(n_rows), "b": [f"r{i}" for i in range(n_rows)]})
    payload = normalize(frame)
    assert_table_shape(payload, n_rows, 2)
    assert payload["data"]["columns"] == ["a", "b"]
    if n_rows <= MAX_ROWS_WHOLE:
        assert payload["data"]["rows"] == [[i, f"r{i}"] for i in range(n_rows)]


def test_eleven_rows_exactly():
    frame = pd.DataFrame({"n": range(11), "sq": [i * i for i in range(11)]})
    assert normalize(frame) == {
        "type": "table",
        "data": {
            "columns": ["n", "sq"],
            "rows": [
                [0, 0],
                [1, 1],
                [2, 4],
                [3, 9],
                [4, 16],
                [DOTS, DOTS],
                [6, 36],
                [7, 49],
                [8, 64],
                [9, 81],
                [10, 100],
            ],
            "row_count": 11,
        },
    }


def test_million_rows_shows_head_and_tail():
    frame = pd.DataFrame({"i": np.arange(1_000_000), "f": np.zeros(1_000_000)})
    payload = normalize(frame)
    assert_table_shape(payload, 1_000_000, 2)
    rows = payload["data"]["rows"]
    assert [row[0] for row in rows] == [0, 1, 2, 3, 4, DOTS, *range(999_995, 1_000_000)]


def test_ten_million_rows():
    n = 10_000_000
    frame = pd.DataFrame({"i": np.arange(n), "t": pd.Timestamp("2024-01-01"), "s": "text"})
    payload = normalize(frame)
    assert_table_shape(payload, n, 3)
    assert payload["data"]["rows"][-1] == [n - 1, "2024-01-01T00:00:00", "text"]


@pytest.mark.parametrize("n_cols", [1, 10, 11, 500])
def test_column_edges(n_cols):
    frame = pd.DataFrame([list(range(n_cols))] * 3, columns=[f"c{j}" for j in range(n_cols)])
    payload = normalize(frame)
    assert_table_shape(payload, 3, n_cols)
    if n_cols <= MAX_COLUMNS_WHOLE:
        assert payload["data"]["columns"] == [f"c{j}" for j in range(n_cols)]
        assert payload["data"]["rows"][0] == list(range(n_cols))
    else:
        last = [n_cols - 5 + k for k in range(5)]
        assert payload["data"]["columns"] == [
            *(f"c{j}" for j in range(5)),
            DOTS,
            *(f"c{j}" for j in last),
        ]
        assert payload["data"]["rows"][0] == [0, 1, 2, 3, 4, DOTS, *last]


def test_two_thousand_columns():
    frame = pd.DataFrame(
        {f"c{j}": (np.arange(50) if j % 2 else np.arange(50).astype(str)) for j in range(2_000)}
    )
    payload = normalize(frame)
    assert_table_shape(payload, 50, 2_000)
    assert payload["data"]["columns"][-1] == "c1999"
    assert payload["data"]["rows"][-1][-1] == 49


def test_long_and_wide_caps_both_ways():
    frame = pd.DataFrame(np.arange(20 * 30).reshape(20, 30))
    payload = normalize(frame)
    assert_table_shape(payload, 20, 30)
    rows = payload["data"]["rows"]
    assert rows[0] == [0, 1, 2, 3, 4, DOTS, 25, 26, 27, 28, 29]
    assert rows[-1] == [570, 571, 572, 573, 574, DOTS, 595, 596, 597, 598, 599]
    assert payload["data"]["columns"][:6] == ["0", "1", "2", "3", "4", DOTS]


def test_series_becomes_one_column_frame():
    assert normalize(pd.Series([1.5, None])) == {
        "type": "table",
        "data": {"columns": ["value"], "rows": [[1.5], [None]], "row_count": 2},
    }
    named = table(normalize(pd.Series(range(12), name="x")))
    assert named["columns"] == ["x"]
    assert named["row_count"] == 12


def test_series_with_meaningful_labels_keeps_them():
    totals = pd.DataFrame({"a": [1, 2], "b": [3, 4]}).sum()
    assert table(normalize(totals)) == {
        "columns": ["index", "value"],
        "rows": [["a", 3], ["b", 7]],
        "row_count": 2,
    }


def test_unnamed_index_is_left_out_even_when_not_default():
    frame = pd.DataFrame({"a": range(6)}, index=list("uvwxyz"))
    assert table(normalize(frame[frame.a > 3]))["rows"] == [[4], [5]]


def test_named_index_comes_first():
    frame = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["p", "q"], name="key"))
    data = table(normalize(frame))
    assert data["columns"] == ["key", "v"]
    assert data["rows"] == [["p", 1], ["q", 2]]


def test_multiindex_rows_and_columns():
    index = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", None])
    columns = pd.MultiIndex.from_tuples([("x", "mean"), ("x", "")])
    frame = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], index=index, columns=columns)
    data = table(normalize(frame))
    assert data["columns"] == ["k", "level_1", "x / mean", "x"]
    assert data["rows"] == [["a", 1, 1.0, 2.0], ["b", 2, 3.0, 4.0]]


def test_index_counts_as_a_column_for_the_cap():
    frame = pd.DataFrame(np.zeros((2, 10)), index=pd.Index([7, 8], name="id"))
    data = table(normalize(frame))
    assert data["column_count"] == 11
    assert data["columns"][0] == "id"
    assert data["rows"][1][0] == 8


def test_long_frame_with_multiindex_slices_index_cheaply():
    n = 2_000_000
    index = pd.MultiIndex.from_arrays([np.arange(n) % 7, np.arange(n)], names=["g", "i"])
    data = table(normalize(pd.DataFrame({"v": np.ones(n)}, index=index)))
    assert data["rows"][-1] == [(n - 1) % 7, n - 1, 1.0]


# ------------------------------------------------------------------------ cells


def test_missing_and_infinite_values_become_null():
    frame = pd.DataFrame(
        {
            "f": [math.nan, math.inf, -math.inf, 1.25],
            "o": [None, math.nan, pd.NaT, "x"],
            "nullable": pd.array([1, None, 3, None], dtype="Int64"),
            "t": pd.to_datetime(
                ["2024-01-02", None, "2024-01-03T04:05:06.789", None], format="ISO8601"
            ),
        }
    )
    rows = table(normalize(frame))["rows"]
    assert rows == [
        [None, None, 1, "2024-01-02T00:00:00"],
        [None, None, None, None],
        [None, None, 3, "2024-01-03T04:05:06.789000"],
        [1.25, "x", None, None],
    ]


def test_datetimes_are_iso_text_never_epoch_numbers():
    frame = pd.DataFrame(
        {
            "aware": pd.to_datetime(["2024-03-01 12:00"]).tz_localize("Europe/Paris"),
            "utc": [pd.Timestamp("2024-03-01 12:00:00.000000001", tz="UTC")],
            "date": [dt.date(2024, 3, 1)],
            "time": [dt.time(13, 14, 15)],
            "py": [dt.datetime(2024, 3, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-5)))],
            "np": np.array(["2024-03-01T01:02:03"], dtype="datetime64[s]").astype(object),
            "delta": pd.to_timedelta(["1 day 02:03:04"]),
        }
    )
    assert table(normalize(frame))["rows"] == [
        [
            "2024-03-01T12:00:00+01:00",
            "2024-03-01T12:00:00.000000001+00:00",
            "2024-03-01",
            "13:14:15",
            "2024-03-01T01:02:00-05:00",
            "2024-03-01T01:02:03",
            "1 days 02:03:04",
        ]
    ]


def test_assorted_cells_are_json_safe():
    long_bytes = bytes(range(256)) * 4

    class Odd:
        def __str__(self) -> str:
            return "odd" * 500

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    cells = [
        Decimal("1.10"),
        Decimal("NaN"),
        b"ab'c",
        long_bytes,
        [1, math.nan, {"k": [np.int8(3), np.float32(0.5)]}],
        {"a": (1, 2), 3: None},
        np.bool_(True),
        np.uint64(2**64 - 1),
        np.datetime64("NaT"),
        np.datetime64("2024-05-06", "D"),
        np.arange(3),
        1 + 2j,
        "é" * 1000,
        Odd(),
        Broken(),
        list(range(1000)),
    ]
    frame = pd.DataFrame({"c": pd.Series(cells, dtype=object)})
    payload = normalize(frame)
    rows = table(payload)["rows"]
    assert len(rows) == 11
    normalized = [rows[i][0] for i in range(5)] + [row[0] for row in rows[6:]]
    assert normalized[:5] == [
        "1.10",
        None,
        repr(b"ab'c"),
        f"{repr(long_bytes[:32])[:-1]}...' (1024 bytes)",
        [1, None, {"k": [3, 0.5]}],
    ]
    text, odd, broken, numbers = normalized[6:]
    assert text == "é" * (MAX_CELL_CHARS - 1) + "…"
    assert odd == "odd" * 66 + "o…" and len(odd) == MAX_CELL_CHARS
    assert broken.startswith("<") and "Broken" in broken
    assert len(numbers) == MAX_CELL_ITEMS
    assert numbers[-1] == f"… ({1000 - MAX_CELL_ITEMS + 1} more)"
    small = table(normalize(pd.DataFrame({"c": pd.Series(cells[5:11], dtype=object)})))
    assert [row[0] for row in small["rows"]] == [
        {"a": [1, 2], "3": None},
        True,
        2**64 - 1,
        None,
        "2024-05-06",
        [0, 1, 2],
    ]


def test_circular_cell_does_not_hang():
    loop: list = [1]
    loop.append(loop)
    rows = table(normalize(pd.DataFrame({"c": pd.Series([loop], dtype=object)})))["rows"]
    assert rows == [[[1, "<circular reference>"]]]


def test_column_names_become_strings():
    frame = pd.DataFrame([[1, 2, 3]], columns=[0, pd.Timestamp("2024-01-01"), None])
    assert table(normalize(frame))["columns"] == ["0", "2024-01-01T00:00:00", "None"]


# ---------------------------------------------------------------------- pyarrow


def arrow_sample(n: int) -> pa.Table:
    return pa.table(
        {
            "i": pa.array(range(n), pa.int32()),
            "ts": pa.array(
                [dt.datetime(2024, 1, 1) + dt.timedelta(hours=h) for h in range(n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "list": pa.array([[h, h + 1] if h % 3 else None for h in range(n)]),
            "struct": pa.array([{"x": h, "y": f"s{h}"} for h in range(n)]),
            "dec": pa.array([Decimal(h) / 4 for h in range(n)], pa.decimal128(10, 2)),
            "bin": pa.array([bytes([h % 256]) for h in range(n)]),
        }
    )


def test_arrow_table_with_nested_and_timestamp_columns():
    data = table(normalize(arrow_sample(3)))
    assert data["columns"] == ["i", "ts", "list", "struct", "dec", "bin"]
    assert data["rows"] == [
        [0, "2024-01-01T00:00:00+00:00", None, {"x": 0, "y": "s0"}, "0.00", "b'\\x00'"],
        [1, "2024-01-01T01:00:00+00:00", [1, 2], {"x": 1, "y": "s1"}, "0.25", "b'\\x01'"],
        [2, "2024-01-01T02:00:00+00:00", [2, 3], {"x": 2, "y": "s2"}, "0.50", "b'\\x02'"],
    ]


def test_arrow_record_batch_and_chunked_table_are_sliced():
    batch = arrow_sample(30).to_batches()[0]
    assert isinstance(batch, pa.RecordBatch)
    payload = normalize(batch)
    assert_table_shape(payload, 30, 6)
    assert [row[0] for row in payload["data"]["rows"]] == [0, 1, 2, 3, 4, DOTS, 25, 26, 27, 28, 29]
    chunked = pa.concat_tables([arrow_sample(7), arrow_sample(7)])
    assert [row[0] for row in table(normalize(chunked))["rows"]][-5:] == [2, 3, 4, 5, 6]


def test_arrow_big_and_wide_tables():
    n = 10_000_000
    long = pa.table({"i": pa.array(np.arange(n)), "f": pa.array(np.zeros(n))})
    wide = pa.table({f"c{j}": pa.array(np.arange(100)) for j in range(2_000)})
    long_payload, wide_payload = normalize(long), normalize(wide)
    assert_table_shape(long_payload, n, 2)
    assert long_payload["data"]["rows"][-1] == [n - 1, 0.0]
    assert_table_shape(wide_payload, 100, 2_000)


def test_arrow_empty_table_and_plain_array():
    assert table(normalize(arrow_sample(0))) == {
        "columns": ["i", "ts", "list", "struct", "dec", "bin"],
        "rows": [],
        "row_count": 0,
    }
    assert table(normalize(pa.chunked_array([[1, None], [3]]))) == {
        "columns": ["value"],
        "rows": [[1], [None], [3]],
        "row_count": 3,
    }


def test_arrow_timestamp_beyond_python_datetime_still_shows():
    payload = normalize(pa.table({"t": pa.array([2**62, None], pa.timestamp("s"))}))
    rows = table(payload)["rows"]
    assert isinstance(rows[0][0], str) and rows[0][0].endswith("T07:45:04")
    assert rows[1] == [None]


# ---------------------------------------------------------------------- figures


def test_figure_becomes_png_of_its_pixel_size():
    fig = line_figure(3, 2, dpi=50)
    assert png_size(normalize(fig)) == pixel_size(fig) == (150, 100)


def test_figure_without_axes_renders_blank():
    fig = Figure(figsize=(1, 1), dpi=30)
    assert png_size(normalize(fig)) == (30, 30)


def test_figure_stays_usable_and_keeps_its_canvas():
    fig = line_figure()
    canvas = fig.canvas
    normalize(fig)
    assert fig.canvas is canvas
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(PNG_MAGIC)
    fig.axes[0].plot([1, 2])  # still drawable, and a second preview still works
    assert png_size(normalize(fig)) == pixel_size(fig)


def test_four_threads_render_at_once():
    figs = [line_figure(2 + k, 2, dpi=30) for k in range(4)]
    shared = line_figure(2, 3, dpi=30)
    canvas = shared.canvas
    barrier = threading.Barrier(8)
    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[k] = normalize(figs[k] if k < 4 else shared)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert [png_size(results[k]) for k in range(4)] == [pixel_size(f) for f in figs]
    assert {png_size(results[k]) for k in range(4, 8)} == {pixel_size(shared)}
    assert shared.canvas is canvas


def test_explicit_image_may_be_a_figure():
    fig = line_figure()
    payload = normalize({"type": "image", "data": fig, "title": "plot"})
    assert payload["title"] == "plot"
    assert png_size(payload) == pixel_size(fig)


def test_object_with_savefig_is_asked_for_png():
    class Chart:
        def __init__(self) -> None:
            self.calls: list[dict] = []

        def savefig(self, target, **kwargs) -> None:
            self.calls.append(kwargs)
            target.write(png_bytes((4, 5)))

    chart = Chart()
    assert png_size(normalize(chart)) == (4, 5)
    assert chart.calls == [{"format": "png"}]


def test_grid_with_a_matplotlib_figure_is_drawn_with_agg():
    class Grid:  # like seaborn's FacetGrid
        def __init__(self) -> None:
            self.figure = line_figure(2, 2, dpi=20)

        def savefig(self, *args, **kwargs) -> None:
            raise AssertionError("the figure should be drawn directly")

    assert png_size(normalize(Grid())) == (40, 40)


@pytest.mark.parametrize(
    ("savefig", "message"),
    [
        (lambda target, **kw: (_ for _ in ()).throw(OSError("disk\nfull")), "savefig failed: disk"),
        (lambda target, **kw: target.write(b"<svg/>"), "did not produce a PNG"),
    ],
)
def test_broken_savefig_is_a_preview_error(savefig, message):
    chart = type("Chart", (), {"savefig": staticmethod(savefig)})()
    with pytest.raises(PreviewError, match=message) as caught:
        normalize(chart)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK"])
def test_pil_image_is_kept_and_encodes_when_shown(mode):
    image = Image.new(mode, (7, 3))
    payload = normalize(image)
    assert payload["data"].pixels is image  # by reference: nothing encoded yet
    assert (payload["width"], payload["height"]) == (7, 3)
    bundle = mimebundle(payload)  # the static form encodes it
    [mime] = [key for key in bundle if key.startswith("image/")]
    with Image.open(io.BytesIO(base64.b64decode(bundle[mime]))) as shown:
        assert shown.size == (7, 3)


def test_no_pyplot_or_ipython_is_imported():
    code = textwrap.dedent(
        """
        import sys
        import dora_notebook.preview.normalize as preview
        assert "matplotlib" not in sys.modules
        from matplotlib.figure import Figure
        fig = Figure(figsize=(1, 1), dpi=10)
        fig.add_subplot().plot([1, 2])
        assert preview.normalize(fig)["type"] == "image"
        banned = {"IPython", "ipywidgets", "matplotlib.pyplot"} & set(sys.modules)
        assert not banned, banned
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


# -------------------------------------------------------------- explicit types


@pytest.mark.parametrize("kind", ["text", "markdown", "html", "csv"])
def test_text_like_types(kind):
    assert normalize({"type": kind, "data": "a,b\n1,2"}) == {"type": kind, "data": "a,b\n1,2"}
    with pytest.raises(PreviewError, match=f"^{kind} data must be a str"):
        normalize({"type": kind, "data": 12})


def test_csv_accepts_a_dataframe():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    assert normalize({"type": "csv", "data": frame}) == {"type": "csv", "data": "a,b\n1,x\n2,\n"}
    named = frame.set_index(pd.Index([5, 6], name="id"))
    assert normalize({"type": "csv", "data": named})["data"].startswith("id,a,b\n5,1,x")


def test_explicit_table_of_a_frame_keeps_extras():
    payload = normalize({"type": "table", "data": pd.DataFrame({"a": range(12)}), "title": "t"})
    assert payload["title"] == "t"
    assert_table_shape(payload, 12, 1)
    arrow = normalize({"type": "table", "data": pa.table({"a": [1]})})
    assert arrow["data"]["rows"] == [[1]]


def test_explicit_table_dict_passes_through_validated():
    payload = normalize(
        {
            "type": "table",
            "data": {"columns": ["a", 2], "rows": [[1, math.nan], (b"x", [math.inf])]},
        }
    )
    assert payload == {
        "type": "table",
        "data": {"columns": ["a", "2"], "rows": [[1, None], ["b'x'", [None]]], "row_count": 2},
    }
    kept = normalize(
        {"type": "table", "data": {"columns": [], "rows": [], "row_count": 9, "column_count": 40}}
    )
    assert kept["data"] == {"columns": [], "rows": [], "row_count": 9, "column_count": 40}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"columns": ["a"], "rows": [[1, 2]]}, "table row 0 has 2 cells, expected 1"),
        ({"columns": ["a"], "rows": [1]}, "table row 0 must be a list"),
        ({"columns": "a", "rows": []}, "'columns' must be a list"),
        ({"columns": ["a"]}, "'rows' must be a list"),
        ({"columns": [], "rows": [], "row_count": -1}, "'row_count' must be a non-negative int"),
        ({"columns": [], "rows": [], "row_count": True}, "'row_count' must be a non-negative"),
        ([[1, 2]], "table data must be a DataFrame"),
    ],
)
def test_explicit_table_invalid(data, message):
    with pytest.raises(PreviewError, match=message):
        normalize({"type": "table", "data": data})


def test_explicit_json_is_made_json_safe():
    data = {"n": math.nan, "inf": [-math.inf], "when": dt.date(2024, 1, 1), "np": np.arange(2)}
    assert normalize({"type": "json", "data": data}) == {
        "type": "json",
        "data": {"n": None, "inf": [None], "when": "2024-01-01", "np": [0, 1]},
    }
    assert normalize({"type": "json", "data": None}) == {"type": "json", "data": None}


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"a": [1, object()]}, "json data at ['a'][1]: cannot serialise object"),
        ({"df": pd.DataFrame()}, "json data at ['df']: cannot serialise pandas.DataFrame"),
        (lambda: 1, "json data: cannot serialise function"),
    ],
)
def test_explicit_json_unserialisable(data, where):
    with pytest.raises(PreviewError) as caught:
        normalize({"type": "json", "data": data})
    assert str(caught.value) == where


def test_explicit_json_circular():
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(PreviewError, match="circular reference"):
        normalize({"type": "json", "data": loop})


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/svg+xml;base64,PHN2Zy8+",
        "data:image/svg+xml,%3Csvg%2F%3E",
        "https://x.io/a.png",
    ],
)
def test_image_urls_pass(url):
    assert normalize({"type": "image", "data": url}) == {"type": "image", "data": url}


@pytest.mark.parametrize(
    "data",
    ["data:text/html;base64,PGI+", "ftp://x.io/a.png", "a.png", "https://", "https://x.io/a b", 7],
)
def test_image_invalid(data):
    with pytest.raises(PreviewError, match=r"^image data must be"):
        normalize({"type": "image", "data": data})


@pytest.mark.parametrize(
    ("raw", "mime"),
    [
        (png_bytes(), "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"GIF87a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x1a\x00\x00\x00WEBPVP8 ", "image/webp"),
    ],
)
def test_image_bytes_are_sniffed(raw, mime):
    for payload in (normalize({"type": "image", "data": raw}), normalize(bytearray(raw))):
        assert decode_image(payload) == (mime, raw)


def test_unknown_bytes_are_rejected():
    with pytest.raises(PreviewError, match="image bytes \\(5\\) are not a PNG"):
        normalize({"type": "image", "data": b"hello"})
    with pytest.raises(PreviewError, match=r"^cannot preview 5 bytes: they are not a PNG"):
        normalize(b"hello")


@pytest.mark.parametrize(
    ("data", "expected", "extra"),
    [
        ("https://example.org/page", "https://example.org/page", {}),
        ({"src": "http://localhost:8888/x"}, "http://localhost:8888/x", {}),
        ({"url": "https://e.org", "height": 300}, "https://e.org", {"height": 300}),
    ],
)
def test_iframe_valid(data, expected, extra):
    assert normalize({"type": "iframe", "data": data}) == {
        "type": "iframe",
        "data": expected,
        **extra,
    }


@pytest.mark.parametrize("data", ["javascript:alert(1)", "/relative", {"href": "x"}, 3])
def test_iframe_invalid(data):
    with pytest.raises(PreviewError, match=r"^iframe data must be an http"):
        normalize({"type": "iframe", "data": data})


@pytest.mark.parametrize(
    ("kind", "raw", "mime"),
    [
        ("video", b"\x00\x00\x00\x18ftypmp42\x00\x00", "video/mp4"),
        ("video", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "video/webm"),
        ("video", b"OggS\x00\x02\x00\x00", "video/ogg"),
        ("audio", b"OggS\x00\x02\x00\x00", "audio/ogg"),
        ("audio", b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        ("audio", b"ID3\x03\x00\x00\x00\x00", "audio/mpeg"),
        ("audio", b"\xff\xfb\x90\x64\x00", "audio/mpeg"),
        ("audio", b"just some bytes", "application/octet-stream"),
    ],
)
def test_media_bytes_are_sniffed(kind, raw, mime):
    payload = normalize({"type": kind, "data": raw})
    assert payload == {"type": kind, "data": f"data:{mime};base64,{base64.b64encode(raw).decode()}"}


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_media_urls_and_invalid(kind):
    for url in ("https://e.org/clip", f"data:{kind}/mp4;base64,AAAA"):
        assert normalize({"type": kind, "data": url})["data"] == url
    for bad, message in (
        ("clip.mp4", "must be an http"),
        (b"", "is empty"),
        (1.5, "must be a URL str or"),
    ):
        with pytest.raises(PreviewError, match=f"^{kind} data {message}"):
            normalize({"type": kind, "data": bad})


def test_extras_kept_only_when_serialisable():
    payload = normalize(
        {"type": "text", "data": "x", "title": "T", "meta": {"n": math.nan}, "bad": object(), 1: 2}
    )
    assert payload == {"type": "text", "data": "x", "title": "T", "meta": {"n": None}}


def test_unknown_type_names_it_and_lists_known_ones():
    with pytest.raises(PreviewError) as caught:
        normalize({"type": "chart", "data": [1]})
    message = str(caught.value)
    assert message.startswith("unknown preview type 'chart': expected one of ")
    assert all(kind in message for kind in KNOWN_TYPES)
    with pytest.raises(PreviewError, match="unknown preview type 3"):
        normalize({"type": 3, "data": [1]})


def test_missing_data_is_an_error():
    with pytest.raises(PreviewError, match="payload of type 'text' has no 'data'"):
        normalize({"type": "text"})


def test_preview_error_is_a_dataflow_and_value_error():
    assert issubclass(PreviewError, DataflowError)
    assert issubclass(PreviewError, ValueError)


# --------------------------------------------------------------- implicit input


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hi", {"type": "text", "data": "hi"}),
        ({"a": (1, 2)}, {"type": "json", "data": {"a": [1, 2]}}),
        ([1, math.nan], {"type": "json", "data": [1, None]}),
        ((True, None), {"type": "json", "data": [True, None]}),
        ({3, 1, 2}, {"type": "json", "data": [1, 2, 3]}),
        (42, {"type": "json", "data": 42}),
        (False, {"type": "json", "data": False}),
        (None, {"type": "json", "data": None}),
        (math.inf, {"type": "json", "data": None}),
        (np.float32(0.5), {"type": "json", "data": 0.5}),
        (Decimal("2.50"), {"type": "json", "data": "2.50"}),
        (dt.datetime(2024, 1, 2, 3, 4), {"type": "json", "data": "2024-01-02T03:04:00"}),
        (np.array([[1, 2], [3, 4]]), {"type": "json", "data": [[1, 2], [3, 4]]}),
        (
            np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"),
            {"type": "json", "data": ["2024-01-01T00:00:00.000000000", None]},
        ),
        (np.array([1.5, np.nan]), {"type": "json", "data": [1.5, None]}),
    ],
)
def test_implicit_values(value, expected):
    payload = normalize(value)
    assert payload == expected
    dumps(payload)


@pytest.mark.parametrize("shape", [(5000,), (100, 30)])
def test_large_numpy_array_is_cut_with_a_note(shape):
    array = np.arange(math.prod(shape), dtype=float).reshape(shape)
    payload = normalize(array)
    assert payload["data"] == list(range(MAX_ARRAY_ELEMENTS))
    assert f"shape {shape}" in payload["note"]
    assert f"first {MAX_ARRAY_ELEMENTS} of {array.size}" in payload["note"]
    assert normalize({"type": "json", "data": array})["note"] == payload["note"]


@pytest.mark.parametrize("value", [object(), lambda x: x, Ellipsis, type, iter([1]), pd.Index([1])])
def test_unpreviewable_objects(value):
    with pytest.raises(PreviewError) as caught:
        normalize(value)
    message = str(caught.value)
    assert message.startswith("cannot preview ")
    assert (
        ": pass a DataFrame, a figure, a str, a dict/list, or {'type': T, 'data': ...}" in message
    )
    assert message.endswith(", ".join(KNOWN_TYPES))
    assert "\n" not in message


def test_socket_cannot_be_previewed():
    with socket.socket() as sock, pytest.raises(PreviewError, match=r"^cannot preview socket"):
        normalize(sock)


def test_payload_size_counts_utf8_bytes():
    payload = normalize("é")
    assert payload_size(payload) == len('{"type":"text","data":"é"}'.encode())
    with pytest.raises(PreviewError, match="not JSON-serialisable"):
        payload_size({"type": "json", "data": math.nan})


# --------------------------------------------------------------------- property

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
COLUMN_KINDS = {
    "int": {"dtype": np.int64},
    "float": {"dtype": float, "elements": FLOATS},
    "bool": {"dtype": bool},
    "text": {"dtype": object, "elements": st.text()},
    "datetime": {"dtype": "datetime64[ns]"},
    "maybe": {"dtype": object, "elements": st.none() | st.integers() | FLOATS | st.text()},
}


@st.composite
def frames(draw) -> pd.DataFrame:
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMN_KINDS)), max_size=14))
    columns = [hpd.column(f"{kind}{j}", **COLUMN_KINDS[kind]) for j, kind in enumerate(kinds)]
    return draw(hpd.data_frames(columns=columns, index=hpd.range_indexes(max_size=14)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_any_frame_normalises_to_strict_json_by_the_rule(frame):
    payload = normalize(frame)
    dumps(payload)
    assert_table_shape(payload, len(frame), frame.shape[1])
    assert normalize(payload) == payload  # idempotent


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=np.float64,
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=25),
        elements=FLOATS,
    )
)
def test_any_numeric_grid_obeys_the_rule(array):
    frame = pd.DataFrame(array)
    payload = normalize(frame)
    assert_table_shape(payload, array.shape[0], array.shape[1])
    as_arrow = normalize(pa.table({str(j): array[:, j] for j in range(array.shape[1])}))
    if array.shape[1]:
        assert as_arrow == payload


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=hnp.integer_dtypes()
        | hnp.unsigned_integer_dtypes()
        | hnp.floating_dtypes()
        | hnp.boolean_dtypes()
        | hnp.complex_number_dtypes()
        | hnp.datetime64_dtypes()
        | hnp.timedelta64_dtypes()
        | hnp.unicode_string_dtypes(),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=12),
    )
)
def test_any_numpy_array_normalises_to_strict_json(array):
    payload = normalize(array)
    is_image = (
        array.dtype == np.uint8
        and array.ndim in (2, 3)
        and 0 not in array.shape
        and (array.ndim == 2 or array.shape[2] in (1, 3, 4))
    )
    if is_image:  # HxW[xC] uint8: a picture, kept as it is (tests/test_frames.py)
        assert payload["type"] == "image" and payload["data"].pixels.size == array.size
        return
    assert payload["type"] == "json"
    dumps(payload)
    if array.size > MAX_ARRAY_ELEMENTS:
        assert len(payload["data"]) == MAX_ARRAY_ELEMENTS
        assert f"of {array.size} elements" in payload["note"]
    elif array.ndim:
        assert len(payload["data"]) == array.shape[0]
        assert "note" not in payload
    else:
        assert not isinstance(payload["data"], list)


JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | FLOATS | st.text() | st.datetimes(),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=60, deadline=None)
@given(JSON_LIKE)
def test_any_json_like_data_normalises_to_strict_json(value):
    payload = normalize({"type": "json", "data": value})
    dumps(payload)
    assert normalize(payload) == payload
    cell = normalize(pd.DataFrame({"c": pd.Series([value], dtype=object)}))
    dumps(cell)


def test_percent_encoded_data_urls_pass_for_iframes() -> None:
    url = "data:text/html,<h1>hi</h1>"
    assert normalize({"type": "iframe", "data": url}) == {"type": "iframe", "data": url}


# -- without pandas -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_durations_read_as_pandas_writes_them(nanoseconds: int) -> None:
    value = np.timedelta64(nanoseconds, "ns")
    assert duration_text(value) == str(pd.Timedelta(value))
    micros = dt.timedelta(microseconds=nanoseconds // 1000)
    assert duration_text(micros) == str(pd.Timedelta(micros))
    assert duration_text(pd.Timedelta(value)) == str(pd.Timedelta(value))


def test_previews_need_no_pandas() -> None:
    # A base install has no pandas: tables, cells and durations must not import it.
    code = textwrap.dedent(
        """
        import datetime as dt, json, sys

        class NoPandas:  # as if pandas were not installed
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "pandas":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoPandas())
        import numpy as np, pyarrow as pa
        from dora_notebook.preview.normalize import normalize
        table = pa.table({"x": [1, 2], "d": pa.array([dt.timedelta(hours=3)] * 2)})
        print(json.dumps([
            normalize(table),
            normalize({"d": dt.timedelta(seconds=-1), "n": np.timedelta64(7, "ns")}),
            normalize({"type": "csv", "data": "a,b"}),
        ]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "type": "table",
            "data": {
                "columns": ["x", "d"],
                "rows": [[1, "0 days 03:00:00"], [2, "0 days 03:00:00"]],
                "row_count": 2,
            },
        },
        {"type": "json", "data": {"d": "-1 days +23:59:59", "n": "0 days 00:00:00.000000007"}},
        {"type": "csv", "data": "a,b"},
    ]
