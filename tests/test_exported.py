"""The context of exported nodes (``dora_notebook.dora_rs.shim``), without dora-rs running.

dora-rs's ``send_output`` and ``Node`` are stood in for by plain Python
objects; the real thing is exercised in ``test_export.py``.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dora_notebook import Dataflow, DoraStatus
from dora_notebook.api.context import PROGRESS_INTERVAL, BaseContext, Context
from dora_notebook.dora_rs.shim import (
    REPORT_PREFIX,
    ContextNode,
    DoraContext,
    format_report,
    operator,
    parse_report,
    print_report,
    use_context_node,
)

from .waiting import wait_for

EVENT = {"type": "INPUT", "id": "x", "kind": "dora", "value": pa.array([3]), "metadata": {"k": 1}}


class Sent(list):
    """dora's send_output, recording its calls."""

    def __call__(self, *args: Any) -> None:
        self.append(args)


def make(outputs=("out",), **kwargs: Any) -> tuple[DoraContext, Sent, list]:
    sent, reports = Sent(), []
    context = DoraContext(
        "node", outputs, sent, report=lambda *r: reports.append(r), block_path="/x/node.py"
    )
    return context, sent, reports


def test_report_lines_round_trip_and_carry_a_clear_prefix() -> None:
    line = format_report("plot", "preview", {"slot": "a", "payload": {"type": "text", "data": "é"}})
    assert line.startswith(REPORT_PREFIX + "{") and "\n" not in line
    assert parse_report(f"01:02:03 stdout plot: {line}") == {
        "kind": "preview",
        "node": "plot",
        "data": {"slot": "a", "payload": {"type": "text", "data": "é"}},
    }
    multi = format_report("n", "log", {"line": "a\nb", "stdio": "stdout"})
    assert "\n" not in multi and parse_report(multi)["data"]["line"] == "a\nb"
    assert parse_report("plain output") is None
    assert parse_report(REPORT_PREFIX + "not json") is None
    assert parse_report(REPORT_PREFIX + '{"kind": "x"}') is None
    # What JSON cannot hold is written as text, and a cycle does not break the line.
    assert parse_report(format_report("n", "message", {"b": b"ab"}))["data"] == {"b": "b'ab'"}
    cycle: list = []
    cycle.append(cycle)
    assert parse_report(format_report("n", "message", cycle))["data"] == "[[...]]"


def test_print_report_writes_one_line_to_stdout(capsys) -> None:
    print_report("n", "progress", 12.5)
    assert capsys.readouterr().out == format_report("n", "progress", 12.5) + "\n"


def test_calling_the_context_is_doras_send_output() -> None:
    context, sent, _ = make()
    context("out", b"raw")
    context.send_output("out", pa.array([1]), {"m": 2})
    assert sent == [("out", b"raw"), ("out", pa.array([1]), {"m": 2})]
    assert isinstance(context, BaseContext)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, [7]),
        ([1.5, 2.5], [1.5, 2.5]),
        (np.arange(3), [0, 1, 2]),
        (pd.DataFrame({"a": [1, 2]}), [{"a": 1}, {"a": 2}]),
        ("text", ["text"]),
    ],
)
def test_output_converts_to_arrow_and_carries_the_events_metadata(value, expected) -> None:
    context, sent, reports = make()
    context._set_event(EVENT)
    context.output(value, "out")
    ((handle, array, metadata),) = sent
    assert handle == "out" and isinstance(array, pa.Array) and array.to_pylist() == expected
    assert metadata == {"k": 1}
    assert reports == []
    assert context.inputs["x"].to_pylist() == [3]


def test_undeclared_and_unconvertible_outputs_send_nothing_and_report_an_error() -> None:
    context, sent, reports = make()
    context.output(1, "nope")
    context.outputs({"out": 1, "missing": 2})
    context.output(object(), "out")
    assert sent == []
    errors = [data for _, kind, data in reports if kind == "error"]
    assert errors[:2] == [
        "Output handle key: [nope] is not defined in Block outputs schema.",
        "Output handle key: [missing] is not defined in Block outputs schema.",
    ]
    assert errors[2].startswith("output 'out': a object has no Arrow form")


def test_reports_go_through_the_reporter() -> None:
    context, _, reports = make()
    context.preview(pd.DataFrame({"n": [1, 2]}), id="table")
    context.preview("hello")
    context.report_log("line", "stderr")
    context.logger.warning("careful %d", 3)
    warned_at = inspect.currentframe().f_lineno - 1  # type: ignore[union-attr]
    context.log_json({"a": 1})
    context.send_message({"m": 1})
    context.send_warning("w")
    context.error("e")
    # A logger's record also travels whole (level, file, line: see test_logging.py).
    record = reports[3][2].pop("record")
    assert (record.level, record.message) == ("WARN", "careful 3")
    assert (record.file, record.line) == (__file__, warned_at)
    assert reports == [
        (
            "node",
            "preview",
            {
                "slot": "table",
                "payload": {
                    "type": "table",
                    "data": {"columns": ["n"], "rows": [[1], [2]], "row_count": 2},
                },
            },
        ),
        ("node", "preview", {"slot": "default", "payload": {"type": "text", "data": "hello"}}),
        ("node", "log", {"line": "line", "stdio": "stderr"}),
        ("node", "log", {"line": "careful 3", "stdio": "warning", "target": None, "fields": {}}),
        ("node", "log_json", {"text": '{"a": 1}', "payload": {"a": 1}}),
        ("node", "message", {"m": 1}),
        ("node", "warning", "w"),
        ("node", "error", "e"),
    ]


def test_progress_is_clamped_throttled_and_the_last_value_arrives_by_itself() -> None:
    context, _, reports = make()
    context.report_progress(-5)
    for value in range(1, 50):
        context.report_progress(value)
    context.report_progress(250)
    context.report_progress("lots")

    def progress() -> list[Any]:
        return [data for _, kind, data in reports if kind == "progress"]

    assert progress() == [0.0]  # the rest is held back...
    # ...and the latest value arrives without another call.
    wait_for(lambda: len(progress()) > 1, PROGRESS_INTERVAL * 40, "the held-back progress")
    assert progress() == [0.0, 100.0]
    warnings = [data for _, kind, data in reports if kind == "warning"]
    assert warnings == [
        "report_progress takes a number in [0, 100]; ignored 'lots' (and any other such value)"
    ]
    assert not [data for _, kind, data in reports if kind == "error"]


def test_done_reports_the_status_once_and_later_outputs_are_dropped() -> None:
    context, sent, reports = make()
    context.report_progress(10)
    context.report_progress(20)  # held back: done() flushes it first
    context.finish({"out": 1})
    context.done()
    context.output(2, "out")
    context("out", b"late")
    assert [a.to_pylist() for _, a, *_ in sent] == [[1]]
    assert [(k, d) for _, k, d in reports] == [
        ("progress", 10.0),
        ("progress", 20.0),
        ("status", "finished"),
    ]
    failed, _, failed_reports = make()
    failed.done("broken")
    assert [(k, d) for _, k, d in failed_reports] == [("error", "broken"), ("status", "failed")]


def test_properties(monkeypatch) -> None:
    monkeypatch.setenv("DORA_NODE_CONFIG", "dataflow_id: 0190-abc\nnode_id: node\n")
    context, _, _ = make()
    assert context.node_id == "node" and context.job_id == "0190-abc"
    assert context.block_info == {
        "session_id": context.session_id,
        "job_id": "0190-abc",
        "stacks": [{"node_id": "node"}],
        "block_path": "/x/node.py",
    }
    assert context.keepAlive is False
    monkeypatch.delenv("DORA_NODE_CONFIG")
    assert make()[0].job_id  # a per-process id outside dora


# -- operator() ---------------------------------------------------------------------


class Doubler:
    """Doubles its input."""

    def __init__(self) -> None:
        self.count = 0

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            self.count += 1
            context.output(dora_event["value"][0].as_py() * 2, "double")
            context.report_progress(self.count)
            if self.count == 2:
                context.done()
        # returns None: dora-rs would refuse that, the wrapper does not


def test_operator_wrapper_gives_a_dora_context_under_dora() -> None:
    Wrapped = operator(Doubler, node_id="double", outputs=["double"])
    assert issubclass(Wrapped, Doubler) and Wrapped.__name__ == "Doubler"
    assert Wrapped.__doc__ == Doubler.__doc__
    assert operator(Wrapped, node_id="double", outputs=["double"]) is Wrapped
    instance = Wrapped()
    sent = Sent()
    assert instance.on_event(EVENT, sent) is DoraStatus.CONTINUE  # None becomes CONTINUE
    assert instance.count == 1
    closed = {"type": "INPUT_CLOSED", "id": "x", "kind": "dora"}
    assert instance.on_event(closed, sent) is DoraStatus.CONTINUE
    # After context.done() the operator asks dora to stop it.
    assert instance.on_event(EVENT, Sent()) is DoraStatus.STOP
    assert [(h, a.to_pylist(), m) for h, a, m in sent] == [("double", [6], {"k": 1})]


def test_operator_wrapper_refuses_what_is_not_a_class() -> None:
    with pytest.raises(TypeError, match="node 'x': the operator code must define `class Operator`"):
        operator(lambda: None, node_id="x")  # type: ignore[arg-type]


def test_operator_wrapper_passes_the_embedded_engines_context_through() -> None:
    seen: list = []

    class Probe:
        def on_event(self, dora_event, context):
            seen.append(type(context))
            if dora_event["type"] == "INPUT":
                context.output(1, "out")
                return DoraStatus.STOP
            return DoraStatus.CONTINUE

    got: list = []

    class Sink:
        def on_event(self, dora_event, send_output):
            if dora_event["type"] == "INPUT":
                got.append(dora_event["value"].to_pylist())

    flow = Dataflow(echo=False)
    flow.add_operator(
        "probe",
        operator(Probe, node_id="probe", outputs=["out"]),
        inputs={"t": "dora/timer/millis/5"},
        outputs=["out"],
    )
    flow.add_operator("sink", Sink, inputs={"x": "probe/out"})
    flow.start()
    assert flow.wait(10)
    flow.stop()
    assert seen == [Context] and got == [[1]]


# -- ContextNode and use_context_node() ---------------------------------------------------


class FakeNode:
    """A stand-in for dora-rs's Node (which cannot be subclassed either)."""

    def __init__(self, node_id: str | None = None) -> None:
        self.events = [dict(EVENT), {"type": "STOP", "id": "MANUAL", "kind": "dora"}]
        self.sent = Sent()
        self.node_id = node_id

    def next(self, timeout: float | None = None):
        return self.events.pop(0) if self.events else None

    def try_recv(self):
        return self.next()

    def drain(self):
        events, self.events = self.events, []
        return events

    def send_output(self, *args: Any) -> None:
        self.sent(*args)

    def dataflow_id(self) -> str:
        return "fake-dataflow"


@pytest.fixture
def fake_dora(monkeypatch):
    """A ``dora`` module whose Node is :class:`FakeNode`, instead of dora-rs's."""
    module = types.ModuleType("dora")
    module.Node = FakeNode  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dora", module)
    return module


def test_use_context_node_gives_dora_node_a_context(fake_dora, capsys) -> None:
    use_context_node(node_id="cam", outputs=["image"])
    use_context_node(node_id="cam", outputs=["image"])  # once is enough
    Node = fake_dora.Node
    assert issubclass(Node, ContextNode) and Node._real is FakeNode
    node = Node("cam")
    assert node.node_id == "cam" and node.dataflow_id() == "fake-dataflow"  # dora's, untouched
    events = []
    for event in node:
        events.append(event["type"])
        if event["type"] == "INPUT":
            node.context.output([1, 2], "image")
            node.context.report_progress(100)
    assert events == ["INPUT", "STOP"]
    ((handle, array, metadata),) = node._node.sent
    assert handle == "image" and array.to_pylist() == [1, 2] and metadata == {"k": 1}
    assert node.context.inputs["x"].to_pylist() == [3]
    out = capsys.readouterr().out.splitlines()
    assert [parse_report(line) for line in out] == [
        {"kind": "progress", "node": "cam", "data": 100.0}
    ]


def test_a_done_context_node_ends_its_event_stream(fake_dora) -> None:
    use_context_node(node_id="cam")
    node = fake_dora.Node()
    node.context.done()
    assert node.next() is None and node.try_recv() is None and node.drain() == []
    assert list(node) == []
    assert len(node._node.events) == 2  # dora's own events were never taken


def test_a_failing_dora_node_constructor_raises_its_own_error(fake_dora) -> None:
    class Broken:
        def __init__(self) -> None:
            raise RuntimeError("DORA_NODE_CONFIG env variable is not set")

    fake_dora.Node = Broken
    use_context_node(node_id="cam")
    with pytest.raises(RuntimeError, match="DORA_NODE_CONFIG"):
        fake_dora.Node()


def test_on_the_embedded_engine_use_context_node_changes_nothing() -> None:
    """``import dora`` elsewhere in the process keeps meaning dora-rs (or nothing)."""
    before = sys.modules.get("dora")
    real_node = getattr(before, "Node", None)
    got: list = []

    class Sink:
        def on_event(self, dora_event, send_output):
            if dora_event["type"] == "INPUT":
                got.append(dora_event["value"].to_pylist())

    flow = Dataflow(echo=False)
    flow.add_node(
        "src",
        "import dora_notebook.dora_rs.shim\n"
        "dora_notebook.dora_rs.shim.use_context_node(node_id='src', outputs=['n'])\n"
        "from dora import Node\n"
        "node = Node()\n"
        "node.context.output([7], 'n')\n",
        outputs=["n"],
    )
    flow.add_operator("sink", Sink, inputs={"n": "src/n"})
    flow.start()
    assert flow.wait(10)
    flow.stop()
    assert got == [[7]] and flow.node("src").status == "finished"
    assert sys.modules.get("dora") is before
    assert getattr(sys.modules.get("dora"), "Node", None) is real_node


def test_a_timeout_is_not_the_event_being_handled(fake_dora) -> None:
    class Timing(FakeNode):
        def next(self, timeout: float | None = None):
            if timeout is not None:
                return {"type": "ERROR", "error": "Timeout", "kind": "dora"}
            return super().next()

    fake_dora.Node = Timing
    use_context_node(node_id="cam", outputs=["out"])
    node = fake_dora.Node()
    assert node.next()["type"] == "INPUT"
    assert node.next(timeout=0.1)["type"] == "ERROR"
    node.context.output(1, "out")
    assert node._node.sent[0][2] == {"k": 1}  # the metadata of the last real event


def test_an_exported_node_does_its_one_time_work_while_it_is_built() -> None:
    """pyarrow's first array from Python objects imports pandas (0.2 s and more): an exported
    operator or custom node pays it while it is built, not in its first event, during which
    dora-rs 1.1 dropped messages."""
    import subprocess

    code = (
        "import sys\n"
        "import dora_notebook.dora_rs.shim as shim\n"
        "class Operator:\n"
        "    def on_event(self, event, send_output):\n"
        "        pass\n"
        "assert 'pandas' not in sys.modules\n"
        "shim.operator(Operator, node_id='op')()\n"
        "print('pandas' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True\n"
