"""An executed notebook carries its widgets' final state, so reopening it shows the previews."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

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
