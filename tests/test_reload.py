"""Hot redefinition: a running node swapped with dora's hot-reload semantics."""

from __future__ import annotations

import threading
import time

import pytest

from dora_notebook import Dataflow
from dora_notebook.errors import ReloadError

from .waiting import wait_for

SOURCE = """
import time
from dora import Node
import pyarrow as pa
node = Node()
for i in range({n}):
    node.send_output("out", pa.array([i]))
    if i % 50 == 0:
        time.sleep(0.005)
"""

COUNTER = """
SEEN = __import__("builtins").__dict__.setdefault("RELOAD_SEEN", [])
class Operator:
    def __init__(self):
        self.version = {version}
        self.count = 0
    def on_event(self, event, send_output):
        SEEN.append((event["type"], self.version, self.count))
        if event["type"] == "INPUT":
            self.count += 1
"""


@pytest.fixture
def seen():
    import builtins

    builtins.RELOAD_SEEN = []  # type: ignore[attr-defined]
    yield builtins.RELOAD_SEEN  # type: ignore[attr-defined]
    del builtins.RELOAD_SEEN  # type: ignore[attr-defined]


def test_operator_swap_under_load_loses_nothing(seen: list) -> None:
    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE.format(n=3000), outputs=["out"])
    flow.add_operator("op", COUNTER.format(version=1), inputs={"x": "src/out"}, queue_size=5000)
    flow.start()
    wait_for(lambda: len(seen) > 300, 5, "300 events", 0.005)
    flow.add_operator(
        "op", COUNTER.format(version=2), inputs={"x": "src/out"}, queue_size=5000, replace=True
    )
    assert flow.wait(20)
    inputs = [s for s in seen if s[0] == "INPUT"]
    assert len(inputs) == 3000  # nothing lost across the swap
    reload_at = next(i for i, s in enumerate(seen) if s[0] == "RELOAD")
    # The RELOAD event reached the new instance, which kept the old count
    # (new.__dict__.update(old.__dict__) copies version too, as in dora).
    assert seen[reload_at][2] == sum(1 for s in seen[:reload_at] if s[0] == "INPUT")
    assert [s[2] for s in inputs] == list(range(3000))
    state = flow.node("op")
    assert state.received == 3000 and state.status == "finished"


def test_broken_new_versions_leave_the_old_one_running(seen: list) -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("op", COUNTER.format(version=1), inputs={"t": "dora/timer/millis/5"})
    flow.start()
    try:
        with pytest.raises(ReloadError, match="SyntaxError"):
            flow.add_operator(
                "op", "class Operator(:\n", inputs={"t": "dora/timer/millis/5"}, replace=True
            )
        with pytest.raises(ReloadError, match="ZeroDivisionError"):
            flow.add_operator(
                "op",
                "class Operator:\n    def __init__(self):\n        1/0\n",
                inputs={"t": "dora/timer/millis/5"},
                replace=True,
            )
        count = len(seen)
        # Still ticking: the old version runs.
        wait_for(lambda: len(seen) > count + 3, 5, "more ticks")
        assert flow.node("op").status == "running"
        assert "the previous one keeps running" in flow.node("op").warnings[-1]
        assert "version = 1" in flow.graph["op"].source  # the graph still holds the old code
    finally:
        flow.stop()


def test_rewiring_adds_and_removes_inputs(seen: list) -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("op", COUNTER.format(version=1), inputs={"a": "dora/timer/millis/5"})
    flow.start()
    try:
        wait_for(lambda: len(seen) > 2, 5, "three events")
        got: list = []

        class Recorder:
            def on_event(self, event, send_output):
                got.append((event["type"], event.get("id")))

        flow.add_operator("op", Recorder, inputs={"b": "dora/timer/millis/7"}, replace=True)
        wait_for(lambda: sum(1 for g in got if g == ("INPUT", "b")) > 3, 5, "four inputs on b")
        assert got[0] == ("RELOAD", "op")
        assert ("INPUT", "a") not in got[1:]  # the old input is gone
    finally:
        flow.stop()


def test_custom_node_swap_keeps_queued_messages() -> None:
    received: list = []
    lock = threading.Lock()

    def consumer(tag: str):
        def run() -> None:
            from dora_notebook import Node

            for event in Node():
                if event["type"] == "INPUT":
                    with lock:
                        received.append((tag, event["value"][0].as_py()))
                    time.sleep(0.0005)

        return run

    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE.format(n=2000), outputs=["out"])
    flow.add_node("sink", consumer("old"), inputs={"x": "src/out"}, queue_size=5000)
    flow.start()
    wait_for(lambda: len(received) > 200, 5, "200 messages", 0.005)
    flow.add_node("sink", consumer("new"), inputs={"x": "src/out"}, queue_size=5000, replace=True)
    assert flow.wait(20)
    values = [v for _, v in received]
    assert values == list(range(2000))
    assert {t for t, _ in received} == {"old", "new"}


def test_redefining_a_finished_node_takes_effect_at_the_next_start() -> None:
    flow = Dataflow(echo=False)
    version = (
        "class Operator:\n    def on_event(self, e, s):\n        print('V')\n        return 1\n"
    )
    flow.add_operator("op", version.replace("V", "old"), inputs={"t": "dora/timer/millis/5"})
    flow.add_operator(
        "other",
        "class Operator:\n    def on_event(self, e, s):\n        pass\n",
        inputs={"t": "dora/timer/millis/5"},
    )
    flow.start()
    try:
        wait_for(lambda: flow.node("op").status == "finished", 5, "op to finish")
        flow.add_operator(
            "op", version.replace("V", "new"), inputs={"t": "dora/timer/millis/5"}, replace=True
        )
        assert flow.node("op").status == "finished"  # still the running graph's news
        assert "print('new')" in flow.graph["op"].source
    finally:
        flow.stop()
    flow.start()
    wait_for(lambda: flow.node("op").status == "finished", 5, "op to finish")
    flow.stop()
    assert flow.node("op").log_text() == ["new"]
