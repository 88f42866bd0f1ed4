"""``Dataflow``: the Python API that the magics and the CLI are built on.

>>> import pyarrow as pa
>>> flow = Dataflow(echo=False)
>>> _ = flow.add_node("src", '''
... from dora import Node
... import pyarrow as pa
... node = Node()
... for i in range(3):
...     node.send_output("n", pa.array([i]))
... ''', outputs=["n"])
>>> seen = []
>>> class Sink:
...     def on_event(self, event, send_output):
...         if event["type"] == "INPUT":
...             seen.append(event["value"][0].as_py())
>>> _ = flow.add_operator("sink", Sink, inputs={"n": "src/n"})
>>> flow.start(); flow.wait(10)
True
>>> seen
[0, 1, 2]
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import json
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api.embedded import NODE_API
from .core import capture
from .core.build import run_build
from .core.engine import EmbeddedEngine
from .core.fields import for_embedded
from .core.graph import (
    MAX_DESCRIPTOR_BYTES,
    Graph,
    InputSpec,
    NodeSpec,
    Timer,
    descriptor_path,
    load_yaml_text,
    parse_input,
    specs_from_descriptor,
)
from .core.logs import LogRecord
from .core.observe import NodeState, Report
from .core.params import (
    ParamEvent,
    check_param,
    param_deleted_event,
    param_event,
    param_text,
)
from .core.playback import check_speed
from .core.protocol import EdgeCounts, Engine
from .core.record import DEFAULT_MAX_MB, Recording, RecordingError, describe_graph, source_edge
from .core.replay import ReplayResult, check_options
from .core.replay import replay as replay_node
from .core.tap import Tap
from .errors import DataflowError, GraphError, ReloadError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ENGINES", "Dataflow", "check_start", "current", "read_drec"]

Code = str | Path | type | Callable[[], Any]


class Dataflow:
    """A dora dataflow built in Python, run on the embedded engine.

    ``echo`` prints node output to the terminal prefixed with the node id, as
    ``dora run`` does; the notebook layer turns it off and shows panels.
    """

    def __init__(self, *, echo: bool = True) -> None:
        self.graph = Graph()
        self.echo = echo
        self._engine: Engine | None = None
        self._subscribers: list[Callable[[Report], None]] = []
        self._broken: list[Callable[[Report], None]] = []  # subscribers that raised
        self._states: dict[str, NodeState] = {}
        # Each run gets a number; a node's state takes reports of its own run only.
        self._runs = itertools.count(1)
        self._taps: dict[tuple[str, str], Tap] = {}
        self._recording: Recording | None = None
        self._sub_lock = threading.Lock()
        self._descriptor_extra: dict[str, Any] = {}

    # -- building ------------------------------------------------------------

    def add_operator(
        self,
        node_id: str,
        code: Code,
        *,
        inputs: Inputs = None,
        outputs: Iterable[str] = (),
        queue_size: int | None = None,
        machine: str | None = None,
        replace: bool = False,
    ) -> NodeSpec:
        """Add an operator: Python source defining ``class Operator``, a file, or the class."""
        return self._add("operator", node_id, code, inputs, outputs, queue_size, machine, replace)

    def add_node(
        self,
        node_id: str,
        code: Code,
        *,
        inputs: Inputs = None,
        outputs: Iterable[str] = (),
        queue_size: int | None = None,
        machine: str | None = None,
        replace: bool = False,
    ) -> NodeSpec:
        """Add a custom node: a script's source, a file, or a callable run in the node's thread."""
        return self._add("node", node_id, code, inputs, outputs, queue_size, machine, replace)

    def _add(
        self,
        kind: str,
        node_id: str,
        code: Code,
        inputs: Inputs,
        outputs: Iterable[str],
        queue_size: int | None,
        machine: str | None,
        replace: bool,
    ) -> NodeSpec:
        if isinstance(outputs, str):
            outputs = [outputs]
        spec = NodeSpec(
            node_id,
            kind,
            _inputs(node_id, inputs, queue_size),  # type: ignore[arg-type]
            list(outputs),
            machine=machine,
        )
        if isinstance(code, Path):
            spec.path = code.resolve()
        elif isinstance(code, str):
            spec.source = code
        elif callable(code):
            spec.obj = code
        else:
            raise GraphError(
                f"node {node_id!r}: code must be source text, a Path, a class "
                f"or a callable, not {type(code).__name__}"
            )
        engine = self._engine
        live = self.running and engine is not None and engine.counters(node_id) is not None
        if live and replace and engine is not None and engine.live(node_id):
            self._swap(engine, spec)
            return spec
        self.graph.add(spec, replace=replace)
        state = self._states.get(node_id)
        if state is not None and not live:
            state.attach(None)  # the panel of a redefined node shows it as defined, not old news
        return spec

    def _swap(self, engine: Engine, spec: NodeSpec) -> None:
        """Hot-swap a node of the running graph (dora's hot reload), or raise ReloadError."""
        trial = self.graph.copy()
        trial.add(spec, replace=True)
        trial.validate()
        try:
            error = engine.reload(spec).result(timeout=10)
        except FutureTimeout:  # not the builtin TimeoutError before Python 3.11
            error = "the runtime did not take the new version within 10 s (is an operator stuck?)"
        if error is not None:
            raise ReloadError(
                f"node {spec.id!r}: the new version did not start; the previous one keeps "
                f"running: {error.strip().splitlines()[-1]}"
            )
        self.graph = trial

    def remove(self, node_id: str) -> None:
        """Forget a node (the graph must not be running)."""
        self._check_idle("remove a node")
        self.graph.remove(node_id)

    def load_yaml(self, source: str | Path, base_dir: str | Path | None = None) -> list[str]:
        """Add the nodes of a dora descriptor (YAML text or a path); return their ids.

        Relative file names resolve against ``base_dir``, by default the
        descriptor's folder for a path and the working directory for text.
        """
        path = source if isinstance(source, Path) else descriptor_path(source)
        if path is not None:
            if not path.is_file():
                raise GraphError(f"descriptor file {str(path)!r} does not exist")
            if path.stat().st_size > MAX_DESCRIPTOR_BYTES:
                raise GraphError(
                    f"descriptor file {str(path)!r} is larger than the "
                    f"{MAX_DESCRIPTOR_BYTES:,} bytes a descriptor may have"
                )
            try:
                text, where = path.read_text(encoding="utf-8"), str(path)
            except UnicodeDecodeError as exc:
                raise GraphError(
                    f"descriptor file {str(path)!r} is not YAML text (not UTF-8 at byte "
                    f"{exc.start})"
                ) from None
            base = Path(base_dir) if base_dir is not None else path.resolve().parent
        else:
            text, where = str(source), "descriptor"
            base = Path(base_dir) if base_dir is not None else Path.cwd()
        descriptor = load_yaml_text(text, where)
        specs = specs_from_descriptor(descriptor, base)
        trial = self.graph.copy()
        for spec in specs:
            if spec.id in trial:
                raise GraphError(f"{where}: node {spec.id!r} is already defined")
            trial.add(spec)
        self.graph = trial
        if isinstance(descriptor, Mapping):
            self._descriptor_extra.update({k: v for k, v in descriptor.items() if k != "nodes"})
        return [spec.id for spec in specs]

    @classmethod
    def from_yaml(cls, path: str | Path, **kwargs: Any) -> Dataflow:
        """A dataflow holding the nodes of the descriptor at ``path``."""
        flow = cls(**kwargs)
        flow.load_yaml(Path(path))
        flow.graph.validate()
        return flow

    @classmethod
    def from_drec(
        cls, path: str | Path, speed: float = 0.0, nodes: Iterable[str] = (), **kwargs: Any
    ) -> Dataflow:
        """A dataflow that plays a ``.drec`` file of ``dora record``, through dora-rs itself.

        Its nodes are the ``dora-replay-node`` processes ``dora replay`` puts in
        place of the recorded nodes (or of ``nodes``), sending what they sent
        at ``speed`` times the recorded pace (0: as fast as it goes); the
        recorded dataflow's other nodes are left out. It runs on the dora
        engine only, where a recording gets every replayed message (see
        :func:`read_drec`, and :mod:`dora_notebook.dora_rs.drec` for what
        dora-rs needs installed).
        """
        import tempfile

        from .dora_rs.drec import replay_descriptor

        with tempfile.TemporaryDirectory(prefix="dora-notebook-drec-") as folder:
            return cls.from_yaml(replay_descriptor(path, folder, speed, nodes), **kwargs)

    def build(self, echo: Callable[[str], None] = print) -> int:
        """Run the graph's ``build:`` commands as ``dora build`` does; return how many ran.

        A start never runs them (``%dora_start`` lists those it did not run).
        """
        self._check_idle("build")
        return run_build(self.graph, echo)

    def descriptor(self) -> dict[str, Any]:
        """The graph as a dora descriptor mapping."""
        return {**self._descriptor_extra, **self.graph.to_descriptor()}

    def descriptor_extra(self) -> dict[str, Any]:
        """The top-level keys other than ``nodes`` of the descriptors loaded so far."""
        return copy.deepcopy(self._descriptor_extra)

    def export(self, directory: str | Path, *, force: bool = False) -> Path:
        """Write ``directory/dataflow.yml`` and one file per node; return the descriptor's path.

        ``dora run`` runs the result unchanged (see :mod:`dora_notebook.dora_rs.export`
        for the layout). Nodes given as a Python class or callable cannot be
        exported: define them from source or from a file. Files in the way that
        an export did not write are never replaced, unless ``force``.
        """
        from .dora_rs.export import export

        return export(self.graph, directory, top=self._descriptor_extra, force=force)[0]

    # -- running -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._engine is not None and not self._engine.done.is_set()

    @property
    def engine(self) -> Engine | None:
        """The engine of the current or last run."""
        return self._engine

    def start(
        self,
        engine: str = "embedded",
        coordinator: str | None = None,
        machine: str | None = None,
        daemon_port: int | None = None,
        replay_speed: float | None = None,
    ) -> None:
        """Validate the graph and start it in the background; return at once.

        ``replay_speed`` paces the inputs that play a recording
        (``dora/replay/PATH/NODE/OUTPUT``): X times the recorded pace (1 by
        default), 0 as fast as the queues take them (nothing dropped).

        ``engine="dora"`` runs it on dora-rs, one process per node, on a
        coordinator and daemon started on loopback for this run, or on the
        existing cluster at ``coordinator`` (``HOST:PORT``), where
        ``machine`` names the daemon of this kernel's machine (listening for
        dynamic nodes on ``daemon_port``, dora's 53291 by default): the
        bridge and the nodes placed nowhere run there. The nodes' reports
        still reach :meth:`node` and :meth:`subscribe` (see
        :mod:`dora_notebook.dora_rs.engine`).
        """
        check_start(engine, coordinator, machine, daemon_port, replay_speed=replay_speed)
        if self.running:
            raise DataflowError("the dataflow is already running; stop it first")
        self.graph.validate()
        if not len(self.graph):
            raise GraphError("the dataflow has no nodes")
        options = {
            "coordinator": coordinator,
            "machine": machine,
            "daemon_port": daemon_port,
            "replay_speed": replay_speed,
        }
        number = next(self._runs)
        report = functools.partial(self._publish, number)
        run = ENGINES[engine](self, report, **{k: v for k, v in options.items() if v is not None})
        for node_id, output_id in self._taps:
            with contextlib.suppress(DataflowError):  # an engine without taps says so in tap()
                run.tap(node_id, output_id, self._taps[node_id, output_id])
        for spec in self.graph:
            state = self.node(spec.id)
            state.attach(run.counters(spec.id), number)
            for key, value in list(state.params.items()):
                try:  # given before any input, as dora gives them once its nodes are ready
                    run.param(spec.id, param_event(key, param_text(value)))
                except DataflowError as exc:  # the engine cannot: the node's panel says so
                    report(Report(spec.id, "warning", str(exc), time.time()))
        recording = self._recording
        if recording is not None and recording.active and recording.started is None:
            self._begin(recording, run)  # armed before this start: from the first message
        self._engine = run
        run.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the graph finishes; False if ``timeout`` seconds passed first."""
        if self._engine is None:
            raise DataflowError("the dataflow was never started")
        return self._engine.wait(timeout)

    def stop(self, timeout: float = 2.0) -> list[str]:
        """Stop the graph within ``timeout`` seconds; return the nodes that were stuck."""
        if self._engine is None:
            return []
        return self._engine.stop(timeout)

    def run(self, timeout: float | None = None) -> list[str]:
        """Start, wait up to ``timeout`` seconds, then stop; return stuck nodes."""
        self.start()
        self.wait(timeout)
        return self.stop()

    def clear(self) -> list[str]:
        """Stop the graph and forget every node, its state, its taps and its recording.

        Returns the nodes that were stuck when stopping. The code of a node
        blocked in a C call runs on until the call returns (see
        :meth:`blocked`), but what it reports then is dropped.
        """
        stuck = self.stop()
        for state in self._states.values():
            state.release()  # its panel outlives the graph, and must not keep the run reachable
        if self._recording is not None:
            self._recording.stop()  # who holds it can still read and save what it kept
        self._recording = None
        self.graph.clear()
        self._states.clear()
        self._taps.clear()
        self._descriptor_extra.clear()
        self._engine = None
        return stuck

    def threads_left(self) -> dict[str, int]:
        """How many threads each node's code started are still running, for nodes with any.

        A stop ends node code, not the threads it started (a thread cannot be
        killed in Python); they run until they return (``docs/reliability.md``).
        """
        states = list(self._states.values())
        return {state.node_id: n for state in states if (n := state.threads_left)}

    def blocked(self) -> dict[str, str]:
        """The nodes whose code a stop left blocked in a C call, and where, until it returns.

        ``{"cam": "still blocked in time.sleep, line 4"}``: a stop interrupts
        node code at its next bytecode, so ``time.sleep``, a socket read or a
        lock wait goes on to its end (``docs/reliability.md``).
        """
        states = list(self._states.values())
        return {state.node_id: where for state in states if (where := state.blocked)}

    # -- runtime parameters ------------------------------------------------------

    def set_param(self, node_id: str, key: str, value: Any) -> bool:
        """Set runtime parameter ``key`` of ``node_id`` to ``value``, as ``dora param set`` does.

        ``value`` must be JSON (numbers, strings, booleans, None, and lists and
        dicts of them); anything else is refused in one line. The node gets a
        ``PARAM_UPDATE`` event (``id`` the key, ``value`` decoded from JSON)
        after every message that arrived before it, and never dropped. A
        parameter outlives runs: each start gives the node its parameters
        before any input. Returns whether a running node got it now.

        >>> flow = Dataflow(echo=False)
        >>> _ = flow.add_node("tuned", "pass")
        >>> flow.set_param("tuned", "gain", 2.5)  # not running: given at the next start
        False
        >>> flow.params("tuned")
        {'gain': 2.5}
        """
        text = check_param(node_id, key, value)
        data = {"key": key, "value": json.loads(text)}
        return self._param(node_id, param_event(key, text), data)

    def delete_param(self, node_id: str, key: str) -> bool:
        """Delete parameter ``key`` of ``node_id``, as ``dora param delete`` does.

        The node gets a ``PARAM_DELETED`` event (``id`` the key), whether or
        not the key was set, as in dora. Returns whether a running node got it.
        """
        check_param(node_id, key, None)
        return self._param(node_id, param_deleted_event(key), {"key": key})

    def params(self, node_id: str) -> dict[str, Any]:
        """The runtime parameters of ``node_id`` by key (a copy), as ``dora param list``."""
        return copy.deepcopy(self._param_state(node_id).params)

    def _param_state(self, node_id: str) -> NodeState:
        try:
            return self.node(node_id)
        except KeyError as exc:
            raise GraphError(exc.args[0]) from None

    def _param(self, node_id: str, event: ParamEvent, data: dict[str, Any]) -> bool:
        """Deliver a parameter's event to the running node, then keep the change."""
        state = self._param_state(node_id)
        engine = self._engine
        delivered = self.running and engine is not None and engine.param(node_id, event)
        self._publish(state.run, Report(node_id, "param", data, time.time()))
        return delivered

    def _check_idle(self, what: str) -> None:
        if self.running:
            raise DataflowError(f"cannot {what} while the dataflow runs; stop it first")

    # -- observing -----------------------------------------------------------

    def subscribe(self, callback: Callable[[Report], None]) -> Callable[[], None]:
        """Call ``callback(report)`` for everything a node reports; returns an unsubscribe.

        It is called on engine threads. A callback that raises is reported
        once on stderr and stays subscribed; what it prints goes where the
        kernel's own output goes, never to a node's log.
        """
        with self._sub_lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._sub_lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]
                self._broken = [s for s in self._broken if s is not callback]

        return unsubscribe

    def _publish(self, run: int, report: Report) -> None:
        """Fold a report of run number ``run`` into its node's state, then pass it on.

        The code of a stopped run can outlive it, blocked in a C call; what it
        reports when it wakes is dropped once its node has moved on (a new
        run, a redefinition, a reset), and reaches no subscriber then either.
        """
        state = self._states.get(report.node_id)
        if state is None or state.run != run:
            return
        state.apply(report, run)  # checks again under the state's lock, against a new attach
        if self.echo:
            _echo(report)
        for callback in self._subscribers:
            try:
                callback(report)
            except Exception:
                self._subscriber_failed(callback, report)

    def _subscriber_failed(self, callback: Callable[[Report], None], report: Report) -> None:
        """Say once, on the real stderr, that a subscriber raised; it stays subscribed.

        Not on the node's panel: the node did nothing wrong. Only the first
        error is shown, as a subscriber that fails on every log line would
        otherwise flood the output at the rate the node prints.
        """
        with self._sub_lock:
            if any(s is callback for s in self._broken):
                return
            self._broken.append(callback)
        name = getattr(callback, "__qualname__", None) or repr(callback)
        capture.original("stderr").write(
            f"dora-notebook: subscriber {name} raised on a {report.kind!r} report of node "
            f"{report.node_id!r}; fix it or unsubscribe it (its later errors are not shown)\n"
            + traceback.format_exc()
        )

    def node(self, node_id: str) -> NodeState:
        """The live state of a node: status, counters, progress, previews, logs."""
        state = self._states.get(node_id)
        if state is None:
            if node_id not in self.graph:
                known = ", ".join(s.id for s in self.graph) or "none"
                raise KeyError(f"no node {node_id!r} (nodes: {known})")
            state = self._states.setdefault(node_id, NodeState(node_id, self.graph[node_id].kind))
        return state

    def status(self, node_id: str | None = None) -> NodeState | dict[str, NodeState]:
        """The state of one node, or of every node by id."""
        if node_id is not None:
            return self.node(node_id)
        return {spec.id: self.node(spec.id) for spec in self.graph}

    def tap(self, source: str, n: int = 10, timeout: float = 1.0) -> pd.DataFrame:
        """The last ``n`` messages sent on ``source`` (``node/output``) as a DataFrame.

        The first tap of an output starts recording it; while the graph runs
        this waits up to ``timeout`` seconds for ``n`` messages to arrive.
        Columns: ``time`` (UTC), ``metadata``, ``value``.
        """
        node_id, output_id = self._output("tap", source)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise GraphError(f"tap {source!r}: n must be a whole number >= 1, not {n!r}")
        key = (node_id, output_id)
        tap = self._taps.get(key)
        if tap is None:
            tap = Tap(n)
            if self._engine is not None:
                self._engine.tap(node_id, output_id, tap)
            self._taps[key] = tap
        else:
            tap.resize(n)
        if self.running:
            tap.wait(n, timeout)
        return tap.frame(n)

    def _output(self, what: str, source: str) -> tuple[str, str]:
        """``(node, output)`` of ``source`` (``node/output``), or a one-line GraphError."""
        node_id, sep, output_id = source.partition("/")
        if not sep or node_id not in self.graph:
            known = ", ".join(s.id for s in self.graph) or "none"
            raise GraphError(f"{what} {source!r}: no node {node_id!r} (nodes: {known})")
        outputs = self.graph[node_id].outputs
        if output_id not in outputs:
            declared = ", ".join(outputs) or "none"
            raise GraphError(
                f"{what} {source!r}: node {node_id!r} has no output {output_id!r} "
                f"(declared: {declared})"
            )
        return node_id, output_id

    # -- recording -------------------------------------------------------------

    def record(
        self, edges: Iterable[str] | str | None = None, max_mb: float = DEFAULT_MAX_MB
    ) -> Recording:
        """Start recording the messages sent on ``edges`` (``node/output``); return the recording.

        Without ``edges``: every output of every node, consumed or not, and
        every timer the graph uses (``dora/timer/millis/20``, recorded as node
        ``dora``). Messages are kept by reference, within ``max_mb`` megabytes:
        past it the oldest go, counted per edge (:meth:`Recording.status`).
        While the graph runs it records from now on; otherwise from the next
        :meth:`start`'s first message. It records one run: it stops when the
        run ends, or at :meth:`Recording.stop`. A new one stops the last.

        >>> flow = Dataflow(echo=False)
        >>> _ = flow.add_node("src", "pass", outputs=["n"])
        >>> flow.record(["src/n"], max_mb=1).status()
        'armed (records from the next %dora_start): 0 messages on 0 edges, 0 B of 1.0 MB, 0 dropped'
        >>> flow.record(["src/m"])
        Traceback (most recent call last):
        dora_notebook.errors.GraphError: record 'src/m': node 'src' has no output 'm' (declared: n)
        """
        if not len(self.graph):
            raise GraphError("nothing to record: the dataflow has no nodes (define them first)")
        pairs = None if edges is None else self._recorded_edges(edges)
        if isinstance(max_mb, bool) or not isinstance(max_mb, int | float) or not 0 < max_mb < 1e9:
            raise DataflowError(f"max_mb must be a positive number of megabytes, not {max_mb!r}")
        recording = Recording(pairs, max(1, int(max_mb * (1 << 20))))
        if self._recording is not None:
            self._recording.stop()
        self._recording = recording
        engine = self._engine
        if self.running and engine is not None:
            self._begin(recording, engine)
        return recording

    @property
    def recording(self) -> Recording | None:
        """The recording of :meth:`record`: the live one, or the last (None if none yet)."""
        return self._recording

    def _recorded_edges(self, edges: Iterable[str] | str) -> list[tuple[str, str]]:
        """The ``(node, output)`` pairs of ``edges``, each checked against the graph."""
        if isinstance(edges, str):
            edges = [edges]
        pairs = []
        for edge in edges:
            if not isinstance(edge, str):
                raise GraphError(f"record {edge!r}: an edge is a 'node/output' string")
            if not edge.startswith("dora/"):
                pairs.append(self._output("record", edge))
                continue
            timers = {
                "/".join(source_edge(inp.source))
                for spec in self.graph
                for inp in spec.inputs.values()
                if inp.is_timer
            }
            try:
                spec = Timer.parse(edge).spec
            except ValueError as exc:
                raise GraphError(f"record {edge!r}: {exc}") from None
            if spec not in timers:
                used = ", ".join(sorted(timers)) or "none"
                raise GraphError(f"record {edge!r}: no node takes this timer (timers: {used})")
            pairs.append(source_edge(spec))
        return pairs

    def _begin(self, recording: Recording, engine: Engine) -> None:
        """Attach ``recording`` to the run of ``engine``, describing the graph as it starts."""
        recording.begin(describe_graph(self.graph))
        engine.record(recording)

    def edges(self) -> list[dict[str, Any]]:
        """Every edge with its counters: source, target, input, delivered, dropped, queued,
        note, latency (p50 of send-to-receive in seconds, or None).

        ``note`` says what the counts mean when the engine counts otherwise
        than the embedded one (empty there); see :class:`~dora_notebook.core.protocol.EdgeCounts`.
        """
        rows = []
        engine = self._engine
        for spec in self.graph:
            for input_id, inp in spec.inputs.items():
                counts = engine.edge(spec.id, input_id) if engine is not None else EdgeCounts()
                rows.append(
                    {
                        "source": inp.source,
                        "target": spec.id,
                        "input": input_id,
                        "delivered": counts.delivered,
                        "dropped": counts.dropped,
                        "queued": counts.queued,
                        "note": counts.note,
                        "latency": counts.latency,
                    }
                )
        return rows

    # -- replay ----------------------------------------------------------------

    def replay(
        self,
        node: str,
        source: Recording | str | Path | None = None,
        last: int | None = None,
        speed: float = 0.0,
    ) -> ReplayResult:
        """Feed ``node``'s recorded inputs into its current definition, alone; compare.

        ``source``: a :class:`Recording` or the path of a saved one (or of a
        ``.drec`` file of ``dora record``, see :func:`read_drec`); by default
        :attr:`recording` (the live or last one). The node runs by itself on
        a private embedded engine (this graph, running or stopped, is not
        touched), its inputs wired as they are now and given the recorded
        messages of those edges, in the order they were sent, at the recorded
        times. ``last``: only the last N input messages. ``speed``: 0 as fast
        as the node's queues allow (nothing dropped), X times the recorded pace.

        The :class:`~dora_notebook.core.replay.ReplayResult` holds what the
        node sends now beside what it sent in the recording, output by output:
        ``result.summary()`` reads ``op/out: 98 same, 2 changed (first: #17),
        0 new, 0 missing``.
        """
        if node not in self.graph:
            known = ", ".join(s.id for s in self.graph) or "none"
            raise GraphError(f"replay: no node {node!r} (nodes: {known})")
        check_options(last, speed)
        if source is None:
            source = self.recording
            if source is None:
                raise DataflowError(
                    "replay: there is no recording: record a run first (%dora_record start, "
                    "Dataflow.record()) or give one (--from PATH, source=PATH)"
                )
        if not isinstance(source, Recording) and Path(source).suffix.lower() == ".drec":
            source = read_drec(source)  # dora record's own format: played by dora-rs itself
        if not isinstance(source, Recording):
            try:
                source = Recording.load(source)
            except RecordingError as exc:
                raise DataflowError(f"replay: {exc}") from None
        graph = Graph()
        graph.add(copy.copy(self.graph[node]))
        spec = next(iter(for_embedded(graph, self.descriptor_extra())))
        return replay_node(spec, source, NODE_API, last=last, speed=speed)


def read_drec(path: str | Path, speed: float = 0.0, timeout: float = 60.0) -> Recording:
    """The messages of a ``.drec`` file of ``dora record``, as a :class:`Recording`.

    ``dora replay`` plays them (:meth:`Dataflow.from_drec`) on a private
    coordinator and daemon, and the notebook's bridge receives them, with
    their metadata and in the order they came. Raises
    :class:`~dora_notebook.errors.DataflowError` if the replay does not end
    within ``timeout`` seconds.
    """
    flow = Dataflow.from_drec(path, speed, echo=False)
    recording = flow.record()
    flow.start(engine="dora")
    try:
        if not flow.wait(timeout):
            raise DataflowError(f"the replay of {Path(path).name} did not end in {timeout:g} s")
    finally:
        flow.stop()
    return recording


def _embedded(
    flow: Dataflow, report: Callable[[Report], None], replay_speed: float = 1.0
) -> Engine:
    graph = for_embedded(flow.graph, flow.descriptor_extra())
    return EmbeddedEngine(graph, report, NODE_API, flow.descriptor(), replay_speed=replay_speed)


def _dora(
    flow: Dataflow,
    report: Callable[[Report], None],
    coordinator: str | None = None,
    machine: str | None = None,
    daemon_port: int | None = None,
) -> Engine:
    from .dora_rs.engine import DoraEngine
    from .dora_rs.export import render

    files = render(flow.graph, top=flow.descriptor_extra())
    return DoraEngine(flow.graph.copy(), files, report, coordinator, machine, daemon_port)


#: The engines :meth:`Dataflow.start` knows, by name: ``build(flow, report,
#: **options)`` makes one run of a dataflow's graph (a
#: :class:`~dora_notebook.core.protocol.Engine`) that hands every
#: :class:`~dora_notebook.core.observe.Report` to ``report``.
ENGINES: dict[str, Callable[..., Engine]] = {"embedded": _embedded, "dora": _dora}


def check_start(
    engine: str,
    coordinator: str | None = None,
    machine: str | None = None,
    daemon_port: int | None = None,
    *,
    replay_speed: float | None = None,
    as_flags: bool = False,
) -> None:
    """Refuse start options that do not go together, in one line.

    The one home of these rules, for :meth:`Dataflow.start` and
    ``%dora_start``; ``as_flags`` names the options as the magic spells them.

    >>> check_start("embedded", coordinator="127.0.0.1:6013")
    Traceback (most recent call last):
    dora_notebook.errors.DataflowError: coordinator applies to engine='dora'
    >>> check_start("dora", machine="alpha", as_flags=True)
    Traceback (most recent call last):
    dora_notebook.errors.DataflowError: --machine applies to --engine dora --coordinator HOST:PORT
    """

    def name(option: str) -> str:
        if not as_flags:
            return option
        return "--speed" if option == "replay_speed" else "--" + option.replace("_", "-")

    dora = "--engine dora" if as_flags else "engine='dora'"
    if engine not in ENGINES:
        raise DataflowError(f"unknown engine {engine!r}: use " + " or ".join(map(repr, ENGINES)))
    if coordinator is not None and engine != "dora":
        raise DataflowError(f"{name('coordinator')} applies to {dora}")
    for option, value in (("machine", machine), ("daemon_port", daemon_port)):
        if value is not None and coordinator is None:
            # Without a coordinator the run has a daemon of its own: nothing to name.
            with_coordinator = "--coordinator HOST:PORT" if as_flags else "with a coordinator"
            raise DataflowError(f"{name(option)} applies to {dora} {with_coordinator}")
    if replay_speed is not None:
        if engine != "embedded":
            # dora-rs has no input that plays a recording (see core.playback).
            raise DataflowError(f"{name('replay_speed')} applies to the embedded engine")
        try:
            check_speed(replay_speed, name("replay_speed"))
        except ValueError as exc:
            raise DataflowError(str(exc)) from None
    if daemon_port is not None and not 0 < daemon_port < 65536:
        colon = ":" if as_flags else ""
        raise DataflowError(f"{name('daemon_port')}{colon} {daemon_port} is not a port number")
    if coordinator is not None:
        from .dora_rs.engine import parse_coordinator

        try:
            parse_coordinator(coordinator)
        except ValueError as exc:
            raise DataflowError(f"{name('coordinator')}: {exc}") from None


Inputs = Mapping[str, str | Mapping[str, Any] | InputSpec] | Iterable[str] | None


def _inputs(node_id: str, inputs: Inputs, queue_size: int | None) -> dict[str, InputSpec]:
    """Inputs as a mapping or as ``NAME=SOURCE`` strings; ``queue_size`` applies to all."""
    if inputs is None:
        return {}
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, Mapping):
        pairs = {}
        for item in inputs:
            name, sep, source = str(item).partition("=")
            if not sep or not name or not source:
                raise GraphError(f"node {node_id!r}: inputs: {item!r} is not NAME=SOURCE")
            if name in pairs:  # the last would win and an edge would vanish unseen
                raise GraphError(
                    f"node {node_id!r}: input {name!r} is given twice ({name}={pairs[name]} "
                    f"and {item}); each input needs its own name"
                )
            pairs[name] = source
        inputs = pairs
    result = {}
    for name, value in inputs.items():
        if isinstance(value, InputSpec):
            value = value.to_yaml()
        spec = parse_input(node_id, name, value)
        if queue_size is not None:
            spec = parse_input(node_id, name, {"source": spec.source, "queue_size": queue_size})
        result[name] = spec
    return result


def _echo(report: Report) -> None:
    """Print a node's log line or error as ``dora run`` does.

    A record of the embedded engine is printed as dora prints it
    (``HH:MM:SS WARN   node: target message``, a print line or a Python
    ``logging`` record as ``stdout``: see :mod:`dora_notebook.core.logs`);
    other lines go out as ``HH:MM:SS stdout node: text`` (``stderr`` for
    the node's standard error and for its errors).
    """
    record = report.data.get("record") if report.kind == "log" else None
    if isinstance(record, LogRecord):
        stream = capture.original("stdout")
        stream.write(record.pretty(report.node_id) + "\n")
        stream.flush()
        return
    if report.kind == "log":
        stdio, lines = report.data["stdio"], [report.data["line"]]
    elif report.kind == "error":
        stdio, lines = "stderr", str(report.data).splitlines()
    else:
        return
    stamp = time.strftime("%H:%M:%S", time.localtime(report.time))
    stream = capture.original("stdout")
    stream.write("".join(f"{stamp} {stdio} {report.node_id}: {line}\n" for line in lines))
    stream.flush()


_current: Dataflow | None = None
_current_lock = threading.Lock()


def current() -> Dataflow:
    """The kernel's one dataflow, the one the magics act on (made on first use)."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Dataflow(echo=False)
        return _current
