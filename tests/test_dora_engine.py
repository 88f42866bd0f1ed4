"""The dora engine: a graph run on real dora-rs, observed through the bridge node."""

from __future__ import annotations

import shutil
import time

import psutil
import pytest

from dora_notebook import Dataflow
from dora_notebook.observe import Report

pytestmark = [
    pytest.mark.dora,
    pytest.mark.skipif(shutil.which("dora") is None, reason="needs the dora CLI (dora-rs-cli)"),
]

SOURCE = """
class Operator:
    def __init__(self):
        self.n = 0

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            self.n += 1
            context.output(self.n, "x")
            if self.n == 5:
                context.done()
"""

SINK = """
import pandas as pd

class Operator:
    def __init__(self):
        self.rows = []

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            self.rows.append(dora_event["value"][0].as_py())
            print("got", self.rows[-1])
            context.preview(pd.DataFrame({"v": self.rows}))
            context.report_progress(len(self.rows) * 20)
"""

RAISER = """
class Operator:
    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            raise ValueError("boom under dora")
"""


def _dora_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_reports_reach_the_kernel_and_nothing_is_left() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("src", SOURCE, inputs={"tick": "dora/timer/millis/50"}, outputs=["x"])
    flow.add_operator("sink", SINK, inputs={"x": "src/x"})
    seen: list[Report] = []
    flow.subscribe(seen.append)
    flow.start(engine="dora")
    try:
        assert flow.wait(60)
    finally:
        flow.stop()
    kinds = {(r.node_id, r.kind) for r in seen}
    assert {("sink", "preview"), ("sink", "progress"), ("sink", "log")} <= kinds
    sink = flow.node("sink")
    assert sink.status == "finished", sink.errors
    assert flow.node("src").status == "finished"
    assert sink.progress == 100.0
    assert sink.previews["default"]["type"] == "table"
    assert "got 5" in sink.log_text()
    assert flow.node("src").sent == 5
    assert sink.received == 5
    assert not flow.running
    assert _dora_processes() == []


def test_a_failing_operator_shows_its_error() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("bad", RAISER, inputs={"tick": "dora/timer/millis/50"})
    flow.start(engine="dora")
    try:
        deadline = time.monotonic() + 60
        while flow.node("bad").status != "failed" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        flow.stop()
    bad = flow.node("bad")
    assert bad.status == "failed"
    assert "ValueError: boom under dora" in (bad.error or "")
    assert _dora_processes() == []


def test_stop_ends_a_running_dataflow() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator(
        "ticker",
        SINK.replace('dora_event["value"][0].as_py()', "1"),
        inputs={"tick": "dora/timer/millis/50"},
    )
    flow.start(engine="dora")
    try:
        deadline = time.monotonic() + 60
        while not flow.node("ticker").log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flow.running
    finally:
        flow.stop()
    assert not flow.running
    assert flow.node("ticker").status == "finished"
    assert flow.node("ticker").log_text()[0] == "got 1"
    assert _dora_processes() == []


def test_a_bad_coordinator_is_refused() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("a", SOURCE, outputs=["x"])
    with pytest.raises(Exception, match="HOST:PORT"):
        flow.start(engine="dora", coordinator="nowhere")
    assert not flow.running
