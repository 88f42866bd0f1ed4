"""Run a graph on real dora-rs and observe it from the kernel: ``start(engine="dora")``.

:class:`DoraEngine` exports the graph to a private temporary folder (as
``%dora_export`` does), adds to that descriptor one dynamic node,
:data:`BRIDGE_ID`, whose inputs are every cell node's reports output
(:data:`REPORTS_OUTPUT`), and sets :data:`~dora_notebook.exported.REPORTS_ENV`
for the exported nodes only: their context then sends each report (previews,
progress, logs, errors, status) as an ordinary dora message, the report's
JSON in an Arrow string array. Unless ``coordinator="HOST:PORT"`` names an
existing cluster, it starts a ``dora coordinator`` and a ``dora daemon`` of
its own on loopback ports, each in a session of its own, so that exactly
what it started can be stopped; every node then runs on that one daemon,
whatever machine its ``--machine`` names. On an existing cluster the nodes
keep their ``deploy: {machine: ...}``; the bridge, and every node placed
nowhere, goes to ``machine``: the kernel's own daemon, which the bridge
joins on ``daemon_port`` (:data:`MACHINE_ENV` and :data:`DAEMON_PORT_ENV`
give defaults). Node files are named by absolute path, because dora's
daemons resolve relative ones against their own folders.

It then runs ``dora start --detach`` and, in a named daemon thread of the
kernel, joins the dataflow with dora-rs's ``Node(BRIDGE_ID)``; every message
becomes the same :class:`~dora_notebook.observe.Report` the embedded engine
publishes.

Real dora drops messages sent to a dynamic node before it is connected, so
the exported nodes wait (up to 30 s) for a file the bridge creates once it
has joined, before they start. Nothing started here outlives
:meth:`DoraEngine.stop` (registered at exit too); the folder is removed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .. import _yaml12
from ..errors import DataflowError
from ..exported import INPUTS_ENV, READY_ENV, REPORTS_ENV
from ..graph import Graph
from ..observe import Report

__all__ = [
    "BRIDGE_ID",
    "DAEMON_PORT_ENV",
    "MACHINE_ENV",
    "REPORTS_OUTPUT",
    "WORKDIR_ENV",
    "DoraEngine",
    "parse_coordinator",
]

#: The id of the kernel's dynamic node in the exported dataflow.
BRIDGE_ID = "dora-notebook-bridge"
#: The extra output every cell node sends its reports on.
REPORTS_OUTPUT = "dora_notebook_reports"
#: The dynamic-node port of a daemon when dora-notebook did not start it.
DEFAULT_DAEMON_PORT = 53291
#: Default of ``daemon_port``: the port of the kernel machine's daemon in a cluster.
DAEMON_PORT_ENV = "DORA_NOTEBOOK_DAEMON_PORT"
#: Default of ``machine``: the machine id of the kernel machine's daemon in a cluster.
MACHINE_ENV = "DORA_NOTEBOOK_MACHINE"
#: Where the private folder is made: on a real cluster, a folder every
#: machine sees at the same path (dora-rs 1.1 does not ship node files).
WORKDIR_ENV = "DORA_NOTEBOOK_WORKDIR"

_FINAL = ("finished", "failed")
_NO_DAEMON = "no unnamed daemon connections"


def parse_coordinator(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as a pair; ValueError if it is not one.

    >>> parse_coordinator("127.0.0.1:6013")
    ('127.0.0.1', 6013)
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


class NodeCounts:
    """What the panel of a node run by dora counts (from the node's own reports)."""

    def __init__(self) -> None:
        self.status = "running"
        self.received = 0
        self.sent = 0
        self.dropped = 0
        self.final = False
        self.failed = False
        self.closed_at: float | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dora_cli() -> str:
    """The ``dora`` command: next to this Python first, then on PATH."""
    here = Path(sys.executable).parent / "dora"
    found = str(here) if here.is_file() else shutil.which("dora")
    if found is None:
        raise DataflowError(
            "the dora engine needs the dora CLI (dora-rs-cli): pip install 'dora-notebook[dora]'"
        )
    return found


def _child_env() -> dict[str, str]:
    """The environment of dora's processes: this Python and this dora-notebook first."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [package_root, env.get("PYTHONPATH", "")] if p)
    env["NO_COLOR"] = "1"
    env["RUST_BACKTRACE"] = "0"
    for name in (REPORTS_ENV, READY_ENV, INPUTS_ENV):
        env.pop(name, None)
    return env


def _session_pids(session: int) -> list[int]:
    """Live processes of ``session`` (Linux /proc; empty elsewhere)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        with contextlib.suppress(OSError):
            if os.getsid(pid) == session and pid != os.getpid():
                pids.append(pid)
    return pids


def _end_session(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM ``proc`` (a session leader), then SIGKILL whatever is left of its session."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    for pid in _session_pids(proc.pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    deadline = time.monotonic() + grace
    while _session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def private_descriptor(
    text: str,
    graph: Graph,
    ready: Path,
    folder: Path,
    machine: str | None = None,
    placed: bool = True,
) -> dict[str, Any]:
    """The exported descriptor plus the bridge node and the reports outputs.

    Relative node files become absolute under ``folder``. With ``placed``
    false (one local daemon) every ``deploy`` is dropped; otherwise nodes
    placed nowhere, and the bridge, go to ``machine`` when it is given.
    """
    descriptor = yaml.safe_load(text)
    sources = {}
    for node in descriptor["nodes"]:
        _absolute_files(node, folder)
        if not placed:
            node.pop("deploy", None)
        elif machine is not None and "deploy" not in node:
            node["deploy"] = {"machine": machine}
        spec = graph[node["id"]]
        if spec.source is None:
            continue  # a node from a file has no context shim: it reports nothing
        target = node.get("operator", node)
        target["outputs"] = [*(target.get("outputs") or []), REPORTS_OUTPUT]
        env = dict(node.get("env") or {})
        env.update(
            {
                REPORTS_ENV: REPORTS_OUTPUT,
                READY_ENV: str(ready),
                INPUTS_ENV: ",".join(spec.inputs),
            }
        )
        node["env"] = env
        sources[spec.id] = {"source": f"{spec.id}/{REPORTS_OUTPUT}", "queue_size": 100000}
    if sources:
        bridge: dict[str, Any] = {"id": BRIDGE_ID, "path": "dynamic", "inputs": sources}
        if placed and machine is not None:
            bridge["deploy"] = {"machine": machine}
        descriptor["nodes"].append(bridge)
    return descriptor


def _absolute_files(node: dict[str, Any], folder: Path) -> None:
    """Name the node's files (``path``, operators' ``python``...) by absolute path.

    Only names of files that exist under ``folder`` change: ``path`` may also
    be a command on PATH (``dora-echo``) or ``dynamic``.
    """
    operators = [node.get("operator"), *(node.get("operators") or [])]
    keys = ("python", "shared-library")
    owners = [(node, "path")]
    owners += [(op, key) for op in operators if isinstance(op, dict) for key in keys]
    for owner, key in owners:
        value = owner.get(key)
        if isinstance(value, str) and (folder / value).is_file():
            owner[key] = str((folder / value).resolve())


class DoraEngine:
    """One run of a graph on dora-rs; ``publish`` gets every report, as from the embedded engine.

    The interface :class:`~dora_notebook.Dataflow` uses: ``start``,
    ``wait``, ``stop``, ``done``, ``lock`` and ``runners`` (empty: no node
    runs in the kernel, so there is no hot swap and no tap).
    """

    def __init__(
        self,
        graph: Graph,
        files: dict[str, bytes],
        publish: Callable[[Report], None],
        coordinator: str | None = None,
        machine: str | None = None,
        daemon_port: int | None = None,
    ) -> None:
        self.graph = graph
        self.runners: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.counts = {spec.id: NodeCounts() for spec in graph}
        self._files = files
        self._publish = publish
        self._remote = parse_coordinator(coordinator) if coordinator else None
        self._dora = _dora_cli()
        self._env = _child_env()
        self._machine = machine or os.environ.get(MACHINE_ENV) or None
        self._folder = Path(
            tempfile.mkdtemp(prefix="dora-notebook-", dir=os.environ.get(WORKDIR_ENV) or None)
        )
        self._ready = self._folder / "bridge-ready"
        self._children: list[subprocess.Popen[bytes]] = []
        self._host, self._port = self._remote or ("127.0.0.1", _free_port())
        self._daemon_port = daemon_port or int(
            os.environ.get(DAEMON_PORT_ENV) or DEFAULT_DAEMON_PORT
        )
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._torn_down = False
        self._teardown_lock = threading.Lock()
        self.dataflow_id: str | None = None
        self.messages = 0

    # -- starting ----------------------------------------------------------------

    def start(self) -> None:
        """Export, start the cluster (unless remote), start the dataflow, join it."""
        atexit.register(self._at_exit)
        try:
            descriptor = self._write_export()
            if self._remote is None:
                self._start_cluster()
            # The bridge joins while `dora start` runs: the nodes wait for it,
            # and `dora start` waits for the nodes.
            self._thread = threading.Thread(target=self._watch, name=BRIDGE_ID, daemon=True)
            self._thread.start()
            self.dataflow_id = self._start_dataflow(descriptor)
            self._started.set()
        except BaseException:
            self._stopping.set()
            self._started.set()
            if self._thread is not None:
                self._thread.join(30.0)
            self._teardown()
            self.done.set()
            raise
        for node_id, counts in self.counts.items():
            if counts.status == "running":
                self._emit(node_id, "status", "running")

    def _write_export(self) -> Path:
        from ..export import DESCRIPTOR, write_files

        folder = self._folder / "dataflow"
        # The node files first: the descriptor names the ones present by absolute path.
        write_files(self._files, folder)
        descriptor = private_descriptor(
            self._files[DESCRIPTOR].decode(),
            self.graph,
            self._ready,
            folder.resolve(),
            machine=self._machine,
            placed=self._remote is not None,
        )
        return write_files({DESCRIPTOR: _yaml12.dump(descriptor).encode()}, folder)[0]

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self._folder / f"{name}.log", "wb")  # noqa: SIM115 - kept by the child
        with log:
            proc = subprocess.Popen(
                [self._dora, *args],
                cwd=self._folder,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children.append(proc)

    def _start_cluster(self) -> None:
        """A coordinator and a daemon of this run's own, on loopback ports."""
        self._daemon_port = _free_port()
        port = str(self._port)
        self._spawn(
            "coordinator",
            ["coordinator", "--interface", "127.0.0.1", "--port", port, "--store", "memory"],
        )
        self._spawn(
            "daemon",
            [
                "daemon",
                "--coordinator-addr",
                "127.0.0.1",
                "--coordinator-port",
                port,
                "--local-listen-port",
                str(self._daemon_port),
            ],
        )

    def _cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        address = ["--coordinator-addr", self._host, "--coordinator-port", str(self._port)]
        return subprocess.run(
            [self._dora, *args, *address],
            cwd=self._folder,
            env=self._env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _start_dataflow(self, descriptor: Path) -> str:
        """``dora start --detach``, retried while the daemon is still registering."""
        deadline = time.monotonic() + 20.0
        name = f"dora-notebook-{os.getpid()}-{int(time.time() * 1000)}"
        while True:
            try:
                done = self._cli("start", str(descriptor), "--name", name, "--detach")
            except subprocess.TimeoutExpired:
                raise DataflowError("dora start did not answer within 30 s") from None
            output = done.stdout + done.stderr
            if done.returncode == 0:
                return self._dataflow_uuid(output) or name
            # A daemon of ours may still be registering; a cluster's daemons are up.
            unready = _NO_DAEMON in output or "Connection refused" in output
            retry = self._remote is None and unready
            if not retry or time.monotonic() > deadline:
                hint = ""
                if _NO_DAEMON in output and self._remote is not None:
                    hint = (
                        " (the bridge and nodes without --machine go to a daemon without"
                        " --machine-id; or name this kernel's daemon with --machine NAME)"
                    )
                raise DataflowError(f"dora start failed: {_error_text(output)}{hint}")
            time.sleep(0.2)

    @staticmethod
    def _dataflow_uuid(output: str) -> str | None:
        for line in output.splitlines():
            if "dataflow start triggered:" in line:
                return line.rsplit(":", 1)[1].strip()
        return None

    # -- observing ---------------------------------------------------------------

    def _emit(self, node_id: str, kind: str, data: Any) -> None:
        counts = self.counts.get(node_id)
        if counts is not None and kind == "status":
            counts.status = data
            counts.final = counts.final or data in _FINAL
            counts.failed = data == "failed"
        elif counts is not None and kind == "error":
            counts.failed = True
        try:
            self._publish(Report(node_id, kind, data, time.time()))
        except Exception:  # a broken observer must not break the bridge
            import traceback

            traceback.print_exc()

    def _watch(self) -> None:
        """The bridge thread: relay reports, then wait for the dataflow's end, then clean up."""
        try:
            if any(spec.source is not None for spec in self.graph):
                self._bridge()
            self._started.wait()
            if self.dataflow_id is not None:
                self._await_end()
        except Exception as exc:  # reported on every panel still running
            for node_id, counts in self.counts.items():
                if not counts.final:
                    self._emit(node_id, "error", f"the dora bridge failed: {exc}")
        finally:
            self._settle()
            self._teardown()
            self.done.set()

    def _join(self) -> Any:
        import dora  # dora-rs itself: node code alone sees dora-notebook's module

        deadline = time.monotonic() + 30.0
        while True:
            try:
                return dora.Node(BRIDGE_ID, daemon_port=self._daemon_port)
            except Exception as exc:
                if self._stopping.is_set() or time.monotonic() > deadline:
                    raise DataflowError(
                        f"could not join the dataflow: {_error_text(str(exc))}"
                    ) from None
                time.sleep(0.1)

    def _bridge(self) -> None:
        node = self._join()
        try:
            self._ready.touch()
            stop_deadline: float | None = None
            while True:
                if self._stopping.is_set() and stop_deadline is None:
                    stop_deadline = time.monotonic() + 10.0
                if stop_deadline is not None and time.monotonic() > stop_deadline:
                    break
                event = node.next(timeout=0.2)
                if event is None or event["type"] == "STOP":
                    break
                if event["type"] == "INPUT":
                    self._receive(event)
                elif event["type"] == "INPUT_CLOSED":
                    self.counts[str(event["id"])].closed_at = time.monotonic()
                self._check_closed(grace=1.0)
        finally:
            del node

    def _receive(self, event: dict[str, Any]) -> None:
        self.messages += 1
        for text in event["value"].to_pylist():
            try:
                record = json.loads(text)
            except (TypeError, ValueError):
                continue
            node_id = record.get("node")
            counts = self.counts.get(node_id)
            if counts is None:
                continue
            counts.received = int(record.get("received", counts.received))
            counts.sent = int(record.get("sent", counts.sent))
            self._emit(node_id, record["kind"], record["data"])

    def _check_closed(self, grace: float) -> None:
        """A node whose reports ended without a final status: its process has ended."""
        now = time.monotonic()
        for node_id, counts in self.counts.items():
            closed = counts.closed_at
            if closed is None or counts.final or now - closed < grace:
                continue
            # dora may end an operator's process before what it sent on its
            # last INPUT_CLOSED arrives: its reports ending is its end.
            self._emit(node_id, "status", "failed" if counts.failed else "finished")

    def _dataflow_status(self) -> str | None:
        try:
            done = self._cli("list", "--format", "json", timeout=10.0)
        except subprocess.TimeoutExpired:
            return None
        for line in done.stdout.splitlines():
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                if self.dataflow_id in (row.get("uuid"), row.get("name")):
                    return str(row.get("status"))
        return None

    def _await_end(self) -> None:
        """Poll dora until the dataflow is no longer running (bounded once stopping)."""
        stop_deadline: float | None = None
        while True:
            status = self._dataflow_status()
            if status is not None and status.lower() != "running":
                self._outcome = status.lower()
                return
            if self._stopping.is_set():
                stop_deadline = stop_deadline or time.monotonic() + 10.0
                if time.monotonic() > stop_deadline:
                    return
            if status is None and not self._stopping.is_set() and not self._cluster_alive():
                return
            time.sleep(0.2)

    def _cluster_alive(self) -> bool:
        return self._remote is not None or all(p.poll() is None for p in self._children)

    def _settle(self) -> None:
        """Give every node without a final status one."""
        self._check_closed(grace=0.0)
        outcome = getattr(self, "_outcome", "finished")
        for node_id, counts in self.counts.items():
            if counts.final:
                continue
            failed = counts.failed or (outcome == "failed" and not self._stopping.is_set())
            self._emit(node_id, "status", "failed" if failed else "finished")

    # -- stopping ----------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the dataflow ends (and this run is cleaned up)."""
        if not self.done.wait(timeout):
            return False
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        return True

    def stop(self, timeout: float = 2.0) -> list[str]:
        """``dora stop`` the dataflow, then end everything this run started; return []."""
        if not self.done.is_set():
            self._stopping.set()
            if self.dataflow_id is not None:
                with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                    grace = f"{max(0.5, timeout):g}s"
                    self._cli("stop", self.dataflow_id, "--grace-duration", grace, timeout=15.0)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(30.0)
        self._teardown()
        return []

    def reload(self, spec: Any) -> Any:
        raise DataflowError("the dora engine cannot hot-swap a node; stop and start again")

    def _at_exit(self) -> None:
        self.stop(timeout=1.0)

    def _teardown(self) -> None:
        """Stop the daemon and coordinator this run started; remove the folder (once)."""
        with self._teardown_lock:
            if self._torn_down:
                return
            self._torn_down = True
        for proc in reversed(self._children):
            _end_session(proc)
        shutil.rmtree(self._folder, ignore_errors=True)
        atexit.unregister(self._at_exit)


def _error_text(output: str) -> str:
    """The gist of a dora CLI error: its first meaningful lines, without locations."""
    lines = []
    for line in output.splitlines():
        text = line.strip()
        if not text or text == "[ERROR]":
            continue
        if text.startswith(("Location:", "Stack backtrace:")):
            break
        lines.append(text)
    return " ".join(lines[:6]) or "no output"
