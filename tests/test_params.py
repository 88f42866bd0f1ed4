"""Runtime parameters (dora-rs 1.1's ``dora param set|get|list|delete``) on the embedded engine.

A parameter change reaches the node as a ``PARAM_UPDATE`` (or ``PARAM_DELETED``)
event in arrival order with its inputs, is never dropped by a full queue, and
parameters set before a start are the node's first events.
"""

from __future__ import annotations

import subprocess
import threading

import pyarrow as pa
import pytest

from dora_notebook import Dataflow, DataflowError, GraphError
from dora_notebook.core.params import param_deleted_event, param_event
from dora_notebook.dora_rs.engine import DoraEngine


def brief(event) -> tuple:
    """An event as (type, id, what it carries): the input's number or the parameter's value."""
    if event["type"] == "INPUT":
        return ("INPUT", event["id"], event["value"][0].as_py())
    return (event["type"], event.get("id"), event.get("value"))


def source(flow: Dataflow, target: str, started: threading.Event | None = None):
    """A custom node sending 0..10 on ``n``, setting ``gain`` after 5 and 9 (queue: 3)."""

    def run() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("n", pa.array([0]))
        if started is not None:
            assert started.wait(10)  # the target is busy with 0: what follows queues up
        for i in range(1, 11):
            node.send_output("n", pa.array([i]))
            if i in (5, 9):
                assert flow.set_param(target, "gain", i / 10)

    return run


#: What the target gets after 0: its queue of 3 kept 8, 9, 10 and dropped 1..7; both
#: parameter changes survive, each where it arrived.
AFTER_ZERO = [
    ("PARAM_UPDATE", "gain", 0.5),
    ("INPUT", "n", 8),
    ("INPUT", "n", 9),
    ("PARAM_UPDATE", "gain", 0.9),
    ("INPUT", "n", 10),
    ("INPUT_CLOSED", "n", None),
]


def test_a_custom_node_gets_param_updates_in_order_and_never_dropped() -> None:
    got: list = []
    busy = threading.Event()
    release = threading.Event()

    def sink() -> None:
        from dora_notebook import Node

        node = Node()
        got.append(brief(node.next()))
        busy.set()
        assert release.wait(10)
        got.extend(brief(event) for event in node)

    flow = Dataflow(echo=False)
    run = source(flow, "sink", busy)

    def src() -> None:
        run()
        release.set()

    flow.add_node("src", src, outputs=["n"])
    flow.add_node("sink", sink, inputs={"n": "src/n"}, queue_size=3)
    flow.start()
    assert flow.wait(10)
    assert got == [("INPUT", "n", 0), *AFTER_ZERO, ("STOP", "ALL_INPUTS_CLOSED", None)]
    assert flow.status("sink").dropped == 7
    assert flow.params("sink") == {"gain": 0.9}


def test_an_operator_gets_param_updates_in_order_and_never_dropped() -> None:
    got: list = []
    busy = threading.Event()
    release = threading.Event()

    class Operator:
        def on_event(self, event, context):
            got.append(brief(event))
            if len(got) == 1:
                busy.set()
                assert release.wait(10)

    flow = Dataflow(echo=False)
    run = source(flow, "op", busy)

    def src() -> None:
        run()
        release.set()

    flow.add_node("src", src, outputs=["n"])
    flow.add_operator("op", Operator, inputs={"n": "src/n"}, queue_size=3)
    flow.start()
    assert flow.wait(10)
    assert got == [("INPUT", "n", 0), *AFTER_ZERO]
    assert flow.status("op").dropped == 7


def test_params_set_before_start_come_first_in_every_run() -> None:
    got: list = []
    node: list = []

    class Operator:
        def on_event(self, event, context):
            got.append(brief(event))

    def sink() -> None:
        from dora_notebook import Node

        node.extend(brief(event) for event in Node())

    flow = Dataflow(echo=False)
    one = "from dora import Node\nimport pyarrow as pa\nNode().send_output('n', pa.array([1]))\n"
    flow.add_node("src", one, outputs=["n"])
    flow.add_operator("op", Operator, inputs={"n": "src/n"})
    flow.add_node("sink", sink, inputs={"n": "src/n"})
    assert flow.set_param("op", "mode", "fast") is False  # not running: kept for the start
    assert flow.set_param("op", "gain", 2) is False
    assert flow.set_param("sink", "limits", [1, 2]) is False
    for _ in range(2):  # the dataflow keeps them: every run gets them
        got.clear()
        node.clear()
        flow.start()
        assert flow.wait(10)
        first = [("PARAM_UPDATE", "mode", "fast"), ("PARAM_UPDATE", "gain", 2), ("INPUT", "n", 1)]
        assert got[:3] == first
        assert node[:2] == [("PARAM_UPDATE", "limits", [1, 2]), ("INPUT", "n", 1)]
    assert flow.params("op") == {"mode": "fast", "gain": 2}


def test_a_param_update_is_json_decoded_afresh_has_no_data_and_delete_sends_param_deleted() -> None:
    events: list = []
    release = threading.Event()

    class Operator:
        def on_event(self, event, context):
            if event["type"] == "INPUT":
                release.set()
                return None
            events.append(event)
            if event["type"] == "PARAM_UPDATE":
                event["value"]["seen"] = True  # the node's copy: changes nothing outside

    flow = Dataflow(echo=False)

    def src() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("n", pa.array([0]))
        assert release.wait(10)
        assert flow.set_param("op", "shape", {1: (2, 3.5), "on": True, "none": None})
        assert flow.delete_param("op", "shape")
        assert flow.delete_param("op", "never-set")  # dora sends PARAM_DELETED for it too

    flow.add_node("src", src, outputs=["n"])
    flow.add_operator("op", Operator, inputs={"n": "src/n"})
    flow.start()
    assert flow.wait(10)
    update, deleted, never = events[:3]
    assert dict(update) == {
        "kind": "dora",
        "type": "PARAM_UPDATE",
        "id": "shape",
        "value": {"1": [2, 3.5], "on": True, "none": None, "seen": True},
    }
    assert "data" not in update and update.get("metadata") is None
    with pytest.raises(KeyError):
        update["data"]
    assert dict(deleted) == {"kind": "dora", "type": "PARAM_DELETED", "id": "shape"}
    assert never["id"] == "never-set"
    assert flow.params("op") == {}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("gain", {1, 2}, "node 'op': parameter 'gain': {1, 2} is not JSON"),
        ("gain", float("nan"), "node 'op': parameter 'gain': nan is not JSON"),
        ("gain", [float("inf")], "node 'op': parameter 'gain': [inf] is not JSON"),
        ("gain", object, "node 'op': parameter 'gain': <class 'object'> is not JSON"),
        ("gain", b"raw", "node 'op': parameter 'gain': b'raw' is not JSON"),
        ("", 1, "node 'op': a parameter key is a non-empty str, not ''"),
        (3, 1, "node 'op': a parameter key is a non-empty str, not 3"),
    ],
)
def test_what_is_not_json_is_refused_in_one_line(key, value, message) -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("op", "class Operator:\n    def on_event(self, e, c): pass\n")
    with pytest.raises(DataflowError) as info:
        flow.set_param("op", key, value)
    text = str(info.value)
    assert text.startswith(message) and "\n" not in text
    assert flow.params("op") == {}


def test_an_unknown_node_is_refused_naming_the_nodes() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("op", "class Operator:\n    def on_event(self, e, c): pass\n")
    for call in (
        lambda: flow.set_param("nope", "gain", 1),
        lambda: flow.params("nope"),
        lambda: flow.delete_param("nope", "gain"),
    ):
        with pytest.raises(GraphError, match=r"^no node 'nope' \(nodes: op\)$"):
            call()


def test_a_finished_node_keeps_its_param_for_the_next_start() -> None:
    got: list = []
    flow = Dataflow(echo=False)
    finished = threading.Event()
    release = threading.Event()

    def quick() -> None:  # takes what is queued when the graph is ready, and ends
        from dora_notebook import Node

        event = Node().try_recv()
        got.append(None if event is None else brief(event))

    def slow() -> None:
        from dora_notebook import Node

        Node()
        assert release.wait(10)

    flow.add_node("quick", quick)
    flow.add_node("slow", slow)
    flow.subscribe(lambda r: r.node_id == "quick" and r.data == "finished" and finished.set())
    flow.start()
    assert finished.wait(10) and flow.running
    assert flow.set_param("quick", "gain", 1.5) is False  # its run is over
    release.set()
    assert flow.wait(10)
    assert got == [None] and flow.params("quick") == {"gain": 1.5}
    release.clear()
    flow.start()
    release.set()
    assert flow.wait(10)
    assert got == [None, ("PARAM_UPDATE", "gain", 1.5)]


def test_the_dora_engine_refuses_operators_and_calls_dora_param_for_custom_nodes() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("op", "class Operator:\n    def on_event(self, e, c): pass\n")
    flow.add_node("cam", "from dora import Node\nNode()\n")
    engine = DoraEngine(flow.graph.copy(), {}, lambda report: None)
    with pytest.raises(DataflowError) as info:
        engine.param("op", param_event("gain", "2.5"))
    assert str(info.value).startswith("node 'op' is an operator: dora-rs 1.1 passes runtime")
    assert engine.param("ghost", param_event("gain", "2.5")) is False
    assert engine.param("cam", param_event("gain", "2.5"))  # before start: kept for it
    calls: list[tuple[str, ...]] = []

    def cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    engine._cli = cli  # type: ignore[method-assign]  # no dora cluster: the command line
    engine.dataflow_id = "df-1"
    engine._started.set()
    engine.counts["cam"].status = "running"
    assert engine.param("cam", param_event("mode", '{"a":[1,"x"]}'))
    assert engine.param("cam", param_deleted_event("mode"))
    assert calls == [
        ("param", "set", "cam", "mode", '{"a":[1,"x"]}', "--dataflow", "df-1"),
        ("param", "delete", "cam", "mode", "--dataflow", "df-1"),
    ]
    engine.counts["cam"].status = "finished"
    engine.counts["cam"].final = True
    assert engine.param("cam", param_event("mode", "1")) is False
