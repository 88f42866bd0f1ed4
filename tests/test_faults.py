"""Fault injection on the embedded engine, through the Python API.

Every test checks what the user sees (statuses, errors, tracebacks, previews)
and that no message the queues promised is lost: on every edge whose target
kept running, ``delivered + dropped == sent`` by the source, nothing is left
queued, and what the receiving code counted equals what the edge delivered.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dora_notebook import Dataflow, DoraStatus
from dora_notebook.core.events import DataTypeError
from dora_notebook.core.observe import Report
from dora_notebook.jupyter import arguments as magic_args

# -- helpers ---------------------------------------------------------------------


def collect(flow: Dataflow, kind: str | None = None) -> list[Report]:
    """Every report of ``kind`` (all if None) the dataflow publishes from now on."""
    reports: list[Report] = []
    flow.subscribe(lambda r: reports.append(r) if kind in (None, r.kind) else None)
    return reports


def edge(flow: Dataflow, source: str, target: str) -> dict[str, Any]:
    """The counters of the one edge from output ``source`` into node ``target``."""
    (row,) = [e for e in flow.edges() if e["source"] == source and e["target"] == target]
    return row


def assert_edge_accounts(flow: Dataflow, source: str, target: str, received: int) -> None:
    """``delivered + dropped == sent``, nothing queued, and the code saw ``delivered``."""
    row = edge(flow, source, target)
    sent = flow.status(source.split("/")[0]).sent
    assert row["delivered"] + row["dropped"] == sent, row
    assert row["queued"] == 0, row
    assert received == row["delivered"], (received, row)


def event_log(log: list[tuple[str, Any]]) -> type:
    """An operator class appending ``(type, id or value)`` of every event to ``log``."""

    class Operator:
        def on_event(self, event: dict[str, Any], send_output: Any) -> DoraStatus:
            if event["type"] == "INPUT":
                log.append(("INPUT", event["value"][0].as_py()))
            else:
                log.append((event["type"], event["id"]))
            return DoraStatus.CONTINUE

    return Operator


NODE_SINK = """
import builtins
from dora import Node
LOG = builtins.__dict__.setdefault("{key}", [])
for event in Node():
    if event["type"] == "INPUT":
        LOG.append(("INPUT", event["value"][0].as_py()))
    else:
        LOG.append((event["type"], event["id"]))
"""


def source_script(n: int) -> str:
    """A custom node sending ``0 .. n-1`` on output ``out``."""
    return (
        "import pyarrow as pa\nfrom dora import Node\nnode = Node()\n"
        f"for i in range({n}):\n    node.send_output('out', pa.array([i]))\n"
    )


@pytest.fixture
def builtins_logs() -> Any:
    """A place node scripts can share lists with the test through; cleaned afterwards."""
    import builtins

    keys: list[str] = []

    def make(key: str) -> list[Any]:
        keys.append(key)
        return builtins.__dict__.setdefault(key, [])

    yield make
    for key in keys:
        builtins.__dict__.pop(key, None)


# -- operators that raise ------------------------------------------------------------

RAISES = """
import pyarrow as pa
from dora import DoraStatus

class Operator:
    def __init__(self):
        if {in_init}:
            raise RuntimeError("cannot open the camera")

    def on_event(self, dora_event, send_output):
        if dora_event["type"] == "INPUT":
            value = dora_event["value"][0].as_py()
            if {condition}:
                raise ValueError(f"bad frame {{value}}")
            send_output("out", dora_event["value"])
        return DoraStatus.CONTINUE
"""


@pytest.mark.parametrize(
    ("case", "in_init", "condition", "forwarded", "line", "message"),
    [
        (
            "every message",
            False,
            "True",
            [],
            'raise ValueError(f"bad frame {value}")',
            "bad frame 0",
        ),
        ("one message", False, "value == 7", list(range(7)), "raise ValueError", "bad frame 7"),
        (
            "__init__",
            True,
            "False",
            [],
            'raise RuntimeError("cannot open the camera")',
            "RuntimeError: cannot open the camera",
        ),
    ],
)
def test_a_raising_operator_fails_alone_and_closes_its_outputs(
    builtins_logs: Any,
    case: str,
    in_init: bool,
    condition: str,
    forwarded: list[int],
    line: str,
    message: str,
) -> None:
    """The failed node shows the user's line; its siblings get everything; downstream closes."""
    n = 40
    sibling: list[tuple[str, Any]] = []
    after_op: list[tuple[str, Any]] = []
    after_node = builtins_logs("FAULTS_AFTER_NODE")
    flow = Dataflow(echo=False)
    errors = collect(flow, "error")
    flow.add_node("src", source_script(n), outputs=["out"])
    code = RAISES.format(in_init=in_init, condition=condition)
    flow.add_operator("broken", code, inputs={"x": "src/out"}, outputs=["out"], queue_size=n)
    flow.add_operator("sibling", event_log(sibling), inputs={"x": "src/out"}, queue_size=n)
    flow.add_operator("after_op", event_log(after_op), inputs={"y": "broken/out"})
    flow.add_node(
        "after_node", NODE_SINK.format(key="FAULTS_AFTER_NODE"), inputs={"y": "broken/out"}
    )
    flow.start()
    assert flow.wait(10), flow.status()

    state = flow.status("broken")
    assert state.status == "failed", case
    assert message in state.error
    assert line in state.error  # the traceback quotes the user's source line...
    assert re.search(r'File "<dora operator broken>", line \d+', state.error)
    assert "dora_notebook" not in state.error  # ...and hides the engine's frames
    assert [r.node_id for r in errors] == ["broken"]

    # The other nodes finished cleanly; the sibling received every message.
    for other in ("src", "sibling", "after_op", "after_node"):
        assert flow.status(other).status == "finished", other
    assert sibling == [("INPUT", i) for i in range(n)] + [("INPUT_CLOSED", "x")]
    assert_edge_accounts(flow, "src/out", "sibling", n)

    # Downstream of the failed node: what it forwarded before failing, then the close.
    expected = [("INPUT", i) for i in forwarded]
    assert after_op == [*expected, ("INPUT_CLOSED", "y")]
    assert after_node == [*expected, ("INPUT_CLOSED", "y"), ("STOP", "ALL_INPUTS_CLOSED")]
    for target in ("after_op", "after_node"):
        assert_edge_accounts(flow, "broken/out", target, len(forwarded))
    # The failed node handled messages up to the one that raised, and no more.
    assert edge(flow, "src/out", "broken")["delivered"] == (0 if in_init else len(forwarded) + 1)


# -- custom nodes that end early -----------------------------------------------------

EARLY = """
import sys
import pyarrow as pa
from dora import Node

def main():
    node = Node()
    for i in range(3):
        node.send_output("out", pa.array([i]))
    {end}
    node.send_output("out", pa.array([99]))  # never reached

main()
"""


@pytest.mark.parametrize(
    ("end", "status", "error"),
    [
        ("return", "finished", None),
        ("sys.exit(0)", "finished", None),
        ("sys.exit()", "finished", None),
        ("sys.exit(3)", "failed", "exited with code 3"),
        ("raise OSError('camera unplugged')", "failed", "OSError: camera unplugged"),
    ],
)
def test_a_custom_node_ending_early_closes_its_outputs(
    builtins_logs: Any, end: str, status: str, error: str | None
) -> None:
    """Status and error as the user sees them; downstream gets its messages then closes."""
    after_op: list[tuple[str, Any]] = []
    after_node = builtins_logs("FAULTS_EARLY_NODE")
    ticks = builtins_logs("FAULTS_EARLY_TICKS")
    flow = Dataflow(echo=False)
    # The early node also has an input that keeps ticking: it must not matter.
    flow.add_node(
        "early", EARLY.format(end=end), inputs={"t": "dora/timer/millis/5"}, outputs=["out"]
    )
    flow.add_operator("after_op", event_log(after_op), inputs={"y": "early/out"})
    flow.add_node(
        "after_node", NODE_SINK.format(key="FAULTS_EARLY_NODE"), inputs={"y": "early/out"}
    )
    # A bystander stops on its own after a few ticks of the same timer.
    flow.add_node(
        "bystander",
        "import builtins\nfrom dora import Node\nnode = Node()\n"
        "for event in node:\n"
        "    if event['type'] == 'INPUT':\n"
        "        builtins.FAULTS_EARLY_TICKS.append(1)\n"
        "        if len(builtins.FAULTS_EARLY_TICKS) == 10:\n"
        "            break\n",
        inputs={"t": "dora/timer/millis/5"},
    )
    flow.start()
    assert flow.wait(10), flow.status()

    state = flow.status("early")
    assert state.status == status
    if error is None:
        assert state.error is None
    else:
        assert error in state.error
        if "OSError" in error:
            assert "raise OSError('camera unplugged')" in state.error
            assert "dora_notebook" not in state.error
    expected = [("INPUT", i) for i in range(3)]
    assert after_op == [*expected, ("INPUT_CLOSED", "y")]
    assert after_node == [*expected, ("INPUT_CLOSED", "y"), ("STOP", "ALL_INPUTS_CLOSED")]
    for target in ("after_op", "after_node"):
        assert_edge_accounts(flow, "early/out", target, 3)
    assert flow.status("early").sent == 3
    assert len(ticks) == 10 and flow.status("bystander").status == "finished"


# -- slow consumers behind a fast producer -----------------------------------------------

SLOW_NODE = """
import builtins
import time
from dora import Node
LOG = builtins.__dict__.setdefault("{key}", [])
for event in Node():
    if event["type"] == "INPUT":
        LOG.append(event["value"][0].as_py())
        time.sleep({pause})
"""


@pytest.mark.parametrize("queue_size", [1, 2, 7, 64, 5000])
def test_slow_consumers_count_every_drop_exactly(builtins_logs: Any, queue_size: int) -> None:
    """Fan-out to consumers of different speeds: ``delivered + dropped == sent`` on each edge."""
    n = 3000
    got: dict[str, list[int]] = {"fast": [], "slow_op": []}

    def operator(name: str, pause: float) -> type:
        class Operator:
            def on_event(self, event: dict[str, Any], send_output: Any) -> None:
                if event["type"] == "INPUT":
                    got[name].append(event["value"][0].as_py())
                    if pause and len(got[name]) % 20 == 0:
                        time.sleep(pause)

        return Operator

    slow_node = builtins_logs("FAULTS_SLOW_NODE")
    flow = Dataflow(echo=False)
    flow.add_node("src", source_script(n), outputs=["out"])
    flow.add_operator("fast", operator("fast", 0), inputs={"x": "src/out"}, queue_size=queue_size)
    flow.add_operator(
        "slow_op", operator("slow_op", 0.002), inputs={"x": "src/out"}, queue_size=queue_size
    )
    flow.add_node(
        "slow_node",
        SLOW_NODE.format(key="FAULTS_SLOW_NODE", pause=0.0005),
        inputs={"x": "src/out"},
        queue_size=queue_size,
    )
    flow.start()
    assert flow.wait(60), flow.status()
    assert flow.status("src").sent == n
    received = {"fast": got["fast"], "slow_op": got["slow_op"], "slow_node": slow_node}
    for target, values in received.items():
        assert flow.status(target).status == "finished"
        assert_edge_accounts(flow, "src/out", target, len(values))
        assert flow.status(target).dropped == edge(flow, "src/out", target)["dropped"]
        # Dropping the oldest keeps order and always keeps the newest messages.
        assert values == sorted(set(values)), target
        assert values[-min(queue_size, n) :] == list(range(n))[-min(queue_size, len(values)) :]
    if queue_size >= n:
        assert all(values == list(range(n)) for values in received.values())


def test_messages_to_a_stopped_operator_are_counted() -> None:
    """An operator returning STOP: what it never handled still shows up in the edge's counts."""
    got: list[tuple[str, Any]] = []
    release = threading.Event()

    class StopsAtTwo:
        def on_event(self, event: dict[str, Any], send_output: Any) -> DoraStatus:
            release.wait(5)  # let the whole burst queue up first
            if event["type"] == "INPUT":
                got.append(("INPUT", event["value"][0].as_py()))
                if event["value"][0].as_py() == 2:
                    return DoraStatus.STOP
            return DoraStatus.CONTINUE

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        for i in range(10):
            node.send_output("out", pa.array([i]))
        release.set()

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["out"])
    flow.add_operator("op", StopsAtTwo, inputs={"x": "src/out"}, queue_size=100)
    flow.start()
    assert flow.wait(10)
    assert got == [("INPUT", 0), ("INPUT", 1), ("INPUT", 2)]
    assert flow.status("op").status == "finished"
    row = edge(flow, "src/out", "op")
    assert row["delivered"] == 3
    assert row["delivered"] + row["dropped"] == flow.status("src").sent == 10, row


# -- bad data -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [(np.arange(3), "ndarray"), ([1, 2, 3], "list"), ("text", "str"), (3.5, "float")],
)
@pytest.mark.parametrize("kind", ["operator", "node"])
def test_send_output_refuses_what_dora_refuses(kind: str, bad: object, type_name: str) -> None:
    """The error is the package's own (a TypeError and a RuntimeError, as dora-rs) naming the type.

    Caught, the node goes on sending; uncaught (second tick), it fails with the user's line.
    """
    caught: list[BaseException] = []
    got: list[tuple[str, Any]] = []

    def attempt(send: Any) -> None:
        try:
            send("out", bad)
        except Exception as exc:
            caught.append(exc)
        send("out", pa.array([1]))

    if kind == "operator":

        class Operator:
            def __init__(self) -> None:
                self.ticks = 0

            def on_event(self, event: dict[str, Any], send_output: Any) -> DoraStatus:
                if event["type"] == "INPUT":
                    self.ticks += 1
                    if self.ticks == 1:
                        attempt(send_output)
                    else:
                        send_output("out", bad)  # uncaught
                return DoraStatus.CONTINUE

        adder = "add_operator"
        code: Any = Operator
    else:

        def node_code() -> None:
            from dora_notebook import Node

            node = Node()
            next(iter(node))
            attempt(node.send_output)
            next(iter(node))
            node.send_output("out", bad)  # uncaught

        adder = "add_node"
        code = node_code

    flow = Dataflow(echo=False)
    getattr(flow, adder)("sender", code, inputs={"t": "dora/timer/millis/20"}, outputs=["out"])
    flow.add_operator("sink", event_log(got), inputs={"x": "sender/out"})
    flow.start()
    assert flow.wait(10), flow.status()
    (exc,) = caught
    assert isinstance(exc, DataTypeError)
    assert isinstance(exc, TypeError) and isinstance(exc, RuntimeError)
    assert str(exc) == (
        f"invalid `data` type {type_name!r}, must be `PyBytes` or arrow array "
        "(wrap values with pyarrow.array(...))"
    )
    state = flow.status("sender")
    assert state.status == "failed"
    assert f"invalid `data` type {type_name!r}" in state.error
    assert "# uncaught" in state.error  # the traceback shows the user's call
    assert got == [("INPUT", 1), ("INPUT_CLOSED", "x")]  # the good message went through
    assert_edge_accounts(flow, "sender/out", "sink", 1)


def test_previews_of_huge_wide_empty_and_unserialisable_payloads_keep_the_node_running() -> None:
    """One preview payload each, correct counts; the bad one is an error on the panel only."""
    from matplotlib.figure import Figure

    long_frame = pd.DataFrame({"a": np.arange(10_000_000), "b": np.zeros(10_000_000)})
    wide_frame = pd.DataFrame(np.ones((3, 2000)), columns=[f"c{i}" for i in range(2000)])

    class Unserialisable:
        def __repr__(self) -> str:
            return "<Unserialisable>"

    class Operator:
        def __init__(self) -> None:
            self.ticks = 0

        def on_event(self, event: dict[str, Any], context: Any) -> DoraStatus:
            if event["type"] != "INPUT":
                return DoraStatus.CONTINUE
            self.ticks += 1
            if self.ticks == 1:
                context.preview(long_frame, id="long")
                context.preview(wide_frame, id="wide")
                context.preview(Figure(figsize=(1, 1), dpi=20), id="empty figure")
                context.preview(Unserialisable(), id="bad")
                context.preview({"type": "json", "data": {"x": Unserialisable()}}, id="bad")
            context.send_output("out", pa.array([self.ticks]))
            return DoraStatus.STOP if self.ticks == 5 else DoraStatus.CONTINUE

    got: list[tuple[str, Any]] = []
    flow = Dataflow(echo=False)
    previews = collect(flow, "preview")
    flow.add_operator("op", Operator, inputs={"t": "dora/timer/millis/20"}, outputs=["out"])
    flow.add_operator("sink", event_log(got), inputs={"x": "op/out"})
    flow.start()
    assert flow.wait(30), flow.status()

    slots = [r.data["slot"] for r in previews]
    assert sorted(slots) == ["empty figure", "long", "wide"]  # one payload each
    state = flow.node("op")
    long = state.previews["long"]
    assert long["type"] == "table" and long["data"]["row_count"] == 10_000_000
    assert len(long["data"]["rows"]) == 11 and long["data"]["rows"][5] == ["...", "..."]
    assert long["data"]["rows"][-1] == [9_999_999, 0.0]
    wide = state.previews["wide"]
    assert wide["data"]["column_count"] == 2000 and wide["data"]["row_count"] == 3
    assert len(wide["data"]["columns"]) == 11 and wide["data"]["columns"][-1] == "c1999"
    image = state.previews["empty figure"]
    assert image["type"] == "image" and image["data"].startswith("data:image/png;base64,")
    # The bad payloads are warnings on the panel, naming what was wrong...
    assert state.errors == [] and state.status == "finished"
    assert len(state.warnings) == 2
    assert state.warnings[0].startswith("preview: cannot preview ")
    assert "Unserialisable" in state.warnings[0]
    assert state.warnings[1].startswith("preview: ") and "Unserialisable" in state.warnings[1]
    assert all("\n" not in w for w in state.warnings)
    # ...and the node kept running: all five ticks, all five messages delivered.
    assert [v for t, v in got if t == "INPUT"] == [1, 2, 3, 4, 5]
    assert_edge_accounts(flow, "op/out", "sink", 5)


# -- a million messages ---------------------------------------------------------------------


def test_a_flood_of_messages_is_all_accounted_for() -> None:
    """200,000 arrays into a roomy and a tight, slow queue: every count adds up exactly.

    (A million took 35 s of the suite, most of it the drop warning each of the tight
    queue's ~900,000 drops logs, as dora-rs does; bench/ measures rates.)
    """
    n = 200_000

    def source() -> None:
        from dora_notebook import Node

        send = Node().send_output
        for i in range(n):
            send("out", pa.array([i]))

    counts = {"roomy": 0, "tight": 0}
    last = {"roomy": -1, "tight": -1}

    def counter(name: str, pause_every: int) -> type:
        class Operator:
            def on_event(self, event: dict[str, Any], send_output: Any) -> None:
                if event["type"] == "INPUT":
                    counts[name] += 1
                    last[name] = event["value"][0].as_py()
                    if pause_every and counts[name] % pause_every == 0:
                        time.sleep(0.001)

        return Operator

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["out"])
    flow.add_operator("roomy", counter("roomy", 0), inputs={"x": "src/out"}, queue_size=100_000)
    flow.add_operator("tight", counter("tight", 50), inputs={"x": "src/out"}, queue_size=10)
    began = time.monotonic()
    flow.start()
    assert flow.wait(180), flow.status()
    elapsed = time.monotonic() - began
    assert flow.status("src").sent == n
    for name in ("roomy", "tight"):
        assert_edge_accounts(flow, "src/out", name, counts[name])
        assert flow.status(name).received == counts[name]
        assert last[name] == n - 1  # the very last message always arrives
    assert edge(flow, "src/out", "tight")["dropped"] > 0  # the tight queue really dropped
    print(f"{n:,} messages in {elapsed:.1f} s")


# -- the magic-argument parser ----------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "--inputs",
        "--outputs",
        "--queue-size",
        "--machine",
        "--in",
        "--queue",
        "-",
        "--",
        "=",
        "/",
        "'",
        '"',
        "x=y",
        "tick=dora/timer/millis/50",
        "a=b/c",
        "0",
        "-1",
        "10",
        "1e3",
        "٣",
        "1_0",
        "node",
        "n/ode",
        "été",
        "🚀",
        "--queue-size=3",
        "--inputs=a=b/c",
        "%",
        "%(prog)s",
        "\\",
        "\t",
        "\x0b",
        "\u2028",
    ]
)
LINES = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(TOKENS, st.text(max_size=8)), max_size=12).map(" ".join),
    st.lists(TOKENS, max_size=12).map("".join),
)


@settings(
    max_examples=400,
    deadline=500,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(name=st.sampled_from(sorted(magic_args.ARGUMENTS)), line=LINES)
@example(name="dora_dataflow", line="0 '\r'")  # argparse quoted the CR as it was
def test_any_magic_line_parses_or_gives_a_one_line_argument_error(name: str, line: str) -> None:
    """Whatever the line: a checked namespace, or the package's ArgumentError on one line."""
    try:
        args = magic_args.parse(name, line)
    except magic_args.ArgumentError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message
        assert "Traceback" not in message
        return
    if magic_args.ARGUMENTS[name] is magic_args.DEFINITION:
        assert isinstance(args.node_id, str) and args.node_id
        assert all(isinstance(x, str) for x in args.inputs + args.outputs)
        assert args.queue_size is None or args.queue_size >= 1
        assert args.machine is None or isinstance(args.machine, str)
    elif name == "dora_export":
        assert isinstance(args.directory, str)
    else:
        assert args.path is None or isinstance(args.path, str)
