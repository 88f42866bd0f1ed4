"""Logging as dora-rs 1.1 has it: Python ``logging`` and ``node.log*`` records with
levels, ``min_log_level``, ``send_logs_as``, ``dora/logs`` inputs, and what
``dora-notebook run`` prints (checked against ``dora run`` in
``test_dora_run_prints_the_same_log_lines``)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dora_notebook import Dataflow, DoraStatus, GraphError
from dora_notebook.core import logs
from dora_notebook.core.fields import for_embedded
from dora_notebook.core.graph import parse_input

from .needs import needs_dora
from .sessions import run_in_session


def run(flow: Dataflow, timeout: float = 10) -> None:
    flow.start()
    assert flow.wait(timeout), "the dataflow did not finish"
    flow.stop()


def levels(flow: Dataflow, node_id: str) -> list[tuple[str, str]]:
    return [(line.stdio, line.text) for line in flow.node(node_id).logs]


# -- the pure part ---------------------------------------------------------------


def test_levels_and_filters_follow_dora() -> None:
    assert logs.passes("ERROR", "warn") and not logs.passes("INFO", "warn")
    assert not logs.passes("stdout", "trace") and logs.passes("stdout", "stdout")
    assert logs.passes("TRACE", "stdout") and logs.passes("stdout", None)
    assert logs.node_level("Warning") == "WARN" and logs.node_level("loud") == "INFO"
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.parse_level("loud")
    assert logs.LogFilter.parse("dora/logs") == logs.LogFilter()
    warn_cam = logs.LogFilter.parse("dora/logs/warn/cam")
    assert warn_cam.accepts("ERROR", "cam") and not warn_cam.accepts("ERROR", "other")
    assert not warn_cam.accepts("INFO", "cam")
    for bad in ("dora/logs/loud", "dora/logs/info/", "dora/logs/info/a/b"):
        with pytest.raises(ValueError):
            logs.LogFilter.parse(bad)


def test_a_record_as_dora_prints_and_sends_it() -> None:
    record = logs.LogRecord("WARN", "hot", "temp", {"k": "v"}, time_ns=1_700_000_000_123_456_789)
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARN   cam: temp hot", record.pretty("cam"))
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d stdout cam: hi", logs.LogRecord("stdout", "hi").pretty("cam")
    )
    sent = json.loads(record.to_json("cam", "0190-id"))
    # dora's LogMessage, key by key and in its order.
    assert list(sent) == [
        "build_id", "dataflow_id", "node_id", "daemon_id", "level", "target",
        "module_path", "file", "line", "message", "timestamp", "fields",
    ]  # fmt: skip
    assert sent["level"] == "WARN" and sent["fields"] == {"k": "v"} and sent["node_id"] == "cam"
    assert sent["timestamp"] == "2023-11-14T22:13:20.123456789Z"
    assert set(sent["daemon_id"]) == {"machine_id", "uuid"}
    whole = logs.LogRecord("INFO", "x", time_ns=1_700_000_000_120_000_000)
    assert json.loads(whole.to_json("n", "d"))["timestamp"] == "2023-11-14T22:13:20.120Z"


def test_a_python_record_becomes_the_stdout_json_line_of_dora_1_1() -> None:
    made = logging.LogRecord("app.x", logging.WARNING, "/n.py", 7, "warm %d", (3,), None)
    record = logs.from_python(made)
    assert record is not None and record.level == "stdout"
    line = json.loads(record.message)
    span = {"file": "/n.py", "line": 7, "message": "warm 3", "target": "app.x"}
    span["name"] = "dora.python.log.warn"
    assert line["level"] == "WARN" and line["target"] == "dora"
    assert line["fields"] == {"file": "/n.py", "line": 7, "target": "app.x", "message": "warm 3"}
    assert line["span"] == span and line["spans"] == [span]
    assert list(line) == ["timestamp", "level", "fields", "target", "span", "spans"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])
    debug = logging.LogRecord("x", logging.DEBUG, "/n.py", 1, "quiet", (), None)
    assert logs.from_python(debug) is None  # dora's subscriber takes INFO and up


def test_descriptor_accepts_log_inputs_and_checks_min_log_level() -> None:
    for source in ("dora/logs", "dora/logs/error", "dora/logs/stdout/cam"):
        spec = parse_input("viewer", "logs", source)
        assert spec.is_logs and not spec.is_timer
    with pytest.raises(GraphError, match=r"inputs\.logs: unknown log level 'loud'"):
        parse_input("viewer", "logs", "dora/logs/loud")
    flow = Dataflow(echo=False)
    flow.add_node("cam", "pass").extra["min_log_level"] = "loud"
    with pytest.raises(GraphError, match="node 'cam': min_log_level: unknown log level 'loud'"):
        for_embedded(flow.graph, {})


# -- on the embedded engine ----------------------------------------------------------

NODE_CODE = """
import logging, threading
from dora import Node
node = Node()
for event in node:
    if event["type"] == "INPUT":
        logging.info("py info %d", 1)
        logging.getLogger("app.part").warning("py warning")
        logging.debug("py debug")
        node.log_info("node info")
        node.log("warn", "node warn", target="t", fields={"k": "v"})
        node.log_debug("node debug")
        print("printed")
        worker = threading.Thread(target=logging.error, args=("from a thread",))
        worker.start()
        worker.join()
        break
"""


def test_python_logging_and_node_log_reach_the_node_with_levels() -> None:
    class Operator:
        def on_event(self, event, context):
            if event["type"] == "INPUT":
                logging.warning("operator warning")
                context.logger.debug("context debug")
                return DoraStatus.STOP
            return DoraStatus.CONTINUE

    reports: list[Any] = []
    flow = Dataflow(echo=False)
    flow.add_node("talker", NODE_CODE, inputs={"tick": "dora/timer/millis/10"})
    flow.add_operator("op", Operator, inputs={"tick": "dora/timer/millis/10"})
    flow.subscribe(reports.append)
    run(flow)
    assert levels(flow, "talker") == [
        ("info", "py info 1"),
        ("warning", "py warning"),
        ("info", "node info"),
        ("warning", "t node warn"),
        ("debug", "node debug"),
        ("stdout", "printed"),
        ("error", "from a thread"),
    ]
    assert levels(flow, "op") == [("warning", "operator warning"), ("debug", "context debug")]
    records = {r.data["line"]: r.data["record"] for r in reports if r.kind == "log"}
    python = json.loads(records["py warning"].message)["fields"]
    assert python["target"] == "app.part" and python["line"] == 8  # its line in NODE_CODE
    assert records["t node warn"].fields == {"k": "v"} and records["t node warn"].level == "WARN"
    assert records["context debug"].file == __file__ and records["context debug"].line > 0


def test_the_kernels_own_logging_is_untouched(caplog: pytest.LogCaptureFixture) -> None:
    """Node records reach no root handler (nor basicConfig); the kernel's records do."""
    root = logging.getLogger()
    handlers_before, level_before = list(root.handlers), root.level
    seen: list[str] = []
    started = threading.Event()
    release = threading.Event()

    def node() -> None:
        from dora_notebook import Node

        Node()
        logging.info("from the node")
        started.set()
        release.wait(10)

    flow = Dataflow(echo=False)
    flow.add_node("n", node)
    with caplog.at_level(logging.WARNING):
        flow.start()
        assert started.wait(10)
        logging.getLogger("kernel.part").warning("from the kernel")
        seen = [r.getMessage() for r in caplog.records]
        release.set()
        assert flow.wait(10)
        flow.stop()
    assert seen == ["from the kernel"]
    assert levels(flow, "n") == [("info", "from the node")]
    assert root.handlers == handlers_before and root.level == level_before
    assert logging.Logger.callHandlers.__module__ == "logging"  # the hooks are gone


def test_min_log_level_filters_at_the_node() -> None:
    code = NODE_CODE.replace("break", "break\nprint('end')")
    flow = Dataflow(echo=False)
    flow.add_node("quiet", code, inputs={"tick": "dora/timer/millis/10"}).extra["min_log_level"] = (
        "warn"
    )
    run(flow)
    # As in dora 1.1: a Python record and a print are stdout lines, which a level filter drops.
    assert levels(flow, "quiet") == [("warning", "t node warn")]


def consumer(got: list[tuple[str, dict[str, Any]]], expected: int) -> Any:
    def node() -> None:
        from dora_notebook import Node

        for event in Node():
            if event["type"] == "INPUT":
                value = event["value"]
                assert str(value.type) == "string" and len(value) == 1
                assert set(event["metadata"]) == {"timestamp"}
                got.append((event["id"], json.loads(value[0].as_py())))
                if len(got) == expected:
                    break

    return node


def test_send_logs_as_sends_each_record_as_dora_json() -> None:
    got: list[tuple[str, dict[str, Any]]] = []
    flow = Dataflow(echo=False)
    spec = flow.add_node(
        "talker", NODE_CODE, inputs={"tick": "dora/timer/millis/10"}, outputs=["logs_out"]
    )
    spec.extra["send_logs_as"] = "logs_out"
    flow.add_node("viewer", consumer(got, 7), inputs={"logs": "talker/logs_out"})
    run(flow)
    assert [(m["level"], m["node_id"]) for _, m in got] == [
        ("stdout", "talker"),
        ("stdout", "talker"),
        ("INFO", "talker"),
        ("WARN", "talker"),
        ("DEBUG", "talker"),
        ("stdout", "talker"),
        ("stdout", "talker"),
    ]
    assert [m["message"] for _, m in got][2:6] == [
        "node info",
        "node warn",
        "node debug",
        "printed",
    ]
    assert json.loads(got[0][1]["message"])["fields"]["message"] == "py info 1"
    assert got[3][1]["target"] == "t" and got[3][1]["fields"] == {"k": "v"}
    assert flow.node("talker").sent == 7


def test_dora_logs_inputs_filter_by_level_and_node() -> None:
    got: list[tuple[str, dict[str, Any]]] = []
    flow = Dataflow(echo=False)
    flow.add_node("talker", NODE_CODE, inputs={"tick": "dora/timer/millis/10"})
    flow.add_node("other", NODE_CODE, inputs={"tick": "dora/timer/millis/10"})
    # talker and other each log 7 records: 7 + 7 on all, 2 + 2 on info, 1 on warn/talker.
    inputs = {"all": "dora/logs", "info": "dora/logs/info", "warn": "dora/logs/warn/talker"}
    # Queues long enough for all: a full queue drops the oldest, as dora's do.
    flow.add_node("viewer", consumer(got, 19), inputs=inputs, queue_size=100)
    run(flow)
    by_input: dict[str, list[tuple[str, str, str]]] = {}
    for input_id, m in got:
        by_input.setdefault(input_id, []).append((m["node_id"], m["level"], m["message"][:9]))
    assert len(by_input["all"]) == 14
    assert sorted(by_input["info"]) == [
        ("other", "INFO", "node info"),
        ("other", "WARN", "node warn"),
        ("talker", "INFO", "node info"),
        ("talker", "WARN", "node warn"),
    ]
    assert by_input["warn"] == [("talker", "WARN", "node warn")]


def test_a_dora_logs_subscriber_never_gets_its_own_records() -> None:
    # dora-rs's log-aggregator example prints every record it gets: fed its own
    # prints, it would print without end (dora run hands a node none of its own).
    got: list[tuple[str, str]] = []

    def viewer() -> None:
        from dora_notebook import Node

        node = Node()
        print("viewer started")
        for event in node:
            if event["type"] == "INPUT":
                record = json.loads(event["value"][0].as_py())
                got.append((record["node_id"], record["message"]))
                print(f"got {record['message']}")
                if record["message"] == "talker done":
                    break

    talker = 'from dora import Node\nfor e in Node():\n    print("talker done")\n    break\n'
    flow = Dataflow(echo=False)
    flow.add_node("talker", talker, inputs={"tick": "dora/timer/millis/50"})
    flow.add_node("viewer", viewer, inputs={"logs": "dora/logs"}, queue_size=100)
    run(flow)
    assert got == [("talker", "talker done")]
    assert [text for _, text in levels(flow, "viewer")] == ["viewer started", "got talker done"]


def test_a_full_queue_logs_doras_warning_for_each_drop() -> None:
    """dora-rs 1.1's node API logs a WARN record for each message a full queue drops
    (measured: ``dora run`` printed the line below once per drop, and passed the
    record on to dora/logs with these fields)."""
    ready, sent = threading.Event(), threading.Event()

    def src() -> None:
        from dora_notebook import Node

        node = Node()
        ready.wait(10)
        for i in range(5):
            node.send_output("out", pa.array([i]))
        sent.set()

    def slow() -> None:
        from dora_notebook import Node

        node = Node()
        ready.set()
        sent.wait(10)  # the queue of 2 fills, three messages are dropped
        for _ in node:
            pass

    got: list[tuple[str, dict[str, Any]]] = []
    reports: list[Any] = []
    flow = Dataflow(echo=False)
    flow.add_node("src", src, outputs=["out"])
    flow.add_node("slow", slow, inputs={"x": "src/out"}, queue_size=2)
    flow.add_node("viewer", consumer(got, 3), inputs={"logs": "dora/logs/warn"}, queue_size=100)
    flow.subscribe(reports.append)
    run(flow)
    text = "Discarding event for input `x` due to queue size limit"
    target = "dora_node_api::event_stream::scheduler"
    assert flow.node("slow").dropped == 3 and flow.node("slow").received == 2
    assert levels(flow, "slow") == [("warning", f"{target} {text}")] * 3
    printed = [r.data["record"].pretty(r.node_id)[9:] for r in reports if r.kind == "log"]
    assert printed == [f"WARN   slow: {target} {text}"] * 3
    assert [(m["node_id"], m["level"], m["target"], m["message"]) for _, m in got] == [
        ("slow", "WARN", target, text)
    ] * 3
    assert got[0][1]["fields"] == {"message": text} and got[0][1]["file"] is None


def test_run_echo_prints_records_as_dora_run(capsys: pytest.CaptureFixture[str]) -> None:
    flow = Dataflow(echo=True)
    flow.add_node("talker", NODE_CODE, inputs={"tick": "dora/timer/millis/10"})
    run(flow)
    lines = [re.sub(r"^\d\d:\d\d:\d\d ", "", x) for x in capsys.readouterr().out.splitlines()]
    assert lines[2:6] == [
        "INFO   talker: node info",
        "WARN   talker: t node warn",
        "DEBUG  talker: node debug",
        "stdout talker: printed",
    ]
    assert lines[0].startswith('stdout talker: {"timestamp":"')


# -- against dora run ----------------------------------------------------------------

LOGGING_DATAFLOW = Path(__file__).resolve().parent / "logging_dataflow"
PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
#: dora's own lines about a node (spawning, ready, finished) are not the node's log.
_DAEMON_LINE = re.compile(r"^\S+ +\S+ +[\w.-]+: (daemon|spawner|dora_\w+::)|^\S+ +\S+ +\[dora\]")
_NODE_LINE = re.compile(r"^\d\d:\d\d:\d\d (stdout|ERROR |WARN  |INFO  |DEBUG |TRACE ) ([\w.-]+): ")


def node_lines(console: str, folder: Path) -> dict[str, list[str]]:
    """Each node's log lines, timestamps and the run folder normalised."""
    found: dict[str, list[str]] = {}
    for line in console.splitlines():
        match = _NODE_LINE.match(line)
        if match is None or _DAEMON_LINE.match(line):
            continue
        text = line[9:].replace(str(folder), "<dir>")
        text = re.sub(r'"timestamp":"[^"]+"', '"timestamp":"T"', text)
        found.setdefault(match.group(2), []).append(text)
    return found


@pytest.mark.dora
def test_dora_run_prints_the_same_log_lines(tmp_path: Path) -> None:
    runs = {}
    for engine in ("dora", "dora-notebook"):
        folder = tmp_path / engine
        shutil.copytree(LOGGING_DATAFLOW, folder)
        if engine == "dora":
            command = [needs_dora(), "run", "dataflow.yml", "--stop-after", "20s"]
        else:
            code = "import sys; from dora_notebook.cli import main; sys.exit(main())"
            command = [sys.executable, "-c", code, "run", "dataflow.yml", "--stop-after", "20"]
        env = {**os.environ, "PATH": PATH, "NO_COLOR": "1"}
        done = run_in_session(command, folder, env, 40)
        assert done.returncode == 0 and not done.leftovers, f"{engine}:\n{done.console[-3000:]}"
        runs[engine] = node_lines(done.console, folder)
    assert runs["dora-notebook"] == runs["dora"]
    assert runs["dora"]["viewer"] == ["stdout viewer: got WARN talker node warn"]


def test_the_panel_colours_levels_and_filters_its_log() -> None:
    pytest.importorskip("ipywidgets")
    from dora_notebook.core.observe import NodeState, Report
    from dora_notebook.jupyter.widgets import NodePanel

    state = NodeState("talker", "node")
    for stdio, line in [("stdout", "printed"), ("info", "py info"), ("warning", "hot")]:
        state.apply(Report("talker", "log", {"line": line, "stdio": stdio}, 0.0))
    panel = NodePanel(state)
    other = NodePanel(state)
    log_view = panel.children[3]
    level, html = log_view.children
    assert log_view.layout.display != "none"
    assert "printed" in html.value and '<span style="color:#9a6700">WARN   hot</span>' in html.value
    assert '<span style="color:#1a7f37">INFO   py info</span>' in html.value
    level.value = "WARN"  # as dora's filter: plain output and lower levels go
    assert "hot" in html.value and "py info" not in html.value and "printed" not in html.value
    assert "py info" in other.children[3].children[1].value  # the filter is the panel's own
    level.value = "stdout"
    assert "printed" in html.value
