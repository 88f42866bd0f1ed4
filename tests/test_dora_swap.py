"""Hot swap on the dora engine: dora-rs 1.1's own mechanisms, every message accounted for.

A custom node is swapped with ``dora node replace`` (inputs arriving during the
swap are dropped by dora-rs: the panel counts them); an operator with dora's
hot reload (its state carries over, nothing is dropped). A broken new version
leaves the old one running; a change dora-rs cannot swap is refused in one line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dora_notebook import Dataflow
from dora_notebook.errors import ReloadError

from .dora_processes import live_descendants
from .kernel import Kernel, define

pytestmark = pytest.mark.dora

#: 16 s of messages at least: time for a failed swap, a swap and a refusal while they flow.
SENT = 4000

SOURCE = f"""
import time
import pyarrow as pa
from dora import Node
node = Node()
for i in range({SENT}):
    node.send_output("n", pa.array([i]))
    time.sleep(0.004)
"""

# Each version writes what it got to a file of its own: the truth the panel is checked against.
SINK = """
from dora import Node
node = Node()
with open(FILE, "a") as seen:
    for event in node:
        if event["type"] == "INPUT":
            seen.write(f"{event['value'][0].as_py()}\\n")
            seen.flush()
"""


def _values(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_a_custom_node_swapped_under_load_accounts_for_every_message(tmp_path: Path) -> None:
    """delivered (old + new version) + what dora-rs dropped during the swap = sent."""
    first, second = tmp_path / "v1.txt", tmp_path / "v2.txt"
    kernel = Kernel()
    try:
        kernel.execute("%load_ext dora_notebook")
        define(kernel, "%%dora_node src --outputs n", SOURCE)
        sink = "%%dora_node sink --inputs n=src/n --queue-size 2000"
        define(kernel, sink, SINK.replace("FILE", repr(str(first))))
        kernel.execute("%dora_start --engine dora", timeout=120)
        # (a node that prints nothing reports its counts only now and then: its file is read)
        kernel.until(lambda: len(_values(first)) > 100, 60, "the sink's first messages")
        broken = define(kernel, sink, "import nowhere_to_be_found\n" + SINK)
        swapped = define(kernel, sink, SINK.replace("FILE", repr(str(second))))
        refused = define(kernel, "%%dora_node sink --inputs m=src/n", SINK)
        kernel.execute("%dora_wait --timeout 90", timeout=120)
        state = kernel.execute(
            "import dora_notebook\nf = dora_notebook.current()\ns = f.node('sink')\n"
            "print(s.status, s.received, s.dropped, f.node('src').sent)\n"
            "print('\\n'.join(s.log_text()))"
        )
        kernel.execute("%dora_stop", timeout=60)
    finally:
        kernel.shutdown()
    # The broken version never ran: the old one kept receiving, and the cell said why.
    assert "ModuleNotFoundError" in broken.text and "previous one keeps running" in broken.text
    assert swapped.error is None, swapped.text
    said = [out["content"]["text"] for out in refused.outputs if out["msg_type"] == "stream"]
    assert len(said) == 1 and said[0].count("\n") == 1, refused.text  # one line
    assert "inputs changed (m, n)" in said[0]
    old, new = _values(first), _values(second)
    assert old and new, (len(old), len(new))
    assert max(old) < min(new)  # the old version stopped getting messages before the new one
    assert old == sorted(set(old)) and new == sorted(set(new))  # none twice
    status, received, dropped, sent = state.text.splitlines()[0].split()
    log = state.text
    found = re.search(
        r"hot swap 1: dora-rs dropped (\d+) inputs? that arrived during the swap", log
    )
    assert found, log[-2000:]
    in_swap = int(found.group(1))
    assert in_swap == min(new) - max(old) - 1  # exactly the messages neither version got
    assert int(sent) == SENT
    # dora-rs 1.1 also loses the odd message outside a swap on a loaded machine (2 in one run
    # of 4,000): missing inside one version's range, not part of the swap's count.
    elsewhere = (max(old) + 1 - len(old)) + (max(new) - min(new) + 1 - len(new))
    assert elsewhere <= SENT // 200, elsewhere
    assert max(new) == SENT - 1
    assert len(old) + len(new) + in_swap + elsewhere == SENT  # every message accounted for
    assert int(received) == len(old) + len(new)  # the panel's counter went on across the swap
    assert int(dropped) >= in_swap
    assert status == "finished"  # dora-rs killing the replaced process is not the node failing
    assert "hot swap (dora node replace): incarnation 1 took over" in log
    assert live_descendants() == []


COUNTER = """
class Operator:
    def __init__(self):
        self.version = VERSION
        self.count = 0

    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.count += 1
            if self.count % 200 == 0:
                print("VERSION at", self.count)  # a report: the panel's counts move
        elif event["type"] == "RELOAD":
            print("reloaded: VERSION after", self.count, "inputs, state of", self.version)
        elif event["type"] == "INPUT_CLOSED":  # written down: what the test checks against
            with open(FILE, "a") as counted:
                counted.write(f"VERSION counted {self.count}\\n")
"""


BROKEN = "class Operator:\n    def __init__(self):\n        raise RuntimeError('not today')\n"


def test_an_operator_gets_doras_hot_reload_and_a_broken_version_leaves_it_running(
    tmp_path: Path,
) -> None:
    file = tmp_path / "counted.txt"
    counter = COUNTER.replace("FILE", repr(str(file)))
    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE, outputs=["n"])
    flow.add_operator("op", counter.replace("VERSION", "1"), inputs={"n": "src/n"}, queue_size=SENT)
    flow.start(engine="dora")
    try:
        from .waiting import wait_for

        wait_for(lambda: flow.node("op").received > 100, 60, "the operator's first messages")
        with pytest.raises(ReloadError, match="RuntimeError: not today"):
            flow.add_operator(
                "op",
                BROKEN,
                inputs={"n": "src/n"},
                queue_size=SENT,
                replace=True,
            )
        assert "previous one keeps running" in flow.node("op").warnings[-1]
        assert flow.node("op").status == "running"
        flow.add_operator(
            "op",
            counter.replace("VERSION", "2"),
            inputs={"n": "src/n"},
            queue_size=SENT,
            replace=True,
        )
        assert flow.wait(90)
    finally:
        flow.stop()
    op = flow.node("op")
    log = op.log_text()
    # dora's hot reload: the new class, the old instance's attributes, no input lost.
    assert any(line.startswith("reloaded: 2 after") and "state of 1" in line for line in log), log
    assert file.read_text() == f"2 counted {SENT}\n"  # every message reached the operator
    assert op.status == "finished"
    assert any("hot reload (dora-rs): the new version took over" in line for line in log)
    assert "self.version = 2" in flow.graph["op"].source  # the graph holds the running version
    assert live_descendants() == []
