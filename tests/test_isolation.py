"""Isolation and safety of the dora engine: loopback only, its own reports only, no pickle,
no secret written, nothing written outside the user's folder and a private one.

* Every socket the engine's processes (coordinator, daemon, bridge process,
  nodes) and the kernel listen on is bound to loopback, TCP and UDP alike
  (zenoh's multicast scouting is off).
* The bridge takes a report only if it is JSON text in an Arrow string
  array, carries the run's secret token and names the node it came from;
  forged records (at unit level, and sent through real dora by a hostile
  node) are dropped and counted, and two runs at once in one process with
  the same node ids each see only their own reports.
* Nothing is ever unpickled: a pickle whose loading would create a file
  never creates it, and the package imports no pickle-like module.
* The private folder holds no secret of the kernel's environment; each
  node's env there is what the graph declares plus the engine's variables;
  ``%dora_export`` never shows the token.
* In a process whose HOME, TMPDIR and working folder are fresh, an export,
  an embedded run and a dora run change only the user's export folder.
"""

from __future__ import annotations

import ast
import html
import ipaddress
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pytest
import yaml

import dora_notebook
from dora_notebook import Dataflow
from dora_notebook.core.observe import Report
from dora_notebook.dora_rs.bridge import BRIDGE_ID, accept_reports, relay_event
from dora_notebook.dora_rs.engine import REPORTS_OUTPUT, DoraEngine
from dora_notebook.dora_rs.shim import INPUTS_ENV, READY_ENV, REPORTS_ENV, STATS_ENV, TOKEN_ENV

from .dora_processes import engine_of
from .waiting import wait_for

pytestmark = pytest.mark.dora

# The stats folder: each incarnation's per-input counts, for a hot swap's drops.
ENGINE_ENV = {REPORTS_ENV, READY_ENV, INPUTS_ENV, TOKEN_ENV, STATS_ENV}

TICKER = """
from dora import DoraStatus

class Operator:
    def __init__(self):
        self.n = 0

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            self.n += 1
            context.output(self.n, "n")
            context.preview({{"run": "{tag}", "n": self.n}})
            if self.n == {last}:
                return DoraStatus.STOP
"""

SINK = """
from dora import Node

node = Node()
got = []
for event in node:
    if event["type"] == "INPUT":
        got.extend(event["value"].to_pylist())
        node.context.report_progress(len(got))
node.context.preview({{"run": "{tag}", "got": got}})
"""


def graph(tag: str, last: int = 5, tick_ms: int = 20) -> Dataflow:
    flow = Dataflow(echo=False)
    flow.add_operator(
        "src",
        TICKER.format(tag=tag, last=last),
        inputs={"t": f"dora/timer/millis/{tick_ms}"},
        outputs=["n"],
    )
    # A queue that holds every message: a sink slow to start on a busy machine loses none.
    flow.add_node("sink", SINK.format(tag=tag), inputs={"n": "src/n"}, queue_size=100)
    return flow


# -- sockets -----------------------------------------------------------------------


def sockets_of(pids: list[int]) -> list[tuple[str, str, str, str]]:
    """(process, TCP/UDP, local address, status) of every listening or UDP inet socket."""
    found = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            name = " ".join(proc.cmdline()[:3])
            connections = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        for conn in connections:
            udp = conn.type == socket.SOCK_DGRAM
            if conn.status == psutil.CONN_LISTEN or udp:
                address = conn.laddr.ip if conn.laddr else ""
                found.append((name, "UDP" if udp else "TCP", address, conn.status))
    return found


def not_loopback(sockets: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    return [s for s in sockets if s[2] and not ipaddress.ip_address(s[2]).is_loopback]


KERNEL_SRC = """%%dora_operator src --inputs t=dora/timer/millis/20 --outputs n
class Operator:
    def __init__(self):
        self.n = 0
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.n += 1
            context.output(self.n, "n")
            context.report_progress(self.n % 100)
"""

KERNEL_SINK = """%%dora_node sink --inputs n=src/n
from dora import Node
node = Node()
for event in node:
    if event["type"] == "INPUT":
        node.context.report_progress(event["value"][0].as_py() % 100)
"""


def test_the_kernel_and_everything_the_engine_starts_listen_on_loopback_only(
    tmp_path: Path,
) -> None:
    """In a real kernel, during ``%dora_start --engine dora``: sockets, and the token's reach."""
    from .kernel import Kernel

    with Kernel() as kernel:
        kernel_pid = int(kernel.manager.provisioner.process.pid)  # type: ignore[union-attr]
        kernel.execute("%load_ext dora_notebook")
        kernel.execute(KERNEL_SRC)
        kernel.execute(KERNEL_SINK)
        kernel.execute("%dora_start --engine dora")
        state = "import dora_notebook\nflow = dora_notebook.current()\n"

        def sink_progress() -> str:
            return kernel.execute(state + "print(flow.node('sink').progress)").text.strip()

        wait_for(lambda: sink_progress() != "None", 30, "the sink's reports")
        kernel_process = psutil.Process(kernel_pid)
        kernel_name = " ".join(kernel_process.cmdline()[:3])
        descendants = [p.pid for p in kernel_process.children(recursive=True)]
        sockets = sockets_of([kernel_pid, *descendants])
        engine = json.loads(
            kernel.execute(
                state + "import json\nprint(json.dumps({'token': flow.engine._token, "
                "'folder': str(flow.engine.folder)}))"
            ).text
        )
        private = yaml.safe_load((Path(engine["folder"]) / "dataflow" / "dataflow.yml").read_text())
        shown = kernel.execute(f"%dora_export {tmp_path / 'exported'}").text
        kernel.execute("%dora_stop")
        statuses = kernel.execute(
            state + "print(flow.node('src').status, flow.node('sink').status)"
        ).text.strip()
    names = " ".join(s[0] for s in sockets)
    # Not vacuous: the kernel, the coordinator, the daemon and both nodes listen.
    assert "dora coordinator" in names and "dora daemon" in names, sockets
    assert "sink.py" in names and "start_runtime" in names, sockets
    assert any(s[0] == kernel_name for s in sockets), sockets
    assert not_loopback(sockets) == []
    assert not [s for s in sockets if s[1] == "UDP"], sockets  # no scouting at all
    # The token is in the private descriptor only.
    token = engine["token"]
    assert len(token) == 32
    for node in private["nodes"]:
        if node["id"] != BRIDGE_ID:
            assert node["env"][TOKEN_ENV] == token
    assert token not in html.unescape(shown)
    for path in (tmp_path / "exported").iterdir():
        data = path.read_bytes()
        assert token.encode() not in data and TOKEN_ENV.encode() not in data, path.name
    assert not Path(engine["folder"]).exists()
    assert statuses == "finished finished"


# -- the bridge refuses what is not its own --------------------------------------------


class _Unpickled:
    """A payload whose unpickling creates the file ``path`` (the marker)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def _record(**fields: Any) -> str:
    return json.dumps({"kind": "progress", "data": 50.0, **fields})


def test_the_bridge_drops_forged_records_and_never_unpickles(tmp_path: Path) -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("a", "class Operator:\n    def on_event(self, e, c): pass\n")
    flow.add_operator("b", "class Operator:\n    def on_event(self, e, c): pass\n")
    published: list[Report] = []
    engine = DoraEngine(flow.graph.copy(), {}, published.append)
    token = engine._token
    assert engine.folder is None  # creating an engine writes nothing
    marker = tmp_path / "unpickled"

    def event(input_id: str, value: object) -> dict[str, Any]:
        return {"type": "INPUT", "id": input_id, "value": value, "metadata": {}}

    good = _record(node="a", token=token, received=3, sent=2)
    forged = [
        event("a", pa.array([_record(node="a")])),  # no token
        event("a", pa.array([_record(node="a", token="0" * 32)])),  # a wrong token
        event("a", pa.array([_record(node="a", token=token[:-1])])),  # almost the token
        event("a", pa.array([_record(node="b", token=token)])),  # another node's id
        event("ghost", pa.array([_record(node="ghost", token=token)])),  # an unknown input
        event("a", pa.array([_record(node="a", token=token, kind="exec")])),  # unknown kind
        event("a", pa.array([_record(node="a", token=token, received="3")])),  # bad counter
        event("a", pa.array(["not json", "[1, 2]", None])),  # not objects
        event("a", pa.array([good.encode()], type=pa.binary())),  # a good record, as bytes
        event("a", pa.array([pickle.dumps(_Unpickled(marker))], type=pa.binary())),
        event("a", pa.array([pickle.dumps(_Unpickled(marker), protocol=0).decode()])),
        event("a", pa.array([1, 2, 3])),  # not text at all
        event("a", b"raw bytes"),  # not an Arrow array
    ]
    for item in forged:  # what the bridge process relays, then what the kernel keeps
        engine._handle(relay_event(item))
    assert published == []
    assert engine.rejected == 17  # one per record; arrays of other types, one per element
    assert engine.counts["a"].received == 0 and engine.counts["b"].status == "running"
    engine._handle(relay_event(event("a", pa.array([good, good.replace("50.0", "60.0")]))))
    assert [(r.node_id, r.kind, r.data) for r in published] == [
        ("a", "progress", 50.0),
        ("a", "progress", 60.0),
    ]
    assert (engine.counts["a"].received, engine.counts["a"].sent) == (3, 2)
    assert engine.rejected == 17
    assert not marker.exists()
    # The marker does work: unpickling the payload would have created it.
    pickle.loads(pickle.dumps(_Unpickled(marker)))  # the test's own payload
    assert marker.exists()
    # The two halves alone.
    large = relay_event(event("a", pa.array([good], type=pa.large_string())))
    assert large == {"type": "INPUT", "id": "a", "texts": [good]}
    assert accept_reports([good], token, None) == ([], 1)
    assert accept_reports([good], "", "a") == ([], 1)  # no token, no reports


LIAR = """
import json, os, pathlib, pickle
import pyarrow as pa
from dora import Node

node = Node()
token = os.environ["DORA_NOTEBOOK_TOKEN"]
marker = pathlib.Path({marker!r})

class Unpickled:
    def __reduce__(self):
        return (pathlib.Path.touch, (marker,))

def record(**fields):
    payload = {{"type": "text", "data": "forged"}}
    return json.dumps({{"kind": "preview", "data": {{"slot": "default", "payload": payload}},
                       **fields}})

forged = [
    pa.array([record(node="liar")]),
    pa.array([record(node="liar", token="0" * 32)]),
    pa.array([record(node="honest", token=token)]),
    pa.array([record(node="ghost", token=token)]),
    pa.array([json.dumps({{"kind": "exec", "node": "liar", "data": 1, "token": token}})]),
    pa.array(["not json"]),
    pa.array([pickle.dumps(Unpickled())], type=pa.binary()),
    pa.array([pickle.dumps(Unpickled(), protocol=0).decode()]),
]
for array in forged:
    node.send_output("{output}", array)
node.context.preview("honest report")
"""

HONEST = """
from dora import DoraStatus

class Operator:
    def __init__(self):
        self.n = 0

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            self.n += 1
            context.preview("real")
            if self.n == 3:
                return DoraStatus.STOP
"""


def test_records_forged_by_a_node_through_dora_are_dropped(tmp_path: Path) -> None:
    """A node with the run's token still cannot speak for another node, nor pass a pickle."""
    marker = tmp_path / "unpickled"
    flow = Dataflow(echo=False)
    flow.add_node("liar", LIAR.format(marker=str(marker), output=REPORTS_OUTPUT))
    flow.add_operator("honest", HONEST, inputs={"t": "dora/timer/millis/50"})
    seen: list[Report] = []
    flow.subscribe(seen.append)
    flow.start(engine="dora")
    try:
        assert flow.wait(60)
    finally:
        flow.stop()
    engine = engine_of(flow)
    assert engine.rejected == 8  # exactly the forged records
    previews = [(r.node_id, r.data["payload"]) for r in seen if r.kind == "preview"]
    assert ("liar", {"type": "text", "data": "honest report"}) in previews
    assert ("honest", {"type": "text", "data": "real"}) in previews
    assert all(payload["data"] != "forged" for _, payload in previews)
    assert {r.node_id for r in seen} == {"liar", "honest"}
    assert flow.node("liar").status == "finished" and flow.node("honest").status == "finished"
    assert not marker.exists()


def test_two_runs_at_once_each_see_only_their_own_reports() -> None:
    """Same node ids, same bridge id, one process: each observer gets its own run's reports."""
    last = 20
    flows = {tag: graph(tag, last=last, tick_ms=50) for tag in ("A", "B")}
    seen: dict[str, list[Report]] = {tag: [] for tag in flows}
    for tag, flow in flows.items():
        flow.subscribe(seen[tag].append)
    errors: list[BaseException] = []

    def start(flow: Dataflow) -> None:
        try:
            flow.start(engine="dora")
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    starters = [threading.Thread(target=start, args=(flow,)) for flow in flows.values()]
    try:
        for thread in starters:
            thread.start()
        for thread in starters:
            thread.join(60)
        assert errors == []
        engines = {tag: engine_of(flow) for tag, flow in flows.items()}
        for flow in flows.values():
            assert flow.wait(60)
    finally:
        for flow in flows.values():
            flow.stop()
    assert engines["A"]._token != engines["B"]._token
    assert engines["A"].dataflow_id != engines["B"].dataflow_id
    spans = {}
    for tag, flow in flows.items():
        previews = [r for r in seen[tag] if r.kind == "preview"]
        assert {r.data["payload"]["data"]["run"] for r in previews} == {tag}
        spans[tag] = (min(r.time for r in previews), max(r.time for r in previews))
        expected = {"run": tag, "got": list(range(1, last + 1))}
        assert flow.node("sink").previews["default"]["data"] == expected
        assert flow.node("src").previews["default"]["data"] == {"run": tag, "n": last}
        assert flow.node("src").status == "finished" and flow.node("sink").status == "finished"
        assert engines[tag].rejected == 0
        assert engines[tag].folder is not None and not engines[tag].folder.exists()
    # They did run at the same time.
    assert max(spans["A"][0], spans["B"][0]) < min(spans["A"][1], spans["B"][1]), spans


# -- no pickle -----------------------------------------------------------------------

_PICKLERS = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal", "shelve", "joblib"}
_PICKLE_CALLS = {"read_pickle", "to_pickle"}


def test_the_package_never_imports_a_pickler() -> None:
    """No module of the package imports pickle & co, by statement or by name, nor reads pickles."""
    root = Path(dora_notebook.__file__).parent
    offences = []
    files = sorted(root.rglob("*.py"))
    assert len(files) > 20
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                first = node.args[0]
                if called in ("__import__", "import_module") and isinstance(first, ast.Constant):
                    names = [str(first.value)]
            elif isinstance(node, ast.Attribute) and node.attr in _PICKLE_CALLS:
                offences.append(f"{path.name}:{node.lineno}: {node.attr}")
            elif isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                offences.append(f"{path.name}:{node.lineno}: allow_pickle")
            for name in names:
                if name.split(".")[0] in _PICKLERS:
                    offences.append(f"{path.name}:{node.lineno}: {name}")
    assert offences == []


# -- secrets -------------------------------------------------------------------------

SECRET = "s3cr3t-kernel-value-5e1d0c"

WAITER = """
from dora import Node

node = Node()
node.context.preview("up")
for event in node:  # until the dataflow is stopped
    pass
"""


def test_the_private_folder_holds_no_secret_and_only_the_declared_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DORA_NOTEBOOK_TEST_SECRET", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    flow = Dataflow(echo=False)
    spec = flow.add_node("waiter", WAITER, inputs={"t": "dora/timer/secs/1"})
    spec.env["GREETING"] = "hello"
    flow.add_operator("src", TICKER.format(tag="x", last=3), inputs={"t": "dora/timer/millis/20"})
    flow.start(engine="dora")
    try:
        wait_for(lambda: bool(flow.node("waiter").previews), 30, "the waiter's preview")
        engine = engine_of(flow)
        folder = engine.folder
        assert folder is not None
        descriptor = yaml.safe_load((folder / "dataflow" / "dataflow.yml").read_text())
        contents = {
            str(path.relative_to(folder)): path.read_bytes()
            for path in folder.rglob("*")
            if path.is_file()
        }
    finally:
        flow.stop()
    envs = {node["id"]: node.get("env") for node in descriptor["nodes"]}
    assert set(envs) == {"waiter", "src", BRIDGE_ID}
    assert set(envs["waiter"]) == {"GREETING"} | ENGINE_ENV
    assert envs["waiter"]["GREETING"] == "hello"
    assert set(envs["src"]) == ENGINE_ENV
    assert envs[BRIDGE_ID] is None
    assert envs["src"][TOKEN_ENV] == envs["waiter"][TOKEN_ENV] == engine._token
    # Not vacuous: dora's logs, the nodes' logs and the descriptor were read.
    assert {"daemon.log", "coordinator.log", "dataflow/dataflow.yml"} <= set(contents)
    assert any(name.endswith("log_waiter.jsonl") for name in contents), sorted(contents)
    for name, data in contents.items():
        assert SECRET.encode() not in data, name
        assert b"AWS_SECRET_ACCESS_KEY" not in data, name
    assert not folder.exists()


# -- nothing written elsewhere -------------------------------------------------------

SCRIPT = """
import json, sys
from dora_notebook import Dataflow
from dora_notebook.dora_rs.export import export

SRC = {src!r}
SINK = {sink!r}

def graph():
    flow = Dataflow(echo=False)
    flow.add_operator("src", SRC, inputs={{"t": "dora/timer/millis/20"}}, outputs=["n"])
    flow.add_node("sink", SINK, inputs={{"n": "src/n"}})
    return flow

result = {{"exported": [str(p) for p in export(graph().graph, "exported")]}}
for engine in ("embedded", "dora"):
    flow = graph()
    flow.start(engine=engine)
    folder = getattr(flow.engine, "folder", None)
    ok = flow.wait(60)
    flow.stop()
    result[engine] = {{
        "ok": ok,
        "folder": str(folder),
        "status": {{n: s.status for n, s in flow.status().items()}},
        "got": flow.node("sink").previews["default"]["data"]["got"],
    }}
print(json.dumps(result))
"""


def snapshot(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def test_nothing_is_written_outside_the_users_folder(tmp_path: Path) -> None:
    """An export, an embedded run and a dora run in a process with a fresh HOME, TMPDIR and cwd."""
    home, tmp, work = tmp_path / "home", tmp_path / "tmp", tmp_path / "work"
    for folder in (home, tmp, work):
        folder.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("XDG_", "UV_", "DORA_NOTEBOOK_"))
        and key not in ("TMP", "TEMP", "PYTHONPYCACHEPREFIX")
    }
    env.update(
        HOME=str(home),
        TMPDIR=str(tmp),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    script = SCRIPT.format(src=TICKER.format(tag="iso", last=4), sink=SINK.format(tag="iso"))
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for engine in ("embedded", "dora"):
        assert result[engine]["ok"], result
        assert result[engine]["status"] == {"src": "finished", "sink": "finished"}, result
        assert result[engine]["got"] == [1, 2, 3, 4], result
    # The dora run's private folder was in TMPDIR, and is gone with all it held.
    assert Path(result["dora"]["folder"]).parent == tmp
    assert snapshot(tmp) == set()
    assert snapshot(home) == set()
    exported = {str(Path(p).resolve().relative_to(work.resolve())) for p in result["exported"]}
    assert exported == {"exported/dataflow.yml", "exported/src.py", "exported/sink.py"}
    # The export's record of what it wrote is the one file it adds.
    assert snapshot(work) == {"exported", "exported/.dora-notebook-export.json", *exported}


def test_dora_processes_get_no_token_and_write_in_the_private_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment of dora's processes: no inherited run settings; temp and uv cache inside."""
    from dora_notebook.dora_rs.procs import child_env

    monkeypatch.setenv(TOKEN_ENV, "from-an-outer-run")  # e.g. a kernel started inside a node
    env = child_env(tmp_path)
    assert not ENGINE_ENV & set(env)
    assert env["TMPDIR"] == str(tmp_path / "tmp") and (tmp_path / "tmp").is_dir()
    assert env["UV_CACHE_DIR"] == str(tmp_path / "uv-cache")
