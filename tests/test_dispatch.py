"""The runtime thread's batches: every queued operator event is taken under one
lock acquisition and handed out in arrival order, with dora's queue semantics
kept (drop-oldest, STOP first, every message counted)."""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa

from dora_notebook import Dataflow, DoraStatus


def edge(flow: Dataflow, source: str, target: str) -> dict[str, Any]:
    (row,) = [e for e in flow.edges() if e["source"] == source and e["target"] == target]
    return row


class Gate:
    """An operator that blocks on its first event until released: meanwhile
    everything sent queues up, so the next wake-up takes a batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def operator(self) -> type:
        gate = self

        class Operator:
            def on_event(self, event: dict[str, Any], send_output: Any) -> None:
                if event["type"] == "INPUT" and not gate.entered.is_set():
                    gate.entered.set()
                    assert gate.release.wait(5)

        return Operator


def test_a_batch_goes_out_in_arrival_order_not_operator_by_operator() -> None:
    order: list[tuple[str, int]] = []
    gate = Gate()

    def recorder(name: str) -> type:
        class Operator:
            def on_event(self, event: dict[str, Any], send_output: Any) -> None:
                if event["type"] == "INPUT":
                    order.append((name, event["value"][0].as_py()))

        return Operator

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("gate", pa.array([0]))
        assert gate.entered.wait(5)
        for i, output in enumerate(["x", "y", "y", "x", "x"]):
            node.send_output(output, pa.array([i]))
        gate.release.set()

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["gate", "x", "y"])
    flow.add_operator("gate", gate.operator(), inputs={"in": "src/gate"})
    flow.add_operator("a", recorder("a"), inputs={"in": "src/x"})
    flow.add_operator("b", recorder("b"), inputs={"in": "src/y"})
    flow.start()
    assert flow.wait(10)
    # One operator after the other (a, b, a, b...) would give a0 b1 a3 b2 a4.
    assert order == [("a", 0), ("b", 1), ("b", 2), ("a", 3), ("a", 4)]


def test_a_taken_message_outrun_by_newer_ones_is_dropped_as_if_still_queued() -> None:
    got: list[int] = []
    entered = {0: threading.Event(), 1: threading.Event()}
    release = {0: threading.Event(), 1: threading.Event()}

    class Slow:
        def on_event(self, event: dict[str, Any], send_output: Any) -> None:
            if event["type"] == "INPUT":
                value = event["value"][0].as_py()
                got.append(value)
                if value in entered:
                    entered[value].set()
                    assert release[value].wait(5)

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("out", pa.array([0]))
        assert entered[0].wait(5)
        for i in (1, 2, 3):  # queued while 0 is handled; taken together next
            node.send_output("out", pa.array([i]))
        release[0].set()
        assert entered[1].wait(5)
        # 2 and 3 were taken with 1: with 4 and 5 queued, a queue of 3 keeps 3, 4, 5.
        for i in (4, 5):
            node.send_output("out", pa.array([i]))
        release[1].set()

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["out"])
    flow.add_operator("op", Slow, inputs={"x": "src/out"}, queue_size=3)
    flow.start()
    assert flow.wait(10)
    assert got == [0, 1, 3, 4, 5]
    row = edge(flow, "src/out", "op")
    assert (row["delivered"], row["dropped"], row["queued"]) == (5, 1, 0)
    assert flow.status("op").dropped == 1


def test_stop_all_mid_batch_stops_the_rest_first_and_counts_what_was_not_handled() -> None:
    got: dict[str, list[Any]] = {"a": [], "b": []}
    gate = Gate()

    def operator(name: str) -> type:
        class Operator:
            def on_event(self, event: dict[str, Any], send_output: Any) -> DoraStatus:
                if event["type"] != "INPUT":
                    got[name].append(event["type"])
                    return DoraStatus.CONTINUE
                value = event["value"][0].as_py()
                got[name].append(value)
                return DoraStatus.STOP_ALL if (name, value) == ("a", 1) else DoraStatus.CONTINUE

        return Operator

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("gate", pa.array([0]))
        assert gate.entered.wait(5)
        for i in range(4):
            node.send_output("out", pa.array([i]))
        gate.release.set()

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["gate", "out"])
    flow.add_operator("gate", gate.operator(), inputs={"in": "src/gate"})
    flow.add_operator("a", operator("a"), inputs={"in": "src/out"})
    flow.add_operator("b", operator("b"), inputs={"in": "src/out"})
    flow.start()
    assert flow.wait(10)
    # The batch was a0 b0 a1 b1 a2 b2 a3 b3: after a1's STOP_ALL, b's STOP comes first.
    assert got == {"a": [0, 1], "b": [0, "STOP"]}
    for name, delivered in (("a", 2), ("b", 1)):
        row = edge(flow, "src/out", name)
        assert (row["delivered"], row["dropped"], row["queued"]) == (delivered, 4 - delivered, 0)
