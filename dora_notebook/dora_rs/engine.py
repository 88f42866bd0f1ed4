"""Run a graph on real dora-rs and observe it from the kernel: ``start(engine="dora")``.

:class:`DoraEngine` exports the graph to a private temporary folder (as
``%dora_export`` does), adds to that descriptor one dynamic node,
:data:`BRIDGE_ID`, whose inputs are every cell node's reports output
(:data:`REPORTS_OUTPUT`) and every output of every node on the kernel's machine
(for ``%dora_tap`` and the per-edge counts: see :meth:`DoraEngine.tap` and
:meth:`DoraEngine.edge`; every node's log comes from ``dora logs --follow``,
see :meth:`DoraEngine._follow_logs`), and sets :data:`~dora_notebook.dora_rs.shim.REPORTS_ENV`
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

It then runs ``dora start --detach`` and starts the bridge process
(:mod:`dora_notebook.dora_rs.bridge`), which joins the dataflow with dora-rs's
``Node(BRIDGE_ID)`` and passes each event on as a line of JSON; a named
daemon thread of the kernel reads those lines, and every valid report
becomes the same :class:`~dora_notebook.core.observe.Report` the embedded engine
publishes. The kernel itself never loads dora-rs's node library (see
:func:`~dora_notebook.dora_rs.bridge.bridge_main` for why).

Real dora drops messages sent to a dynamic node before it is connected, so
the exported nodes wait (up to 30 s) for a file the bridge creates once it
has joined, before they start. Nothing started here outlives
:meth:`DoraEngine.stop` (registered at exit too); the folder is removed.

**Safety.** Every report carries a secret of the run (:data:`TOKEN_ENV`, in
the private descriptor's ``env`` only, never in ``%dora_export``); the bridge
reads nothing but JSON text from Arrow string arrays (``relay_event``),
and drops a record without that secret, naming another node than the one it
came from, or of an unknown kind (``accept_reports``). The coordinator,
daemon and bridge it starts listen on loopback only (zenoh's multicast
scouting is off), and everything dora-rs writes (its ``out/`` logs,
``$TMPDIR/dora-artifacts-*``, uv's cache when it looks for Python) goes into
the private folder.

**Failures.** dora-rs 1.1 keeps the other nodes running when a node's
process dies (killed, non-zero exit, an exception at import): their inputs
from it close, and the bridge gets a ``NODE_FAILED`` event for its reports
input. The node's panel then says ``failed``, with the cause from the
daemon's log when the daemon is this run's own ("killed by signal 9
(SIGKILL)", "exited with code 3") and any Python traceback in the node's
dora log.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..core import yaml12
from ..core.clock import wait_event
from ..core.events import Event
from ..core.graph import Graph, NodeSpec
from ..core.logs import STDOUT
from ..core.observe import Report
from ..core.params import param_text
from ..core.protocol import EdgeCounts
from ..core.record import TIMER_NODE, EdgeRecorder, Recording, source_edge
from ..core.tap import Tap
from ..errors import DataflowError
from .bridge import (
    BRIDGE_ID,
    BRIDGE_READY_ENV,
    TAP_PREFIX,
    TIMER_PREFIX,
    accept_reports,
    protocol_message,
    read_tap,
)
from .exits import Exit, describe_exit, traceback_in_log
from .export import has_context
from .logrecords import dropped_input, panel_log, parse_record
from .private import REPORTS_OUTPUT, private_descriptor
from .procs import child_env, dora_cli, end_session, error_text, free_port
from .shim import SEQ_KEY, SEQ_SPAN, read_stats, stats_path
from .swap import Swaps, missed_before_last

__all__ = [
    "BRIDGE_ID",
    "DAEMON_PORT_ENV",
    "MACHINE_ENV",
    "REPORTS_OUTPUT",
    "WORKDIR_ENV",
    "DoraEngine",
    "parse_coordinator",
    "private_descriptor",
]

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
#: What dora-rs 1.1's daemon logs once the coordinator has it.
_DAEMON_CONNECTED = "Connected to dora-coordinator"
#: What dora-rs 1.1's coordinator prints once it takes connections.
_COORDINATOR_LISTENING = "Listening on port"
#: What an edge's counts mean on this engine (the graph view shows it).
EDGE_NOTE = (
    "delivered = messages the source sent on this output (counted by the kernel's bridge) "
    "less dora-rs's drop warnings for this input; still queued ones count as delivered; "
    "the inputs a hot swap of the target lost count as dropped, and once the run ended, "
    "what dora-rs lost without a warning before a cell node's last message; "
    "queue depth, latency and "
    "busy share are not reported on this engine yet"
)
NOT_COUNTED = "not counted: the source runs on another machine"
#: Targets of the records dora-rs's daemon and coordinator log about a node.
_DORA_TARGETS = ("daemon", "coordinator", "spawner")
#: The daemon's record once a node's process has ended (dora-rs 1.1, measured).
_NODE_ENDED = "handling node stop with exit status"
_NO_DAEMON = "no unnamed daemon connections"
#: How dora-rs 1.1's coordinator and daemon fail when a port given them is taken (the
#: coordinator's and the daemon's zenoh listener), and the daemon's warning when its
#: dynamic-node port is (it goes on without that listener: the bridge could not join).
_PORT_TAKEN = ("Address already in use", "Daemon listen port already in use")
#: Starts of the coordinator or the daemon a taken port may cost: a port found free
#: can be taken before the process binds it (other programs' connections and servers).
_CLUSTER_ATTEMPTS = 3


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
        #: dora-rs said the node's process ended badly (``NODE_FAILED`` or its daemon's log).
        self.crashed = False
        self.closed_at: float | None = None
        #: Never blocked, no threads left: dora-rs kills a node's process that does not stop.
        self.blocked: str | None = None
        self.threads_left = 0
        #: Seconds spent handling events, from the node's stats file where the shim keeps one.
        self.busy: float | None = None


class DoraEngine:
    """One run of a graph on dora-rs; ``publish`` gets every report, as from the embedded engine.

    It implements :class:`~dora_notebook.core.protocol.Engine`; no node runs
    in the kernel: a hot swap goes through dora-rs (:meth:`reload`). Creating
    one starts and writes nothing; :meth:`start` does.
    """

    name = "dora"
    #: What :meth:`stop` does to a node that does not stop in time (see :attr:`stuck`).
    stuck_fate = "killed by dora-rs"

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
        self.done = threading.Event()
        self.counts = {spec.id: NodeCounts() for spec in graph}
        self._files = files
        self._publish = publish
        self._remote = parse_coordinator(coordinator) if coordinator else None
        self._dora = dora_cli()
        self._env: dict[str, str] = {}
        self._machine = machine or os.environ.get(MACHINE_ENV) or None
        self._folder: Path | None = None
        self._children: list[subprocess.Popen[bytes]] = []
        # A cluster of our own gets its port when it starts (see _start_cluster).
        self._host, self._port = self._remote or ("127.0.0.1", 0)
        self._daemon_port = daemon_port or int(
            os.environ.get(DAEMON_PORT_ENV) or DEFAULT_DAEMON_PORT
        )
        #: The run's secret: every report must carry it (see :func:`accept_reports`).
        self._token = secrets.token_hex(16)
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._bridge_proc: subprocess.Popen[bytes] | None = None
        self._bridged = False  # whether the descriptor has the bridge node (_write_export)
        self._zenoh_port: int | None = None
        self._torn_down = False
        self._teardown_lock = threading.Lock()
        self._outcome: str | None = None
        self.dataflow_id: str | None = None
        self._params: list[tuple[str, Event]] = []  # given before start, set once it runs
        #: Messages the bridge got, and report records it refused (see :func:`accept_reports`).
        self.messages = 0
        self.rejected = 0
        #: Nodes dora-rs killed because they did not stop within the grace period.
        self.stuck: list[str] = []
        #: The hot swaps of this run (:meth:`reload`): incarnations, drops, times.
        self.swaps = Swaps(self)
        #: The bridge's inputs from the nodes' outputs: input id -> (node, output).
        self._tap_sources: dict[str, tuple[str, str]] = {}
        self._taps: dict[str, Tap] = {}  # tap input id -> the tap it fills
        self._pending_taps: dict[tuple[str, str], Tap] = {}  # (node, output) -> tap, all asked
        self._tap_lock = threading.Lock()  # _taps, _recorded and the bridge's stdin
        self._wired = False  # whether _tap_sources are known (the export is written)
        self._recording: Recording | None = None
        self._recorded: dict[str, EdgeRecorder] = {}  # bridge input id -> its recorder
        self._timer_sources: dict[str, str] = {}  # bridge input id -> timer/millis/20...
        self._stamps: dict[str, int] = {}  # bridge input id -> the last SEQ_KEY recorded
        self._from_start = False  # whether the recording was attached before the start
        self._seen: dict[str, int] = {}  # tap input id -> messages the bridge got on it
        #: (node, input) -> what dora-rs lost there without a warning (_count_silent).
        self._silent: dict[tuple[str, str], int] = {}
        self._drops: dict[tuple[str, str], int] = {}  # (node, input) -> dora's drop warnings
        self._closed_taps: set[str] = set()
        self._open: set[str] = set()  # the bridge's inputs not closed yet
        self._log_proc: subprocess.Popen[bytes] | None = None  # dora logs --follow
        self._log_last = 0.0  # when it last gave a line
        self._log_thread: threading.Thread | None = None
        self._reported_sent: dict[str, int] = {}  # what a node's own reports say it sent
        self._shimmed = {spec.id for spec in graph if has_context(spec)}

    @property
    def folder(self) -> Path | None:
        """The private folder of this run (None before :meth:`start`; removed at the end)."""
        return self._folder

    @property
    def _ready(self) -> Path:
        assert self._folder is not None
        return self._folder / "bridge-ready"

    # -- starting ----------------------------------------------------------------

    def start(self) -> None:
        """Export, start the cluster (unless remote), start the dataflow, join it."""
        atexit.register(self._at_exit)
        try:
            self._folder = Path(
                tempfile.mkdtemp(prefix="dora-notebook-", dir=os.environ.get(WORKDIR_ENV) or None)
            )
            self._env = child_env(self._folder)
            descriptor = self._write_export()
            if self._remote is None:
                self._start_cluster()
            # The bridge joins while `dora start` runs: the nodes wait for it,
            # and `dora start` waits for the nodes.
            self._thread = threading.Thread(target=self._watch, name=BRIDGE_ID, daemon=True)
            self._thread.start()
            self.dataflow_id = self._start_dataflow(descriptor)
            self._follow_logs()
            self._started.set()
            for node_id, event in self._params:
                try:
                    self._dora_param(node_id, event)
                except DataflowError as exc:
                    self._emit(node_id, "warning", str(exc))
        except BaseException:
            self._stopping.set()
            self._started.set()
            if self._thread is not None:
                self._thread.join(30.0)
            self._teardown()
            self._end_recording()
            self.done.set()
            raise
        for node_id, counts in self.counts.items():
            if counts.status == "running":
                self._emit(node_id, "status", "running")

    def _write_export(self) -> Path:
        from .export import DESCRIPTOR, write_files

        assert self._folder is not None
        folder = self._folder / "dataflow"
        # The node files first: the descriptor names the ones present by absolute path.
        write_files(self._files, folder)
        recording = self._recording
        timers = [
            spec
            for spec in self._timers_used()
            if recording is not None and recording.wants(*source_edge(spec))
        ]
        descriptor = private_descriptor(
            self._files[DESCRIPTOR].decode(),
            self.graph,
            self._ready,
            folder.resolve(),
            machine=self._machine,
            placed=self._remote is not None,
            token=self._token,
            timers=timers,
        )
        bridge = [node for node in descriptor["nodes"] if node["id"] == BRIDGE_ID]
        self._bridged = bool(bridge)
        # A timer never closes: the bridge's end is its other inputs' (see _ask_dora).
        inputs = bridge[0]["inputs"] if bridge else {}
        self._open = {i for i in inputs if not i.startswith(TIMER_PREFIX)}
        for input_id, mapping in inputs.items():
            if input_id.startswith(TAP_PREFIX):
                node_id, _, output_id = mapping["source"].partition("/")
                self._tap_sources[input_id] = (node_id, output_id)
            elif input_id.startswith(TIMER_PREFIX):
                self._timer_sources[input_id] = source_edge(mapping["source"])[1]
        with self._tap_lock:  # the taps and the recording asked for before the start
            for input_id, source in self._tap_sources.items():
                if source in self._pending_taps:
                    self._taps[input_id] = self._pending_taps[source]
            self._wired = True
            if recording is not None:
                self._attach(recording)
        return write_files({DESCRIPTOR: yaml12.dump(descriptor).encode()}, folder)[0]

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        assert self._folder is not None
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
        return proc

    def _start_cluster(self) -> None:
        """A coordinator and a daemon of this run's own, on loopback ports.

        Without ``--zenoh-no-multicast`` dora-rs 1.1's daemon joins zenoh's
        multicast scouting group (224.0.0.224:7446) and binds a UDP socket on
        every interface; one daemon needs no scouting (it hands its nodes
        their endpoints itself), and its zenoh listener is pinned to loopback.
        The daemon is up once the coordinator has it: the bridge and ``dora
        start`` need that. A port taken between :func:`free_port` and the bind
        costs a new start on new ports, not the run.
        """

        def coordinator() -> list[str]:
            self._port = free_port()
            port = str(self._port)
            return ["coordinator", "--interface", "127.0.0.1", "--port", port, "--store", "memory"]

        def daemon() -> list[str]:
            self._daemon_port = free_port()
            self._zenoh_port = free_port()  # named, so the bridge process can be told it
            return [
                "daemon",
                "--coordinator-addr",
                "127.0.0.1",
                "--coordinator-port",
                str(self._port),
                "--local-listen-port",
                str(self._daemon_port),
                "--zenoh-no-multicast",
                "--zenoh-listen",
                f"127.0.0.1:{self._zenoh_port}",
            ]

        # A daemon that finds no coordinator yet tries again only a second later.
        self._spawn_up("coordinator", coordinator, _COORDINATOR_LISTENING, 10.0)
        # Measured: 35 ms on a quiet machine, up to 1 s under load.
        self._spawn_up("daemon", daemon, _DAEMON_CONNECTED, 20.0)

    def _spawn_up(self, name: str, args: Callable[[], list[str]], ready: str, wait: float) -> None:
        """Spawn ``dora <args()>`` until its log shows ``ready`` with no port taken.

        ``args`` picks new ports each time. A process that fails otherwise is
        an error with the cause it printed; one still not ready after ``wait``
        seconds is left to what comes next (``dora start`` says what is wrong).
        """
        assert self._folder is not None
        log = self._folder / f"{name}.log"
        for attempt in range(1, _CLUSTER_ATTEMPTS + 1):
            proc = self._spawn(name, args())
            self._await_log(log.name, ready, time.monotonic() + wait)
            text = log.read_text(encoding="utf-8", errors="replace")
            taken = any(marker in text for marker in _PORT_TAKEN)
            if not taken and proc.poll() is None:
                return
            # Its error, after the log records it wrote before it.
            cause = error_text(text[text.find("[ERROR]") :] if "[ERROR]" in text else text)
            if not taken:
                raise DataflowError(f"dora {name} failed: {cause}")
            end_session(proc)
            self._children.remove(proc)
            if attempt == _CLUSTER_ATTEMPTS:
                raise DataflowError(f"dora {name} found its port taken {attempt} times: {cause}")

    def _cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        address = ["--coordinator-addr", self._host, "--coordinator-port", str(self._port)]
        # Output read by this module: plain text, whatever colours the kernel forces.
        env = {k: v for k, v in self._env.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
        return subprocess.run(
            [self._dora, *args, *address],
            cwd=self._folder,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _await_log(self, name: str, text: str, deadline: float) -> None:
        """Until the log ``name`` of a process started here has ``text`` (bounded)."""
        assert self._folder is not None
        log = self._folder / name
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if text in log.read_text(encoding="utf-8", errors="replace"):
                    return
            if any(proc.poll() is not None for proc in self._children):
                return  # one died: the caller says why
            time.sleep(0.005)

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
                raise DataflowError(f"dora start failed: {error_text(output)}{hint}")
            time.sleep(0.05)

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
            if self._bridged:
                self._bridge()
            self._started.wait()
            if self.dataflow_id is not None:
                self._await_end()
        except Exception as exc:  # reported on every panel still running
            for node_id, counts in self.counts.items():
                if not counts.final:
                    self._emit(node_id, "error", f"the dora bridge failed: {exc}")
        finally:
            self._end_logs()
            # What a swap near the end dropped is counted before the counters are final.
            self.swaps.finish()
            with contextlib.suppress(Exception):  # best effort: the counts stay as they were
                self._count_silent()
            with contextlib.suppress(Exception):  # the cluster may be gone: settle anyway
                self._settle()
            for node_id, counts in self.counts.items():
                if not counts.final:
                    self._emit(node_id, "status", "failed" if counts.failed else "finished")
            self._teardown()
            self._end_recording()
            self.done.set()

    def _spawn_bridge(self) -> subprocess.Popen[bytes]:
        """The bridge process (see :func:`bridge_main`), in a session of its own.

        With a daemon of this run's own, it gets what dora-rs gives the nodes
        it spawns: the daemon's zenoh endpoint and no multicast scouting.
        """
        assert self._folder is not None
        env = dict(self._env)
        if self._zenoh_port is not None:
            env["DORA_ZENOH_CONNECT"] = f"tcp/127.0.0.1:{self._zenoh_port}"
            env["DORA_ZENOH_LISTEN"] = "tcp/127.0.0.1:0"
            env["DORA_ZENOH_MULTICAST"] = "off"
        env[BRIDGE_READY_ENV] = str(self._ready)
        module = [sys.executable, "-m", "dora_notebook.dora_rs.bridge"]
        with open(self._folder / "bridge.log", "wb") as log, self._tap_lock:
            # The taps asked for so far are arguments; later ones go to its stdin.
            proc = subprocess.Popen(
                [*module, str(self._daemon_port), *sorted({*self._taps, *self._recorded})],
                cwd=self._folder,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
            self._bridge_proc = proc
            return proc

    def _bridge(self) -> None:
        """Relay what the bridge process says until the dataflow's reports end.

        Reads its lines without blocking for long (``select``), so that a
        closed reports stream gets its end after a grace period, and a stop
        is bounded. If the dataflow ends before the bridge could join (a node
        failed before dora-rs started it), there is nothing to wait for.
        """
        proc = self._spawn_bridge()
        self._bridge_proc = proc
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        pending = b""
        joined = False
        stop_deadline: float | None = None
        end_at: float | None = None  # the dataflow has ended: read what is left until then
        next_look = time.monotonic() + 0.5
        try:
            while True:
                now = time.monotonic()
                if self._stopping.is_set() and not joined:
                    return  # stopped (or failed to start) before the bridge joined
                if self._stopping.is_set() and stop_deadline is None:
                    stop_deadline = now + 10.0
                if stop_deadline is not None and now > stop_deadline:
                    return
                readable, _, _ = select.select([fd], [], [], 0.2)
                if readable:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        return  # the bridge process ended
                    if end_at is not None:
                        # The dataflow has ended, but the bridge still relays what was
                        # queued for it (bridge._drain): read on while lines come.
                        end_at = max(end_at, now + 0.5)
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        message = protocol_message(line)
                        if message is None:
                            continue
                        if message["type"] == "JOINED":
                            joined = True
                            assert self._folder is not None
                            self._ready.touch()
                        elif message["type"] == "FAILED":
                            if self._stopping.is_set():
                                return
                            raise DataflowError(f"could not join the dataflow: {message['error']}")
                        elif not self._handle(message):
                            return
                elif self._ask_dora(joined) and self._started.is_set() and now > next_look:
                    # Before the bridge joined; or once every input of the bridge has
                    # closed (it may stay, as dora-rs gives it no end then): the nodes
                    # left, if any, have no outputs, and only dora-rs can say when they end.
                    next_look = now + 0.5
                    status = self._dataflow_status()
                    if status is not None and status.lower() != "running":
                        if not joined:
                            return
                        # Their last counts may still be in the pipe.
                        end_at = min(end_at or now + 0.5, now + 0.5)
                if end_at is not None and now > end_at:
                    return
                self._check_closed(grace=1.0)
        finally:
            end_session(proc, grace=1.0)
            proc.stdout.close()
            with self._tap_lock, contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()

    def _ask_dora(self, joined: bool) -> bool:
        """Whether only dora-rs can tell the bridge's loop that the dataflow has ended.

        Before the bridge joined; once every input of the bridge has closed;
        or once every node has a final status: on a cluster, dora-rs 1.1 may
        never close the bridge's input from a node on another machine
        (measured: a custom node on the other daemon that finished, its
        INPUT_CLOSED never came, and the run waited until a stop).
        """
        if not joined or not self._open:
            return True
        return all(counts.final for counts in self.counts.values())

    def _handle(self, message: dict[str, Any]) -> bool:
        """Act on one message of the bridge process; False once the dataflow's reports end."""
        kind = message.get("type")
        node_id = input_id = str(message.get("id"))
        tapped = self._tap_sources.get(input_id)
        if tapped is not None:  # an input from one of the node's outputs
            node_id = tapped[0]
        counts = self.counts.get(node_id)
        if kind == "STOP":
            return False
        if kind in ("INPUT_CLOSED", "NODE_FAILED") and self.swaps.swapping(node_id):
            return True  # the end of the process a hot swap replaced, not the node's
        if kind == "INPUT_CLOSED":
            self._open.discard(input_id)
        if kind == "INPUT":
            self._receive(node_id, message)
        elif kind == "LOGS":
            self._logs(message.get("texts"))
        elif kind == "COUNTS":
            self._count(message.get("counts"))
        elif kind == "TAP":
            self._tapped(input_id, message)
        elif kind == "INPUT_CLOSED" and counts is not None and tapped is not None:
            self._output_closed(input_id, node_id, counts)
        elif kind == "INPUT_CLOSED" and counts is not None:
            counts.closed_at = time.monotonic()
        elif kind == "NODE_FAILED" and counts is not None:
            # dora-rs 1.1: the process of the node feeding this input ended with
            # an error (the event's id is that node's id, as is the input's here).
            known = counts.failed  # its own traceback says why
            self._crashed(node_id, None if known else self._exit_of(node_id, wait=1.0))
        return True

    def _receive(self, node_id: str, message: dict[str, Any]) -> None:
        """Publish the valid reports of one message; count the refused ones."""
        self.messages += 1
        counts = self.counts.get(node_id)
        texts = message.get("texts")
        if not isinstance(texts, list):
            refused = message.get("refused", 1)
            self.rejected += refused if isinstance(refused, int) and refused > 0 else 1
            return
        records, refused = accept_reports(
            texts, self._token, node_id if counts is not None else None
        )
        self.rejected += refused
        if counts is None:
            return
        if counts.closed_at is not None and records:
            # dora-rs 1.1 can deliver INPUT_CLOSED ahead of the reports still queued
            # for the bridge: the grace of _check_closed runs from the last of them.
            counts.closed_at = time.monotonic()
        for record in records:
            if counts.crashed and record["kind"] == "status":
                continue  # dora-rs said the process failed: a late "finished" is not the end
            if not self.swaps.fold(node_id, record):
                continue  # the status of a process a hot swap replaced (its counts count)
            counts.received = int(record.get("received", counts.received))
            self._reported_sent[node_id] = int(record.get("sent", counts.sent))
            counts.sent = max(self._reported_sent[node_id], self._sent_by(node_id))
            self._emit(node_id, record["kind"], record["data"])

    # -- what dora-rs itself says: log records, messages on outputs -----------------

    def _follow_logs(self) -> None:
        """Read every node's log records as dora-rs keeps them, from the start, in a thread.

        ``dora logs ID --all-nodes --follow --log-format json`` gives the
        records dora's ``dora/logs`` input gives (its LogMessage JSON), but
        from the dataflow's start: a ``dora/logs`` input of the bridge misses
        what the nodes print before the bridge has joined (plain nodes do not
        wait for it). It ends by itself when the dataflow ends.
        """
        assert self._folder is not None and self.dataflow_id is not None
        address = ["--coordinator-addr", self._host, "--coordinator-port", str(self._port)]
        env = {k: v for k, v in self._env.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
        command = ["logs", self.dataflow_id, "--all-nodes", "--follow", "--log-format", "json"]
        with open(self._folder / "logs.log", "wb") as errors:
            self._log_proc = subprocess.Popen(
                [self._dora, *command, *address],
                cwd=self._folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                start_new_session=True,
            )
        self._log_thread = threading.Thread(
            target=self._read_logs, args=(self._log_proc,), name=f"{BRIDGE_ID}-logs", daemon=True
        )
        self._log_thread.start()

    def _end_logs(self, quiet: float = 0.3, limit: float = 2.0) -> None:
        """Once the dataflow has ended: read its last log lines, then end ``dora logs``.

        dora-rs 1.1's ``dora logs --follow`` stays for seconds after the
        dataflow's end (every stop took 3 s more waiting for it); the nodes'
        last lines come within a moment, so it ends after ``quiet`` seconds
        without a line (at most ``limit``).
        """
        if self._log_thread is None or self._log_proc is None:
            return
        deadline = time.monotonic() + limit
        while self._log_thread.is_alive() and time.monotonic() < deadline:
            if time.monotonic() - self._log_last > quiet:
                break
            time.sleep(0.02)
        end_session(self._log_proc, grace=0.5)
        self._log_thread.join(1.0)

    def _read_logs(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                self._log_last = time.monotonic()
                try:
                    self._logs([line.decode("utf-8", errors="replace")])
                except Exception:  # a broken record must not end the panels' logs
                    import traceback

                    traceback.print_exc()

    def _logs(self, texts: object) -> None:
        """Every node's log records (see :meth:`_follow_logs`): panel lines, drops, ends.

        A node with the context shim reports its printed lines itself, so of
        its records only those with a level (``node.log``, dora's own) are
        shown. The daemon's and coordinator's records about a node are not
        the node's (the embedded engine has none): the one saying that its
        process ended is read, not shown.
        """
        for text in texts if isinstance(texts, list) else ():
            parsed = parse_record(text)
            if parsed is None or parsed[0] not in self.counts:
                continue  # not a record, the dataflow's or the bridge's own
            node_id, record = parsed
            counts = self.counts[node_id]
            # (a target may be a path: dora-rs 1.1's daemon on a cluster logs "daemon::spawner")
            if set((record.target or "").split("::")) & set(_DORA_TARGETS):
                # A shim node's reports say when it ends (and a hot swap ends a process).
                ended = record.message.startswith(_NODE_ENDED) and node_id not in self._shimmed
                if ended:
                    counts.closed_at = counts.closed_at or time.monotonic()
                continue
            dropped = dropped_input(record)
            if dropped is not None:
                # An operator's runtime names an input OPERATOR/INPUT.
                key = (node_id, dropped.rpartition("/")[2])
                self._drops[key] = self._drops.get(key, 0) + 1
                counts.dropped += 1
                self._count_received(node_id)
            if node_id in self._shimmed and record.level == STDOUT:
                continue
            self._emit(node_id, "log", panel_log(record))

    def _count(self, seen: object) -> None:
        """The bridge's running totals of messages per output: the nodes' counters follow."""
        if not isinstance(seen, dict):
            return
        changed = set()
        for input_id, total in seen.items():
            source = self._tap_sources.get(str(input_id))
            if source is None or not isinstance(total, int) or isinstance(total, bool):
                continue
            self._seen[str(input_id)] = max(total, self._seen.get(str(input_id), 0))
            changed.add(source[0])
        for node_id in changed:
            counts = self.counts[node_id]
            counts.sent = max(self._reported_sent.get(node_id, 0), self._sent_by(node_id))
        for spec in self.graph:
            if spec.id not in self._shimmed:
                self._count_received(spec.id)
            else:
                self._count_delivered(spec.id)

    def _count_delivered(self, node_id: str) -> None:
        """A cell node's inputs so far, from its stats file (:class:`~.shim.InputStats`).

        Its reports carry its counts, but a node that prints and previews
        nothing sends none until it ends (its panel said "0 received" while
        the bridge counted what it sent). After a hot swap its counters are
        the swap's (see :mod:`.swap`).
        """
        counts = self.counts[node_id]
        swapped = self.swaps.incarnations.get(node_id, 0) or self.swaps.swapping(node_id)
        if counts.final or swapped or self._folder is None:
            return
        inputs = list(self.graph[node_id].inputs)
        stats = read_stats(stats_path(self._folder / "stats", node_id, 0), inputs)
        counts.received = max(counts.received, sum(v[0] for v in stats.values()))

    def _count_silent(self) -> None:
        """At the end: what dora-rs lost on a cell node's inputs without a warning, as dropped.

        A sender's numbers that a node skipped between two messages it got (or
        before its first) never reached it: dora-rs 1.1 loses the odd message
        under load, and a few early in a run, without a drop warning (see
        :func:`~.swap.missed_before_last`). What its warnings and the hot swaps
        already counted is not counted again. After a node's last message
        nothing is known (it may have stopped reading), so nothing is counted.
        """
        if self._folder is None:
            return
        for node_id in sorted(self._shimmed):
            spec = self.graph[node_id]
            number = self.swaps.incarnations.get(node_id, 0)
            path = stats_path(self._folder / "stats", node_id, number)
            lost = {}
            for input_id, stats in read_stats(path, list(spec.inputs)).items():
                if spec.inputs[input_id].source.startswith("dora/"):
                    continue  # timer ticks carry no numbers
                key = (node_id, input_id)
                missed = self.swaps.missed.get(key, 0) + missed_before_last(stats, number)
                warned = self._drops.get(key, 0) - self.swaps.overlap.get(key, 0)
                if missed > warned:
                    lost[input_id] = missed - warned
            if not lost:
                continue
            for input_id, count in lost.items():
                self._silent[(node_id, input_id)] = count
            total = sum(lost.values())
            self.counts[node_id].dropped += total
            detail = ", ".join(f"{k}: {v}" for k, v in lost.items())
            line = (
                f"dora-rs lost {total} input{'' if total == 1 else 's'} without a warning "
                f"({detail}): numbers its sender skipped before the last message this node got"
            )
            self._emit(node_id, "log", {"stdio": "warning", "line": line})

    def _sent_by(self, node_id: str) -> int:
        """What ``node_id`` sent on its outputs, as the bridge counted it."""
        return sum(self._seen.get(i, 0) for i, s in self._tap_sources.items() if s[0] == node_id)

    def _count_received(self, node_id: str) -> None:
        """A node without the shim received what its edges delivered (see :meth:`edge`)."""
        if node_id not in self._shimmed:
            inputs = self.graph[node_id].inputs
            self.counts[node_id].received = sum(self.edge(node_id, i).delivered for i in inputs)

    def _tapped(self, input_id: str, message: dict[str, Any]) -> None:
        """A message the bridge passed on whole: to its tap and its recording."""
        tap = self._taps.get(input_id)
        recorder = self._recorded.get(input_id)
        if tap is None and recorder is None:
            return
        received = time.monotonic_ns()  # the recording's clock
        try:
            value, metadata = read_tap(message)
        except ValueError:
            self.rejected += 1
            return
        stamp = metadata.pop(SEQ_KEY, None)  # the shim's own stamp, which node code never sees
        if tap is not None:
            tap.record(value, metadata)
        if recorder is not None:
            if isinstance(stamp, int):
                self._count_lost(input_id, recorder, stamp)
            # No number or cause: dora-rs does not say which input a node was handling.
            recorder.record(value, metadata, received)

    def _count_lost(self, input_id: str, recorder: EdgeRecorder, stamp: int) -> None:
        """Count what dora-rs lost on the way to the bridge, from a cell node's own numbering.

        A cell node numbers what it sends on each output (:data:`~.shim.SEQ_KEY`,
        per incarnation: a hot swap starts again); a number skipped is a
        message the bridge never got (dora-rs 1.1 loses a few with its default
        queue policy). Before the recording's first message of an output,
        only a recording attached before the start knows what came before.
        """
        last = self._stamps.get(input_id)
        self._stamps[input_id] = stamp
        if last is None:
            skipped = stamp % SEQ_SPAN if self._from_start else 0
        elif stamp // SEQ_SPAN == last // SEQ_SPAN:
            skipped = stamp - last - 1
        else:
            skipped = 0
        if skipped > 0:
            recorder.skip(skipped)

    def _output_closed(self, input_id: str, node_id: str, counts: NodeCounts) -> None:
        """A node without the shim whose outputs all closed has ended (:meth:`_check_closed`)."""
        self._closed_taps.add(input_id)
        if node_id in self._shimmed:
            return  # its reports say when it ends
        mine = [i for i, source in self._tap_sources.items() if source[0] == node_id]
        if all(i in self._closed_taps for i in mine):
            counts.closed_at = time.monotonic()

    def _check_closed(self, grace: float) -> None:
        """A node whose reports ended without a final status: its process has ended.

        dora may end an operator's process before what it sent on its last
        INPUT_CLOSED arrives, so a stream that closed is an end; but it is a
        failure if dora-rs says so, by ``NODE_FAILED`` (awaited ``grace``
        seconds) or in this run's daemon's log.
        """
        now = time.monotonic()
        for node_id, counts in self.counts.items():
            closed = counts.closed_at
            if closed is None or counts.final or counts.crashed or now - closed < grace:
                continue
            exit = self._exits().get(node_id)
            if exit is not None:
                self._crashed(node_id, exit)
            else:  # dora-rs saw the process exit with 0
                self._emit(node_id, "status", "failed" if counts.failed else "finished")

    def _crashed(self, node_id: str, exit: Exit | None) -> None:
        """dora-rs says ``node_id``'s process ended badly: its panel says failed, and why.

        The node's own error (a traceback it reported) stays the one shown;
        without one, how the process ended (``exit``, when known) and any
        Python traceback in its dora log are. A node killed while the dataflow
        was being stopped is one that did not stop in time (:attr:`stuck`).
        """
        counts = self.counts[node_id]
        if counts.crashed:
            return
        counts.crashed = True
        stopping = self._stopping.is_set()
        killed = stopping and exit is not None and exit[0] == "Signal"
        if killed and node_id in self._shimmed and not self.swaps.had_event(node_id):
            # Stopped before it ran: not stuck in its code, and not a failure (measured:
            # %dora_stop 1.3 s after %dora_start, dora-rs still starting every node).
            self._emit(
                node_id,
                "warning",
                "stopped before its first event: dora-rs 1.1 gives a node its STOP only once "
                "it has connected, and ended its process after the grace period",
            )
            self._emit(node_id, "status", "failed" if counts.failed else "finished")
            return
        if killed:
            self.stuck.append(node_id)
        if not counts.failed:
            cause = describe_exit(exit, stopping)
            excerpt = self._traceback_of(node_id)
            self._emit(node_id, "error", cause if excerpt is None else f"{cause}:\n{excerpt}")
        if counts.status != "failed":
            self._emit(node_id, "status", "failed")

    def _exits(self) -> dict[str, Exit]:
        """Node id -> how its process ended badly, from this run's own daemon's log."""
        if self._remote is not None or self._folder is None or self.dataflow_id is None:
            return {}
        try:
            text = (self._folder / "daemon.log").read_text(errors="replace")
        except OSError:
            return {}
        return self.swaps.exits(text, self.dataflow_id)  # not those of replaced processes

    def _exit_of(self, node_id: str, wait: float) -> Exit | None:
        """How ``node_id``'s process ended, from the daemon's log (awaited ``wait`` s)."""
        if self._remote is not None:
            return None  # the cluster's daemons log elsewhere
        deadline = time.monotonic() + wait
        while True:
            exit = self._exits().get(node_id)
            if exit is not None or time.monotonic() >= deadline:
                return exit
            time.sleep(0.05)

    def _traceback_of(self, node_id: str) -> str | None:
        """The last Python traceback in ``node_id``'s dora log, if any (e.g. at import)."""
        if self.dataflow_id is None:
            return None
        try:
            done = self._cli(
                "logs", self.dataflow_id, "--node", node_id, "--tail", "200", timeout=10.0
            )
        except (subprocess.TimeoutExpired, OSError):
            return None
        return traceback_in_log(done.stdout, node_id)

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
        """Give every node without a final status one, and every crash its cause.

        Runs while the cluster is still up (``dora logs`` still answers). A node
        the daemon's log says ended badly is failed, even after a final
        "finished" (``sys.exit(3)`` reports that before the exit code is known).
        """
        self._check_closed(grace=0.0)
        for node_id, exit in self._exits().items():
            if node_id in self.counts:
                self._crashed(node_id, exit)
        dataflow_failed = self._outcome == "failed" and not self._stopping.is_set()
        for node_id, counts in self.counts.items():
            if counts.final or counts.crashed:
                continue
            if dataflow_failed and not counts.failed:
                self._crashed(node_id, None)
            else:
                self._emit(node_id, "status", "failed" if counts.failed else "finished")

    # -- stopping ----------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the dataflow ends (and this run is cleaned up)."""
        if not wait_event(self.done, timeout):  # safe against an interrupt (see there)
            return False
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        return True

    def stop(self, timeout: float = 2.0) -> list[str]:
        """``dora stop`` the dataflow, then end everything this run started.

        Returns the nodes that did not stop within ``timeout`` (dora-rs's grace
        period), which dora-rs then killed; their panels say so.
        """
        if not self.done.is_set():
            self._stopping.set()
            if self.dataflow_id is not None:
                with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                    # A quarter of the time is left for the bridge to settle and
                    # for the teardown, so that stop() keeps to ``timeout``.
                    # (dora-rs parses whole units only: "1500ms", not "1.5s")
                    grace = f"{max(500, int(timeout * 750))}ms"
                    self._cli("stop", self.dataflow_id, "--grace-duration", grace, timeout=15.0)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(30.0)
        self._teardown()
        return list(self.stuck)

    # -- what the Dataflow asks of every engine (core.protocol.Engine) -------------

    def reload(self, spec: NodeSpec) -> Future[str | None]:
        """Hot-swap a running cell node with dora-rs's own mechanism (see :mod:`.swap`).

        An operator gets dora's hot reload (its state carries over, no input is
        lost); a custom node gets ``dora node replace``, and its panel then says
        how many inputs dora-rs dropped during the swap. A broken new version
        leaves the old one running. A change dora-rs 1.1 cannot swap (inputs,
        an operator's outputs, the kind) is refused in one line.
        """
        return self.swaps.reload(spec)

    def param(self, node_id: str, event: Event) -> bool:
        """``dora param set`` (or ``delete``) the parameter of ``event`` on this run.

        dora-rs 1.1 gives ``PARAM_UPDATE`` to custom nodes only: its operator
        runtime drops the event (it logs "received unknown event"), so a
        parameter of an operator is refused in one line.
        """
        if node_id not in self.graph:
            return False
        if self.graph[node_id].kind == "operator":
            raise DataflowError(
                f"node {node_id!r} is an operator: dora-rs 1.1 passes runtime parameters to "
                "custom nodes only (its operator runtime drops PARAM_UPDATE); make it a "
                "%%dora_node, or run it on the embedded engine"
            )
        if not self._started.is_set():
            self._params.append((node_id, event))
            return True
        if not self.live(node_id):
            return False
        self._dora_param(node_id, event)
        return True

    def _dora_param(self, node_id: str, event: Event) -> None:
        key = str(event["id"])
        if event["type"] == "PARAM_UPDATE":
            args = ["param", "set", node_id, key, param_text(event["value"])]
        else:
            args = ["param", "delete", node_id, key]
        assert self.dataflow_id is not None
        try:
            done = self._cli(*args, "--dataflow", self.dataflow_id, timeout=10.0)
        except subprocess.TimeoutExpired:
            raise DataflowError(f"node {node_id!r}: dora {' '.join(args[:2])} timed out") from None
        if done.returncode != 0:
            raise DataflowError(
                f"node {node_id!r}: dora {' '.join(args[:2])} {key} failed: "
                + error_text(done.stdout + done.stderr)
            )

    def live(self, node_id: str) -> bool:
        counts = self.counts.get(node_id)
        return counts is not None and not counts.final

    def counters(self, node_id: str) -> NodeCounts | None:
        return self.counts.get(node_id)

    def tap(self, node_id: str, output_id: str, tap: Tap) -> None:
        """Fill ``tap`` with what ``node_id`` sends on ``output_id`` from now on.

        The bridge subscribes to every output from the start (see
        :func:`.private._tap_inputs`); from now on it passes this one's values on too.
        """
        found = [i for i, source in self._tap_sources.items() if source == (node_id, output_id)]
        if not found and self._folder is not None:
            raise DataflowError(
                f"%dora_tap {node_id}/{output_id}: node {node_id!r} runs on another machine, "
                "and the kernel's bridge subscribes to the outputs of its own machine only"
            )
        with self._tap_lock:
            self._pending_taps[node_id, output_id] = tap
            for input_id in found:
                self._want(input_id, tap)

    def _want(self, input_id: str, tap: Tap) -> None:
        """Ask the bridge for the values of ``input_id`` for ``tap`` (lock held)."""
        self._taps[input_id] = tap
        self._ask(input_id)

    def record(self, recording: Recording) -> None:
        """Hand ``recording`` what the nodes send on the outputs it wants (see :meth:`_attach`).

        Before :meth:`start`: from the first message, timers included.
        """
        with self._tap_lock:
            if self.done.is_set():
                recording.stop()  # the run has ended: nothing comes
                return
            self._recording = recording
            self._recorded = {}
            self._stamps = {}
            self._from_start = not self._wired
            if self._wired:
                self._attach(recording)

    def _attach(self, recording: Recording) -> None:
        """Have the bridge pass on the values of every input ``recording`` wants (lock held).

        The bridge receives every output of the nodes on the kernel's machine
        from the start (:func:`.private._tap_inputs`), so a recording started
        later gets those from then on. The graph's timers reach the bridge
        only if it subscribed to them at the start, which it does for a
        recording attached before; otherwise :attr:`Recording.note` says
        they are missing, as it does for nodes on another machine.
        """
        recorded = {}
        for input_id, (node_id, output_id) in self._tap_sources.items():
            if recording.wants(node_id, output_id):
                recorded[input_id] = recording.recorder(node_id, output_id)
        for input_id, output_id in self._timer_sources.items():
            if recording.wants(TIMER_NODE, output_id):
                recorded[input_id] = recording.recorder(TIMER_NODE, output_id)
        self._recorded = recorded
        for input_id in recorded:
            self._ask(input_id)
        notes = []
        timers = set(self._timer_sources.values())
        missed = [s for s in self._timers_used() if recording.wants(*source_edge(s))]
        if any(source_edge(s)[1] not in timers for s in missed):
            notes.append(
                "timers not recorded: on the dora engine only a recording started before "
                "%dora_start gets them"
            )
        reachable = set(self._tap_sources.values())
        elsewhere = [
            spec.id
            for spec in self.graph
            if any(
                recording.wants(spec.id, o) and (spec.id, o) not in reachable for o in spec.outputs
            )
        ]
        if elsewhere:
            notes.append("not recorded, on another machine: " + ", ".join(elsewhere))
        recording.note = "; ".join(notes)

    def _timers_used(self) -> list[str]:
        """The timers the graph's nodes take, each in the spelling recorded (sorted)."""
        specs = {
            "/".join(source_edge(inp.source))
            for spec in self.graph
            for inp in spec.inputs.values()
            if inp.is_timer
        }
        return sorted(specs)

    def _end_recording(self) -> None:
        with self._tap_lock:
            if self._recording is not None:
                self._recording.stop()  # a recording is of one run

    def _ask(self, input_id: str) -> None:
        """Ask the bridge for the values of ``input_id`` (lock held; once the bridge runs)."""
        proc = self._bridge_proc
        if proc is not None and proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(OSError, ValueError):  # the bridge has ended
                proc.stdin.write(f"TAP {input_id}\n".encode())
                proc.stdin.flush()

    def edge(self, node_id: str, input_id: str) -> EdgeCounts:
        """One input's counters from what dora-rs tells the bridge (see :data:`EDGE_NOTE`).

        ``dropped``: dora's warnings for that input (one per message a full
        queue drops), plus what hot swaps of the node lost without a warning
        (counted exactly: see :mod:`.swap`). ``delivered``: what the source
        sent on that output (the bridge receives every output too) less those
        drops; a message still queued counts as delivered. Timer ticks are
        not counted.
        """
        if node_id not in self.graph or input_id not in self.graph[node_id].inputs:
            return EdgeCounts()
        spec = self.graph[node_id]
        # dora's warnings, and what hot swaps of the node lost without one (see .swap)
        dropped = self._drops.get((node_id, input_id), 0)
        dropped += self.swaps.dropped.get((node_id, input_id), 0)
        dropped += self._silent.get((node_id, input_id), 0)  # lost without a warning
        source = spec.inputs[input_id].source
        sent = self.bridge_count(source)
        if sent is None:
            note = "timer ticks are not counted" if source.startswith("dora/") else NOT_COUNTED
            return EdgeCounts(0, dropped, None, note=note)
        return EdgeCounts(max(0, sent - dropped), dropped, None, note=EDGE_NOTE)

    def bridge_count(self, source: str) -> int | None:
        """How many messages the bridge got on ``source`` ("node/output"); None if not tapped."""
        found = [i for i, s in self._tap_sources.items() if "/".join(s) == source]
        return self._seen.get(found[0], 0) if found else None

    def _at_exit(self) -> None:
        self.stop(timeout=1.0)

    def _teardown(self) -> None:
        """Stop the daemon and coordinator this run started; remove the folder (once)."""
        with self._teardown_lock:
            if self._torn_down:
                return
            self._torn_down = True
        bridge = [self._bridge_proc] if self._bridge_proc is not None else []
        bridge += [self._log_proc] if self._log_proc is not None else []
        for proc in [*bridge, *reversed(self._children)]:
            end_session(proc)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        atexit.unregister(self._at_exit)
