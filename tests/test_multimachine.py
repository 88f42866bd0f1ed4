"""Placement across machines: a dora coordinator and two daemons, ``alpha`` and ``beta``.

The cluster runs on this host, loopback only, as two machines would run it:
each daemon has its own machine id, dynamic-node port and zenoh endpoint
(joined through one ``--zenoh-peer``). Nodes placed with ``machine=`` (the
magics' ``--machine NAME``) must run under the daemon of that machine: the
test asks each node process for its parent and compares it with the
daemons' pids. Their previews must reach the kernel through the bridge,
which joins ``alpha``'s daemon, as the kernel's machine.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from dora_notebook import Dataflow
from dora_notebook.core.observe import Report
from dora_notebook.dora_rs.engine import NOT_COUNTED
from dora_notebook.dora_rs.procs import dora_cli, end_session, free_port
from dora_notebook.errors import DataflowError
from tests.kernel import Kernel

pytestmark = pytest.mark.dora

MACHINES = ("alpha", "beta")

# Each node says where it runs: its parent is the daemon that spawned it.
SOURCE = """
import os, time
import pyarrow as pa
from dora import Node

node = Node()
node.context.preview({"parent": os.getppid()})
time.sleep(0.5)  # real dora drops what is sent before every node is connected
for i in range(1, 6):
    node.send_output("n", pa.array([i]))
    time.sleep(0.05)
# Ends 0.5 s after its last message, not 0.05 s: its end closes double's input, and
# double's last output, still on its way to the other daemon, was lost twice (CI28's
# swap test, CI30 here: the sink got 2-8 of 2-10). Not reproduced under plain dora run.
time.sleep(0.5)
"""

DOUBLE = """
import os
import pandas as pd

class Operator:
    def __init__(self):
        self.seen = []

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            value = dora_event["value"][0].as_py()
            self.seen.append(value)
            context.output(value * 2, "doubled")
            context.preview(pd.DataFrame({"n": self.seen, "parent": os.getppid()}))
            context.report_progress(len(self.seen) * 20)
"""

SINK = """
import os
from dora import Node

node = Node()
got = []
for event in node:
    if event["type"] == "INPUT":
        got.extend(event["value"].to_pylist())
        print("sink got", got[-1])
node.context.preview({"parent": os.getppid(), "got": got})
"""


@dataclass
class Cluster:
    """A coordinator and one daemon per machine id, each in a session of its own."""

    folder: Path
    port: int = field(default_factory=free_port)
    daemon_ports: dict[str, int] = field(default_factory=dict)
    daemons: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.folder / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                [dora_cli(), *args],
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def up(self) -> None:
        port = str(self.port)
        self.spawn("coordinator", "coordinator", "--port", port, "--store", "memory")
        peer = f"tcp/127.0.0.1:{free_port()}"
        for machine in MACHINES:
            self.daemon_ports[machine] = free_port()
            self.daemons[machine] = self.spawn(
                machine,
                "daemon",
                *("--machine-id", machine, "--coordinator-port", port),
                *("--local-listen-port", str(self.daemon_ports[machine])),
                *("--zenoh-peer", peer),
            )
        self._await_daemons()

    def _await_daemons(self, timeout: float = 20.0) -> None:
        """Poll ``dora cluster status`` until both machine ids are listed."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            done = subprocess.run(
                [dora_cli(), "cluster", "status", "--coordinator-port", str(self.port)],
                capture_output=True,
                text=True,
                timeout=10,
            )
            text = done.stdout + done.stderr
            if all(machine in text for machine in MACHINES):
                return
            time.sleep(0.2)
        raise AssertionError(f"the daemons did not register: {text}")

    def down(self) -> None:
        for proc in reversed(self.procs):
            end_session(proc)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    try:
        running.up()
        yield running
    finally:
        running.down()


def _graph() -> Dataflow:
    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE, outputs=["n"], machine="alpha")
    flow.add_operator("double", DOUBLE, inputs={"n": "src/n"}, outputs=["doubled"], machine="beta")
    flow.add_node("sink", SINK, inputs={"x": "double/doubled"})  # placed nowhere: the kernel's
    return flow


def _parents(reports: list[Report]) -> dict[str, set[int]]:
    """Node id -> the parent pids its previews named."""
    parents: dict[str, set[int]] = {}
    for report in reports:
        if report.kind != "preview":
            continue
        payload = report.data["payload"]
        if payload["type"] == "table":
            column = payload["data"]["columns"].index("parent")
            values = {int(row[column]) for row in payload["data"]["rows"]}
        else:
            values = {int(payload["data"]["parent"])}
        parents.setdefault(report.node_id, set()).update(values)
    return parents


def test_nodes_run_on_their_machines_and_report_to_the_kernel(cluster: Cluster) -> None:
    flow = _graph()
    seen: list[Report] = []
    flow.subscribe(seen.append)
    flow.start(
        engine="dora",
        coordinator=cluster.address,
        machine="alpha",
        daemon_port=cluster.daemon_ports["alpha"],
    )
    try:
        assert flow.wait(60), "the dataflow did not finish"
    finally:
        flow.stop()
    for node_id in ("src", "double", "sink"):
        assert flow.node(node_id).status == "finished", (node_id, flow.node(node_id).errors)
    alpha, beta = cluster.daemons["alpha"].pid, cluster.daemons["beta"].pid
    assert _parents(seen) == {"src": {alpha}, "double": {beta}, "sink": {alpha}}
    assert flow.node("double").progress == 100
    assert flow.node("sink").log_text() == [f"sink got {2 * i}" for i in range(1, 6)]
    # Per-edge counts: the kernel's bridge sees the outputs of its own machine only.
    edges = {(row["target"], row["input"]): row for row in flow.edges()}
    assert (edges["double", "n"]["delivered"], edges["double", "n"]["dropped"]) == (5, 0)
    assert edges["sink", "x"]["note"] == NOT_COUNTED  # double runs on beta
    # The cluster is the user's: the run ends its dataflow, never its daemons.
    assert all(proc.poll() is None for proc in cluster.procs)


def test_a_machine_without_a_daemon_is_a_clear_error(cluster: Cluster) -> None:
    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE, outputs=["n"], machine="gamma")
    with pytest.raises(DataflowError, match="gamma"):
        flow.start(
            engine="dora",
            coordinator=cluster.address,
            machine="alpha",
            daemon_port=cluster.daemon_ports["alpha"],
        )
    assert all(proc.poll() is None for proc in cluster.procs)


def test_nodes_placed_nowhere_need_the_kernels_machine(cluster: Cluster) -> None:
    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE, outputs=["n"])
    with pytest.raises(DataflowError, match="--machine NAME"):
        flow.start(engine="dora", coordinator=cluster.address)


def test_magics_place_nodes_across_machines(cluster: Cluster, tmp_path: Path) -> None:
    """The same placement from a notebook: ``--machine`` on cells and on ``%dora_start``."""
    with Kernel() as kernel:
        kernel.execute("%load_ext dora_notebook")
        kernel.execute(f"%%dora_node src --outputs n --machine alpha\n{SOURCE}")
        kernel.execute(
            f"%%dora_operator double --inputs n=src/n --outputs doubled --machine beta\n{DOUBLE}"
        )
        kernel.execute(f"%%dora_node sink --inputs x=double/doubled\n{SINK}")
        kernel.execute(
            f"%dora_start --engine dora --coordinator {cluster.address} --machine alpha"
            f" --daemon-port {cluster.daemon_ports['alpha']} --wait --timeout 60"
        )
        shown = kernel.execute(
            "import json, dora_notebook\n"
            "flow = dora_notebook.current()\n"
            "print(json.dumps({n: [flow.node(n).status, list(flow.node(n).previews.values())]"
            " for n in ('src', 'double', 'sink')}))"
        )
        state = json.loads(shown.text)
        assert {n: status for n, (status, _) in state.items()} == dict.fromkeys(
            ("src", "double", "sink"), "finished"
        )
        alpha, beta = cluster.daemons["alpha"].pid, cluster.daemons["beta"].pid
        assert state["src"][1] == [{"type": "json", "data": {"parent": alpha}}]
        assert state["sink"][1] == [
            {"type": "json", "data": {"parent": alpha, "got": [2, 4, 6, 8, 10]}}
        ]
        table = state["double"][1][0]["data"]
        assert table["rows"] == [[i, beta] for i in range(1, 6)]


# -- the notebook's features across the two daemons (issue 14, item 6) ----------------------

#: Long enough (about 8 s) for a swap of the node on the other machine while they flow.
FLOWING = 2000

# READY: the receiver's file, which it opens once its Node() is up: real dora drops what
# is sent before every node is connected, so the counter waits for it (at most 60 s).
COUNTER = f"""
import os
import time
import pyarrow as pa
from dora import Node

node = Node()
deadline = time.monotonic() + 60
while not os.path.exists(READY) and time.monotonic() < deadline:
    time.sleep(0.01)
for i in range({FLOWING}):
    node.send_output("n", pa.array([i]), {{"i": i}})
    time.sleep(0.004)
"""

# Each version writes what it got to a file of its own: the truth the panel is checked against.
RECEIVER = """
from dora import Node

node = Node()
node.log("info", "VERSION is up on beta", "receiver")  # a dora log record, with its level
with open(FILE, "a") as seen:
    for event in node:
        if event["type"] == "INPUT":
            seen.write(f"{event['value'][0].as_py()}\\n")
            seen.flush()
"""

# A plain dora file (no context shim: only dora-rs's own log says what it prints).
TALKER = """
import pyarrow as pa
from dora import Node

node = Node()
said = 0
for event in node:
    if event["type"] == "INPUT":
        said += 1
        print(f"talker said {said}", flush=True)
        node.send_output("echo", pa.array([said]))
        if said == 10:
            break
"""
TALKER_YAML = """
nodes:
  - id: talker
    path: talker.py
    deploy:
      machine: beta
    inputs:
      tick: dora/timer/millis/50
    outputs: [echo]
"""


def _values(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


_STATE = """
import json, dora_notebook
flow = dora_notebook.current()
tap = flow.tap("counter/n", 5)
print(json.dumps({
    "status": {n: flow.node(n).status for n in ("counter", "receiver", "talker")},
    "receiver": [flow.node("receiver").received, flow.node("receiver").dropped],
    "sent": flow.node("counter").sent,
    "logs": [[line.stdio, line.text] for line in flow.node("receiver").logs],
    "talker": flow.node("talker").log_text(),
    "edges": flow.edges(),
    "tap": [list(tap.columns), tap["metadata"].tolist(), [v[0] for v in tap["value"]]],
}))
"""


def test_swap_tap_counts_and_logs_across_the_two_daemons(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a kernel, a graph over alpha (the kernel's machine) and beta: the notebook of one machine.

    A cell node on beta is hot-swapped under load by re-running its cell (its
    panel's counters go on and say what dora-rs dropped; delivered + dropped
    in the swap = sent); ``%dora_tap`` of an output on alpha gives the frame,
    one on beta is refused in one line saying why; ``%dora_status`` has the
    per-edge counts of alpha's output; beta's nodes' log records reach their
    panels (a plain dora file's prints, a cell's ``node.log`` with its level).
    """
    from dora_notebook.dora_rs.engine import EDGE_NOTE, WORKDIR_ENV

    from .kernel import define
    from .waiting import wait_for

    shared = tmp_path / "shared"  # as a folder every machine mounts at the same path
    shared.mkdir()
    monkeypatch.setenv(WORKDIR_ENV, str(shared))  # the kernel inherits it
    (tmp_path / "talker.py").write_text(TALKER)
    (tmp_path / "talker.yml").write_text(TALKER_YAML)
    first, second = tmp_path / "v1.txt", tmp_path / "v2.txt"
    receiver = f"%%dora_node receiver --inputs n=counter/n --queue-size {FLOWING} --machine beta"
    with Kernel() as kernel:
        kernel.execute("%load_ext dora_notebook")
        kernel.execute(f"%dora_dataflow {tmp_path / 'talker.yml'}")
        counter = COUNTER.replace("READY", repr(str(first)))
        define(kernel, "%%dora_node counter --outputs n --machine alpha", counter)
        version = RECEIVER.replace("FILE", repr(str(first)))
        define(kernel, receiver, version.replace("VERSION", "v1"))
        kernel.execute(
            f"%dora_start --engine dora --coordinator {cluster.address} --machine alpha"
            f" --daemon-port {cluster.daemon_ports['alpha']}",
            timeout=120,
        )
        wait_for(lambda: len(_values(first)) > 100, 60, "the receiver's first messages")
        tapped = kernel.execute("%dora_tap counter/n -n 5", timeout=60)
        refused = kernel.execute("%dora_tap talker/echo -n 3")
        version = RECEIVER.replace("FILE", repr(str(second)))
        swapped = define(kernel, receiver, version.replace("VERSION", "v2"))
        kernel.execute("%dora_wait --timeout 90", timeout=120)
        state = json.loads(kernel.execute(_STATE).text)
        shown = kernel.execute("%dora_status").text
        kernel.execute("%dora_stop", timeout=60)
    # The tap of alpha's output: consecutive messages, with their metadata.
    columns, metadata, values = state["tap"]
    assert columns == ["time", "metadata", "value"] and "[" in tapped.text, tapped.text
    assert values == list(range(FLOWING - 5, FLOWING))  # the last five, once it ended
    assert metadata == [{"i": i} for i in values]
    # The refusal: one line that says why.
    said = [o["content"]["text"] for o in refused.outputs if o["msg_type"] == "stream"]
    assert len(said) == 1 and said[0].count("\n") == 1, refused.text
    assert "talker" in said[0] and "another machine" in said[0], said
    # The hot swap of beta's node: every message accounted for.
    assert swapped.error is None, swapped.text
    log = [text for _, text in state["logs"]]
    assert any("hot swap (dora node replace): incarnation 1 took over" in line for line in log)
    old, new = _values(first), _values(second)
    assert old and new and max(old) < min(new), (len(old), len(new))
    found = [re.search(r"hot swap 1: dora-rs dropped (\d+) inputs?", line) for line in log]
    counted = [int(f.group(1)) for f in found if f]
    assert counted == [min(new) - max(old) - 1], log  # exactly what neither version got
    # dora-rs's own loss outside a swap, between the two daemons. Early in a run, what the
    # counter sends before the receiver on beta is connected (it waits for the receiver's
    # file now; before, 0.5 s):
    # up to 9 (measured under plain dora run; DORA_LOSS), 41 and 64 at load 10 to 17
    # (CI13, CI14), 154 under the suite's load (CI41); the run must still flow for
    # seconds after it, for the swap. Later: an odd message on a quiet machine, and the
    # last 3 of the run under the suite's load (CI28: not yet reproduced under plain dora
    # run, so whose loss that was is not shown). The receiver's queue holds the whole run,
    # so none of it is a queue's drop; neither version saw these messages.
    early, tail = min(old), FLOWING - 1 - max(new)
    gaps = (max(old) - min(old) + 1 - len(old)) + (max(new) - min(new) + 1 - len(new))
    assert early <= FLOWING // 4, (early, gaps, tail)
    assert gaps + tail <= FLOWING // 20, (early, gaps, tail)
    assert early + len(old) + len(new) + counted[0] + gaps + tail == FLOWING
    received, dropped = state["receiver"]
    assert received == len(old) + len(new)  # the counters went on across the swap
    assert dropped >= counted[0]
    # dora's log records of beta's nodes reach their panels, with their levels.
    assert not any(line.startswith("daemon") for line in log), log  # dora's own, not the node's
    assert ["info", "receiver v1 is up on beta"] in state["logs"]
    assert ["info", "receiver v2 is up on beta"] in state["logs"]  # the replacement's too
    talker = [line for line in state["talker"] if line.startswith("talker said")]
    assert talker == [f"talker said {i}" for i in range(1, 11)], state["talker"]
    # Per-edge counts: alpha's output is counted (all it sent), the swap's drops as dropped.
    edge = next(row for row in state["edges"] if (row["target"], row["input"]) == ("receiver", "n"))
    assert edge["delivered"] + edge["dropped"] == FLOWING == state["sent"]
    assert edge["dropped"] >= counted[0] and edge["note"] == EDGE_NOTE
    assert edge["delivered"] >= received  # (what dora-rs loses silently counts as delivered)
    line = f"counter/n -> receiver/n  delivered {edge['delivered']}, dropped {edge['dropped']}"
    assert line in shown, shown
    assert state["status"] == dict.fromkeys(state["status"], "finished"), state["status"]
    # The cluster is the user's: its daemons stay, and no node of the run is left on them.
    assert all(proc.poll() is None for proc in cluster.procs)
    daemons = [psutil.Process(proc.pid) for proc in cluster.daemons.values()]
    wait_for(lambda: not any(d.children() for d in daemons), 10, "the nodes' processes to end")
