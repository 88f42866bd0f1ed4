"""The graph view's live numbers: edge rates, queue depth, latency p50 and node busy shares.

Unit tests check the numbers (the meter, the embedded engine's latency and busy time
against what the node code did); a kernel test checks that ``%dora_status`` shows them
while the graph runs, and only what stays true once it stopped.
"""

from __future__ import annotations

import re
import threading
import time
from types import SimpleNamespace

import pyarrow as pa
import pytest

from dora_notebook import Dataflow
from dora_notebook.core.protocol import EdgeCounts
from dora_notebook.core.runner import latency_p50
from dora_notebook.jupyter.graphview import Meter, live_numbers, render_svg, render_text

from .kernel import Kernel, define

SLOW_SINK = """
import time
class Operator:
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            time.sleep({pause})
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_meter_gives_growth_per_second_over_its_window() -> None:
    clock = FakeClock()
    meter = Meter(window=2.0, clock=clock)
    assert meter.rates({"a": 0, "b": None}) == {}
    clock.now += 0.1  # too close to the first sample for a rate
    assert meter.rates({"a": 5}) == {}
    clock.now += 0.9
    assert meter.rates({"a": 50, "b": 3}) == {"a": 50.0}  # b was not known a second ago
    for _ in range(6):  # 40/s from now on: once the window passed, only that shows
        clock.now += 0.5
        rates = meter.rates({"a": 50 + 40 * (clock.now - 101.0), "b": 3})
    assert rates["a"] == pytest.approx(40.0) and rates["b"] == 0.0
    meter.reset()
    assert meter.rates({"a": 0}) == {}


def test_latency_p50_is_the_median_of_the_kept_times() -> None:
    ring = [-1] * 8
    assert latency_p50(ring) is None
    ring[:5] = [5_000, 1_000, 3_000, 2_000, 4_000]
    assert latency_p50(ring) == pytest.approx(3e-6)


def test_embedded_latency_grows_with_the_wait_in_a_slow_operators_queue() -> None:
    """A burst of 9 messages to an operator that takes 20 ms each: the i-th waits i x 20 ms."""
    pause, burst = 0.02, 9
    sent = threading.Event()

    def src() -> None:
        from dora_notebook import Node

        node = Node()
        for i in range(burst):
            node.send_output("n", pa.array([i]))
        sent.set()

    class Operator:
        def on_event(self, event, context):
            if event["type"] == "INPUT":
                # The whole burst is sent before the first is handled, whatever the load
                # (CI21: the source, slower than the sink, sent the 5th 3 ms after the 1st).
                sent.wait(10)
                time.sleep(pause)

    flow = Dataflow(echo=False)
    flow.add_node("src", src, outputs=["n"])
    flow.add_operator("sink", Operator, inputs={"n": "src/n"})
    flow.start(engine="embedded")
    try:
        assert flow.wait(timeout=20)
    finally:
        flow.stop()
    (row,) = flow.edges()
    assert row["delivered"] == burst and row["dropped"] == 0
    # The median message (the 5th) waited behind 4 handled ones, at least 4 pauses.
    assert 4 * pause <= row["latency"] < burst * pause + 2.0
    busy = flow.node("sink").busy
    assert burst * pause <= busy < burst * pause + 2.0


def test_embedded_busy_counts_a_nodes_handling_and_not_its_waits() -> None:
    pause, ticks = 0.02, 5
    flow = Dataflow(echo=False)
    flow.add_node(
        "worker",
        "import time\nfrom dora import Node\nnode = Node()\nseen = 0\n"
        "for event in node:\n"
        "    if event['type'] == 'INPUT':\n"
        f"        time.sleep({pause})\n"
        "        seen += 1\n"
        f"        if seen == {ticks}:\n"
        "            break\n",
        inputs={"tick": "dora/timer/millis/100"},
    )
    started = time.monotonic()
    flow.start(engine="embedded")
    try:
        assert flow.wait(timeout=20)
    finally:
        flow.stop()
    wall = time.monotonic() - started
    busy = flow.node("worker").busy
    # Each tick is handled for a pause; the 100 ms between ticks are waits, not busy.
    assert ticks * pause <= busy < min(wall, ticks * pause + 0.3)
    (row,) = flow.edges()
    assert row["latency"] is not None and 0 < row["latency"] < wall


def test_live_numbers_give_rates_and_shares_only_while_running() -> None:
    clock = FakeClock()
    counts = {"delivered": 0, "busy": 0.0}
    flow = Dataflow(echo=False)
    flow.add_node("src", "pass", outputs=["n"])
    flow.add_operator("sink", "class Operator: pass", inputs={"n": "src/n"})
    fake = SimpleNamespace(
        graph=flow.graph,
        running=True,
        node=lambda i: SimpleNamespace(
            status="running", received=0, sent=0, dropped=0, busy=counts["busy"]
        ),
        edges=lambda: [
            {
                "source": "src/n",
                "target": "sink",
                "input": "n",
                "delivered": counts["delivered"],
                "dropped": 3,
                "queued": 2,
                "latency": 0.0042,
            }
        ],
    )
    meter = Meter(clock=clock)
    live_numbers(fake, meter)
    clock.now += 1.0
    counts.update(delivered=30, busy=0.25)
    rows, busy = live_numbers(fake, meter)
    assert rows[0]["rate"] == pytest.approx(30.0) and busy == {
        "sink": pytest.approx(0.25),
        "src": pytest.approx(0.25),
    }
    svg = render_svg(flow.graph, {"sink": fake.node("sink")}, rows, busy)
    assert "30/s · 2 queued · p50 4.2 ms" in svg and "busy 25 %" in svg
    assert "30/s · 2 queued · p50 4.2 ms" in render_text(flow.graph, None, rows)
    fake.running = False  # a stopped run: no rate, no share; the kept latency stays
    rows, busy = live_numbers(fake, meter)
    assert "rate" not in rows[0] and busy == {}
    assert "p50 4.2 ms" in render_svg(flow.graph, None, rows) and "/s" not in render_text(
        flow.graph, None, rows
    )


def test_an_edge_whose_engine_cannot_see_the_queue_says_so() -> None:
    flow = Dataflow(echo=False)
    flow.add_node("src", "pass", outputs=["n"])
    flow.add_operator("sink", "class Operator: pass", inputs={"n": "src/n"})
    counts = EdgeCounts(5, 0, None, note="latency not reported")
    row = {"source": "src/n", "target": "sink", "input": "n", "rate": 2.0}
    row.update(delivered=counts.delivered, dropped=0, queued=None, note=counts.note)
    text = render_text(flow.graph, None, [row])
    assert "2/s · queue not seen (latency not reported)" in text


@pytest.mark.usefixtures("fresh_graph")
def test_status_view_shows_rates_latency_and_busy_live(kernel: Kernel) -> None:
    define(
        kernel,
        "%%dora_operator ticker --inputs tick=dora/timer/millis/20 --outputs n",
        """
        import pyarrow as pa
        class Operator:
            def on_event(self, event, context):
                if event["type"] == "INPUT":
                    context.send_output("n", pa.array([1]))
        """,
    )
    define(kernel, "%%dora_operator sink --inputs n=ticker/n", SLOW_SINK.format(pause=0.01))
    kernel.execute("%dora_start")
    status = kernel.execute("%dora_status")
    (view_id,) = status.widget_ids()
    live = re.compile(r"ticker/n -&gt; sink/n: \d+ delivered, 0 dropped; ([\d.]+)/s · \d queued")

    def shown() -> re.Match[str] | None:
        return live.search(kernel.model(view_id)["value"])

    try:
        # 50 messages/s at the edge, the sink busy about half the time (10 ms of each 20 ms).
        kernel.until(lambda: shown() is not None, 20, "a rate on the edge")
        kernel.until(lambda: 30 <= float(shown()[1]) <= 60, 20, "about 50/s")  # type: ignore[index]
        svg = kernel.model(view_id)["value"]
        share = re.search(
            r"sink: operator, running, \d+ in / 0 out / 0 dropped · busy (\d+) %", svg
        )
        assert share is not None and 25 <= int(share[1]) <= 90, svg
        assert re.search(r"sink/n: .*p50 [\d.]+ (us|ms)", svg)
    finally:
        kernel.execute("%dora_stop")
    kernel.until(lambda: not live.search(kernel.model(view_id)["value"]), 10, "the final view")
    assert "p50" in kernel.model(view_id)["value"]
