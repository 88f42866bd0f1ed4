"""Faults under the dora engine: node processes killed, exiting badly, failing at import, stuck.

What dora-rs 1.1 does, and every test here relies on: when a node's process
dies, the other nodes keep running; the inputs fed by the dead node close
(an operator whose inputs are all closed then ends, ``finished``); the
kernel's bridge gets a ``NODE_FAILED`` event for the dead node's reports
input; the daemon logs ``node exited with error: Signal(9)`` (or
``ExitCode(3)``). A node that fails before dora starts the dataflow (an
exception at import) makes dora-rs stop every node. The dataflow's final
status is then ``failed``. Each test checks what the user sees (status and
error on the node's panel), that the rest goes on or ends cleanly, and that
no process is left (the autouse fixture of ``conftest.py`` checks it too).
"""

from __future__ import annotations

import html
import re
import signal
import time

import pytest

from dora_notebook import Dataflow

from .dora_processes import engine_of, live_descendants, node_process
from .waiting import wait_for

pytestmark = pytest.mark.dora

# Reports progress on every tick, so the panel's counters follow the node.
TICKER = """
class Operator:
    def __init__(self):
        self.n = 0

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            self.n += 1
            context.output(self.n, "x")
            context.report_progress(self.n % 100)
"""

TICKER_NODE = """
from dora import Node

node = Node()
n = 0
for event in node:
    if event["type"] == "INPUT":
        n += 1
        node.context.output(n, "x")
        node.context.report_progress(n % 100)
"""

KILLED = "the node's process was killed by signal 9 (SIGKILL) before it finished"


@pytest.mark.parametrize("kind", ["operator", "node"])
def test_a_killed_node_fails_alone_and_the_rest_keep_running(kind: str) -> None:
    flow = Dataflow(echo=False)
    if kind == "operator":
        flow.add_operator("victim", TICKER, inputs={"t": "dora/timer/millis/20"}, outputs=["x"])
    else:
        flow.add_node("victim", TICKER_NODE, inputs={"t": "dora/timer/millis/20"}, outputs=["x"])
    flow.add_operator("down", TICKER, inputs={"x": "victim/x"}, outputs=["x"])
    flow.add_operator("other", TICKER, inputs={"t": "dora/timer/millis/20"}, outputs=["x"])
    flow.start(engine="dora")
    try:
        wait_for(lambda: flow.node("victim").progress is not None, 30, "the victim's reports")
        victim = node_process("victim")
        assert victim is not None
        victim.send_signal(signal.SIGKILL)
        wait_for(lambda: flow.node("victim").status == "failed", 10, "the victim's failure")
        # The rest keeps running: `other` goes on receiving after the kill.
        before = flow.node("other").received
        wait_for(lambda: flow.node("other").received >= before + 10, 10, "other's messages")
        assert flow.running
        assert flow.node("other").status == "running"
        # Its only input closed with the victim: dora-rs ends `down`.
        wait_for(lambda: flow.node("down").status == "finished", 10, "down's end")
    finally:
        stuck = flow.stop()
    assert stuck == []
    assert flow.node("victim").error == KILLED
    assert flow.node("victim").errors == [KILLED]
    assert flow.node("other").status == "finished" and flow.node("other").error is None
    assert flow.node("down").error is None
    assert not flow.running
    assert engine_of(flow).folder is not None and not engine_of(flow).folder.exists()
    assert live_descendants() == []


def test_killing_the_last_node_ends_the_graph() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("only", TICKER, inputs={"t": "dora/timer/millis/20"}, outputs=["x"])
    flow.start(engine="dora")
    try:
        wait_for(lambda: flow.node("only").progress is not None, 30, "the node's reports")
        killed_at = time.monotonic()
        process = node_process("only")
        assert process is not None
        process.send_signal(signal.SIGKILL)
        assert flow.wait(15), "the graph did not end after its only node was killed"
        ended_in = time.monotonic() - killed_at
    finally:
        flow.stop()
    assert flow.node("only").status == "failed"
    assert flow.node("only").error == KILLED
    assert ended_in < 5, ended_in
    assert engine_of(flow)._outcome == "failed"  # dora-rs's own verdict on the dataflow
    assert live_descendants() == []


def test_custom_nodes_ending_badly_are_told_apart() -> None:
    """``sys.exit(3)``, ``os._exit(5)`` and an exception fail their node; a plain end does not."""
    flow = Dataflow(echo=False)
    flow.add_node("three", "import sys\nfrom dora import Node\nnode = Node()\nsys.exit(3)\n")
    flow.add_node("five", "import os\nfrom dora import Node\nnode = Node()\nos._exit(5)\n")
    flow.add_node(
        "raiser", "from dora import Node\nnode = Node()\nraise RuntimeError('late failure')\n"
    )
    flow.add_node("fine", "from dora import Node\nnode = Node()\nprint('done')\n")
    flow.start(engine="dora")
    try:
        assert flow.wait(30), "the graph did not end"
    finally:
        flow.stop()
    three, five, raiser, fine = (flow.node(n) for n in ("three", "five", "raiser", "fine"))
    # sys.exit(3) runs the shim's atexit, which reports "finished" before the
    # exit code is known: dora-rs's word then turns it into a failure.
    assert (three.status, three.errors) == ("failed", ["the node's process exited with code 3"])
    assert (five.status, five.errors) == ("failed", ["the node's process exited with code 5"])
    # The node's own traceback is what it shows, not a second message about its exit.
    assert raiser.status == "failed" and len(raiser.errors) == 1
    assert re.search(
        r"raiser\.py\", line \d+, in <module>\n +raise RuntimeError\('late failure'\)\n"
        r"RuntimeError: late failure$",
        raiser.error or "",
    )
    assert (fine.status, fine.error) == ("finished", None)
    assert fine.log_text() == ["done"]


@pytest.mark.parametrize("kind", ["operator", "node"])
def test_an_exception_at_import_shows_its_traceback(kind: str) -> None:
    """dora-rs stops every node when one fails before the dataflow starts; each panel says why."""
    broken = "import no_such_module_anywhere\n"
    flow = Dataflow(echo=False)
    if kind == "operator":
        flow.add_operator("broken", broken + TICKER, inputs={"t": "dora/timer/millis/20"})
    else:
        flow.add_node("broken", broken + TICKER_NODE, inputs={"t": "dora/timer/millis/20"})
    flow.add_operator("good", TICKER, inputs={"t": "dora/timer/millis/20"}, outputs=["x"])
    started = time.monotonic()
    flow.start(engine="dora")
    try:
        # Not the bridge's 30 s wait to join: the failed start is seen at once.
        assert flow.wait(15), "the graph did not end"
        ended_in = time.monotonic() - started
    finally:
        flow.stop()
    error = flow.node("broken").error or ""
    assert flow.node("broken").status == "failed"
    assert error.startswith("the node's process exited with code 1:\nTraceback"), error
    assert re.search(r'File ".*broken\.py", line \d+, in <module>\n +import no_such', error)
    assert error.endswith("ModuleNotFoundError: No module named 'no_such_module_anywhere'")
    good = flow.node("good")
    assert good.status == "failed"
    assert "Node broken exited before initializing dora" in (good.error or "")
    assert ended_in < 12, ended_in
    assert live_descendants() == []


def test_a_node_that_ignores_stop_is_killed_and_named() -> None:
    flow = Dataflow(echo=False)
    flow.add_node(
        "stuck",
        "import time\nfrom dora import Node\nnode = Node()\nwhile True:\n    time.sleep(0.05)\n",
    )
    flow.add_operator("polite", TICKER, inputs={"t": "dora/timer/millis/20"}, outputs=["x"])
    flow.start(engine="dora")
    try:
        wait_for(lambda: flow.node("polite").progress is not None, 30, "the graph to run")
    finally:
        began = time.monotonic()
        stuck = flow.stop(timeout=2.0)
        took = time.monotonic() - began
    assert stuck == ["stuck"]
    assert took < 2.5, took  # dora's grace period is within stop()'s timeout
    assert flow.node("stuck").status == "failed"
    assert flow.node("stuck").error == (
        "the node did not stop within the grace period: dora-rs killed it with signal 15 (SIGTERM)"
    )
    assert (flow.node("polite").status, flow.node("polite").error) == ("finished", None)
    assert live_descendants() == []


KERNEL_VICTIM = """%%dora_operator victim --inputs tick=dora/timer/millis/20 --outputs n
class Operator:
    def __init__(self):
        self.n = 0
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.n += 1
            context.report_progress(self.n % 100)
"""

KERNEL_OTHER = KERNEL_VICTIM.replace("victim", "other")


KERNEL_BROKEN = """%%dora_operator broken --inputs tick=dora/timer/millis/20
import no_such_module_anywhere
class Operator:
    def on_event(self, event, context):
        pass
"""


def test_in_a_kernel_a_killed_node_and_a_failed_import_show_on_their_panels() -> None:
    """``%dora_start --engine dora``; SIGKILL a node: its panel says so, the kernel goes on.

    Then, after ``%dora_reset``, a graph whose node fails at import: ``--wait``
    returns at once with both nodes failed, and the cell shows nothing else
    (no dora-rs log records from the bridge leaving an ended dataflow).
    """
    from .kernel import Kernel

    with Kernel() as kernel:
        kernel.execute("%load_ext dora_notebook")
        victim_cell = kernel.execute(KERNEL_VICTIM)
        kernel.execute(KERNEL_OTHER)
        kernel.execute("%dora_start --engine dora")
        state = "import dora_notebook\nflow = dora_notebook.current()\n"

        def progress() -> str:
            return kernel.execute(state + "print(flow.node('victim').progress)").text.strip()

        wait_for(lambda: progress() != "None", 30, "the victim's reports")
        victim = node_process("victim")
        assert victim is not None
        victim.send_signal(signal.SIGKILL)

        def status() -> str:
            return kernel.execute(state + "print(flow.node('victim').status)").text.strip()

        wait_for(lambda: status() == "failed", 10, "the victim's failure")
        running = kernel.execute(
            state + "print(flow.running, flow.node('other').status)"
        ).text.strip()
        header = kernel.child_ids(victim_cell.widget_ids()[0])[0]
        log = kernel.log_id(victim_cell.widget_ids()[0])

        def header_html() -> str:
            return kernel.model(header)["value"]

        def log_text() -> str:
            return html.unescape(kernel.model(log)["value"])

        # The victim's panel says it failed, and why (the panels redraw at 10 Hz).
        kernel.until(
            lambda: ">failed</span>" in header_html() and KILLED in log_text(),
            10,
            "the victim's panel to show the failure",
        )
        stopped = kernel.execute("%dora_stop").text
        after = kernel.execute(
            state + "print(flow.node('victim').status, flow.node('other').status)"
        )
        left_after_kill = [p for p in live_descendants() if p.pid != kernel_pid(kernel)]
        # The kernel goes on: a reset, and a new graph on the dora engine.
        kernel.execute("%dora_reset")
        broken_cell = kernel.execute(KERNEL_BROKEN)
        kernel.execute(KERNEL_OTHER)
        began = time.monotonic()
        waited = kernel.execute("%dora_start --engine dora --wait --timeout 30", timeout=60)
        took = time.monotonic() - began
        broken_log = html.unescape(
            kernel.model(kernel.log_id(broken_cell.widget_ids()[0]))["value"]
        )
        later = kernel.execute("print(6 * 7)").text.strip()
        # The UI pump ends at its next tick.
        wait_for(lambda: kernel.dora_threads() == "[]", 10, "the kernel's dora threads to end")
        left = [p for p in live_descendants() if p.pid != kernel_pid(kernel)]
    assert running == "True running"  # the rest kept running
    assert stopped == "stopped\n"  # nobody was stuck
    assert after.text.strip() == "failed finished"
    assert left_after_kill == []
    assert waited.text == "broken: failed, 0 received, 0 sent\nother: failed, 0 received, 0 sent\n"
    assert took < 15, took
    assert "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in broken_log
    assert later == "42"
    assert left == []  # only the kernel itself is left, until its shutdown


def kernel_pid(kernel: object) -> int:
    """The pid of a :class:`tests.kernel.Kernel`'s process."""
    return int(kernel.manager.provisioner.process.pid)  # type: ignore[attr-defined]
