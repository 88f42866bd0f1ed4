"""What the dora engine observes of every node, plain dora files included (issue 14, items 2-4).

One graph, run once per engine and shared by the tests: ``counter`` and
``slow`` come from a plain dora file (no context shim: they report nothing
themselves), ``cell`` is an operator cell. On the dora engine their log
lines come from dora-rs's own log records, the tap and the per-edge counts
from the bridge's subscription to every output and dora's drop warnings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from dora_notebook import Dataflow
from dora_notebook.dora_rs.engine import EDGE_NOTE
from dora_notebook.jupyter.graphview import render_svg, render_text

from .dora_processes import DORA_LOSS, live_descendants

pytestmark = pytest.mark.dora

HERE = Path(__file__).parent / "observed_dataflow"
CELL = """
class Operator:
    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            print("cell got", dora_event["value"][0].as_py())
"""
SENT = 40  # counter.py sends this many messages on n
#: counter.py's Python logging record, in its panel. dora-rs 1.1 itself loses it now
#: and then: its own log of the node (out/ID/log_counter.jsonl) lacked it in 2 of 9 runs
#: (the node.log record before it and the prints after it were there), so it is not
#: required on the dora engine; when it is there, it shows with its level.
PYTHON_WARNING = ("warning", "a python warning from counter")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Dataflow, pd.DataFrame]]:
    """Each engine's finished run of the graph, with the tap of counter/n it filled."""
    done = {}
    for engine in ("embedded", "dora"):
        folder = tmp_path_factory.mktemp(engine) / "flow"
        shutil.copytree(HERE, folder, ignore=shutil.ignore_patterns("__pycache__"))
        flow = Dataflow.from_yaml(folder / "dataflow.yml", echo=False)
        flow.add_operator("cell", CELL, inputs={"n": "counter/n"})
        assert flow.tap("counter/n", 5).empty  # asked for before the start
        flow.start(engine=engine)
        try:
            assert flow.wait(60), f"{engine}: the graph did not end"
        finally:
            flow.stop()
        done[engine] = flow, flow.tap("counter/n", 5)
    assert live_descendants() == []
    return done


def lines(flow: Dataflow, node_id: str) -> list[tuple[str, str]]:
    return [(line.stdio, line.text) for line in flow.node(node_id).logs]


def test_a_plain_dora_file_shows_every_line_in_its_panels(runs) -> None:
    flow, _ = runs["dora"]
    counter = [line for line in lines(flow, "counter") if line != PYTHON_WARNING]
    # Printed before Node() (before the bridge joined), node.log with its level.
    first = [("stdout", "counter: before Node()"), ("warning", "counter counter is up")]
    assert counter[:2] == first
    assert [text for stdio, text in counter if stdio == "stdout"][1:] == [
        f"count {i}" for i in range(SENT)
    ]
    assert ("stdout", f"slow got {SENT - 1}") in lines(flow, "slow")  # the last waits in the queue
    # The cell reports its own lines: each once, in order, not also from dora's log.
    # (What dora-rs lost on the way to the cell, or of its reports: see DORA_LOSS.)
    cell = [text for _, text in lines(flow, "cell")]
    got = [int(text.split()[-1]) for text in cell]
    assert cell == [f"cell got {i}" for i in got] and got == sorted(set(got))
    assert len(got) <= flow.node("cell").received <= SENT
    # dora-rs's early loss (what the counter sent before the cell's runtime was
    # subscribed) grows with the machine's load; later, DORA_LOSS. (CI44's cell got 20
    # of 40, against a bound of 30 for both together; the old message did not say where.)
    early, later = got[0], SENT - got[0] - len(got)
    assert early <= SENT // 2 and later <= DORA_LOSS, (early, later, got[:5])
    assert {flow.node(n).status for n in ("counter", "slow", "cell")} == {"finished"}


def test_the_same_lines_as_on_the_embedded_engine(runs) -> None:
    embedded, dora = runs["embedded"][0], runs["dora"][0]
    # dora-rs's drop warnings are timing (how many, where): compared apart. (The
    # cell's lines depend on what dora-rs delivered it: see the test above.)
    for node_id in ("counter",):
        kept = [lines(flow, node_id) for flow in (embedded, dora)]
        kept = [[line for line in found if "Discarding" not in line[1]] for found in kept]
        if PYTHON_WARNING not in kept[1]:
            kept[0].remove(PYTHON_WARNING)
        assert kept[0] == kept[1], node_id


def test_a_tap_on_dora_gives_the_embedded_engine_s_frame(runs) -> None:
    frames = {engine: frame for engine, (_, frame) in runs.items()}
    for frame in frames.values():
        assert list(frame.columns) == ["time", "metadata", "value"]
        assert str(frame["time"].dtype) == "datetime64[ns, UTC]" or all(
            t.tzinfo is not None for t in frame["time"]
        )
    embedded, dora = (frames[e][["metadata", "value"]] for e in ("embedded", "dora"))
    pd.testing.assert_frame_equal(embedded, dora)
    assert dora["value"].tolist() == [[i] for i in range(SENT - 5, SENT)]


def test_a_tap_asked_for_while_the_graph_runs(tmp_path: Path) -> None:
    folder = tmp_path / "flow"
    shutil.copytree(HERE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    flow = Dataflow.from_yaml(folder / "dataflow.yml", echo=False)
    flow.start(engine="dora")
    try:
        frame = flow.tap("counter/n", 3, timeout=30)
    finally:
        flow.stop()
    assert len(frame) == 3
    values = [row[0] for row in frame["value"]]
    # In order, each its own message; consecutive unless dora-rs lost one (DORA_LOSS).
    assert values == sorted(set(values)) and values[-1] - values[0] <= 2 + DORA_LOSS
    assert [m["i"] for m in frame["metadata"]] == values


def test_edge_counts_say_what_dora_delivered_and_dropped(runs) -> None:
    flow, _ = runs["dora"]
    edges = {(row["target"], row["input"]): row for row in flow.edges()}
    warned = sum("Discarding event for input `n`" in text for _, text in lines(flow, "slow"))
    slow = edges["slow", "n"]
    assert slow["dropped"] == warned > 0  # one warning per drop, as dora-rs logs it
    # What the bridge got of counter/n (DORA_LOSS), less dora's drop warnings: a message
    # dora-rs loses without one counts as delivered.
    assert SENT - DORA_LOSS <= slow["delivered"] + slow["dropped"] <= SENT
    cell = edges["cell", "n"]
    # What dora-rs lost on the cell's input without a warning (before the last message it
    # got) is counted as dropped once the run ended; no more than its lines show missing.
    got = [int(text.split()[-1]) for _, text in lines(flow, "cell")]
    assert SENT - DORA_LOSS <= cell["delivered"] + cell["dropped"] <= SENT
    assert 0 <= cell["dropped"] <= got[-1] + 1 - len(got), (cell, got[:5])
    assert cell["dropped"] == flow.node("cell").dropped
    assert flow.node("cell").received <= SENT  # what the cell itself counted
    assert slow["note"] == EDGE_NOTE
    assert "not counted" in edges["counter", "tick"]["note"]
    assert SENT - DORA_LOSS <= flow.node("counter").sent <= SENT  # counted by the bridge
    assert flow.node("slow").received == slow["delivered"]
    assert flow.node("slow").dropped == warned
    # The graph view says what the numbers mean.
    text = render_text(flow.graph, flow.status(), flow.edges())
    assert f"counter/n -> slow/n  delivered {slow['delivered']}, dropped {warned}" in text
    assert EDGE_NOTE in text
    svg = render_svg(flow.graph, flow.status(), flow.edges())
    assert "drop warnings for this input; still queued ones count as delivered" in svg


# -- in a kernel, as a user taps and looks ----------------------------------------------

TICKER = """%%dora_operator ticker --inputs tick=dora/timer/millis/20 --outputs n
import pyarrow as pa
from dora import DoraStatus
class Operator:
    def __init__(self):
        self.n = 0
    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            self.n += 1
            send_output("n", pa.array([self.n]), {"n": self.n})
            if self.n == 12:
                return DoraStatus.STOP
        return DoraStatus.CONTINUE
"""
SINK = """%%dora_node sink --inputs n=ticker/n
from dora import Node
for event in Node():
    if event["type"] == "INPUT":
        print("sink got", event["value"][0].as_py())
"""
_FRAME = """
from dora_notebook import current as _current
_frame = _current().tap("ticker/n", 4)
print(list(_frame.columns), _frame["metadata"].tolist(), _frame["value"].tolist())
"""


def test_dora_tap_and_status_in_a_kernel_as_on_the_embedded_engine() -> None:
    from .kernel import Kernel

    frames, status = {}, {}
    with Kernel() as kernel:
        kernel.execute("%load_ext dora_notebook")
        kernel.execute(TICKER)
        kernel.execute(SINK)
        for engine in ("embedded", "dora"):
            kernel.execute("%dora_tap ticker/n -n 4")  # recording from the start
            kernel.execute(f"%dora_start --engine {engine} --wait --timeout 60", timeout=120)
            shown = kernel.execute("%dora_tap ticker/n -n 4").text
            assert "{'n': 12}" in shown and "[12]" in shown, shown
            frames[engine] = kernel.execute(_FRAME).text
            status[engine] = kernel.execute("%dora_status").text
    assert frames["dora"] == frames["embedded"]
    assert frames["dora"].startswith("['time', 'metadata', 'value'] [{'n': 9}")
    assert "ticker/n -> sink/n  delivered 12, dropped 0" in status["embedded"]
    assert "ticker/n -> sink/n  delivered 12, dropped 0 (delivered = messages" in status["dora"]
