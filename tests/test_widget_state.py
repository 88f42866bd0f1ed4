"""An executed notebook carries its widgets' final state, so reopening it shows the previews."""

from __future__ import annotations

import base64
import io

import nbformat
from nbclient import NotebookClient
from PIL import Image

CELL = """%%dora_operator counter --inputs tick=dora/timer/millis/10
import pandas as pd
class Operator:
    def __init__(self):
        self.n = 0
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.n += 1
            context.preview(pd.DataFrame({"n": range(self.n)}))
            context.report_progress(self.n * 100 / 12)
            if self.n == 12:
                return 1
"""


def test_saved_widget_state_holds_the_final_previews() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(code)
        for code in ("%load_ext dora_notebook", CELL, "%dora_start --wait --timeout 20")
    ]
    NotebookClient(nb, kernel_name="python3", store_widget_state=True, timeout=60).execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = [m["state"] for m in state.values()]
    headers = [m["value"] for m in models if "<b>counter</b>" in str(m.get("value"))]
    assert len(headers) == 1 and "finished" in headers[0] and "12 received" in headers[0]
    bars = [m["value"] for m in models if m.get("_model_name") == "FloatProgressModel"]
    assert bars == [100.0]
    tables = [
        o[0]["data"]["text/html"]
        for m in models
        if m.get("_model_name") == "OutputModel"
        for o in [m["outputs"]]
        if o
    ]
    assert len(tables) == 1 and "12 rows" in tables[0] and ">...</td>" in tables[0]
    panel_output = nb.cells[1].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in panel_output
    assert nb.cells[2].outputs[0]["text"] == "counter: finished, 12 received, 0 sent\n"


MOVING = """%%dora_node camera
import numpy as np
from dora import Node
ctx = Node().context
for i in range(40):
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :, 0] = i * 5  # the last frame is red 195
    ctx.preview(frame)
    ctx.plot("level", i * 5)
    ctx.plot("half", i * 2.5, window=10)
"""


def _buffers(model: dict) -> dict[tuple[str, ...], bytes]:
    return {tuple(b["path"]): base64.b64decode(b["data"]) for b in model.get("buffers", [])}


def test_saved_widget_state_holds_the_last_frame_and_the_whole_chart() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(code)
        for code in ("%load_ext dora_notebook", MOVING, "%dora_start --wait --timeout 20")
    ]
    NotebookClient(nb, kernel_name="python3", store_widget_state=True, timeout=60).execute()
    saved = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    # Every buffer's path exists in its model's saved state: a frontend puts it back
    # there on reopening (ipywidgets' put_buffers), and fails on a path that is gone.
    for model in saved.values():
        for path in _buffers(model):
            target = model["state"]
            for key in path[:-1]:
                assert isinstance(target, dict) and key in target, path
                target = target[key]
            assert isinstance(target, dict), path
    images = [m for m in saved.values() if {"_esm", "format"} <= m["state"].keys()]  # FrameViews
    assert len(images) == 1
    last = Image.open(io.BytesIO(_buffers(images[0])[("value",)]))
    assert last.size == (64, 48) and abs(last.convert("RGB").getpixel((5, 5))[0] - 195) <= 3
    assert images[0]["state"]["format"] == last.format.lower()
    (chart,) = [m for m in saved.values() if "series" in m["state"]]
    series = chart["state"]["series"]
    points = _buffers(chart)
    ys = list(memoryview(points[("series", "y")]).cast("d"))
    assert series["names"] == ["level", "half"] and series["counts"] == [40, 10]
    assert series["windows"] == [500, 10]
    assert ys == [i * 5.0 for i in range(40)] + [i * 2.5 for i in range(30, 40)]
    # The panel's output keeps the widget and gains a static picture of the final chart,
    # which a frontend without widgets (untrusted, nbviewer) shows instead.
    output = nb.cells[1].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in output
    assert Image.open(io.BytesIO(base64.b64decode(output["image/png"]))).format == "PNG"
    assert output["text/plain"] == "camera: finished, 0 received, 0 sent"
