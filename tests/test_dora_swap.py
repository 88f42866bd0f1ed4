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
        ticked = "%%dora_node sink --inputs n=src/n t=dora/timer/millis/100 --queue-size 2000"
        refused = define(kernel, ticked, SINK)
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
    assert "inputs changed (t from dora/)" in said[0] and "timer or dora/logs" in said[0]
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
    # dora-rs 1.1 also loses messages outside a swap on a loaded machine, without a
    # warning: before the old version's first or inside one version's range (2 in one
    # run of 4,000 on a quiet machine; 55 under the suite's load in CI48). The run must
    # still flow around the swap; the panel counts them as dropped once the run ended.
    elsewhere = (max(old) + 1 - len(old)) + (max(new) - min(new) + 1 - len(new))
    assert elsewhere <= SENT // 10, elsewhere
    assert max(new) == SENT - 1
    assert len(old) + len(new) + in_swap + elsewhere == SENT  # every message accounted for
    assert int(received) == len(old) + len(new)  # the panel's counter went on across the swap
    assert int(dropped) == in_swap + elsewhere, log[-2000:]  # so received + dropped = sent
    if elsewhere:
        assert f"dora-rs lost {elsewhere} input" in log, log[-2000:]
    assert status == "finished"  # dora-rs killing the replaced process is not the node failing
    assert "hot swap (dora node replace): incarnation 1 took over" in log
    assert live_descendants() == []


COUNTER = """
class Operator:
    def __init__(self):
        self.version = VERSION
        self.count = 0
        self.last = -1  # the number of the last message got
        self.reloaded_after = None  # the last number before the RELOAD
        self.gap = None  # how many numbers the first message after it skipped

    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.count += 1
            number = event["value"][0].as_py()
            if self.reloaded_after is not None and self.gap is None:
                self.gap = number - self.reloaded_after - 1
            self.last = number
            if self.count % 200 == 0:
                print("VERSION at", self.count)  # a report: the panel's counts move
        elif event["type"] == "RELOAD":
            self.reloaded_after = self.last
            print("reloaded: VERSION after", self.count, "inputs, state of", self.version)
        elif event["type"] == "INPUT_CLOSED":  # written down: what the test checks against
            with open(FILE, "a") as counted:
                counted.write(f"VERSION counted {self.count} gap {self.gap} last {self.last}\\n")
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
    version, counted, gap, last = file.read_text().split()[::2]
    assert version == "2" and int(last) == SENT - 1
    assert gap == "0"  # the reload lost no input: the first after it was the next one sent
    # dora-rs 1.1 loses the odd message on a loaded machine, swap or not (1 of 4,000 in a
    # full CI run): bounded here, as for the custom node's swap.
    assert SENT - SENT // 200 <= int(counted) <= SENT
    assert op.status == "finished"
    assert any("hot reload (dora-rs): the new version took over" in line for line in log)
    assert "self.version = 2" in flow.graph["op"].source  # the graph holds the running version
    assert live_descendants() == []


REWIRED = 2500

# One sender, three outputs told apart by their values: a = i, b = 100000 + i, c = 200000 + i.
SENDER = f"""
import time
import pyarrow as pa
from dora import Node
node = Node()
for i in range({REWIRED}):
    for name, base in (("a", 0), ("b", 100000), ("c", 200000)):
        node.send_output(name, pa.array([base + i]))
    time.sleep(0.004)
"""

# Every input event it gets, with the input's id (the shim passes on only declared ones).
RECORDER = """
from dora import Node
node = Node()
with open(FILE, "a") as seen:
    for event in node:
        if event["type"] in ("INPUT", "INPUT_CLOSED"):
            value = event["value"][0].as_py() if event["type"] == "INPUT" else "closed"
            seen.write(f"{event['id']} {value}\\n")
            seen.flush()
"""


def _events(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines()]  # type: ignore[misc]


def test_a_custom_node_is_rewired_when_its_inputs_change(tmp_path: Path) -> None:
    """Inputs added, removed and moved to another source while the graph runs on dora-rs.

    Swap 1: {a, b} -> {a, c} (c added, b removed, a kept: its drops are counted);
    swap 2: {a, c} -> {a from src/c} (every input changes: dora-rs would stop the
    running version, so the rewiring holds its inputs open); then a timer input
    is refused in one line, and the last version runs to the end.
    """
    from .waiting import wait_for

    files = [tmp_path / f"v{i}.txt" for i in (1, 2, 3, 4)]
    flow = Dataflow(echo=False)
    flow.add_node("src", SENDER, outputs=["a", "b", "c"])

    def sink(version: int, inputs: dict[str, str]) -> None:
        code = RECORDER.replace("FILE", repr(str(files[version - 1])))
        flow.add_node("sink", code, inputs=inputs, queue_size=REWIRED, replace=version > 1)

    def log() -> list[str]:
        return flow.node("sink").log_text()

    sink(1, {"a": "src/a", "b": "src/b"})
    flow.start(engine="dora")
    try:
        wait_for(lambda: len(_events(files[0])) > 100, 60, "the first version's messages")
        sink(2, {"a": "src/a", "c": "src/c"})
        # the next swap once this one is over (its drops counted)
        wait_for(lambda: any("hot swap 1:" in line for line in log()), 30, "swap 1's count")
        wait_for(lambda: len(_events(files[1])) > 100, 30, "the second version's messages")
        sink(3, {"a": "src/c"})
        wait_for(lambda: any("hot swap 2:" in line for line in log()), 30, "swap 2's end")
        with pytest.raises(ReloadError) as refused:
            sink(4, {"a": "src/c", "t": "dora/timer/millis/100"})
        assert flow.wait(90), "the dataflow did not finish"
    finally:
        flow.stop()
    v1, v2, v3, v4 = (_events(f) for f in files)

    def values(events: list[tuple[str, str]], input_id: str) -> list[int]:
        return [int(v) for k, v in events if k == input_id and v != "closed"]

    # Each version got exactly its own inputs, from their sources; the refused one never ran.
    assert {k for k, _ in v1} == {"a", "b"} and {k for k, _ in v2} == {"a", "c"}, (v1[-3:], v2[:3])
    assert {k for k, _ in v3} == {"a"} and not v4, v3[:3]
    versions = ((v1, {"a": 0, "b": 1}), (v2, {"a": 0, "c": 2}), (v3, {"a": 2}))
    for number, (events, sources) in enumerate(versions, 1):
        for input_id, base in sources.items():
            assert values(events, input_id), input_id
            wrong = [v for v in values(events, input_id) if v // 100000 != base]
            assert not wrong, (number, input_id, wrong[:5], len(wrong))
    assert values(v3, "a")[-1] == 200000 + REWIRED - 1  # a, now from src/c, to the end
    # The added input arrived in the second version with the kept one (the swap's window).
    a1, a2, c2 = values(v1, "a"), values(v2, "a"), values(v2, "c")
    assert abs(c2[0] - 200000 - a2[0]) <= 20, (c2[:3], a2[:3])
    # The version being replaced is told that a removed or moved input closed (dora node
    # disconnect); dora-rs 1.1 delivers it the odd message still (measured), but never
    # to the replacement.
    assert ("b", "closed") in v1 and ("a", "closed") in v2
    # The panel says what was rewired, and counts the kept input's drops exactly.
    text = "\n".join(log())
    assert "c from src/c added; b removed (was src/b)" in text, text[-2000:]
    assert "a now from src/c (was src/a); c removed (was src/c)" in text, text[-2000:]
    found = re.search(r"hot swap 1: dora-rs dropped (\d+) inputs? .*\(a: (\d+)\)", text)
    assert found, text[-2000:]
    assert int(found.group(2)) == a2[0] - a1[-1] - 1  # a kept its source: counted exactly
    assert "hot swap 2: no input kept its source" in text
    # The refusal: one line, with dora-rs 1.1's reason.
    said = str(refused.value)
    assert "\n" not in said and "t from dora/" in said and "dora node connect" in said, said
    assert flow.node("sink").status == "finished"
    assert flow.node("src").sent == 3 * REWIRED
    assert live_descendants() == []


# Sends 100 numbers, then nothing: it ends once the test has swapped the sink (FLAG).
ENDING = """
import os
import time
import pyarrow as pa
from dora import Node
node = Node()
for i in range(100):
    node.send_output("n", pa.array([i]))
    time.sleep(0.01)
deadline = time.monotonic() + 60
while not os.path.exists(FLAG) and time.monotonic() < deadline:
    time.sleep(0.01)
"""


def test_a_swap_as_the_sender_ends_is_counted_when_wait_returns(tmp_path: Path) -> None:
    """The swap's count is in the counters once ``wait()`` returns, even at the very end.

    The sender ends right after the swap, so the replacement gets nothing: the
    numbers after the old version's last one are what dora-rs dropped (none
    here, as the old version got all 100). CI44 and CI45 read the counters
    while the swap was still being counted (the notebook's ``received +
    dropped == sent`` was False).
    """
    from .waiting import wait_for

    flag, first, second = tmp_path / "go", tmp_path / "v1.txt", tmp_path / "v2.txt"
    flow = Dataflow(echo=False)
    flow.add_node("src", ENDING.replace("FLAG", repr(str(flag))), outputs=["n"])

    def sink(file: Path, replace: bool) -> None:
        code = SINK.replace("FILE", repr(str(file)))
        flow.add_node("sink", code, inputs={"n": "src/n"}, queue_size=1000, replace=replace)

    sink(first, False)
    flow.start(engine="dora")
    try:
        wait_for(lambda: len(_values(first)) == 100, 60, "the sender's 100 numbers")
        sink(second, True)
        flag.touch()
        assert flow.wait(90), "the dataflow did not finish"
        # Read at once: no waiting for the swap's count.
        src, node = flow.node("src"), flow.node("sink")
        sent, received, dropped = src.sent, node.received, node.dropped
        log = "\n".join(node.log_text())
    finally:
        flow.stop()
    assert _values(first) == list(range(100)) and _values(second) == []
    assert (sent, received, dropped) == (100, 100, 0), log[-2000:]
    assert "hot swap 1: dora-rs dropped 0 inputs that arrived during the swap (n: 0)" in log
    assert "not counted" not in log, log[-2000:]
    assert node.status == "finished"
    assert live_descendants() == []


def test_what_dora_lost_without_a_warning_is_counted_as_dropped_at_the_end(
    tmp_path: Path,
) -> None:
    """Numbers a sender skipped before a cell node's last message: dropped, not delivered.

    dora-rs 1.1 loses the odd message under load, and a few early in a run, without
    a drop warning (CI47: notebook 05's received + dropped = sent was False). The
    stats file of the node's running incarnation says which numbers never came.
    """
    from types import SimpleNamespace

    from dora_notebook.core.graph import InputSpec
    from dora_notebook.dora_rs.engine import DoraEngine
    from dora_notebook.dora_rs.shim import InputStats, stats_path
    from dora_notebook.dora_rs.swap import Swaps

    (tmp_path / "stats").mkdir()
    stats = InputStats(stats_path(tmp_path / "stats", "sink", 0), ["n", "t", "w"])
    for stamp in [2, 3, 4, 7, 8]:  # 0 and 1 early, 5 and 6 in between
        stats.seen("n", stamp)
    stats.seen("t", None)  # a timer tick: no numbers
    for stamp in [0, 2, 3]:  # 1 skipped: dora-rs warned about that one
        stats.seen("w", stamp)
    spec = SimpleNamespace(
        inputs={
            "n": InputSpec("n", "src/n"),
            "t": InputSpec("t", "dora/timer/millis/10"),
            "w": InputSpec("w", "src/w"),
        }
    )
    said: list[tuple[str, str, object]] = []
    engine = SimpleNamespace(
        _folder=tmp_path,
        _shimmed={"sink"},
        graph={"sink": spec},
        _drops={("sink", "w"): 1},
        _silent={},
        counts={"sink": SimpleNamespace(dropped=1)},
        _emit=lambda *report: said.append(report),
    )
    engine.swaps = Swaps(engine)
    DoraEngine._count_silent(engine)  # type: ignore[arg-type]
    assert engine._silent == {("sink", "n"): 4}
    assert engine.counts["sink"].dropped == 1 + 4
    ((node, kind, data),) = said
    assert (node, kind, data["stdio"]) == ("sink", "log", "warning")
    assert data["line"].startswith("dora-rs lost 4 inputs without a warning (n: 4)")
