"""The embedded engine: delivery, queues, lifecycle and stopping, through the Python API."""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest

from dora_notebook import Dataflow, DoraStatus, NodeError
from dora_notebook.core.engine import Report

from .waiting import wait_for


def collect(flow: Dataflow, kind: str | None = None) -> list[Report]:
    reports: list[Report] = []
    flow.subscribe(lambda r: reports.append(r) if kind in (None, r.kind) else None)
    return reports


class Recorder:
    """An operator class that records every event it gets into ``log``."""

    def __init__(self, log: list, forward: str | None = None) -> None:
        self.log, self.forward = log, forward

    def __call__(self):  # used as the operator "class": builds an instance
        outer = self

        class Operator:
            def on_event(self, event, send_output):
                outer.log.append(event)
                if outer.forward and event["type"] == "INPUT":
                    send_output(outer.forward, event["value"], event["metadata"])
                return DoraStatus.CONTINUE

        return Operator()


def recorder_class(log: list, forward: str | None = None) -> type:
    class Operator:
        def on_event(self, event, send_output):
            log.append(event)
            if forward and event["type"] == "INPUT":
                send_output(forward, event["value"], event["metadata"])
            return DoraStatus.CONTINUE

    return Operator


SOURCE = """
from dora import Node
import pyarrow as pa
node = Node()
for i in range({n}):
    node.send_output("out", pa.array([i]), {{"i": i}})
"""


def test_values_are_passed_by_reference_at_any_size() -> None:
    big = pa.array(np.zeros(40_000_000, np.uint8))
    got: list = []

    def source() -> None:
        from dora_notebook import Node

        Node().send_output("out", big)

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["out"])
    flow.add_operator("a", recorder_class(got, "out"), inputs={"x": "src/out"}, outputs=["out"])
    flow.add_operator("b", recorder_class(got), inputs={"x": "a/out"})
    flow.start()
    assert flow.wait(10)
    values = [e["value"] for e in got if e["type"] == "INPUT"]
    assert len(values) == 2 and all(v is big for v in values)


def test_event_fields_metadata_and_lazy_data() -> None:
    got: list = []
    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE.format(n=1), outputs=["out"])
    flow.add_operator("a", recorder_class(got), inputs={"x": "src/out"})
    flow.add_operator("b", recorder_class(got), inputs={"x": "src/out"})
    flow.start()
    assert flow.wait(10)
    first, second = [e for e in got if e["type"] == "INPUT"]
    assert first["kind"] == "dora" and first["id"] == "x"
    assert first["value"].to_pylist() == [0]
    assert dict.__contains__(first, "data") is False  # computed only when read
    assert first["data"] == np.array([0], np.int64).tobytes()
    meta = first["metadata"]
    assert meta["i"] == 0
    assert isinstance(meta["timestamp"], datetime) and meta["timestamp"].tzinfo == timezone.utc
    assert first["metadata"] is not second["metadata"]  # receivers do not share a dict
    assert first["value"] is second["value"]


def test_bytes_become_uint8_and_bad_data_is_refused() -> None:
    errors: list = []
    got: list = []

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("out", b"\x01\x02")
        for bad in (np.zeros(3), [1, 2], "text"):
            try:
                node.send_output("out", bad)
            except TypeError as exc:
                errors.append(str(exc))
        try:
            node.send_output("nope", b"")
        except NodeError as exc:
            errors.append(str(exc))

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["out", "other"])
    flow.add_operator("a", recorder_class(got), inputs={"x": "src/out"})
    flow.start()
    assert flow.wait(10)
    value = next(e["value"] for e in got if e["type"] == "INPUT")
    assert value.type == pa.uint8() and value.to_pylist() == [1, 2]
    assert len(errors) == 4
    assert "'ndarray'" in errors[0] and "'list'" in errors[1] and "'str'" in errors[2]
    assert errors[3] == "node 'src' has no output 'nope' (declared outputs: other, out)"
    assert flow.status("src").sent == 1


def test_slow_consumer_drops_oldest_and_counts_every_drop() -> None:
    release = threading.Event()
    got: list[int] = []

    def consumer() -> None:
        from dora_notebook import Node

        node = Node()
        release.wait(10)
        for event in node:
            if event["type"] == "INPUT":
                got.append(event["value"][0].as_py())

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        for i in range(50):
            node.send_output("out", pa.array([i]))
        release.set()

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["out"])
    flow.add_node("sink", consumer, inputs={"x": "src/out"}, queue_size=5)
    flow.start()
    assert flow.wait(10)
    assert got == [45, 46, 47, 48, 49]
    assert flow.status("sink").dropped == 45
    (edge,) = flow.edges()
    assert (edge["delivered"], edge["dropped"]) == (5, 45)
    assert flow.status("src").sent == edge["delivered"] + edge["dropped"]


def test_nothing_is_delivered_before_every_node_is_ready() -> None:
    got: list[int] = []

    def late_consumer() -> None:
        time.sleep(0.5)  # a slow start: loading a model, say
        from dora_notebook import Node

        for event in Node():
            if event["type"] == "INPUT":
                got.append(event["value"][0].as_py())

    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE.format(n=200), outputs=["out"])
    flow.add_node("sink", late_consumer, inputs={"x": "src/out"}, queue_size=1000)
    flow.start()
    assert flow.wait(10)
    assert got == list(range(200))


def test_operator_stop_closes_outputs_downstream() -> None:
    got: list = []

    class StopsAtTwo:
        def on_event(self, event, send_output):
            if event["type"] == "INPUT":
                send_output("out", event["value"])
                if event["value"][0].as_py() == 2:
                    return DoraStatus.STOP
            return DoraStatus.CONTINUE

    def sink() -> None:
        from dora_notebook import Node

        node = Node()
        while (event := node.next()) is not None:
            got.append((event["type"], event["id"]))

    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE.format(n=10), outputs=["out"])
    flow.add_operator("op", StopsAtTwo, inputs={"x": "src/out"}, outputs=["out"], queue_size=100)
    flow.add_node("sink", sink, inputs={"y": "op/out"})
    flow.start()
    assert flow.wait(10)
    assert got == [("INPUT", "y")] * 3 + [("INPUT_CLOSED", "y"), ("STOP", "ALL_INPUTS_CLOSED")]
    assert flow.status("op").status == "finished"


def test_operator_gets_one_input_closed_per_input_then_is_dropped() -> None:
    got: list = []
    flow = Dataflow(echo=False)
    flow.add_node("a", SOURCE.format(n=1), outputs=["out"])
    flow.add_node("b", SOURCE.format(n=1), outputs=["out"])
    flow.add_operator("op", recorder_class(got), inputs={"x": "a/out", "y": "b/out"})
    flow.start()
    assert flow.wait(10)
    closed = sorted(e["id"] for e in got if e["type"] == "INPUT_CLOSED")
    assert closed == ["x", "y"]
    assert got[-1]["type"] == "INPUT_CLOSED"
    assert [e["type"] for e in got].count("STOP") == 0
    assert flow.status("op").status == "finished"


def test_manual_stop_delivers_stop_manual_to_everyone() -> None:
    got: list = []
    node_events: list = []

    def node() -> None:
        from dora_notebook import Node

        for event in Node():
            node_events.append((event["type"], event["id"]))

    flow = Dataflow(echo=False)
    flow.add_operator("op", recorder_class(got), inputs={"t": "dora/timer/millis/10"})
    flow.add_node("n", node, inputs={"t": "dora/timer/millis/10"})
    flow.start()
    wait_for(lambda: len(got) >= 5 and bool(node_events), 10, "five ticks to each node")
    assert flow.running
    assert flow.stop() == []
    assert not flow.running
    assert got[-1]["type"] == "STOP" and got[-1]["id"] == "MANUAL"
    assert node_events[-1] == ("STOP", "MANUAL")
    ticks = [e for e in got if e["type"] == "INPUT"]
    assert len(ticks) >= 5
    assert all(t["id"] == "t" and len(t["value"]) == 0 for t in ticks)


def test_stop_all_stops_the_whole_graph() -> None:
    class StopAll:
        def __init__(self) -> None:
            self.n = 0

        def on_event(self, event, send_output):
            if event["type"] == "INPUT":
                self.n += 1
                if self.n == 3:
                    return DoraStatus.STOP_ALL
            return DoraStatus.CONTINUE

    got: list = []
    flow = Dataflow(echo=False)
    flow.add_operator("quitter", StopAll, inputs={"t": "dora/timer/millis/5"})
    flow.add_operator("other", recorder_class(got), inputs={"t": "dora/timer/millis/50"})
    flow.start()
    assert flow.wait(5)
    assert got[-1]["type"] == "STOP"
    assert {s.status for s in flow.status().values()} == {"finished"}


def test_operators_run_in_definition_then_arrival_order() -> None:
    order: list = []
    settled = threading.Semaphore(0)

    def op(name: str) -> type:
        class Operator:
            def on_event(self, event, send_output):
                if event["type"] != "INPUT":
                    return
                order.append((name, event["id"], event["value"][0].as_py()))
                if name == "c":
                    settled.release()
                else:
                    send_output("out", event["value"])

        return Operator

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        for i in range(20):
            node.send_output("out", pa.array([i]))
            # One message at a time, so arrival order is fixed and only the
            # engine's scheduling decides what follows.
            assert settled.acquire(timeout=5) and settled.acquire(timeout=5)

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["out"])
    # Defined c, b, a: b and a both read src, and b is defined first.
    flow.add_operator("c", op("c"), inputs={"y": "b/out", "x": "a/out"})
    flow.add_operator("b", op("b"), inputs={"x": "src/out"}, outputs=["out"])
    flow.add_operator("a", op("a"), inputs={"x": "src/out"}, outputs=["out"])
    flow.start()
    assert flow.wait(10)
    expected = []
    for i in range(20):
        expected += [("b", "x", i), ("a", "x", i), ("c", "y", i), ("c", "x", i)]
    assert order == expected


def test_exception_marks_node_failed_with_traceback_and_others_run() -> None:
    class Fails:
        def on_event(self, event, send_output):
            if event["type"] == "INPUT":
                raise ValueError("bad frame")

    got: list = []
    flow = Dataflow(echo=False)
    errors = collect(flow, "error")
    flow.add_node("src", SOURCE.format(n=5), outputs=["out"])
    flow.add_operator("broken", Fails, inputs={"x": "src/out"})
    flow.add_operator("fine", recorder_class(got), inputs={"x": "src/out"})
    flow.start()
    assert flow.wait(10)
    status = flow.status("broken")
    assert status.status == "failed"
    assert "ValueError: bad frame" in status.error
    assert 'raise ValueError("bad frame")' in status.error
    assert "dora_notebook" not in status.error  # engine frames are hidden
    assert [r.node_id for r in errors] == ["broken"]
    assert len([e for e in got if e["type"] == "INPUT"]) == 5


def test_error_in_init_and_in_cell_source_shows_user_line() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("bad", "class Operator:\n    def __init__(self):\n        1 / 0\n")
    flow.add_operator(
        "ok",
        "class Operator:\n    def on_event(self, e, s):\n        pass\n",
        inputs={"t": "dora/timer/millis/10"},
    )
    flow.start()
    wait_for(lambda: flow.status("bad").status == "failed", 10, "bad's failure")
    status = flow.status("bad")
    assert status.status == "failed"
    assert "ZeroDivisionError" in status.error and "1 / 0" in status.error
    assert flow.status("ok").status == "running"
    assert flow.stop() == []


@pytest.mark.parametrize(
    "body",
    [
        "while True:\n                pass",
        "while True:\n                time.sleep(0.01)",
    ],
)
def test_stop_returns_within_two_seconds_naming_a_stuck_operator(body: str) -> None:
    flow = Dataflow(echo=False)
    flow.add_operator(
        "stuck",
        f"""
import time
class Operator:
    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            {body}
""",
        inputs={"t": "dora/timer/millis/10"},
    )
    flow.start()
    wait_for(lambda: flow.status("stuck").received > 0, 10, "the operator to get stuck")
    began = time.monotonic()
    stuck = flow.stop()
    assert time.monotonic() - began < 2.0
    assert stuck == ["stuck"]
    status = flow.status("stuck")
    assert status.status == "failed" and "did not stop" in status.error
    flow.start()  # the dataflow can run again
    wait_for(lambda: flow.status("stuck").received > 0, 10, "the operator to get stuck again")
    assert flow.stop() == ["stuck"]


SENDING_FOREVER = {
    "node": """
import pyarrow as pa
from dora import Node
node = Node()
i = 0
while True:  # never reads an event: never sees STOP
    node.send_output("n", pa.array([i]))
    i += 1
""",
    "operator": """
import pyarrow as pa
class Operator:
    def on_event(self, event, send_output):
        i = 0
        while True:  # never returns: never sees STOP
            send_output("n", pa.array([i]))
            i += 1
""",
}


@pytest.mark.parametrize("kind", ["node", "operator"])
def test_a_stuck_node_that_sends_is_stopped_by_its_next_send(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not by an asynchronous exception, which can land where a C extension cannot
    fail: pyarrow aborts the process if it lands in its type inference's import (CI26)."""
    from dora_notebook.core.engine import EmbeddedEngine

    asynchronous: list[str] = []
    monkeypatch.setattr(EmbeddedEngine, "_interrupt", lambda self, r: asynchronous.append(r.id))
    flow = Dataflow(echo=False)
    source = SENDING_FOREVER[kind]
    if kind == "node":
        flow.add_node("stuck", source, outputs=["n"])
        # Its messages go somewhere. (Not for the operator: a sink operator would share
        # its thread, and be stuck behind it.)
        sink = "class Operator:\n    def on_event(self, e, s): pass\n"
        flow.add_operator("sink", sink, inputs={"n": "stuck/n"})
    else:
        flow.add_operator("stuck", source, inputs={"t": "dora/timer/millis/10"}, outputs=["n"])
    flow.start()
    wait_for(lambda: flow.status("stuck").sent > 100, 10, "the node to send in its loop")
    began = time.monotonic()
    assert flow.stop() == ["stuck"]
    assert time.monotonic() - began < 2.0
    assert asynchronous == []
    status = flow.status("stuck")
    assert status.status == "failed" and "did not stop: interrupted" in status.error


BLOCKED = {
    "node": """
import os
from dora import Node
node = Node()
print("waiting")
os.read({fd}, 1)
""",
    "operator": """
import os
class Operator:
    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            print("waiting")
            os.read({fd}, 1)
""",
}


@pytest.mark.parametrize("kind", ["node", "operator"])
def test_code_blocked_in_a_c_call_is_shown_where_it_is_until_the_call_returns(kind: str) -> None:
    """A C call (a pipe read here, time.sleep alike) gets the stop's exception when it returns."""
    read_end, write_end = os.pipe()
    try:
        source = BLOCKED[kind].format(fd=read_end)
        line = next(n for n, text in enumerate(source.splitlines(), 1) if "os.read" in text)
        flow = Dataflow(echo=False)
        if kind == "node":
            flow.add_node("x", source)
        else:
            flow.add_operator("x", source, inputs={"t": "dora/timer/millis/10"})
        flow.start()
        wait_for(lambda: flow.node("x").log_text() == ["waiting"], 10, "x to block")
        began = time.monotonic()
        assert flow.stop() == ["x"]
        assert time.monotonic() - began < 2.0
        where = f"still blocked in os.read, line {line}"
        assert flow.blocked() == {"x": where}
        summary = flow.node("x").summary()
        assert summary.startswith("x: failed, ") and summary.endswith(f"; {where}")
        os.write(write_end, b"!")
        wait_for(lambda: not flow.blocked(), 10, "x's read to return")
        assert "blocked" not in flow.node("x").summary()
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("then", ["redefine", "clear"])
def test_code_that_outlives_its_run_cannot_reach_the_next_one(then: str) -> None:
    """x is blocked when stopped; the graph is redefined (or cleared and rebuilt) and started
    again with a new x. When the old x wakes, its cleanup code prints, reports progress and
    sends, and the engine reports its error: none of it reaches the new run, and its
    events end after its own run's STOP."""
    read_end, write_end = os.pipe()
    got: list[int] = []
    woke: dict[str, object] = {}

    def old_x() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("n", pa.array([1]))
        try:
            os.read(read_end, 1)
        finally:
            print("old cleanup")
            node.context.report_progress(50)
            node.send_output("n", pa.array([-1]))
            woke["events"] = [event["type"] for event in node]

    def new_x() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("n", pa.array([2]))
        for _ in node:  # until stopped
            pass

    class Sink:
        def on_event(self, event, send_output):
            if event["type"] == "INPUT":
                got.append(event["value"][0].as_py())

    flow = Dataflow(echo=False)
    try:
        flow.add_node("x", old_x, outputs=["n"])
        flow.add_operator("sink", Sink, inputs={"n": "x/n"})
        flow.start()
        wait_for(lambda: got == [1], 10, "x's first message")
        (old,) = [t for t in threading.enumerate() if t.name == "dora-node-x"]
        assert flow.stop() == ["x"]
        assert flow.blocked()["x"].startswith("still blocked in os.read, line ")
        if then == "clear":
            flow.clear()
            flow.add_node("x", new_x, outputs=["n"])
            flow.add_operator("sink", Sink, inputs={"n": "x/n"})
        else:
            flow.add_node("x", new_x, outputs=["n"], replace=True)
        flow.start()
        wait_for(lambda: got == [1, 2], 10, "the new x's message")
        late = collect(flow)  # the new run is idle now: whatever comes is the old x's
        os.write(write_end, b"!")
        old.join(10)
        assert not old.is_alive()
        assert late == []
        assert woke == {"events": ["STOP"]}  # its own run's STOP, then the end
        x = flow.node("x")
        assert (x.status, x.error, x.errors, x.progress) == ("running", None, [], None)
        assert x.log_text() == [] and x.sent == 1
        assert flow.blocked() == {}
        assert flow.stop() == []
        assert got == [1, 2] and flow.node("x").status == "finished"
    finally:
        flow.stop()
        os.close(read_end)
        os.close(write_end)


def test_node_api_next_timeout_try_recv_drain_and_descriptor() -> None:
    seen: dict = {}
    go = threading.Event()

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        go.wait(5)
        for i in range(3):
            node.send_output("out", pa.array([i]))

    def node() -> None:
        from dora_notebook import Node

        n = Node()
        seen["timeout"] = n.next(timeout=0.05)
        seen["empty"] = n.is_empty()
        seen["try"] = n.try_recv()
        go.set()
        wait_for(lambda: flow.edges()[0]["queued"] >= 3, 10, "the three inputs to be queued")
        seen["drained"] = [e["type"] for e in n.drain()]
        seen["descriptor"] = n.dataflow_descriptor()
        seen["config"] = n.node_config()
        seen["id"] = n.dataflow_id()
        seen["rest"] = [e["type"] for e in n]
        seen["after"] = n.next()

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["out"])
    flow.add_node("n", node, inputs={"x": "src/out"})
    flow.start()
    assert flow.wait(10)
    assert seen["timeout"]["type"] == "ERROR"
    assert "Receiver timed out" in seen["timeout"]["error"]
    assert seen["empty"] is True and seen["try"] is None
    assert seen["drained"][:3] == ["INPUT"] * 3
    assert seen["drained"] + seen["rest"] == ["INPUT"] * 3 + ["INPUT_CLOSED", "STOP"]
    assert seen["after"] is None
    assert [n["id"] for n in seen["descriptor"]["nodes"]] == ["src", "n"]
    assert seen["config"]["inputs"] == {"x": "src/out"}
    assert seen["id"] == flow.engine.job_id and len(seen["id"]) == 32


def test_node_outside_a_dataflow_is_a_clear_error() -> None:
    from dora_notebook import Node

    with pytest.raises(NodeError, match="inside a custom node's code"):
        Node()


def test_prints_go_to_their_node_never_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    flow = Dataflow(echo=False)
    logs = collect(flow, "log")
    flow.add_node(
        "n1", "import sys\nfor i in range(50):\n    print('one', i)\nprint('warn', file=sys.stderr)"
    )
    flow.add_node("n2", "for i in range(50):\n    print('two', i, end='')\n    print()")
    flow.add_operator(
        "op", "print('built')\nclass Operator:\n    def on_event(self, e, s):\n        pass\n"
    )
    flow.start()
    assert flow.wait(10)
    by_node: dict[str, list] = {}
    for r in logs:
        by_node.setdefault(r.node_id, []).append((r.data["line"], r.data["stdio"]))
    assert by_node["n1"][:50] == [(f"one {i}", "stdout") for i in range(50)]
    assert by_node["n1"][50] == ("warn", "stderr")
    assert by_node["n2"] == [(f"two {i}", "stdout") for i in range(50)]
    assert by_node["op"] == [("built", "stdout")]
    out = capsys.readouterr()
    assert "one" not in out.out and "two" not in out.out


def test_args_and_env_are_per_node() -> None:
    seen: dict = {}
    script = (
        "import os, sys\nfrom os import environ\n"
        "RESULT[NAME] = (sys.argv[1:], os.environ.get('MODE'), os.getenv('MODE'), "
        "environ['MODE'])\n"
    )
    flow = Dataflow(echo=False)
    for name, mode in (("a", "fast"), ("b", "slow")):
        spec = flow.add_node(
            name, script.replace("RESULT[NAME]", f"__import__('builtins').RESULT_{name}")
        )
        spec.args, spec.env = [f"--{name}"], {"MODE": mode}
    import builtins

    flow.start()
    assert flow.wait(10)
    seen = {n: getattr(builtins, f"RESULT_{n}") for n in "ab"}
    for n in "ab":
        delattr(builtins, f"RESULT_{n}")
    assert seen["a"] == (["--a"], "fast", "fast", "fast")
    assert seen["b"] == (["--b"], "slow", "slow", "slow")
    import os

    assert "MODE" not in os.environ


def test_argparse_in_a_node_parses_the_nodes_args_not_the_kernels(monkeypatch) -> None:
    # A kernel's own argv: argparse reading it would stop the node with exit code 2.
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel-1.json"])
    seen: list = []
    flow = Dataflow(echo=False)
    spec = flow.add_node(
        "cam",
        "import argparse\nfrom argparse import ArgumentParser\n"
        "parser = ArgumentParser()\nparser.add_argument('--width', type=int)\n"
        "other = argparse.ArgumentParser('named')\n"
        "SEEN.append((parser.parse_args().width, parser.prog, other.prog))\n",
    )
    spec.args = ["--width", "64"]
    import builtins

    builtins.SEEN = seen
    try:
        flow.start()
        assert flow.wait(10)
    finally:
        del builtins.SEEN
    assert flow.node("cam").error is None, flow.node("cam").error
    assert seen == [(64, "<dora node cam>", "named")]


def test_graph_finishes_when_every_node_has_and_can_run_again() -> None:
    got: list = []
    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE.format(n=3), outputs=["out"])
    flow.add_operator("op", recorder_class(got), inputs={"x": "src/out"})
    for _ in range(3):
        flow.start()
        assert flow.wait(10)
        assert not flow.running
    assert len([e for e in got if e["type"] == "INPUT"]) == 9


def test_an_interrupt_while_stop_waits_ends_the_wait_not_the_stop() -> None:
    """Ctrl-C (SIGINT) during stop(): the stop completes at once, then StopInterrupted
    (a KeyboardInterrupt) names the node it did not wait for; nothing is left half stopped."""
    import os
    import signal

    from dora_notebook.errors import StopInterrupted

    gate = threading.Event()
    flow = Dataflow(echo=False)

    def stuck() -> None:
        from dora_notebook import Node

        Node()  # never reads its events: it does not see STOP
        while not gate.wait(0.01):
            pass

    flow.add_node("stuck", stuck)
    flow.start()
    wait_for(lambda: flow.node("stuck").status == "running", 10, "the node to run")
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    began = time.monotonic()
    timer.start()
    with pytest.raises(StopInterrupted) as info:
        flow.stop(timeout=10)
    timer.join()
    assert time.monotonic() - began < 5  # not the 10 s the stop would have waited
    assert info.value.stuck == ["stuck"]
    assert not flow.running and flow.engine is not None and flow.engine.done.is_set()
    assert flow.node("stuck").status == "failed"
    gate.set()
    wait_for(lambda: not flow.blocked(), 10, "the node's thread to end")


def test_a_long_wait_on_the_main_thread_wakes_it_at_most_20_times_a_second(monkeypatch) -> None:
    """The main thread polls what it waits for (an interrupt must not land in Event.wait):
    finely at first, then every 50 ms, not every 5 ms for the whole of a long run."""
    from dora_notebook.core import clock

    now = [0.0]
    sleeps: list[float] = []

    class FakeTime:
        @staticmethod
        def monotonic() -> float:
            return now[0]

        @staticmethod
        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            now[0] += seconds

    monkeypatch.setattr(clock, "time", FakeTime)
    assert threading.current_thread() is threading.main_thread()
    assert clock.wait_event(threading.Event(), timeout=10.0) is False
    assert now[0] == pytest.approx(10.0)
    assert sleeps[:4] == pytest.approx([0.005, 0.01, 0.02, 0.04])  # a short wait ends soon
    assert max(sleeps) == pytest.approx(clock.MAIN_THREAD_POLL_MAX_S)
    assert len(sleeps) <= 10 * 20 + 5  # was 2000 looks in 10 s
    done = threading.Event()
    done.set()
    sleeps.clear()
    assert clock.wait_event(done, timeout=10.0) is True and sleeps == []
