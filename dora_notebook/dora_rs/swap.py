"""What a hot swap on dora-rs needs besides the CLI: the coordinator's reload call, the drop count.

dora-rs 1.1 swaps a node of a running dataflow in two ways, and
:meth:`DoraEngine.reload <dora_notebook.dora_rs.engine.DoraEngine.reload>`
uses the one dora offers for the node's kind:

* an **operator** gets dora's hot reload (what ``dora start --attach
  --hot-reload`` does when its file changes): the coordinator's ``Reload``
  request makes the operator's runtime ``importlib.reload`` the file, build
  a new ``Operator()``, copy the old instance's ``__dict__`` into it and hand
  it a ``RELOAD`` event, all between two events, so no input is lost; when
  the new version fails to import or to start, the runtime logs "Failed to
  reload operator" and the old instance goes on. The CLI has no command for
  that request: :func:`coordinator_request` speaks the coordinator's
  WebSocket control protocol (``ws://HOST:PORT/api/control``, JSON text
  frames ``{"id", "method": "control", "params": ControlRequest}``) itself.
* a **custom node** gets ``dora node replace``: the daemon spawns the new
  process, stops routing to the old one and kills it after the grace period.
  Inputs that arrive in between are dropped, not queued; every message
  carries its sender's number (:data:`~dora_notebook.dora_rs.shim.SEQ_KEY`)
  and every incarnation of a receiver keeps what it got in a file
  (:class:`~dora_notebook.dora_rs.shim.InputStats`), so :func:`swap_drops`
  counts exactly what the swap lost.

A custom node whose re-run cell changed its inputs is **rewired** around the
replace (:class:`Rewiring`): ``dora node replace`` takes only a definition
whose inputs are the node's live edges, so ``dora node connect`` and
``disconnect`` make those edges the new version's first. dora-rs 1.1 sends a
node's outputs straight to the processes that subscribed when they started
(measured: a mapping added for a running process mostly never delivers, and
one removed goes on delivering), so only the replacement, which subscribes
to its new inputs, gets them right. What that cannot do is refused in one
line: an operator's inputs (its runtime process outlives a hot reload), and
timer or ``dora/logs`` inputs (the CLI takes node outputs only).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.graph import NodeSpec
from ..errors import ReloadError
from .exits import Exit, exits_in_order
from .export import has_context
from .private import IDLE_OUTPUT, private_descriptor
from .procs import error_text
from .shim import (
    INCARNATION_ENV,
    SEQ_SPAN,
    code_digest,
    read_discarded,
    read_stats,
    retire_inputs,
    stats_path,
)

__all__ = [
    "GRACE",
    "HOLD_INPUT",
    "Rewiring",
    "Swaps",
    "coordinator_request",
    "rewiring",
    "swap_drops",
    "trial_error",
]

#: The id dora-rs gives the operator of a node with one ``operator:`` (dora-core's default).
SINGLE_OPERATOR_ID = "op"


def _frame(text: str) -> bytes:
    """One masked WebSocket text frame (a client must mask what it sends)."""
    data = text.encode()
    size = len(data)
    if size < 126:
        head = bytes([0x81, 0x80 | size])
    elif size < 1 << 16:
        head = bytes([0x81, 0x80 | 126]) + struct.pack(">H", size)
    else:
        head = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", size)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the coordinator closed the connection")
        data += chunk
    return data


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    first, second = _read(sock, 2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack(">H", _read(sock, 2))[0]
    elif size == 127:
        size = struct.unpack(">Q", _read(sock, 8))[0]
    mask = _read(sock, 4) if second & 0x80 else b""
    data = _read(sock, size)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return first & 0x0F, data


def coordinator_request(
    host: str, port: int, request: Mapping[str, Any], timeout: float = 10.0
) -> dict[str, Any]:
    """Send one ``ControlRequest`` to a dora-rs 1.1 coordinator; return its reply's ``result``.

    The CLI's handshake (``Hello`` with the version) comes first, as the
    coordinator expects. Raises ``OSError`` (the connection) or ``RuntimeError``
    (the coordinator's error reply).

    Example (a running dataflow's operator, as ``--hot-reload`` does)::

        coordinator_request("127.0.0.1", 6013, {"Reload": {
            "dataflow_id": uuid, "node_id": "plot", "operator_id": "op"}})
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        dora_version = version("dora-rs-cli")
    except PackageNotFoundError:
        dora_version = "1.1.0"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /api/control HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += _read(sock, 1)
        if b" 101 " not in answer.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"the coordinator refused the connection: {answer[:80]!r}")
        result: dict[str, Any] = {}
        for params in ({"Hello": {"dora_version": dora_version}}, dict(request)):
            request_id = str(uuid.uuid4())
            frame = {"id": request_id, "method": "control", "params": params}
            sock.sendall(_frame(json.dumps(frame)))
            while True:
                opcode, data = _read_frame(sock)
                if opcode == 8:
                    raise ConnectionError("the coordinator closed the connection")
                if opcode != 1:
                    continue
                reply = json.loads(data)
                if reply.get("id") == request_id:
                    break
            if reply.get("error") is not None:
                raise RuntimeError(str(reply["error"]))
            result = reply.get("result") or {}
            if "Error" in result:
                raise RuntimeError(str(result["Error"]))
    return result


def swap_drops(
    old: Mapping[str, tuple[int, ...]], new: Mapping[str, tuple[int, ...]]
) -> dict[str, int | None]:
    """Per input: how many messages neither incarnation got across a swap (None: unknown yet).

    ``old`` and ``new`` are :func:`~dora_notebook.dora_rs.shim.read_stats` of
    the replaced incarnation (once it has ended) and of its replacement. What
    the sender numbered between the last message the old one got and the first
    the new one got was dropped. A sender that was itself replaced since numbers
    from 0 again: then what it sent before the new one's first message is
    counted (what its predecessor sent after the old one's last is not known).

    >>> swap_drops({"x": (10, 0, 9, 0)}, {"x": (5, 13, 17, 0)})
    {'x': 3}
    >>> swap_drops({"x": (10, 0, 9, 0)}, {"x": (0, -1, -1, 0)})
    {'x': None}
    """
    drops: dict[str, int | None] = {}
    for input_id, (_, first, _, _) in new.items():
        last = old.get(input_id, (0, -1, -1, 0))[2]
        if first < 0:
            drops[input_id] = None  # nothing came after the swap (yet)
        elif last >= 0 and first // SEQ_SPAN == last // SEQ_SPAN:
            drops[input_id] = max(0, first - last - 1)
        else:
            drops[input_id] = first % SEQ_SPAN
    return drops


def missed_before_last(stats: tuple[int, ...], incarnation: int) -> int:
    """What one incarnation of a node missed on an input before the last message it got.

    ``stats``: its :func:`~dora_notebook.dora_rs.shim.read_stats` of the input:
    the gaps in the sender's numbers and, for the node's first incarnation, what
    the sender numbered before the first message it got (dora-rs 1.1 loses a
    few messages early in a run, before every node is connected). After the
    last message nothing is known: the node may have stopped reading.

    >>> missed_before_last((95, 3, 101, 4), 0), missed_before_last((95, 3, 101, 4), 1)
    (7, 4)
    >>> missed_before_last((0, -1, -1, 0), 0)
    0
    """
    _, first, _, gaps = stats
    early = first if incarnation == 0 and 0 <= first < SEQ_SPAN else 0
    return gaps + early


#: The input a rewiring holds a node's inputs open with (from the bridge's idle output).
HOLD_INPUT = "dora_notebook_hold"


@dataclass
class Rewiring:
    """How a hot swap changes a custom node's inputs on dora-rs 1.1 (:func:`rewiring`).

    ``added``: input -> its source; ``removed``: input -> its old source;
    ``moved``: input -> (old source, new source); ``kept``: the inputs whose
    source did not change (the only ones whose swap drops can be counted: a
    new input has no "before"). ``hold``: every input the node has open would
    close meanwhile, and dora-rs 1.1 then stops the running version
    (``STOP ALL_INPUTS_CLOSED``, measured) before the replace: an input from
    the bridge's idle output holds them open.

    >>> old = {"n": "src/n", "t": "src/t"}
    >>> plan = Rewiring.between(old, {"n": "other/n", "m": "src/m"})
    >>> plan.steps("sink")
    [('connect', 'src/m', 'sink/m'), ('disconnect', 'src/n', 'sink/n'), \
('connect', 'other/n', 'sink/n'), ('disconnect', 'src/t', 'sink/t')]
    >>> plan.describe()
    'm from src/m added; n now from other/n (was src/n); t removed (was src/t)'
    """

    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    hold: bool = False

    @classmethod
    def between(cls, before: Mapping[str, str], after: Mapping[str, str]) -> Rewiring:
        """The rewiring from the inputs ``before`` to ``after`` (input -> source)."""
        plan = cls(
            added={k: v for k, v in after.items() if k not in before},
            removed={k: v for k, v in before.items() if k not in after},
            moved={k: (v, after[k]) for k, v in before.items() if k in after and after[k] != v},
            kept=[k for k, v in after.items() if before.get(k) == v],
        )
        # Connected first, an added input keeps the node's inputs open; a moved one
        # closes between its disconnect and connect.
        plan.hold = bool(plan.removed or plan.moved) and not plan.kept and not plan.added
        return plan

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.moved)

    def steps(self, node: str) -> list[tuple[str, str, str]]:
        """The ``dora node connect``/``disconnect`` calls, in order, before the replace.

        Added inputs first (the node's inputs stay open); a moved input is
        disconnected before its new source is connected (measured: the other
        way round, the replacement is told at once that the input closed).
        """
        steps = [("connect", source, f"{node}/{k}") for k, source in self.added.items()]
        for k, (old, new) in self.moved.items():
            steps += [("disconnect", old, f"{node}/{k}"), ("connect", new, f"{node}/{k}")]
        steps += [("disconnect", source, f"{node}/{k}") for k, source in self.removed.items()]
        return steps

    def describe(self) -> str:
        """One phrase per changed input."""
        said = [f"{k} from {source} added" for k, source in self.added.items()]
        said += [f"{k} now from {new} (was {old})" for k, (old, new) in self.moved.items()]
        said += [f"{k} removed (was {source})" for k, source in self.removed.items()]
        return "; ".join(said)


def rewiring(old: NodeSpec, new: NodeSpec) -> Rewiring:
    """The :class:`Rewiring` of a node from its running definition ``old`` to ``new``."""
    before = {k: v.source for k, v in old.inputs.items()}
    after = {k: v.source for k, v in new.inputs.items()}
    return Rewiring.between(before, after)


_TRIAL = """
import runpy, sys, traceback
sys.path[:0] = [sys.argv[2], sys.argv[3]]
try:
    namespace = runpy.run_path(sys.argv[1], run_name=sys.argv[4])
    namespace["Operator"]()
except BaseException:
    traceback.print_exc()
    sys.exit(1)
"""


_NODE_TRIAL = """
import runpy, sys, traceback
import dora

class Reached(BaseException):
    pass

class Node:
    def __init__(self, *args, **kwargs):
        raise Reached

dora.Node = Node
sys.path[:0] = [sys.argv[2], sys.argv[3]]
sys.argv = [sys.argv[1]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except Reached:
    sys.exit(0)
except SystemExit as exc:
    sys.exit(0 if exc.code in (None, 0) else 1)
except BaseException:
    traceback.print_exc()
    sys.exit(1)
"""


def trial_node_error(path: Path, search: Path, timeout: float = 10.0) -> str | None:
    """The traceback of running the custom-node script ``path`` up to its ``Node()``.

    ``dora node replace`` stops the running process as soon as the new one is
    spawned, so a script that fails before it connects (a syntax error, an
    import, its set-up) would leave nothing running. This runs the script in
    a process of its own, outside the dataflow, until it builds its ``Node``
    (which stops it there). None if it gets there, ends cleanly, or is still
    busy after ``timeout`` seconds (its set-up then runs twice: here, and in
    the replacement).
    """
    return _traceback_of(
        [sys.executable, "-c", _NODE_TRIAL, str(path), str(path.parent), str(search)],
        search,
        timeout,
    )


def trial_error(path: Path, search: Path, timeout: float = 20.0) -> str | None:
    """The traceback of importing the operator file ``path`` and building its ``Operator``.

    ``search``: the dataflow's folder, where the modules it imports are.

    dora-rs's runtime logs only "Could not reload MODULE while reloading"
    when a hot reload fails; this repeats the import in a process of its own
    (outside the dataflow) to say why. None if it works there.
    """
    return _traceback_of(
        [sys.executable, "-c", _TRIAL, str(path), str(path.parent), str(search), path.stem],
        path.parent,
        timeout,
    )


def _traceback_of(command: list[str], cwd: Path, timeout: float) -> str | None:
    """The last traceback a trial process wrote, or None if it ended well (or in time out)."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (subprocess.TimeoutExpired, OSError):
        return None
    if done.returncode == 0:
        return None
    text = done.stderr.strip()
    start = text.rfind("Traceback (most recent call last):")
    return text[start:] if start >= 0 else text or None


#: How long the node a ``dora node replace`` replaced gets before dora-rs kills it.
#: dora-rs 1.1 sends it no STOP (measured: its replacement gets it), so it is
#: always killed; its counts survive in its stats file.
GRACE = "1s"
_GRACE_S = 1.0
#: How long a swap may take in all (a trial, the startup barrier, a busy operator):
#: below the 10 s ``Dataflow`` waits, so that a late success cannot follow a refusal.
_TAKE_S = 8.0
#: Of that, how long a custom node's trial may run before the swap goes ahead anyway.
_TRIAL_S = 4.0


class Swaps:
    """The hot swaps of one :class:`~dora_notebook.dora_rs.engine.DoraEngine` run.

    It keeps, per node, which incarnation runs (0 until a ``dora node
    replace``), the counts of the ones replaced (so the panel's counters go
    on), the exits dora-rs logged for those (not failures of the node), and
    what each swap dropped.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.incarnations: dict[str, int] = {}
        #: (node, input) -> inputs dora-rs dropped during hot swaps of the node, less those
        #: it warned about (a full queue while the replacement started): the engine counts those.
        self.dropped: dict[tuple[str, str], int] = {}
        #: (node, input) -> what the replaced incarnations missed before their last
        #: message: gaps in the sender's numbers, and for the first incarnation what the
        #: sender numbered before its first message (see DoraEngine._count_silent).
        self.missed: dict[tuple[str, str], int] = {}
        #: (node, input) -> the swap drops dora-rs also warned about (not added twice).
        self.overlap: dict[tuple[str, str], int] = {}
        #: Swap times measured (seconds from the request until dora-rs took the new version).
        self.times: list[float] = []
        self._parts: dict[str, dict[int, list[int]]] = {}
        self._superseded: dict[str, int] = {}  # node -> exits of replaced incarnations
        self._swapping: set[str] = set()
        #: Nodes whose live edges hold HOLD_INPUT (a rewiring left them no other input).
        self._held: set[str] = set()
        self._codes: dict[str, list[str]] = {}
        self._ended: set[tuple[str, int]] = set()  # replaced incarnations that reported their end
        self._cond = threading.Condition()
        self._deadline = 0.0  # when the swap under way must have been taken (_TAKE_S)
        #: The threads counting what a swap dropped (:meth:`_count_drops`); the run's end
        #: waits for them (:meth:`finish`), or a counter read after it would miss theirs.
        self._counting: list[threading.Thread] = []
        #: Set by :meth:`finish`: the dataflow has ended, every process is gone.
        self._run_over = threading.Event()

    # -- what the engine asks while the graph runs --------------------------------

    def swapping(self, node_id: str) -> bool:
        """Whether ``node_id`` is being replaced (its old process's end is not the node's)."""
        return node_id in self._swapping

    def fold(self, node_id: str, record: dict[str, Any]) -> bool:
        """Make a report's counters the node's over all its incarnations; False: do not publish.

        A status of an incarnation a swap replaced is not the node's (dora-rs
        killed that process); its counters still count.
        """
        if record.get("kind") == "status" and isinstance(record.get("code"), str):
            with self._cond:
                self._codes.setdefault(node_id, []).append(record["code"])
                self._cond.notify_all()
        number = record.get("incarnation", 0)
        number = number if isinstance(number, int) and number >= 0 else 0
        current = self.incarnations.get(node_id, 0)
        if current == 0 and number == 0:
            return True
        with self._cond:
            part = self._parts.setdefault(node_id, {}).setdefault(number, [0, 0])
            part[0] = max(part[0], int(record.get("received", 0)))
            part[1] = max(part[1], int(record.get("sent", 0)))
            record["received"], record["sent"] = self._totals(node_id)
        if number < current and record.get("kind") == "status":
            if record.get("data") in ("finished", "failed"):
                self._ended.add((node_id, number))
            return False
        return True

    def _totals(self, node_id: str) -> tuple[int, int]:
        parts = self._parts.get(node_id, {}).values()
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    def exits(self, text: str, dataflow_id: str) -> dict[str, Exit]:
        """Node id -> how its process ended badly, without the ends of replaced incarnations."""
        exits: dict[str, Exit] = {}
        seen: dict[str, int] = {}
        for node_id, exit in exits_in_order(text, dataflow_id):
            seen[node_id] = seen.get(node_id, 0) + 1
            if node_id in self._swapping or seen[node_id] <= self._superseded.get(node_id, 0):
                continue
            exits[node_id] = exit
        return exits

    # -- a swap -------------------------------------------------------------------

    def reload(self, spec: NodeSpec) -> Future[str | None]:
        """Swap the running node ``spec.id`` for ``spec`` with dora-rs's own mechanism.

        The future gives None once dora-rs runs the new version, or why it
        does not (the old one then keeps running). What cannot be swapped on
        dora-rs 1.1 is refused at once, in one line (:class:`ReloadError`).
        """
        future: Future[str | None] = Future()
        try:
            refusal = self._refusal(spec)
        except Exception as exc:  # said, not raised: the old version runs
            refusal = f"node {spec.id!r}: {exc}"
        if refusal is not None:
            future.set_exception(ReloadError(refusal))
            return future
        try:
            compile(spec.source or "", spec.code_name(), "exec")
        except SyntaxError:
            error = traceback.format_exc(limit=0).strip()
            self._failed(spec.id, error)
            future.set_result(error)
            return future
        self._deadline = time.monotonic() + _TAKE_S
        threading.Thread(
            target=self._run, args=(spec, future), name=f"dora-swap-{spec.id}", daemon=True
        ).start()
        return future

    def _refusal(self, spec: NodeSpec) -> str | None:
        engine = self.engine
        node = spec.id
        old = engine.graph[node] if node in engine.graph else None  # noqa: SIM401 - no .get
        counts = engine.counts.get(node)
        if old is None or counts is None or engine.dataflow_id is None:
            return f"node {node!r} is not running on dora: stop and start the graph to run it"
        if counts.final:
            return f"node {node!r} has {counts.status}; stop and start the graph to run it"
        if spec.kind != old.kind:
            return (
                f"node {node!r} changed from {old.kind} to {spec.kind}; stop and start the "
                "graph to run it"
            )
        if spec.source is None or old.source is None or not has_context(old):
            return (
                f"node {node!r}: only a node defined in a cell can be hot-swapped on dora; "
                "stop and start the graph to run the new definition"
            )
        plan = rewiring(old, spec)
        if plan:
            changed = ", ".join(sorted([*plan.added, *plan.removed, *plan.moved]))
            if spec.kind == "operator":
                return (
                    f"node {node!r}: its inputs changed ({changed}), and dora-rs 1.1 cannot "
                    "rewire an operator: its hot reload keeps the runtime process, which takes "
                    "only the inputs it subscribed to when it started (an input added with dora "
                    "node connect never reaches it: measured), and dora node replace takes custom "
                    "nodes only; %dora_stop, re-run the cell, %dora_start --engine dora"
                )
            builtin = sorted(
                k
                for k in [*plan.added, *plan.removed, *plan.moved]
                if (old.inputs[k].source if k in old.inputs else "").startswith("dora/")
                or (spec.inputs[k].source if k in spec.inputs else "").startswith("dora/")
            )
            if builtin:
                return (
                    f"node {node!r}: its inputs changed ({', '.join(builtin)} from dora/), and "
                    "dora-rs 1.1 cannot rewire a timer or dora/logs input of a running node "
                    "(dora node connect/disconnect take node outputs only); %dora_stop, re-run "
                    "the cell, %dora_start --engine dora"
                )
        if spec.kind == "operator" and list(spec.outputs) != list(old.outputs):
            return (
                f"node {node!r}: its outputs changed, and dora-rs 1.1's hot reload keeps an "
                "operator's outputs; %dora_stop, re-run the cell, %dora_start --engine dora"
            )
        if spec.machine != old.machine:
            return (
                f"node {node!r}: --machine changed, and dora-rs 1.1 cannot move a running node "
                "(dora node replace runs the new version on the daemon that runs the node); "
                "%dora_stop, re-run the cell, %dora_start --engine dora"
            )
        if node in self._swapping:
            return f"node {node!r} is being swapped already; re-run the cell once it runs"
        return None

    def _run(self, spec: NodeSpec, future: Future[str | None]) -> None:
        try:
            if spec.kind == "operator":
                error = self._reload_operator(spec)
            else:
                error = self._replace_node(spec)
        except Exception as exc:  # the old version runs on: say why
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self.engine.graph.add(spec, replace=True)
        else:
            self._failed(spec.id, error)
        future.set_result(error)

    def _failed(self, node_id: str, error: str) -> None:
        self.engine._emit(
            node_id, "warning", f"the new version failed; the previous one keeps running\n{error}"
        )

    def _rendered(self, spec: NodeSpec) -> tuple[dict[str, Any], Path, bytes]:
        """The new version's entry of the private descriptor, its file and the file's bytes."""
        from .export import DESCRIPTOR, render

        engine = self.engine
        trial = engine.graph.copy()
        trial.add(spec, replace=True)
        files = render(trial)
        raw = yaml.safe_load(files[DESCRIPTOR])
        entry = next(n for n in raw["nodes"] if n["id"] == spec.id)
        name = entry["operator"]["python"] if spec.kind == "operator" else entry["path"]
        folder = (engine.folder / "dataflow").resolve()
        descriptor = private_descriptor(
            files[DESCRIPTOR].decode(),
            trial,
            engine._ready,
            folder,
            machine=engine._machine,
            placed=engine._remote is not None,
            token=engine._token,
        )
        entry = next(n for n in descriptor["nodes"] if n["id"] == spec.id)
        return entry, folder / name, files[name]

    def _reload_operator(self, spec: NodeSpec) -> str | None:
        """dora-rs's hot reload: the new file, then the coordinator's ``Reload`` request."""
        engine = self.engine
        _, path, data = self._rendered(spec)
        current = self._operator_file(spec.id)
        if current is None or current != path:
            return (
                f"node {spec.id!r}: the new version's module name differs ({path.name}), which "
                "dora-rs's hot reload cannot follow; stop and start the graph"
            )
        if not self._await_first_event(spec.id, self._deadline - 3.0):
            return (
                "dora-rs has not started the operator yet (it has had no event), and dora-rs "
                "1.1 drops a reload asked for before; re-run the cell once it runs"
            )
        previous = path.read_bytes()
        wanted = code_digest(data)
        with self._cond:
            before = len(self._codes.get(spec.id, []))
        started = time.monotonic()
        _rewrite(path, data)
        try:
            coordinator_request(
                engine._host,
                engine._port,
                {
                    "Reload": {
                        "dataflow_id": engine.dataflow_id,
                        "node_id": spec.id,
                        "operator_id": SINGLE_OPERATOR_ID,
                    }
                },
            )
        except (OSError, RuntimeError) as exc:
            _rewrite(path, previous)
            return f"dora-rs's coordinator refused the reload: {exc}"
        deadline = self._deadline
        with self._cond:
            while len(self._codes.get(spec.id, [])) <= before:
                left = deadline - time.monotonic()
                if left <= 0 or engine.done.is_set():
                    break
                self._cond.wait(min(left, 0.2))
            codes = self._codes.get(spec.id, [])[before:]
        took = time.monotonic() - started
        if codes and codes[0] == wanted:
            self.times.append(took)
            engine._emit(
                spec.id,
                "log",
                {
                    "stdio": "info",
                    "line": (
                        f"hot reload (dora-rs): the new version took over in {took:.2f} s, "
                        "with the old instance's attributes, between two events: no input "
                        "dropped"
                    ),
                },
            )
            return None
        _rewrite(path, previous)  # a late reload then reloads the running version
        if not codes:
            return (
                f"dora-rs did not hand the operator its RELOAD within {_TAKE_S:.0f} s (is it "
                "busy?); the running version goes on"
            )
        trial = engine.folder / "trial" / path.name
        trial.parent.mkdir(exist_ok=True)
        trial.write_bytes(data)
        reason = trial_error(trial, path.parent)
        return reason or "dora-rs could not reload it (its log says 'Failed to reload operator')"

    def had_event(self, node_id: str) -> bool:
        """Whether cell node ``node_id``'s process runs its code: an operator's had its
        first event, a custom node's ``Node()`` returned (dora-rs had started it)."""
        return self._await_first_event(node_id, 0.0)

    def _await_first_event(self, node_id: str, deadline: float) -> bool:
        """Until ``node_id``'s process has had its first event (dora-rs runs it); False: not yet.

        dora-rs 1.1 drops the coordinator's ``Reload`` for an operator whose
        runtime is still starting (measured: asked 0.3-1.2 s after a
        ``%dora_start`` that returned while dora-rs was still starting the
        nodes, the RELOAD never came). A cell node's context makes its stats
        file at its first event (:class:`~dora_notebook.dora_rs.shim.InputStats`).
        """
        engine = self.engine
        if engine.folder is None:
            return True
        path = Path(stats_path(engine.folder / "stats", node_id, self.incarnations.get(node_id, 0)))
        while not path.exists():
            counts = engine.counts.get(node_id)
            if counts is not None and (counts.received or counts.sent):
                return True  # (a node without inputs has no stats file)
            if time.monotonic() > deadline or engine.done.is_set():
                return False
            time.sleep(0.02)
        return True

    def _operator_file(self, node_id: str) -> Path | None:
        from .export import DESCRIPTOR

        engine = self.engine
        descriptor = yaml.safe_load((engine.folder / "dataflow" / DESCRIPTOR).read_text())
        for node in descriptor["nodes"]:
            if node["id"] == node_id and isinstance(node.get("operator"), dict):
                return Path(node["operator"]["python"])
        return None

    def _rewire(self, steps: list[tuple[str, str, str]]) -> tuple[int, str | None]:
        """Run ``dora node connect``/``disconnect`` steps; how many went through, and why not."""
        engine = self.engine
        for done, (verb, source, target) in enumerate(steps):
            result = engine._cli(
                "node", verb, source, target, "--dataflow", str(engine.dataflow_id), timeout=30.0
            )
            if result.returncode != 0:
                output = result.stdout + result.stderr
                return done, f"dora node {verb} {source} {target} refused: {error_text(output)}"
        return len(steps), None

    def _unwire(self, steps: list[tuple[str, str, str]]) -> str:
        """Undo rewiring ``steps`` (best effort, in reverse); what could not be undone."""
        back = [
            ("disconnect" if verb == "connect" else "connect", source, target)
            for verb, source, target in reversed(steps)
        ]
        left: list[str] = []
        for step in back:
            if self._rewire([step])[1] is not None:
                left.append(" ".join(step))
        return "; not undone: " + ", ".join(left) if left else ""

    def _retire(self, node: str, old_spec: NodeSpec, moved: list[str]) -> Callable[[bool], None]:
        """Make the running incarnation of ``node`` discard ``moved``'s messages (undo: False)."""
        folder = self.engine.folder / "stats" if self.engine.folder is not None else None
        if folder is None or not moved:
            return lambda flag: None
        path = stats_path(folder, node, self.incarnations.get(node, 0))
        inputs = list(old_spec.inputs)
        retire_inputs(path, inputs, moved)

        def undo(flag: bool) -> None:
            if not flag:
                retire_inputs(path, inputs, moved, flag=False)

        return undo

    def _replace_node(self, spec: NodeSpec) -> str | None:
        """``dora node replace``: a new process under the same id; its drops counted after.

        A change of the node's inputs is rewired first (:class:`Rewiring`):
        dora-rs 1.1 replaces a node only with a definition whose inputs are
        its live edges.
        """
        from .bridge import BRIDGE_ID

        engine = self.engine
        node = spec.id
        old_spec = engine.graph[node]
        plan = rewiring(old_spec, spec)
        hold = f"{BRIDGE_ID}/{IDLE_OUTPUT}"
        held = node in self._held or plan.hold
        entry, path, data = self._rendered(spec)
        if held:  # a live edge: the replacement's definition must name it too
            entry.setdefault("inputs", {})[HOLD_INPUT] = hold
        number = self.incarnations.get(node, 0) + 1
        entry["env"][INCARNATION_ENV] = str(number)
        definition = engine.folder / f"replace-{node}-{number}.yml"
        definition.write_text(yaml.safe_dump(entry, sort_keys=False))
        trial = engine.folder / "trial" / path.name
        trial.parent.mkdir(exist_ok=True)
        trial.write_bytes(data)
        reason = trial_node_error(trial, path.parent, timeout=_TRIAL_S)
        if reason is not None:
            return reason
        steps = plan.steps(node)
        if plan.hold and node not in self._held:
            steps.insert(0, ("connect", hold, f"{node}/{HOLD_INPUT}"))
        # The running version discards what comes on a moved input from now on:
        # its new source is connected before the replace (see shim.retire_inputs).
        retire = self._retire(node, old_spec, list(plan.moved))
        rewired = time.monotonic()
        done, refused = self._rewire(steps)
        if refused is not None:
            retire(False)
            return refused + self._unwire(steps[:done])
        rewired = time.monotonic() - rewired
        previous = path.read_bytes() if path.is_file() else None
        before = self._exit_count(node)
        warned = dict(getattr(engine, "_drops", {}))  # dora-rs's drop warnings before the swap
        self._swapping.add(node)
        if number == 1:  # the first incarnation's counts so far (fold keeps them from now on)
            counts = engine.counts[node]
            with self._cond:
                self._parts.setdefault(node, {})[0] = [counts.received, counts.sent]
        # From now on the old process's reports are a replaced incarnation's: its end
        # (it may get the STOP and report "finished" before replace returns) is not the node's.
        self.incarnations[node] = number
        started = time.monotonic()
        path.write_bytes(data)
        while True:
            done = engine._cli(
                "node",
                "replace",
                node,
                "--dataflow",
                str(engine.dataflow_id),
                "--from-yaml",
                str(definition),
                "--grace",
                GRACE,
                timeout=30.0,
            )
            output = done.stdout + done.stderr
            # dora-rs 1.1 refuses for 1-2 s after the start ("startup barrier").
            barrier = "startup barrier" in output
            if done.returncode == 0 or not barrier or time.monotonic() > self._deadline:
                break
            time.sleep(0.1)
        took = time.monotonic() - started
        if done.returncode != 0:
            self.incarnations[node] = number - 1
            self._swapping.discard(node)
            if previous is not None:
                path.write_bytes(previous)
            undone = self._unwire(steps) if steps else ""
            retire(False)
            return f"dora node replace refused it: {error_text(output)}{undone}"
        self.times.append(took)
        if held:
            unhold = [("disconnect", hold, f"{node}/{HOLD_INPUT}")]
            if spec.inputs and self._rewire(unhold)[1] is None:
                self._held.discard(node)
            else:
                # Without an input of its own, the replacement would be told that all its
                # inputs closed, and stop: the hold stays (it never sends anything).
                self._held.add(node)
        engine._emit(node, "status", "running")
        if plan:
            engine._emit(
                node,
                "log",
                {
                    "stdio": "info",
                    "line": (
                        f"hot swap: inputs rewired in {rewired:.2f} s (dora node connect/"
                        f"disconnect): {plan.describe()}"
                    ),
                },
            )
        engine._emit(
            node,
            "log",
            {
                "stdio": "info",
                "line": (
                    f"hot swap (dora node replace): incarnation {number} took over in "
                    f"{took:.2f} s; counting the inputs dora-rs drops during the swap"
                ),
            },
        )
        counting = threading.Thread(
            target=self._count_drops,
            args=(spec, old_spec, number, before, started, warned),
            name=f"dora-swap-drops-{node}",
            daemon=True,
        )
        self._counting.append(counting)
        counting.start()
        return None

    def finish(self, timeout: float = 10.0) -> None:
        """The dataflow ended: let the swaps' drop counting end, and wait for it.

        Called before the run folder (the stats files) goes and before the
        run is done: a swap shortly before the end was still being counted
        when ``wait()`` returned, and its drops were missing from the counters
        (CI44, CI45). Every process is gone, so nothing is waited for any more.
        """
        self._run_over.set()
        deadline = time.monotonic() + timeout
        for counting in self._counting:
            counting.join(max(0.0, deadline - time.monotonic()))

    def _dropped_at_end(
        self, spec: NodeSpec, input_id: str, old: tuple[int, ...] | None
    ) -> int | None:
        """After the run: what ``input_id``'s sender sent after the old incarnation's last message.

        ``old``: that incarnation's :func:`read_stats` of the input. Known only
        for a sender never swapped itself (its numbers are its messages, 0 up)
        whose output the bridge counted, and an old incarnation that got one
        of them at least; None otherwise.
        """
        source = spec.inputs[input_id].source
        last = old[2] if old is not None else -1
        sent = self.engine.bridge_count(source)
        if self.incarnations.get(source.partition("/")[0], 0) or sent is None:
            return None
        if not 0 <= last < SEQ_SPAN:
            return None
        return max(0, sent - (last + 1))

    def _exit_count(self, node_id: str) -> int:
        engine = self.engine
        if engine._remote is not None or engine.dataflow_id is None:
            return 0
        try:
            text = (engine.folder / "daemon.log").read_text(errors="replace")
        except OSError:
            return 0
        return sum(1 for n, _ in exits_in_order(text, engine.dataflow_id) if n == node_id)

    def _count_drops(
        self,
        spec: NodeSpec,
        old_spec: NodeSpec,
        number: int,
        exits_before: int,
        started: float,
        warned: dict[tuple[str, str], int],
    ) -> None:
        """After a replace: the old process's end, then what the swap dropped, on the panel."""
        engine = self.engine
        node = spec.id
        # dora-rs kills the old incarnation after the grace period: its exit is not the node's.
        deadline = started + _GRACE_S + 5.0
        ended = False
        while time.monotonic() < deadline and not self._run_over.is_set():
            if engine._remote is None and self._exit_count(node) > exits_before:
                ended = True
                break
            if (node, number - 1) in self._ended:
                # It got the STOP and reported its end; dora-rs 1.1 may still kill it
                # after the grace period (measured: its last report never got a reply).
                deadline = min(deadline, time.monotonic() + _GRACE_S + 1.0)
            self._run_over.wait(0.1)
        if not ended and self._run_over.is_set():
            ended = engine._remote is None and self._exit_count(node) > exits_before
        self._superseded[node] = exits_before + (1 if ended else 0)
        self._swapping.discard(node)
        folder = engine.folder / "stats" if engine.folder is not None else None
        if folder is None or not old_spec.inputs:
            return
        # Each incarnation's file holds its own definition's inputs, in their order.
        everything = read_stats(stats_path(folder, node, number - 1), list(old_spec.inputs))
        plan = rewiring(old_spec, spec)
        moved = plan.moved
        discarded = read_discarded(stats_path(folder, node, number - 1), list(old_spec.inputs))
        discarded = {k: v for k, v in discarded.items() if k in moved and v}
        if discarded:
            detail = ", ".join(f"{k}: {v}, now from {moved[k][1]}" for k, v in discarded.items())
            total = sum(discarded.values())
            engine._emit(
                node,
                "log",
                {
                    "stdio": "warning",
                    "line": (
                        f"hot swap {number}: the version replaced discarded {total} message"
                        f"{'' if total == 1 else 's'} that reached it on inputs being moved, "
                        f"before the new version started ({detail})"
                    ),
                },
            )
        with self._cond:
            part = self._parts.setdefault(node, {}).setdefault(number - 1, [0, 0])
            part[0] = max(part[0], sum(v[0] for v in everything.values()))
            engine.counts[node].received = self._totals(node)[0]
            for input_id, stats in everything.items():
                if not old_spec.inputs[input_id].source.startswith("dora/"):
                    key = (node, input_id)
                    self.missed[key] = self.missed.get(key, 0) + missed_before_last(
                        stats, number - 1
                    )
        # Only an input whose source did not change has a "before" to compare with
        # (and timer ticks carry no sender's numbers: they are not counted).
        data = [k for k, v in spec.inputs.items() if not v.source.startswith("dora/")]
        inputs = [k for k in plan.kept if k in data]
        if not inputs:
            if data:
                engine._emit(
                    node,
                    "log",
                    {
                        "stdio": "info",
                        "line": (
                            f"hot swap {number}: no input kept its source, so none has messages "
                            "from before the swap to count drops against"
                        ),
                    },
                )
            return
        old = {k: v for k, v in everything.items() if k in inputs}
        # The replacement's first messages say where the sender's numbers went on.
        deadline = time.monotonic() + 30.0
        while True:
            new = read_stats(stats_path(folder, node, number), list(spec.inputs))
            new = {k: v for k, v in new.items() if k in inputs}
            waiting = not new or any(v[1] < 0 for v in new.values())
            # Once the replacement has ended with nothing on an input, the end of the
            # run tells the sender's total (see _dropped_at_end): waited for too.
            if not waiting or self._run_over.is_set() or time.monotonic() > deadline:
                break
            self._run_over.wait(0.1)
        if not old or not new:
            engine._emit(
                node,
                "warning",
                "hot swap: the inputs dora-rs dropped during the swap cannot be counted here "
                "(the node's counts are not readable from this machine)",
            )
            return
        drops = swap_drops(old, new)
        if self._run_over.is_set():
            # Nothing reached the replacement before the sender ended: what the sender
            # numbered after the old one's last message was dropped during the swap.
            for input_id, value in drops.items():
                if value is None:
                    drops[input_id] = self._dropped_at_end(spec, input_id, old.get(input_id))
        counted = {k: v for k, v in drops.items() if v is not None}
        total = sum(counted.values())
        # The replacement's queue may overflow while it starts: dora-rs warns about
        # those drops too (and the engine counts its warnings), so they are not added twice.
        # The warnings come through dora/logs, batched; once the run is over, all came.
        self._run_over.wait(0.5)
        now = dict(getattr(engine, "_drops", {}))
        overlap = 0
        for input_id, value in counted.items():
            key = (node, input_id)
            warnings = max(0, min(value, now.get(key, 0) - warned.get(key, 0)))
            overlap += warnings
            self.overlap[key] = self.overlap.get(key, 0) + warnings
            # What the edge adds to dora's warnings (DoraEngine.edge): the rest.
            self.dropped[key] = self.dropped.get(key, 0) + value - warnings
        engine.counts[node].dropped += total - overlap
        detail = ", ".join(f"{k}: {v}" for k, v in counted.items())
        line = (
            f"hot swap {number}: dora-rs dropped {total} input"
            f"{'' if total == 1 else 's'} that arrived during the swap"
            + (f" ({detail})" if detail else "")
        )
        if overlap:
            line += (
                f"; {overlap} of them from the new process's full queue while it started"
                " (dora-rs's warnings above)"
            )
        unknown = sorted(k for k, v in drops.items() if v is None)
        if unknown:
            line += f"; not counted for {', '.join(unknown)}: nothing came after the swap"
        engine._emit(node, "log", {"stdio": "warning" if total else "info", "line": line})


def _rewrite(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``importlib.reload`` reads it, not a stale ``.pyc``.

    Python trusts a cached ``.pyc`` whose recorded size and whole-second mtime
    match the source: a rewrite within the same second of the same size would
    be missed. The cache is removed and the mtime moved forward.
    """
    before = path.stat().st_mtime if path.exists() else 0.0
    path.write_bytes(data)
    when = max(time.time(), before + 1.0)
    os.utime(path, (when, when))
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        cached.unlink(missing_ok=True)
