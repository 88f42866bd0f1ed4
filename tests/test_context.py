"""The oocana-style context: outputs, done/finish, progress, logs, properties, observation."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dora_notebook import Context, Dataflow, DoraStatus
from dora_notebook.api.context import PROGRESS_INTERVAL, SESSION_ID, as_arrow
from dora_notebook.core.observe import Report


def recorder(log: list) -> type:
    class Operator:
        def on_event(self, event, send_output):
            if event["type"] == "INPUT":
                log.append(event)

    return Operator


def one_shot(body) -> type:
    """An operator that runs ``body(context, event)`` on its first timer tick, then stops."""

    class Operator:
        def on_event(self, event, context):
            if event["type"] == "INPUT":
                body(context, event)
                return DoraStatus.STOP
            return DoraStatus.CONTINUE

    return Operator


def run_flow(flow: Dataflow, timeout: float = 10) -> list[Report]:
    reports: list[Report] = []
    flow.subscribe(reports.append)
    flow.start()
    assert flow.wait(timeout), "the dataflow did not finish"
    flow.stop()
    return reports


def test_seed_style_operator_runs_and_is_observable() -> None:
    df = pd.DataFrame({"x": range(3), "y": ["a", "b", "c"]})
    got: list = []

    class Operator:
        def on_event(self, dora_event, context):
            if dora_event["type"] == "INPUT":
                context.preview(df)
                context.report_progress(50)
                context.output(42, "answer")
                return DoraStatus.STOP
            return DoraStatus.CONTINUE

    flow = Dataflow(echo=False)
    flow.add_operator("block", Operator, inputs={"t": "dora/timer/millis/10"}, outputs=["answer"])
    flow.add_operator("sink", recorder(got), inputs={"a": "block/answer"})
    reports = run_flow(flow)
    state = flow.node("block")
    assert state.status == "finished" and state.progress == 50.0
    assert state.previews["default"] == {
        "type": "table",
        "data": {"columns": ["x", "y"], "rows": [[0, "a"], [1, "b"], [2, "c"]], "row_count": 3},
    }
    assert [e["value"].to_pylist() for e in got] == [[42]]
    kinds = [r.kind for r in reports if r.node_id == "block"]
    assert kinds == ["status", "preview", "progress", "status"]


@pytest.mark.parametrize(
    ("value", "expected_type", "expected"),
    [
        (7, pa.int64(), [7]),
        (2.5, pa.float64(), [2.5]),
        (True, pa.bool_(), [True]),
        ("hi", pa.string(), ["hi"]),
        ([1, 2, 3], pa.int64(), [1, 2, 3]),
        (np.arange(6, dtype=np.uint8).reshape(2, 3), pa.uint8(), [0, 1, 2, 3, 4, 5]),
        (pd.DataFrame({"a": [1, 2]}), pa.struct([("a", pa.int64())]), [{"a": 1}, {"a": 2}]),
        (pa.table({"b": ["x"]}), pa.struct([("b", pa.string())]), [{"b": "x"}]),
    ],
)
def test_output_converts_to_arrow(value, expected_type, expected) -> None:
    array = as_arrow(value)
    assert array is not None and array.type == expected_type
    assert array.to_pylist() == expected


def test_output_carries_metadata_and_passes_other_objects_by_reference() -> None:
    model = object()  # nothing Arrow can hold
    got: list = []

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("trigger", b"x", {"frame": 7})

    def body(context: Context, event) -> None:
        context.output(np.zeros(3), "array")
        context.output(model, "model")

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["trigger"])

    class Operator:
        def on_event(self, event, context):
            if event["type"] == "INPUT":
                body(context, event)

    flow.add_operator("op", Operator, inputs={"t": "src/trigger"}, outputs=["array", "model"])
    flow.add_operator("sink", recorder(got), inputs={"a": "op/array", "m": "op/model"})
    run_flow(flow)
    array_event, model_event = got
    assert array_event["value"].to_pylist() == [0.0, 0.0, 0.0]
    assert array_event["metadata"]["frame"] == 7  # the metadata of the event being handled
    assert model_event["value"] is model


def test_undeclared_handle_reports_the_oocana_message_and_sends_nothing() -> None:
    got: list = []

    def body(context: Context, event) -> None:
        context.output(1, "nope")
        context.outputs({"out": 1, "missing": 2})

    flow = Dataflow(echo=False)
    flow.add_operator("op", one_shot(body), inputs={"t": "dora/timer/millis/5"}, outputs=["out"])
    flow.add_operator("sink", recorder(got), inputs={"x": "op/out"})
    run_flow(flow)
    state = flow.node("op")
    assert state.errors == [
        "Output handle key: [nope] is not defined in Block outputs schema.",
        "Output handle key: [missing] is not defined in Block outputs schema.",
    ]
    assert state.status == "failed" and state.sent == 0 and got == []


def test_done_finishes_the_node_once_and_finish_sends_its_result_first() -> None:
    got: list = []
    calls: list = []

    def body(context: Context, event) -> None:
        context.finish({"out": 5})
        context.finish({"out": 6})  # ignored
        context.done("late error")  # ignored too
        calls.append("after")

    flow = Dataflow(echo=False)
    flow.add_operator("op", one_shot(body), inputs={"t": "dora/timer/millis/5"}, outputs=["out"])
    flow.add_operator("sink", recorder(got), inputs={"x": "op/out"})
    run_flow(flow)
    assert [e["value"].to_pylist() for e in got] == [[5]]
    assert flow.node("op").status == "finished" and flow.node("op").errors == []
    assert calls == ["after"]


def test_done_with_error_marks_failed_and_output_done_true_finishes() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator(
        "a", one_shot(lambda c, e: c.done("it broke")), inputs={"t": "dora/timer/millis/5"}
    )
    flow.add_operator(
        "b",
        one_shot(lambda c, e: c.output(1, "out", done=True)),
        inputs={"t": "dora/timer/millis/5"},
        outputs=["out"],
    )
    run_flow(flow)
    assert flow.node("a").status == "failed" and flow.node("a").error == "it broke"
    assert flow.node("b").status == "finished" and flow.node("b").sent == 1


def test_progress_is_clamped_throttled_and_flushed_before_finish() -> None:
    def body(context: Context, event) -> None:
        context.report_progress(-5)
        for i in range(20_000):
            context.report_progress(i / 100)
        context.report_progress(250)
        context.done()

    flow = Dataflow(echo=False)
    flow.add_operator("op", one_shot(body), inputs={"t": "dora/timer/millis/5"})
    began = time.monotonic()
    reports = run_flow(flow)
    elapsed = time.monotonic() - began
    mine = [r for r in reports if r.node_id == "op" and r.kind in ("progress", "status")]
    progress = [r.data for r in mine if r.kind == "progress"]
    assert progress[0] == 0.0 and progress[-1] == 100.0
    assert all(0.0 <= p <= 100.0 for p in progress)
    assert len(progress) <= elapsed / PROGRESS_INTERVAL + 3
    assert [r.kind for r in mine][-2:] == ["progress", "status"]  # flushed, then finished
    assert flow.node("op").progress == 100.0


def test_progress_state_is_per_node() -> None:
    # oocana's decorator shares throttle state between blocks; here two nodes
    # reporting at once must each end on their own last value.
    def body(value: float):
        def run(context: Context, event) -> None:
            for i in range(5_000):
                context.report_progress(i % 50)
            context.report_progress(value)

        return run

    flow = Dataflow(echo=False)
    flow.add_operator("a", one_shot(body(11)), inputs={"t": "dora/timer/millis/5"})
    flow.add_operator("b", one_shot(body(22)), inputs={"t": "dora/timer/millis/5"})
    run_flow(flow)
    assert (flow.node("a").progress, flow.node("b").progress) == (11.0, 22.0)


def test_a_late_progress_value_arrives_without_another_call() -> None:
    flow = Dataflow(echo=False)
    arrived = threading.Event()
    flow.subscribe(lambda r: arrived.set() if r.kind == "progress" and r.data == 70 else None)

    class Operator:
        def on_event(self, event, context):
            if event["type"] == "INPUT":
                context.report_progress(10)
                context.report_progress(70)  # throttled: must still arrive on its own

    flow.add_operator("op", Operator, inputs={"t": "dora/timer/secs/60"})
    flow.add_node("kick", "from dora import Node\nNode().send_output('go', b'')", outputs=["go"])
    flow.graph["op"].inputs["t"].source = "kick/go"
    flow.start()
    try:
        assert arrived.wait(2 * PROGRESS_INTERVAL + 1)
    finally:
        flow.stop()


def test_logs_messages_warnings_errors_and_logger() -> None:
    def body(context: Context, event) -> None:
        context.report_log("plain line")
        context.report_log("to stderr", "stderr")
        context.log_json({"k": [1, 2]})
        context.send_message({"hello": "world"})
        context.send_warning("careful")
        context.logger.info("from the logger")
        context.error("bad thing")

    root_records: list = []
    handler = logging.Handler()
    handler.emit = root_records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        flow = Dataflow(echo=False)
        flow.add_operator("op", one_shot(body), inputs={"t": "dora/timer/millis/5"})
        run_flow(flow)
    finally:
        logging.getLogger().removeHandler(handler)
    state = flow.node("op")
    assert [(line.stdio, line.text) for line in state.logs] == [
        ("stdout", "plain line"),
        ("stderr", "to stderr"),
        ("json", '{"k": [1, 2]}'),
        ("warning", "careful"),
        ("info", "from the logger"),
        ("error", "bad thing"),
    ]
    assert state.messages == [{"hello": "world"}] and state.warnings == ["careful"]
    assert state.status == "failed" and state.error == "bad thing"
    assert root_records == []  # the node's logger never reaches the root logger


def test_properties_and_node_context() -> None:
    seen: dict = {}

    def node() -> None:
        from dora_notebook import Node

        n = Node()
        for event in n:
            if event["type"] == "INPUT":
                ctx = n.context
                seen.update(
                    inputs=ctx.inputs,
                    node_id=ctx.node_id,
                    session=ctx.session_id,
                    job=ctx.job_id,
                    job_info=ctx.job_info,
                    block=ctx.block_info,
                    keep=ctx.keepAlive,
                    logger=ctx.logger.name,
                )
                ctx.output([1, 2], "out")

    flow = Dataflow(echo=False)
    flow.add_node(
        "src",
        "from dora import Node\nimport pyarrow as pa\nNode().send_output('v', pa.array([3]))",
        outputs=["v"],
    )
    flow.add_node("n", node, inputs={"v": "src/v"}, outputs=["out"])
    run_flow(flow)
    assert seen["inputs"]["v"].to_pylist() == [3]
    assert seen["node_id"] == "n" and seen["session"] == SESSION_ID
    assert seen["job"] == flow.engine.job_id != SESSION_ID
    assert seen["job_info"] == {"session_id": SESSION_ID, "job_id": seen["job"]}
    assert seen["block"]["stacks"] == [{"node_id": "n"}]
    assert seen["keep"] is False and seen["logger"] == "dora_notebook.node.n"
    assert flow.node("n").sent == 1
    first_job = seen["job"]
    run_flow(flow)
    assert seen["session"] == SESSION_ID and seen["job"] != first_job


def test_context_is_callable_like_send_output() -> None:
    got: list = []

    def body(context: Context, event) -> None:
        context("out", pa.array([9]), {"k": "v"})
        context.send_output("out", b"\x01")

    flow = Dataflow(echo=False)
    flow.add_operator("op", one_shot(body), inputs={"t": "dora/timer/millis/5"}, outputs=["out"])
    flow.add_operator("sink", recorder(got), inputs={"x": "op/out"})
    run_flow(flow)
    assert [e["value"].to_pylist() for e in got] == [[9], [1]]
    assert got[0]["metadata"]["k"] == "v"


def test_prints_from_threads_a_node_starts_stay_in_that_node() -> None:
    flow = Dataflow(echo=False)
    flow.add_node(
        "a",
        """
import threading
def work(n):
    for i in range(20):
        print("a-thread", n, i)
threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
""",
    )
    flow.add_node("b", "for i in range(60):\n    print('b', i)\n")
    run_flow(flow)
    a_lines, b_lines = flow.node("a").log_text(), flow.node("b").log_text()
    assert len(a_lines) == 60 and all(line.startswith("a-thread") for line in a_lines)
    assert b_lines == [f"b {i}" for i in range(60)]


def test_preview_slots_and_bad_payloads_never_kill_the_node() -> None:
    from matplotlib.figure import Figure

    def body(context: Context, event) -> None:
        context.preview("first")
        context.preview("second")  # replaces the default slot
        context.preview({"a": 1}, id="stats")
        fig = Figure(figsize=(2, 1), dpi=50)
        fig.add_subplot().plot([1, 3, 2])
        context.preview(fig, id="plot")
        context.preview(object(), id="bad")
        context.preview({"type": "hologram", "data": 1}, id="bad")
        context.report_progress(100)

    flow = Dataflow(echo=False)
    flow.add_operator("op", one_shot(body), inputs={"t": "dora/timer/millis/5"})
    run_flow(flow)
    state = flow.node("op")
    assert set(state.previews) == {"default", "stats", "plot"}
    assert state.previews["default"] == {"type": "text", "data": "second"}
    assert state.previews["stats"] == {"type": "json", "data": {"a": 1}}
    assert state.previews["plot"]["data"].startswith("data:image/png;base64,")
    assert state.errors == [] and state.status == "finished"  # a bad preview fails nothing
    assert len(state.warnings) == 2
    assert state.warnings[0].startswith("preview: cannot preview object")
    assert "hologram" in state.warnings[1] and state.warnings[1].endswith("(nothing shown)")
    assert state.progress == 100.0  # the node went on after the bad previews


def test_report_progress_has_one_rule_for_every_value() -> None:
    """Numbers are clamped; nan and non-numbers are ignored with one warning; nothing fails."""
    values = (None, float("nan"), "50", True, -5, 1e9, float("inf"), 42, np.float32(7))

    def body(context: Any, event: object) -> None:
        for value in values:
            context.report_progress(value)
            context.flush_progress()  # each value that counts is sent, none held back

    flow = Dataflow(echo=False)
    progress: list[float] = []
    flow.subscribe(lambda r: progress.append(r.data) if r.kind == "progress" else None)
    flow.add_operator("op", one_shot(body), inputs={"t": "dora/timer/millis/5"})
    run_flow(flow)
    state = flow.node("op")
    assert state.status == "finished" and state.errors == []
    assert state.warnings == [
        "report_progress takes a number in [0, 100]; ignored None (and any other such value)"
    ]
    assert progress == [0.0, 100.0, 100.0, 42.0, 7.0]
    assert state.progress == 7.0
