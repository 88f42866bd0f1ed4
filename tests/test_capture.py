"""Print capture: what node code prints, from any thread it starts, lands in its log, and
what observers print or raise never does."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest

from dora_notebook import Dataflow
from dora_notebook.core import capture
from dora_notebook.core.observe import Report

# Each function prints `tag` from another thread, started the way its name says,
# and returns once that thread is done. A helper module beside the node imports
# the real `threading`, `concurrent.futures` and `asyncio`, as a library would.
HELPER = """
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor


def say(tag):
    assert threading.current_thread().name != START_THREAD[0]
    print(tag, "from", threading.current_thread().name.split("-")[0])


START_THREAD = [""]


def pool(tag):
    with ThreadPoolExecutor(max_workers=2) as workers:
        workers.submit(say, tag).result()


def thread(tag):
    t = threading.Thread(target=say, args=(tag,))
    t.start()
    t.join()


def timer(tag):
    t = threading.Timer(0.001, say, args=(tag,))
    t.start()
    t.join()


def in_asyncio(tag):
    async def main():
        await asyncio.get_running_loop().run_in_executor(None, say, tag)
        await asyncio.to_thread(say, tag + " to_thread")

    asyncio.run(main())


def all_of_them(kind):
    START_THREAD[0] = threading.current_thread().name
    for start in (pool, thread, timer, in_asyncio):
        start(f"{kind} {start.__name__}")
"""

OPERATOR = """
from dora import DoraStatus
import threadwork

class Operator:
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            threadwork.all_of_them("operator")
            return DoraStatus.STOP
        return DoraStatus.CONTINUE
"""

NODE = """
from dora import Node
import threadwork

node = Node()
threadwork.all_of_them("node")
"""

EXPECTED = {"pool", "thread", "timer", "in_asyncio", "in_asyncio to_thread"}


def test_prints_from_pools_timers_asyncio_and_library_threads_land_in_the_node_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "threadwork.py").write_text(HELPER)
    (tmp_path / "op.py").write_text(OPERATOR)
    (tmp_path / "node.py").write_text(NODE)
    flow = Dataflow(echo=False)
    flow.add_operator("op", tmp_path / "op.py", inputs={"t": "dora/timer/millis/5"})
    flow.add_node("node", tmp_path / "node.py")
    flow.start()
    assert flow.wait(10), "the dataflow did not finish"
    flow.stop()
    for kind in ("operator", "node"):
        state = flow.node("op" if kind == "operator" else "node")
        assert state.status == "finished", state.error
        printed = {line.split(" from ")[0] for line in state.log_text()}
        assert printed == {f"{kind} {how}" for how in EXPECTED}, state.log_text()
    assert "from" not in capsys.readouterr().out  # nothing fell through to the real stdout


def test_threads_the_kernel_starts_while_a_graph_runs_print_to_the_real_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    release = threading.Event()
    flow = Dataflow(echo=False)
    flow.add_node("n", lambda: release.wait(10))
    flow.start()
    try:
        t = threading.Thread(target=print, args=("from the kernel",))
        t.start()
        t.join()
    finally:
        release.set()
        flow.stop()
    assert capsys.readouterr().out == "from the kernel\n"
    assert flow.node("n").log_text() == []


def test_thread_start_is_hooked_only_while_a_graph_runs() -> None:
    before = threading.Thread.start
    capture.install()
    capture.install()
    capture.uninstall()
    assert threading.Thread.start is not before  # one graph still runs
    capture.uninstall()
    assert threading.Thread.start is before


COUNTER = """
from dora import Node
node = Node()
for i in range(3):
    print("line", i)
"""


def test_a_subscriber_that_raises_is_reported_once_and_the_node_keeps_running(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flow = Dataflow(echo=False)
    flow.add_node("n", COUNTER)
    calls: list[Report] = []
    seen: list[Report] = []

    def broken(report: Report) -> None:
        if report.kind == "log":
            calls.append(report)
            raise ValueError("this subscriber is broken")

    flow.subscribe(broken)
    flow.subscribe(seen.append)  # subscribed after it: still gets everything
    flow.start()
    assert flow.wait(10), "the dataflow did not finish"
    flow.stop()
    state = flow.node("n")
    assert state.status == "finished" and state.errors == []
    assert state.log_text() == ["line 0", "line 1", "line 2"]
    assert len(calls) == 3  # it stays subscribed
    assert [r.data["line"] for r in seen if r.kind == "log"] == ["line 0", "line 1", "line 2"]
    err = capsys.readouterr().err
    assert err.count("Traceback") == 1
    assert err.count("ValueError: this subscriber is broken") == 1
    assert err.startswith(
        "dora-notebook: subscriber test_a_subscriber_that_raises_is_reported_once_and_the_node_"
        "keeps_running.<locals>.broken raised on a 'log' report of node 'n'; "
    )


def test_what_a_subscriber_prints_stays_out_of_the_node_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flow = Dataflow(echo=False)
    flow.add_node("n", COUNTER)

    def chatty(report: Report) -> None:
        if report.kind == "log":
            print("subscriber saw", report.data["line"])

    flow.subscribe(chatty)
    flow.start()
    assert flow.wait(10), "the dataflow did not finish"
    flow.stop()
    assert flow.node("n").log_text() == ["line 0", "line 1", "line 2"]
    assert capsys.readouterr().out == textwrap.dedent(
        """\
        subscriber saw line 0
        subscriber saw line 1
        subscriber saw line 2
        """
    )
