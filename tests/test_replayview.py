"""How a replay is shown: the first differing message of each output side by side, as what
it holds (a table, an image, text), and the replayed node's previews and printed lines."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image

from dora_notebook import Dataflow
from dora_notebook.core.record import Recorded, Recording
from dora_notebook.core.replay import ReplayedOutput, ReplayResult, diff_messages
from dora_notebook.jupyter.replayview import message_html, replay_html

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


def message(value: object, **metadata: object) -> Recorded:
    return Recorded("op", "out", 0, T0, T0, dict(metadata), value)


def images(html_text: str) -> list[Image.Image]:
    found = re.findall(r'<img src="data:image/(?:png|jpeg);base64,([^"]+)"', html_text)
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in found]


def test_an_image_message_is_shown_as_a_small_image() -> None:
    frame = np.full((240, 320, 3), 200, np.uint8)
    meta = {"width": 320, "height": 240, "encoding": "rgb8"}
    shown = images(message_html(message(pa.array(frame.ravel()), **meta)))
    assert len(shown) == 1 and shown[0].size == (160, 120)  # scaled down
    assert shown[0].convert("RGB").getpixel((80, 60)) == (200, 200, 200)
    # A uint8 HxWxC array sent by reference is an image too.
    assert [i.size for i in images(message_html(message(frame[:40, :40])))] == [(40, 40)]
    # Metadata that says image, on bytes that are not one: shown as what it is.
    wrong = message_html(message(pa.array([1, 2, 3], pa.uint8()), **meta))
    assert not images(wrong) and "uint8 [1, 2, 3]" in wrong


def test_a_table_message_is_an_html_table_and_other_values_are_text() -> None:
    frame = pd.DataFrame({"x": [1, 2], "label": ["a", "b"]})
    struct = pa.Table.from_pandas(frame, preserve_index=False).to_struct_array().combine_chunks()
    shown = message_html(message(struct, k=1))
    assert "<table" in shown and "<th" in shown and ">label</th>" in shown
    assert re.findall(r"<td[^>]*>([^<]*)</td>", shown) == ["1", "a", "2", "b"]
    assert "2 rows" in shown and "metadata: {&quot;k&quot;: 1}" in shown
    assert "<table" in message_html(message(frame))
    text = message_html(message(pa.array(["<b>x</b>"])))
    assert "string [&#x27;&lt;b&gt;x&lt;/b&gt;&#x27;]" in text  # escaped
    assert message_html(None) == "<i style='color:#777'>none</i>"


def test_the_view_puts_recorded_beside_replayed_for_each_differing_output() -> None:
    old = [message(pa.array([i])) for i in range(3)]
    new = [message(pa.array([i if i != 1 else 9])) for i in range(3)]
    same = [message(pa.array([5]))]
    diffs = {
        "out": diff_messages("op", "out", old, new),
        "quiet": diff_messages("op", "q", same, same),
    }
    result = ReplayResult(
        "op",
        "operator",
        0.0,
        {"x": 3},
        {"out": ReplayedOutput(old, new), "quiet": ReplayedOutput(same, same)},
        diffs,
        previews={"default": {"type": "text", "data": "hello <world>"}},
        logs=[f"line {i}" for i in range(30)],
    )
    shown = replay_html(result)
    assert "op/out: 2 same, 1 changed (first: #1), 0 new, 0 missing" in shown
    assert shown.count("first differing message") == 1  # quiet has none
    cells = re.findall(r"<th[^>]*>([^<]*)</th>", shown)
    assert cells == ["recorded #1", "replayed #1 (now)"]
    assert shown.index("int64 [1]") < shown.index("int64 [9]")  # recorded on the left
    assert "hello &lt;world&gt;" in shown  # the preview, escaped as its text bundle
    assert "printed lines (30, last 20 shown)" in shown and "line 29" in shown
    assert "line 9\n" not in shown


def test_a_missing_message_is_none_on_the_replayed_side() -> None:
    rec = Recording()
    for i in range(3):
        rec.record("src", "n", pa.array([i]), {})
        rec.record("op", "out", pa.array([i]), {})
    flow = Dataflow(echo=False)
    flow.add_node("src", "pass", outputs=["n"])
    code = (
        "class Operator:\n"
        "    def on_event(self, event, send_output):\n"
        "        if event['type'] == 'INPUT' and event['value'][0].as_py() < 2:\n"
        "            send_output('out', event['value'])\n"
    )
    flow.add_operator("op", code, inputs={"n": "src/n"}, outputs=["out"])
    shown = replay_html(flow.replay("op", rec))
    assert "first differing message, #2 (missing)" in shown
    recorded, replayed = re.findall(r"<td[^>]*>(.*?)</td>", shown)
    assert "int64 [2]" in recorded and "none" in replayed
