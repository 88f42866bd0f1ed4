"""Fault injection in a real ipykernel: stuck operators, reloads and interrupts mid-burst,
and a kernel restart with a graph running.

Each test checks what the user sees in the notebook and that no message the
queues promised is lost (``delivered + dropped == sent`` on every edge).
"""

from __future__ import annotations

import json
import time

import psutil
import pytest

from .kernel import CellResult, Kernel, define

#: Every test starts with an empty graph and leaves no dora thread behind.
pytestmark = pytest.mark.usefixtures("fresh_graph")


@pytest.fixture(autouse=True)
def _fresh_builtins(kernel: Kernel) -> None:
    """What a test that failed left in the kernel's builtins does not reach the next one.

    (CI14: a test failing before it popped ``FAULTS_SEEN`` made the next test's
    node append to the same list, and that test failed too.)
    """
    kernel.execute(
        "import builtins\n"
        "for _name in ('FAULTS_GO', 'FAULTS_SEEN', 'FAULTS_SENT'):\n"
        "    builtins.__dict__.pop(_name, None)"
    )


def accounts(kernel: Kernel) -> dict[str, object]:
    """Edges and per-node sent counts of the kernel's dataflow, read in the kernel."""
    result = kernel.execute(
        "import json, dora_notebook\nflow = dora_notebook.current()\n"
        "print(json.dumps({'edges': flow.edges(), "
        "'sent': {n: s.sent for n, s in flow.status().items()}, "
        "'status': {n: s.status for n, s in flow.status().items()}}))"
    )
    return json.loads(result.text)


def cell_text(kernel: Kernel, msg_id: str, timeout: float = 10) -> str:
    """The stream text a cell sent with :meth:`Kernel.client.execute` printed, once idle."""
    parts: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kernel.client.get_iopub_msg(timeout=deadline - time.monotonic())
        kernel._absorb(msg)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            parts.append(msg["content"]["text"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return "".join(parts)


def assert_no_loss(acc: dict[str, object]) -> None:
    """``delivered + dropped == sent`` and nothing queued, on every node-to-node edge."""
    for row in acc["edges"]:  # type: ignore[attr-defined]
        if row["source"].startswith("dora/"):
            continue
        sent = acc["sent"][row["source"].split("/")[0]]  # type: ignore[index]
        assert row["delivered"] + row["dropped"] == sent, row
        assert row["queued"] == 0, row


def test_stop_with_a_stuck_operator_returns_in_time_and_the_kernel_recovers(
    kernel: Kernel,
) -> None:
    """%dora_stop names the stuck node within 2 s; later cells, reset and a new graph work."""
    define(
        kernel,
        "%%dora_operator stuck --inputs t=dora/timer/millis/10",
        """
        class Operator:
            def on_event(self, event, context):
                if event["type"] == "INPUT":
                    while True:
                        pass
        """,
    )
    define(
        kernel,
        "%%dora_node healthy --inputs t=dora/timer/millis/10",
        """
        from dora import Node
        for event in Node():
            pass
        """,
    )
    kernel.execute("%dora_start")
    kernel.until(lambda: kernel.received("stuck") > 0, 10, "the operator to get stuck")
    stopped = kernel.execute(
        "import time\nbegan = time.monotonic()\n%dora_stop\n"
        "print(f'elapsed {time.monotonic() - began:.3f}')"
    )
    lines = stopped.text.strip().splitlines()
    assert lines[0] == "stopped; did not stop within 2 s (interrupted): stuck"
    assert float(lines[1].split()[1]) < 2.0
    status = kernel.execute(
        "import dora_notebook\nf = dora_notebook.current()\n"
        "print(f.running, f.node('stuck').status, f.node('healthy').status)\n"
        "print(f.node('stuck').error)"
    )
    first, second = status.text.strip().splitlines()[:2]
    assert first == "False failed finished"
    assert "did not stop" in second
    assert kernel.execute("print(6 * 7)").text == "42\n"  # the kernel is usable
    assert kernel.execute("%dora_reset").text.strip() == "reset"
    define(
        kernel,
        "%%dora_node src --outputs n",
        """
        import pyarrow as pa
        from dora import Node
        node = Node()
        for i in range(100):
            node.send_output("n", pa.array([i]))
        """,
    )
    define(
        kernel,
        "%%dora_operator sink --inputs n=src/n --queue-size 100",
        """
        class Operator:
            def on_event(self, event, context):
                pass
        """,
    )
    done = kernel.execute("%dora_start --wait --timeout 20")
    assert "src: finished, 0 received, 100 sent" in done.text
    assert "sink: finished, 100 received, 0 sent" in done.text
    assert_no_loss(accounts(kernel))


BLOCKED = """
import os
from dora import Node
node = Node()
print("waiting")
os.read(READ_END, 1)
"""


def blocked_node(kernel: Kernel, node_id: str) -> tuple[CellResult, str]:
    """Define and start ``node_id`` blocked in a C call (a pipe read, as time.sleep would be).

    Returns the definition cell and where a stop leaves the node; in the kernel,
    ``_gate[1]`` releases it and ``_blocked`` is its thread.
    """
    read_end = kernel.execute("import os\n_gate = os.pipe()\nprint(_gate[0])").text.strip()
    cell = define(kernel, f"%%dora_node {node_id}", BLOCKED.replace("READ_END", read_end))
    kernel.execute("%dora_start")
    log = kernel.log_id(cell.widget_ids()[0])
    kernel.until(lambda: "waiting" in kernel.model(log).get("value", ""), 10, "the node to block")
    kernel.execute(
        "import threading\n"
        f"(_blocked,) = [t for t in threading.enumerate() if t.name == 'dora-node-{node_id}']"
    )
    line = BLOCKED.splitlines().index("os.read(READ_END, 1)") + 1
    return cell, f"still blocked in os.read, line {line}"


def release(kernel: Kernel) -> None:
    """Let the blocked node's read return, and wait in the kernel for its thread to end."""
    ended = kernel.execute(
        "os.write(_gate[1], b'!')\n_blocked.join(10)\n"
        "os.close(_gate[0]); os.close(_gate[1])\nprint(_blocked.is_alive())"
    )
    assert ended.text == "False\n"


def test_a_node_blocked_in_a_c_call_says_where_until_the_call_returns(kernel: Kernel) -> None:
    """%dora_stop, %dora_status and the node's panel name the call and its line; once the
    call returns, the panel and the status drop the note."""
    cell, where = blocked_node(kernel, "sleeper")
    header = kernel.child_ids(cell.widget_ids()[0])[0]
    stopped = kernel.execute("%dora_stop")
    assert stopped.text == f"stopped; did not stop within 2 s (interrupted): sleeper ({where})\n"
    assert where in kernel.execute("%dora_status").text
    assert where in kernel.model(header)["value"] and "failed" in kernel.model(header)["value"]
    kernel.execute("os.write(_gate[1], b'!')")
    kernel.until(lambda: where not in kernel.model(header)["value"], 10, "the note to go")
    assert "blocked" not in kernel.execute("%dora_status").text
    release(kernel)


def test_a_node_blocked_through_reset_cannot_touch_the_next_graph(kernel: Kernel) -> None:
    """A node blocked in a C call survives %dora_reset; a new graph with a node of the same id
    runs; when the old code wakes, its "did not stop: interrupted" error goes nowhere."""
    _, where = blocked_node(kernel, "x")
    reset = kernel.execute("%dora_reset")
    assert reset.text == f"reset; did not stop within 2 s (interrupted): x ({where})\n"
    define(
        kernel,
        "%%dora_node x --inputs t=dora/timer/millis/20",
        """
        from dora import Node
        for event in Node():
            pass
        """,
    )
    kernel.execute("%dora_start")
    kernel.until(lambda: kernel.received("x") > 0, 10, "the new x to run")
    release(kernel)  # the old x's thread has ended: everything it reported is in
    state = kernel.execute(
        "import dora_notebook\nx = dora_notebook.current().node('x')\n"
        "print(x.status, x.error, x.errors, x.log_text())"
    )
    assert state.text == "running None [] []\n"
    assert kernel.execute("%dora_stop").text == "stopped\n"
    assert kernel.execute("print(dora_notebook.current().node('x').status)").text == "finished\n"


BURST = """
import builtins
import time
import pyarrow as pa
from dora import Node
node = Node()
for i in range({n}):
    node.send_output("n", pa.array([i]))
    if i % 100 == 0:
        time.sleep({pause})
    if i == {halfway}:  # until the test has redefined the receiver (bounded)
        deadline = time.monotonic() + 30
        while not builtins.__dict__.get("FAULTS_GO") and time.monotonic() < deadline:
            time.sleep(0.005)
builtins.FAULTS_SENT = {n}
"""


def burst(n: int, pause: float, halfway: int = -1) -> str:
    """A source of ``n`` messages; with ``halfway``, it waits there for :func:`go`.

    A test that redefines a node mid-burst waits so: under load the burst
    could otherwise end before the redefinition (CI14: "counter: defined").
    """
    return BURST.format(n=n, pause=pause, halfway=halfway)


def go(kernel: Kernel) -> None:
    """Let a :func:`burst` waiting halfway go on."""
    kernel.execute("import builtins\nbuiltins.FAULTS_GO = True")


COUNTING_NODE = """
import builtins
from dora import Node
SEEN = builtins.__dict__.setdefault("FAULTS_SEEN", [])
for event in Node():
    if event["type"] == "INPUT":
        SEEN.append(("VERSION", event["value"][0].as_py()))
"""


def test_redefining_a_custom_node_mid_burst_loses_nothing(kernel: Kernel) -> None:
    """Re-running a node cell during a burst: old + new versions receive all 3,000 messages."""
    define(kernel, "%%dora_node src --outputs n", burst(3000, pause=0.03, halfway=1500))
    header = "%%dora_node counter --inputs n=src/n --queue-size 5000"
    define(kernel, header, COUNTING_NODE.replace("VERSION", "v1"))
    kernel.execute("%dora_start")
    kernel.until(lambda: kernel.received("counter") > 0, 10, "the burst to reach the counter")
    redefined = define(kernel, header, COUNTING_NODE.replace("VERSION", "v2"))
    go(kernel)
    assert redefined.text.strip().startswith("counter: running")
    waited = kernel.execute("%dora_wait --timeout 30")
    assert "counter: finished" in waited.text
    check = kernel.execute(
        "import builtins\nseen = builtins.__dict__.pop('FAULTS_SEEN')\n"
        "values = [v for _, v in seen]\n"
        "print(len(values), values == list(range(3000)), sorted({t for t, _ in seen}))"
    )
    assert check.text.strip() == "3000 True ['v1', 'v2']"
    acc = accounts(kernel)
    assert_no_loss(acc)
    (row,) = acc["edges"]  # type: ignore[misc]
    assert (row["delivered"], row["dropped"]) == (3000, 0)


def test_redefining_an_operator_with_a_tight_queue_mid_burst_counts_every_drop(
    kernel: Kernel,
) -> None:
    """A small queue drops under load across a hot swap; every message is delivered or counted."""
    define(kernel, "%%dora_node src --outputs n", burst(20000, pause=0.01, halfway=10000))
    body = """
    import builtins
    import time
    SEEN = builtins.__dict__.setdefault("FAULTS_SEEN", [])
    class Operator:
        def on_event(self, event, context):
            if event["type"] == "INPUT":
                SEEN.append(("VERSION", event["value"][0].as_py()))
                time.sleep(0.0002)
    """
    header = "%%dora_operator slow --inputs n=src/n --queue-size 4"
    define(kernel, header, body.replace("VERSION", "v1"))
    kernel.execute("%dora_start")
    kernel.until(lambda: kernel.received("slow") > 0, 10, "the burst to reach the operator")
    define(kernel, header, body.replace("VERSION", "v2"))
    go(kernel)
    kernel.execute("%dora_wait --timeout 60")
    check = kernel.execute(
        "import builtins\nseen = builtins.__dict__.pop('FAULTS_SEEN')\n"
        "values = [v for _, v in seen]\n"
        "print(len(values), values == sorted(set(values)), values[-1], "
        "sorted({t for t, _ in seen}))"
    )
    count, ordered, last, versions = check.text.strip().split(" ", 3)
    assert ordered == "True" and last == "19999" and versions == "['v1', 'v2']"
    acc = accounts(kernel)
    assert_no_loss(acc)
    (row,) = acc["edges"]  # type: ignore[misc]
    assert row["delivered"] == int(count) and row["dropped"] > 0


def test_interrupt_while_a_node_is_mid_burst_then_start_again(kernel: Kernel) -> None:
    """An interrupt during --wait stops a node stuck sending; the next start runs to the end."""
    define(kernel, "%%dora_node src --outputs n", burst(500_000, pause=0.002))
    define(
        kernel,
        "%%dora_operator sink --inputs n=src/n --queue-size 1000",
        """
        class Operator:
            def on_event(self, event, context):
                pass
        """,
    )
    # stop_on_error=False: ipykernel 7 may abort the next request after this cell's error
    # (see test_kernel.py's interrupt test).
    msg_id = kernel.client.execute("%dora_start --wait", stop_on_error=False)
    kernel.until(lambda: kernel.received("sink") > 0, 10, "the burst to reach the sink")
    began = time.monotonic()
    kernel.manager.interrupt_kernel()
    reply = kernel.reply(msg_id, timeout=10)
    assert time.monotonic() - began < 5
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    printed = cell_text(kernel, msg_id)
    acc = accounts(kernel)
    sent = acc["sent"]["src"]  # type: ignore[index]
    assert 0 < sent < 500_000, "the interrupt came mid-burst"
    # The node never reads its events, so it never sees STOP: it is interrupted and says so.
    assert acc["status"] == {"src": "failed", "sink": "finished"}
    error = kernel.execute("print(dora_notebook.current().node('src').error)").text
    assert error.strip() == "did not stop: interrupted"
    assert "interrupted: the dataflow was stopped" in printed
    (row,) = acc["edges"]  # type: ignore[misc]
    # The sink stopped (STOP MANUAL) while src went on sending until it was interrupted:
    # what was queued then, and what came after, counts as dropped.
    assert row["delivered"] > 0 and row["delivered"] + row["dropped"] == sent, row
    assert row["queued"] == 0, row
    assert kernel.execute("print('still here')").text == "still here\n"
    kernel.execute("import builtins\nbuiltins.__dict__.pop('FAULTS_SENT', None)")
    define(kernel, "%%dora_node src --outputs n", burst(5_000, pause=0))
    done = kernel.execute("%dora_start --wait --timeout 30")
    assert "src: finished, 0 received, 5000 sent" in done.text
    assert "sink: finished" in done.text
    assert_no_loss(accounts(kernel))


def test_restarting_the_kernel_with_a_graph_running_leaves_no_process() -> None:
    """restart_kernel with custom nodes running: the old process is gone, no orphan, new works."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    k = Kernel()
    try:
        k.execute("%load_ext dora_notebook")
        for name in ("n1", "n2"):
            define(
                k,
                f"%%dora_node {name} --inputs t=dora/timer/millis/5 --outputs out",
                """
                import pyarrow as pa
                from dora import Node
                node = Node()
                for event in node:
                    if event["type"] == "INPUT":
                        node.send_output("out", pa.array([1]))
                """,
            )
        define(
            k,
            "%%dora_operator sink --inputs a=n1/out b=n2/out",
            """
            class Operator:
                def on_event(self, event, context):
                    pass
            """,
        )
        k.execute("%dora_start")
        old_pid = int(k.execute("import os\nprint(os.getpid())").text)
        assert "dora-node-n1" in k.dora_threads()
        old = psutil.Process(old_pid)
        k.manager.restart_kernel(now=False)
        k.client.wait_for_ready(timeout=60)
        try:
            old.wait(timeout=10)
        except psutil.TimeoutExpired:
            pytest.fail(f"the old kernel {old_pid} is still running after the restart")
        assert not psutil.pid_exists(old_pid) or old.status() == psutil.STATUS_ZOMBIE
        new_pid = int(k.execute("import os\nprint(os.getpid())").text)
        assert new_pid != old_pid
        children = {
            p.pid
            for p in me.children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        } - before
        assert children == {new_pid}, "an orphan process outlived the restart"
        assert k.dora_threads() == "[]"  # the new kernel starts with nothing running
        k.execute("%load_ext dora_notebook")
        assert k.execute(
            "import dora_notebook\nprint(len(dora_notebook.current().graph))"
        ).text == ("0\n")
    finally:
        k.shutdown()


def test_an_interrupt_during_reset_ends_the_wait_not_the_reset(kernel: Kernel) -> None:
    """Interrupting %dora_reset while it waits for a stuck node: one line, no traceback, and
    the graph is reset (a new one starts at once)."""
    watcher = define(
        kernel,
        "%%dora_operator watcher --inputs t=dora/timer/millis/50",
        """
        class Operator:
            def on_event(self, event, context):
                if event["type"] == "STOP":
                    print("stop seen")
        """,
    )
    _, where = blocked_node(kernel, "stuck")
    log = kernel.log_id(watcher.widget_ids()[0])
    msg_id = kernel.client.execute("%dora_reset")
    # The watcher saw STOP: the reset is now waiting for the stuck node.
    kernel.until(lambda: "stop seen" in kernel.model(log).get("value", ""), 10, "the STOP")
    kernel.manager.interrupt_kernel()
    printed = cell_text(kernel, msg_id)
    reply = kernel.reply(msg_id, timeout=10)
    assert reply["content"]["status"] == "ok"  # no KeyboardInterrupt traceback
    # The node is named; where it is blocked too, unless the interrupt (a SIGINT the
    # process got) already ended its read.
    assert printed in (
        f"reset; interrupted while waiting: did not stop: stuck ({where})\n",
        "reset; interrupted while waiting: did not stop: stuck\n",
    )
    flow = "import dora_notebook\nflow = dora_notebook.current()\n"
    assert kernel.execute(flow + "print(len(flow.graph), flow.running)").text == "0 False\n"
    define(
        kernel,
        "%%dora_operator fresh --inputs t=dora/timer/millis/5",
        """
        class Operator:
            def on_event(self, event, context):
                if event["type"] == "INPUT":
                    return 1
        """,
    )
    assert "fresh: finished" in kernel.execute("%dora_start --wait --timeout 10").text
    release(kernel)


def test_threads_a_node_started_are_named_when_it_stops(kernel: Kernel) -> None:
    """A stop cannot end threads node code started: %dora_stop and the panel say how many."""
    cell = define(
        kernel,
        "%%dora_node spawner",
        """
        import threading
        from dora import Node
        node = Node()
        gate = threading.Event()
        for _ in range(3):
            threading.Thread(target=gate.wait, daemon=True).start()
        import builtins
        builtins.SPAWNER_GATE = gate
        for event in node:
            pass
        """,
    )
    kernel.execute("%dora_start")
    kernel.until(
        lambda: (
            kernel.execute("import builtins\nprint(hasattr(builtins, 'SPAWNER_GATE'))").text
            == "True\n"
        ),
        10,
        "the threads to start",
    )
    stopped = kernel.execute("%dora_stop")
    assert stopped.text == "stopped; 3 threads started by node spawner are still running\n"
    header = kernel.child_ids(cell.widget_ids()[0])[0]
    assert "3 threads it started are still running" in kernel.model(header)["value"]
    kernel.execute("builtins.SPAWNER_GATE.set()\ndel builtins.SPAWNER_GATE")
    left = kernel.execute(
        "import time, dora_notebook\nflow = dora_notebook.current()\n"
        "for _ in range(100):\n    if not flow.threads_left(): break\n    time.sleep(0.05)\n"
        "print(flow.threads_left())"
    )
    assert left.text == "{}\n"
