"""The context of exported nodes: oocana's API on top of real dora-rs.

``%dora_export`` and ``dora-notebook export`` write node files that run under
``dora run`` and still use the context (``context.preview(...)``,
``report_progress``, ``output(value, handle)``...). This module is what
those files import; it needs neither IPython nor ipywidgets, only
dora-notebook itself in the Python environment dora starts nodes with.

An exported **operator** file is the cell's code, unchanged, followed by a
footer that wraps its class:

.. code-block:: python

    import dora_notebook.dora_rs.shim

    Operator = dora_notebook.dora_rs.shim.operator(Operator, node_id="plot", outputs=["image"])

Under dora-rs, ``on_event(dora_event, send_output)`` then receives a
:class:`DoraContext` instead of dora's bare callback: called like a function
it *is* that ``send_output``, and it has the whole oocana API. On the
embedded engine (``dora-notebook run``) the operator already gets a
:class:`~dora_notebook.api.context.Context` and the wrapper passes it through.

An exported **custom node** script starts with a header:

.. code-block:: python

    import dora_notebook.dora_rs.shim

    dora_notebook.dora_rs.shim.use_context_node(node_id="camera", outputs=["image"])

after which the script's own ``from dora import Node`` gives
:class:`ContextNode`: dora-rs's ``Node`` (which cannot be subclassed), plus
a ``.context``. Only that node's process is concerned: dora runs every
custom node in a process of its own. On the embedded engine the header does
nothing, since its ``Node`` has a ``.context`` already.

**Reports** (previews, progress, logs, messages, warnings, errors, the final
status) go to the node's standard output, one line each, which dora shows in
its log as ``HH:MM:SS stdout NODE: [dora-notebook] {...}``:

>>> format_report("plot", "progress", 40.0)
'[dora-notebook] {"kind": "progress", "node": "plot", "data": 40.0}'
>>> parse_report('12:00:00 stdout plot: [dora-notebook] {"kind": "progress", "node": "plot", '
...              '"data": 40.0}')
{'kind': 'progress', 'node': 'plot', 'data': 40.0}

:func:`format_report`, :func:`parse_report` and :func:`print_report` are the
only places that know this format; a reader of dora's output (such as a
notebook bridge) uses :func:`parse_report`, and a :class:`DoraContext` can
be given another ``report`` function to ship reports some other way.
"""

from __future__ import annotations

import atexit
import json
import mmap
import os
import re
import struct
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..api.context import BaseContext, as_arrow
from ..core.events import DoraStatus
from .media import MediaReports

__all__ = [
    "REPORTS_ENV",
    "REPORT_PREFIX",
    "TOKEN_ENV",
    "ContextNode",
    "DoraContext",
    "format_report",
    "operator",
    "parse_report",
    "print_report",
    "report_output",
    "use_context_node",
]

#: What starts every report line a node prints under dora.
REPORT_PREFIX = "[dora-notebook] "

#: ``report(node_id, kind, data)``: where a :class:`DoraContext` sends reports.
Reporter = Callable[[str, str, Any], None]

_CONTEXT_ATTR = "_dora_notebook_context"
_PROCESS_JOB_ID = uuid.uuid4().hex

#: Set only in the private export that ``Dataflow.start(engine="dora")`` runs:
#: the name of the extra output on which reports then travel as dora messages
#: (the report's JSON in an Arrow string array) instead of stdout lines.
REPORTS_ENV = "DORA_NOTEBOOK_REPORTS"
#: With :data:`REPORTS_ENV`: a file the kernel's bridge creates once it has
#: joined the dataflow; nodes wait for it before they start (dora drops
#: messages sent to a dynamic node that is not connected yet).
READY_ENV = "DORA_NOTEBOOK_BRIDGE_READY"
#: With :data:`REPORTS_ENV`: how many seconds to wait for the bridge at most.
WAIT_ENV = "DORA_NOTEBOOK_BRIDGE_WAIT"
#: With :data:`REPORTS_ENV`: an operator's input ids, comma-separated (once
#: all are closed the operator reports its final status).
INPUTS_ENV = "DORA_NOTEBOOK_INPUTS"
#: With :data:`REPORTS_ENV`: how long a custom node pauses once connected (see ContextNode).
_SETTLE_S = 0.1
#: With :data:`REPORTS_ENV`: the run's secret, which every report carries; the
#: kernel's bridge drops reports without it (set in the private descriptor of
#: ``Dataflow.start(engine="dora")`` only, never in ``%dora_export``).
TOKEN_ENV = "DORA_NOTEBOOK_TOKEN"
#: With :data:`REPORTS_ENV`: which incarnation of the node this process is: 0
#: for the one ``dora start`` spawned, 1, 2... for the replacements of hot swaps
#: (``dora node replace``); reports of a replacement carry it.
INCARNATION_ENV = "DORA_NOTEBOOK_INCARNATION"
#: With :data:`REPORTS_ENV`: a folder where each incarnation of a node keeps its
#: per-input counts (:class:`InputStats`), which the kernel reads even after
#: dora-rs killed the process.
STATS_ENV = "DORA_NOTEBOOK_STATS"
#: With :data:`REPORTS_ENV`: the metadata parameter every message a node sends
#: carries: ``incarnation * 2**40 + n`` for its ``n``-th message on that output.
SEQ_KEY = "dora_notebook_seq"
#: Messages one incarnation of a node can number on one output.
SEQ_SPAN = 1 << 40


def report_output() -> str | None:
    """The output reports travel on in this process, or None (they are printed)."""
    return os.environ.get(REPORTS_ENV) or None


def encode_report(node_id: str, kind: str, data: Any, **extra: Any) -> str:
    """One report as JSON text; values JSON has no form for are written as their ``str``.

    >>> encode_report("plot", "status", "finished", received=3)
    '{"kind": "status", "node": "plot", "data": "finished", "received": 3}'
    """
    record = {"kind": kind, "node": node_id, "data": data, **extra}
    try:
        return json.dumps(record, default=str)
    except ValueError:  # a circular structure
        return json.dumps({**record, "data": repr(data)})


def format_report(node_id: str, kind: str, data: Any) -> str:
    """One report as a single line of text (JSON after :data:`REPORT_PREFIX`).

    Values JSON has no form for are written as their ``str``.
    """
    return REPORT_PREFIX + encode_report(node_id, kind, data)


def wait_for_bridge() -> None:
    """With the bridge transport, wait until the kernel's bridge has joined (bounded).

    Nodes call it once connected to dora (dora starts the dataflow only when
    every node is), before they send anything.
    """
    ready = os.environ.get(READY_ENV)
    if not report_output() or not ready:
        return
    try:
        limit = float(os.environ.get(WAIT_ENV, "30"))
    except ValueError:
        limit = 30.0
    deadline = time.monotonic() + limit
    while not os.path.exists(ready) and time.monotonic() < deadline:
        time.sleep(0.005)


def warm_up() -> None:
    """Do now the one-time work of sending, before dora delivers the first event.

    pyarrow imports pandas, when installed, the first time it builds an array
    from Python objects: 0.2 s or more in the first event's handler, during
    which dora-rs 1.1 dropped one message of a 50 Hz stream in most runs.
    Nodes call this while they are built, before the dataflow starts.
    """
    import pyarrow as pa

    pa.array([""])


def parse_report(line: str) -> dict[str, Any] | None:
    """The report in a line of output (dora's prefix allowed), or None if there is none."""
    _, found, text = line.partition(REPORT_PREFIX)
    if not found:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not {"kind", "node", "data"} <= set(record):
        return None
    return record


def print_report(node_id: str, kind: str, data: Any) -> None:
    """Write one report line to standard output (dora puts it in the node's log)."""
    stream = sys.stdout
    stream.write(format_report(node_id, kind, data) + "\n")
    stream.flush()


def _dataflow_id() -> str:
    """The id of the running dora dataflow, from the node's environment, if dora set it."""
    config = os.environ.get("DORA_NODE_CONFIG", "")
    found = re.search(r"^dataflow_id:\s*(\S+)", config, re.MULTILINE)
    return found.group(1) if found else _PROCESS_JOB_ID


def incarnation() -> int:
    """This process's incarnation of its node (see :data:`INCARNATION_ENV`); 0 if unset."""
    try:
        return max(0, int(os.environ.get(INCARNATION_ENV, "0")))
    except ValueError:
        return 0


def declared_inputs() -> frozenset[str] | None:
    """The inputs the node's definition declares (:data:`INPUTS_ENV`); None if not set.

    >>> os.environ[INPUTS_ENV] = "n,tick"
    >>> sorted(declared_inputs())
    ['n', 'tick']
    >>> del os.environ[INPUTS_ENV]
    """
    if INPUTS_ENV not in os.environ:
        return None
    return frozenset(name for name in os.environ[INPUTS_ENV].split(",") if name)


def stats_path(folder: str | os.PathLike[str], node_id: str, number: int) -> str:
    """The file of one incarnation's :class:`InputStats`."""
    return os.path.join(os.fspath(folder), f"{node_id}.{number}.stats")


class InputStats:
    """Per input: messages delivered, the first and last stamp seen, and the gaps.

    A stamp is a sender's :data:`SEQ_KEY`; a gap is a stamp skipped between
    two delivered messages of one sender incarnation (dora dropped them,
    e.g. from a full queue). The numbers live in a small file mapped in
    memory, written with every input: the kernel reads them even after
    dora-rs killed the process (it does so to the node a hot swap replaced,
    which dora-rs 1.1 never sends STOP), so what that incarnation received
    is known exactly, and so is what the swap dropped.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> stats = InputStats(stats_path(folder, "sink", 0), ["x"])
    >>> for stamp in (0, 1, 4):
    ...     stats.seen("x", stamp)
    >>> read_stats(stats_path(folder, "sink", 0), ["x"])
    {'x': (3, 0, 4, 2)}
    """

    _FIELDS = 4  # delivered, first stamp, last stamp, gaps

    def __init__(self, path: str, inputs: Iterable[str]) -> None:
        self._index = {name: i for i, name in enumerate(inputs)}
        self._retire_at, self._discard_at, size = _stats_layout(len(self._index))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        for i in range(len(self._index)):
            struct.pack_into("<4q", self._map, i * 32, 0, -1, -1, 0)

    def retired(self, input_id: str) -> bool:
        """Whether the kernel retired ``input_id`` (see :func:`retire_inputs`); counts it if so.

        One byte read per message: the kernel writes the flag into this file.
        """
        i = self._index.get(input_id)
        if i is None or not self._map[self._retire_at + i * 8]:
            return False
        (count,) = struct.unpack_from("<q", self._map, self._discard_at + i * 8)
        struct.pack_into("<q", self._map, self._discard_at + i * 8, count + 1)
        return True

    def seen(self, input_id: str, stamp: int | None) -> None:
        """Count one delivered message of ``input_id`` (its stamp, if it had one)."""
        i = self._index.get(input_id)
        if i is None:
            return
        count, first, last, gaps = struct.unpack_from("<4q", self._map, i * 32)
        if stamp is not None:
            if first < 0:
                first = stamp
            elif last >= 0 and stamp // SEQ_SPAN == last // SEQ_SPAN:
                gaps += max(0, stamp - last - 1)
            elif last >= 0:  # a new incarnation of the sender: it numbers from 0
                gaps += stamp % SEQ_SPAN
            last = stamp
        struct.pack_into("<4q", self._map, i * 32, count + 1, first, last, gaps)


def _stats_layout(count: int) -> tuple[int, int, int]:
    """Where an :class:`InputStats` file keeps its retire flags and discard counts, and its size.

    After the four counters of each input: one 8-byte retire flag per input,
    then one 8-byte count per input of the messages discarded once retired.
    """
    count = max(1, count)
    return count * 32, count * 40, count * 48


def retire_inputs(
    path: str | os.PathLike[str], inputs: list[str], retired: Iterable[str], flag: bool = True
) -> bool:
    """Tell the running incarnation whose stats are at ``path`` to discard ``retired``'s messages.

    A hot swap that moves an input to another source connects the new source
    before ``dora node replace`` (dora-rs 1.1 replaces a node only with a
    definition whose inputs are live edges): the version being replaced would
    get the new source's messages on an input it declared from the old one.
    It discards them instead, and counts them (:func:`read_discarded`).
    ``inputs``: that incarnation's inputs, in their order; ``flag`` False takes
    it back (a swap undone). False if the file is not there (the node has not
    started, or runs on another machine).

    >>> import tempfile
    >>> path = stats_path(tempfile.mkdtemp(), "sink", 0)
    >>> stats = InputStats(path, ["a", "b"])
    >>> retire_inputs(path, ["a", "b"], ["b"]), stats.retired("a"), stats.retired("b")
    (True, False, True)
    >>> read_discarded(path, ["a", "b"])
    {'a': 0, 'b': 1}
    """
    retire_at, _, size = _stats_layout(len(inputs))
    try:
        with open(path, "r+b") as file:
            if os.fstat(file.fileno()).st_size < size:
                return False
            for name in retired:
                file.seek(retire_at + inputs.index(name) * 8)
                file.write(b"\x01" if flag else b"\x00")
    except (OSError, ValueError):
        return False
    return True


def read_discarded(path: str | os.PathLike[str], inputs: list[str]) -> dict[str, int]:
    """What :func:`retire_inputs` made an incarnation discard, per input ({} if unreadable)."""
    _, discard_at, size = _stats_layout(len(inputs))
    try:
        data = open(path, "rb").read()  # noqa: SIM115 - one read of a small file
    except OSError:
        return {}
    if len(data) < size:
        return {}
    return {
        name: struct.unpack_from("<q", data, discard_at + i * 8)[0] for i, name in enumerate(inputs)
    }


def read_stats(path: str | os.PathLike[str], inputs: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """What :class:`InputStats` at ``path`` holds: input -> (delivered, first, last, gaps).

    An input without a message has ``(0, -1, -1, 0)``; a missing file gives ``{}``.
    """
    try:
        data = open(path, "rb").read()  # noqa: SIM115 - one read of a small file
    except OSError:
        return {}
    found = {}
    for i, name in enumerate(inputs):
        if len(data) >= (i + 1) * 32:
            found[name] = struct.unpack_from("<4q", data, i * 32)
    return found


class DoraContext(BaseContext):
    """The oocana context of a node running under dora-rs.

    ``send_output`` is dora's (an operator's callback, or a ``Node``'s
    ``send_output``); calling the context calls it unchanged. oocana's
    ``output``/``outputs`` convert values to Arrow as on the embedded engine,
    but an object Arrow cannot hold is refused with an error report (there
    is no passing by reference between processes). Reports go to
    ``report(node_id, kind, data)``, by default :func:`print_report`.
    ``job_id`` is the dora dataflow's id; ``session_id`` is one per process
    (every dora node is a process of its own).

    >>> sent, lines = [], []
    >>> context = DoraContext("calc", ["total"], lambda *args: sent.append(args),
    ...                       report=lambda *args: lines.append(args))
    >>> context.output(42, "total")
    >>> sent[0][0], sent[0][1].to_pylist()
    ('total', [42])
    >>> context.output(1, "nope")
    >>> lines[-1]
    ('calc', 'error', 'Output handle key: [nope] is not defined in Block outputs schema.')
    """

    def __init__(
        self,
        node_id: str,
        outputs: Iterable[str],
        send_output: Callable[..., Any] | None = None,
        *,
        report: Reporter | None = None,
        block_path: str = "",
    ) -> None:
        self._send_output = send_output
        self._outputs = frozenset(outputs)
        self._bridge = report_output() if report is None else None
        self._token = os.environ.get(TOKEN_ENV, "") if self._bridge else ""
        self._incarnation = incarnation() if self._bridge else 0
        self._seq: dict[str, int] = {}  # per output: the number of the next message
        #: An operator's: the digest of the file its class came from (see code_digest).
        self._code: str | None = None
        self._stats: InputStats | None = None
        folder = os.environ.get(STATS_ENV) if self._bridge else None
        if folder:
            inputs = [name for name in os.environ.get(INPUTS_ENV, "").split(",") if name]
            try:
                os.makedirs(folder, exist_ok=True)
                path = stats_path(folder, node_id, self._incarnation)
                self._stats = InputStats(path, inputs)
            except OSError:
                pass  # no counts of the inputs: a hot swap then says it cannot count its drops
        self._reporter = report or (self._bridge_report if self._bridge else print_report)
        self._media = MediaReports(
            lambda kind, data: self._reporter(self.node_id, kind, data), self._call_at
        )
        self._block_path = block_path
        self._job_id = _dataflow_id()
        self._failed = False
        self._final_sent = False
        self._due: list[tuple[float, Callable[[], None]]] = []
        self._closed: set[str] = set()
        self._owner = threading.get_ident()
        #: INPUT events handled and messages sent (reported to the bridge).
        self.received = 0
        self.sent = 0
        super().__init__(node_id)
        if self._bridge:
            _LineTee.attach(self)

    def _bind(self, send_output: Callable[..., Any]) -> None:
        """Use ``send_output`` from now on (an operator gets one with each event)."""
        self._send_output = send_output

    # -- dora's send_output and the node's stdout as transport ----------------------

    def __call__(
        self, output_id: str, data: object, metadata: dict[str, Any] | None = None
    ) -> None:
        """dora's ``send_output``, unchanged; nothing is sent once the node is done."""
        if self._done:
            return
        if self._send_output is None:
            raise RuntimeError(f"node {self.node_id!r}: the context has no send_output yet")
        metadata = self._stamped(output_id, metadata)
        if metadata is None:
            self._send_output(output_id, data)
        else:
            self._send_output(output_id, data, metadata)
        self.sent += 1

    send_output = __call__

    def _stamped(self, output_id: str, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        """Bridge transport: ``metadata`` plus the message's :data:`SEQ_KEY`.

        The receivers count what they got against these numbers, so that
        what dora drops (during a hot swap) is counted, not guessed.
        """
        if not self._bridge:
            return metadata
        number = self._seq.get(output_id, 0)
        self._seq[output_id] = number + 1
        stamped = dict(metadata) if metadata else {}
        stamped[SEQ_KEY] = self._incarnation * SEQ_SPAN + number
        return stamped

    def _set_event(self, event: Mapping[str, Any]) -> None:
        if event.get("type") == "INPUT":
            self.received += 1
            if self._bridge:
                # The stamp is the engine's, not the node's: the node's code never sees it.
                metadata = event.get("metadata")
                stamp = metadata.pop(SEQ_KEY, None) if isinstance(metadata, dict) else None
                if self._stats is not None:
                    number = stamp if isinstance(stamp, int) else None
                    self._stats.seen(str(event.get("id")), number)
        super()._set_event(event)

    def _bridge_report(self, node_id: str, kind: str, data: Any) -> None:
        """Send one report as a dora message on the reports output (the bridge transport).

        dora's ``send_output`` is only used from the node's own thread; a
        report from elsewhere (or one dora refuses) is printed instead.
        """
        send = self._send_output
        if send is None or threading.get_ident() != self._owner or not self._bridge:
            print_report(node_id, kind, data)
            return
        import pyarrow as pa

        extra: dict[str, Any] = {"received": self.received, "sent": self.sent}
        if self._incarnation:
            extra["incarnation"] = self._incarnation
        if self._code is not None:
            extra["code"] = self._code
        text = encode_report(node_id, kind, data, **extra, token=self._token)
        try:
            send(self._bridge, pa.array([text]))
        except Exception:
            print_report(node_id, kind, data)

    def _run_due(self, everything: bool = False) -> None:
        """Run the held-back calls whose time has come (all with ``everything``)."""
        if not self._due:
            return
        now = time.monotonic()
        due = [item for item in self._due if everything or item[0] <= now]
        self._due = [item for item in self._due if item not in due]
        for _, function in due:
            function()

    def _end(self, error: str | None = None) -> None:
        """Bridge transport: report ``error`` (if any), then the final status, once."""
        if error is not None:
            self._report_error(error)
        self._run_due(everything=True)
        self._media.flush()
        self.flush_progress()
        if not self._final_sent:
            self._finish()

    def _declares(self, handle: str) -> bool:
        return handle in self._outputs

    def _send(self, handle: str, value: object) -> None:
        array = as_arrow(value)
        if array is None:
            self.send_error(
                f"output {handle!r}: a {type(value).__name__} has no Arrow form, and under "
                "dora-rs outputs cross processes: send numbers, text, lists, numpy arrays, "
                "DataFrames or Arrow data"
            )
            return
        self(handle, array, self._metadata())

    def _emit(self, kind: str, data: Any) -> None:
        # Frames and plot points leave at most preview_hz times a second (see media.py).
        if kind in ("preview", "plot") and self._media.take(kind, data):
            return
        self._reporter(self.node_id, kind, data)

    def _report_error(self, error: str) -> None:
        self._failed = True
        self._emit("error", error)

    def _finish(self) -> None:
        self._final_sent = True
        self._emit("status", "failed" if self._failed else "finished")

    def _call_at(self, when: float, function: Callable[[], None]) -> None:
        if self._bridge:
            # dora's send_output stays in the node's thread: run it at the next event.
            self._due.append((when, function))
            return
        # Not a daemon: a held-back progress value is still written when the
        # node's process exits right after.
        timer = threading.Timer(max(0.0, when - time.monotonic()), function)
        timer.name = f"dora-notebook-progress-{self.node_id}"
        timer.start()

    @property
    def job_id(self) -> str:
        """The dora dataflow's id (one per run), when dora set it."""
        return self._job_id

    @property
    def block_path(self) -> str:
        return self._block_path


def _block_path(cls: type) -> str:
    module = sys.modules.get(cls.__module__)
    return str(getattr(module, "__file__", "") or "")


def code_digest(data: bytes) -> str:
    """A short digest of a node file's bytes: which version of an operator runs.

    >>> code_digest(b"class Operator: pass")
    '2da33eb80dd6dbde'
    """
    import hashlib

    return hashlib.sha256(data).hexdigest()[:16]


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            return code_digest(file.read())
    except OSError:
        return None


def operator(cls: type, *, node_id: str, outputs: Iterable[str] = ()) -> type:
    """Wrap an ``Operator`` class so that ``on_event`` gets a context under dora-rs.

    The result is a subclass of ``cls`` whose ``on_event(dora_event,
    send_output)`` passes a :class:`DoraContext` built on dora's
    ``send_output`` (one per operator instance), or passes the embedded
    engine's context through unchanged. It also speaks dora-rs's return
    protocol for the user: ``None`` becomes ``DoraStatus.CONTINUE``, and after
    ``context.done()`` the operator returns ``DoraStatus.STOP``.

    >>> class Operator:
    ...     def on_event(self, dora_event, context):
    ...         context.output(len(dora_event["id"]), "length")
    >>> Wrapped = operator(Operator, node_id="measure", outputs=["length"])
    >>> sent = []
    >>> Wrapped().on_event({"type": "INPUT", "id": "abc", "value": None, "metadata": {}},
    ...                    lambda *args: sent.append(args))
    <DoraStatus.CONTINUE: 0>
    >>> sent[0][1].to_pylist(), sent[0][2]
    ([3], {})
    """
    if not isinstance(cls, type):
        raise TypeError(
            f"node {node_id!r}: the operator code must define `class Operator`, not {cls!r}"
        )
    if getattr(cls, "_dora_notebook_node", None) is not None:
        return cls  # already wrapped
    declared = tuple(outputs)

    class Wrapped(cls):  # type: ignore[valid-type, misc]
        _dora_notebook_node = node_id
        # Read while dora-rs imports (or hot-reloads) the file: which version this class is.
        _dora_notebook_code = _file_digest(_block_path(cls)) if report_output() else None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            warm_up()
            super().__init__(*args, **kwargs)

        def on_event(self, dora_event: Mapping[str, Any], send_output: Any) -> Any:
            if isinstance(send_output, BaseContext):  # the embedded engine's own context
                return super().on_event(dora_event, send_output)
            context = self.__dict__.get(_CONTEXT_ATTR)
            if context is None:
                # Connected to dora by now: wait for the kernel's bridge, if any.
                wait_for_bridge()
                context = DoraContext(node_id, declared, send_output, block_path=_block_path(cls))
                self.__dict__[_CONTEXT_ATTR] = context
            else:
                context._bind(send_output)
            context._code = self._dora_notebook_code
            context._set_event(dora_event)
            if context._bridge and dora_event.get("type") == "RELOAD":
                # dora-rs's hot reload: the status says which version got the RELOAD
                # (the old one, when the new one failed to import or to start).
                context._emit("status", "running")
            handler = super().on_event
            if context._bridge:
                status = _bridged_event(context, handler, dora_event)
            else:
                status = handler(dora_event, context)
            if dora_event.get("type") in ("STOP", "INPUT_CLOSED"):
                # dora may end the process after this without another event.
                context.flush_progress()
            if context._done:
                return DoraStatus.STOP
            return DoraStatus.CONTINUE if status is None else status

    for name in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(Wrapped, name, getattr(cls, name, None))
    return Wrapped


def _failure(exc: BaseException) -> str:
    """``exc``'s traceback without the wrapper's own frame."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def _bridged_event(
    context: DoraContext, handler: Callable[..., Any], event: Mapping[str, Any]
) -> Any:
    """Bridge transport: call an operator's ``on_event``; report its end and its errors.

    The final status goes out on ``STOP``, once every declared input is
    closed (dora gives operators no STOP then), or when the operator
    returns ``DoraStatus.STOP``; an exception is reported, then re-raised.
    """
    try:
        status = handler(event, context)
    except BaseException as exc:
        context._end(_failure(exc))
        raise
    # Held-back progress whose time has come goes out now (an operator has no
    # thread of its own to send it later); what is still held back goes out
    # at the next event or with the final status (_end), so the throttle holds.
    context._run_due()
    kind = event.get("type")
    if kind == "INPUT_CLOSED":
        context._closed.add(str(event.get("id")))
    declared = {name for name in os.environ.get(INPUTS_ENV, "").split(",") if name}
    # context.done() makes the wrapper return STOP too: dora-rs then ends the
    # process, and without the pause below the last outputs could be lost.
    stopping = getattr(status, "value", status) in (1, 2) or context._done
    if kind == "STOP" or stopping or (declared and declared <= context._closed):
        context._end()
        time.sleep(0.3)  # let dora deliver the last outputs and reports before the process ends
    return status


class ContextNode:
    """dora-rs's ``Node`` with a ``.context`` (:class:`DoraContext`).

    dora-rs's ``Node`` cannot be subclassed, so this holds one and hands
    every attribute it does not define to it. :func:`use_context_node` makes
    a subclass bound to one node and installs it as ``dora.Node``; its
    events pass through the context (for ``context.inputs`` and the
    metadata oocana outputs carry), and after ``context.done()`` the event
    stream ends (``next()`` gives ``None``), as on the embedded engine.
    """

    _real: type
    _node_id: str
    _outputs: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warm_up()
        self._fresh = bool(report_output()) and incarnation() > 0
        self._declared = declared_inputs() if report_output() else None
        self._node = self._real(*args, **kwargs)
        wait_for_bridge()  # connected to dora by now: wait for the kernel's bridge, if any
        if report_output():
            # dora-rs 1.1 drops what a node sends in its first milliseconds after
            # Node() returns (2 to 6 of 8 messages sent at once were lost in 7 runs
            # of 75; none in 75 runs after a pause of 20 to 100 ms). That measurement
            # did not tell reports from data, so the whole node pauses (0.1 s of every
            # start's first message). See private.py for what else was tried.
            time.sleep(_SETTLE_S)
        self.context = DoraContext(
            self._node_id,
            self._outputs,
            self._node.send_output,
            block_path=os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "",
        )
        if self.context._bridge:
            _report_node_end(self.context)

    def send_output(self, output_id: str, data: Any, metadata: dict[str, Any] | None = None) -> Any:
        """dora's ``send_output`` (counted for the notebook's panel)."""
        metadata = self.context._stamped(output_id, metadata)
        if metadata is None:
            result = self._node.send_output(output_id, data)
        else:
            result = self._node.send_output(output_id, data, metadata)
        self.context.sent += 1
        return result

    def __getattr__(self, name: str) -> Any:
        if name == "_node":  # not built yet: dora's Node() raised
            raise AttributeError(name)
        return getattr(self._node, name)

    def __repr__(self) -> str:
        return f"<ContextNode {self._node_id!r}: {self._node!r}>"

    def _stale_stop(self, event: Any) -> bool:
        """Whether ``event`` is the STOP dora-rs 1.1 sent the incarnation this one replaced.

        Measured: after ``dora node replace`` the replacement's first event is
        a STOP (the node it replaced gets none, and is killed after the grace
        period), while its inputs keep coming. A replacement skips that one
        STOP, if it comes before any other event; a real stop still ends the
        event stream.
        """
        if not self._fresh or event is None:
            return False
        self._fresh = False
        return bool(event.get("type") == "STOP")

    def _foreign(self, event: Any) -> bool:
        """Whether ``event`` is about an input this version of the node does not declare.

        A hot swap that changes a node's inputs rewires them around ``dora node
        replace`` (see :mod:`.swap`): the version being replaced may get a
        message on an input added for its successor, and the successor is told
        that the swap's temporary input closed. Neither is the version's own
        input, as on the embedded engine, where a node gets only its inputs.
        """
        return (
            self._declared is not None
            and event is not None
            and event.get("type") in ("INPUT", "INPUT_CLOSED")
            and str(event.get("id")) not in self._declared
        )

    def _retired(self, event: Any) -> bool:
        """Whether ``event`` is a message on an input a hot swap is moving (see retire_inputs)."""
        stats = self.context._stats
        return (
            stats is not None
            and event is not None
            and event.get("type") == "INPUT"
            and stats.retired(str(event.get("id")))
        )

    def _seen(self, event: Any) -> Any:
        kind = None if event is None else event.get("type")
        if kind in (None, "STOP"):
            self.context.flush_progress()
        if kind is not None and kind != "ERROR":  # a timeout is not an event being handled
            self.context._set_event(event)
        self.context._run_due()
        return event

    def next(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """dora's ``next``; ``None`` once the context is done."""
        if self.context._done:
            return None
        event = self._node.next(*args, **kwargs)
        while self._foreign(event) or self._retired(event) or self._stale_stop(event):
            event = self._node.next(*args, **kwargs)
        return self._seen(event)

    def try_recv(self) -> dict[str, Any] | None:
        if self.context._done:
            return None
        event = self._node.try_recv()
        while self._foreign(event) or self._retired(event) or self._stale_stop(event):
            event = self._node.try_recv()
        return self._seen(event)

    def drain(self) -> list[dict[str, Any]]:
        events = [] if self.context._done else self._node.drain()
        if events and self._stale_stop(events[0]):
            events = events[1:]
        events = [e for e in events if not self._foreign(e) and not self._retired(e)]
        for event in events:
            self._seen(event)
        return events

    async def recv_async(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        if self.context._done:
            return None
        event = await self._node.recv_async(*args, **kwargs)
        while self._foreign(event) or self._retired(event) or self._stale_stop(event):
            event = await self._node.recv_async(*args, **kwargs)
        return self._seen(event)

    def __iter__(self) -> ContextNode:
        return self

    def __next__(self) -> dict[str, Any]:
        event = self.next()
        if event is None:
            raise StopIteration
        return event


def use_context_node(*, node_id: str, outputs: Iterable[str] = ()) -> None:
    """Make ``from dora import Node`` give a :class:`ContextNode` for this node.

    The header of an exported custom-node script calls it before the
    script's own code. Under dora-rs it replaces ``dora.Node`` in this
    process (the node's own) with a :class:`ContextNode` subclass for
    ``node_id``. On the embedded engine it does nothing: there ``dora`` is
    dora-notebook's module, whose ``Node`` has a ``.context`` already.
    """
    from ..core.runner import bound_runner

    if bound_runner() is not None:
        return
    import dora

    real = dora.Node
    if isinstance(real, type) and issubclass(real, ContextNode):
        return
    dora.Node = type(  # type: ignore[attr-defined]
        "Node",
        (ContextNode,),
        {
            "_real": real,
            "_node_id": node_id,
            "_outputs": tuple(outputs),
            "__module__": __name__,
            "__doc__": ContextNode.__doc__,
        },
    )


def _report_node_end(context: DoraContext) -> None:
    """Bridge transport, custom node: report an uncaught exception and the final status."""
    previous = sys.excepthook

    def excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        context._report_error(_failure(exc))
        previous(kind, exc, tb)

    sys.excepthook = excepthook
    atexit.register(context._end)


class _LineTee:
    """Bridge transport: what the node prints also becomes ``log`` reports.

    Writes go through to the real stream unchanged (dora's logs keep them);
    each complete line from the node's own thread is reported. Lines
    printed before the context exists are reported once it does.
    """

    context: DoraContext | None = None
    _tees: list[_LineTee] = []
    _busy = threading.local()

    def __init__(self, stream: Any, stdio: str) -> None:
        self._stream = stream
        self._stdio = stdio
        self._buffer = ""
        self._pending: list[str] = []

    @classmethod
    def install(cls) -> None:
        """Put tees on ``sys.stdout`` and ``sys.stderr`` (once per process)."""
        if cls._tees:
            return
        cls._tees = [cls(sys.stdout, "stdout"), cls(sys.stderr, "stderr")]
        sys.stdout, sys.stderr = cls._tees  # type: ignore[assignment]

    @classmethod
    def attach(cls, context: DoraContext) -> None:
        """Report lines as ``context``'s logs from now on (and those printed so far)."""
        cls.install()
        cls.context = context
        for tee in cls._tees:
            pending, tee._pending = tee._pending, []
            for line in pending:
                tee._log(line)

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._log(line)
        return written

    def _log(self, line: str) -> None:
        if line.startswith(REPORT_PREFIX) or getattr(self._busy, "on", False):
            return
        context = _LineTee.context
        if context is None:
            self._pending.append(line)
            return
        if threading.get_ident() != context._owner:
            return
        self._busy.on = True
        try:
            context.report_log(line, self._stdio)
        finally:
            self._busy.on = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


if report_output():
    _LineTee.install()
