"""The embedded engine: one process, one runtime thread for the operators, one
thread per custom node, one timer thread.

Messages move by reference: the Arrow array a node sends is the very object
its receivers get. Each input has a bounded queue that drops its oldest
message when full, as dora does, and counts the drop. Nothing is delivered
before every node is ready (operators built, custom nodes holding a
``Node()``), so a fast source cannot outrun a slow starter.

The engine is driven through :class:`~dora_notebook.dataflow.Dataflow`; tests
of the lifecycle go through that API too.
"""

from __future__ import annotations

import contextlib
import ctypes
import inspect
import itertools
import operator
import os
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import GraphError, NodeError, StopInterrupted
from . import capture, logs
from .blocked import blocked_at
from .clock import Clock, monotonic_utc, wait_event
from .events import (
    Event,
    check_metadata,
    closed_event,
    error_event,
    input_event,
    reload_event,
    status_value,
    stop_event,
    to_arrow,
    utcnow,
)
from .graph import Graph, NodeSpec, ReplaySource, Timer
from .hub import run as run_script
from .loader import load_module, load_operator_class
from .observe import Report
from .playback import Playback, Source, check_speed
from .protocol import EdgeCounts
from .record import TIMER_NODE, EdgeRecorder, Recording, RecordingError
from .rewire import rewire
from .runner import (
    LATENCY_RING,
    Control,
    InputQueue,
    Lent,
    Message,
    NodeApi,
    Runner,
    StopRequested,
    bind_runner,
    closed_marker,
    latency_p50,
)
from .tap import Sink, Tap, Tee

__all__ = ["EmbeddedEngine"]

# A timer tick carries no data; dora sends an empty null array.
_EMPTY = pa.array([], type=pa.null())

_ARRIVAL = operator.itemgetter(0)  # a lent item's arrival number


class EmbeddedEngine:
    """Runs one :class:`~dora_notebook.core.graph.Graph` once, in this process.

    ``report`` is called (from any engine thread) with every :class:`Report`;
    ``api`` supplies what node code sees (:mod:`dora_notebook.api`). It
    implements :class:`~dora_notebook.core.protocol.Engine`.
    """

    name = "embedded"
    #: What :meth:`stop` does to a node that does not stop in time.
    stuck_fate = "interrupted"

    def __init__(
        self,
        graph: Graph,
        report: Callable[[Report], None],
        api: NodeApi,
        descriptor: dict[str, Any] | None = None,
        *,
        recordings: Mapping[str, Source] | None = None,
        replay_speed: float = 1.0,
        recorded_time: datetime | None = None,
    ) -> None:
        """``recordings``, ``replay_speed``: what plays ``dora/replay/KEY/...`` inputs
        (see :meth:`replay_routes`) and how fast. ``recorded_time``: run on the
        recorded time, not the wall clock (see :meth:`now`), from that instant.
        """
        graph.validate()
        self.graph = graph
        self.descriptor = descriptor if descriptor is not None else graph.to_descriptor()
        self.job_id = uuid.uuid4().hex
        self.lock = threading.Lock()
        self._report = report
        self.api = api
        self._seq = itertools.count()
        self.runners = {spec.id: Runner(self, spec) for spec in graph}
        self._operators = [r for r in self.runners.values() if r.spec.kind == "operator"]
        self._timers: dict[str, list[tuple[Runner, InputQueue]]] = {}
        # What watches the outputs: taps by (node, output), a recording, a timer's recorder.
        self._user_taps: dict[tuple[str, str], Tap] = {}
        self._recording: Recording | None = None
        self._timer_recorders: dict[str, EdgeRecorder] = {}
        # dora/logs inputs by filter, and the log records still to deliver (see _route_log).
        self._log_routes: dict[logs.LogFilter, list[tuple[Runner, InputQueue]]] = {}
        self._log_out: deque[tuple[Runner, logs.LogRecord]] = deque()
        # Recordings played as sources: what was given by key, what was loaded, their players.
        self._recordings: dict[str, Source] = dict(recordings or {})
        self._replay_speed = check_speed(replay_speed, "replay_speed")
        self._playbacks: list[Playback] = []
        self._playing = False  # start() started them; one made later starts at once
        # A speed-0 playback waits on room for a full queue, notified while room_wanted.
        self.room = threading.Condition(self.lock)
        self.room_wanted = 0
        self._recorded_time = recorded_time
        for runner in self.runners.values():
            for input_id, spec in runner.spec.inputs.items():
                route = (runner, runner.queues[input_id])
                if spec.is_timer:
                    self._timers.setdefault(spec.timer.spec, []).append(route)
                elif spec.is_logs:
                    self.log_routes(spec.source).append(route)
                elif spec.is_replay:
                    self.replay_routes(spec.source).append(route)
                else:
                    self.runners[spec.source_node].routes[spec.source_output].append(route)
        self._ready_ops: deque[Runner] = deque()
        # Definition order, which orders operators that got the same message.
        self._rank = {runner: rank for rank, runner in enumerate(self._operators)}
        # What the runtime thread took and has not handed out yet (see _handle).
        self._batch: Iterator[Lent] = iter(())
        self._reloads: deque[tuple[Runner, NodeSpec, Future[str | None]]] = deque()
        self._runtime_cond = threading.Condition(self.lock)
        self._runtime_waiting = False
        self._unready = len(self.runners)
        self.all_ready = threading.Event()
        self.done = threading.Event()
        self._stopping = threading.Event()
        self._current_op: Runner | None = None
        # Nodes stop() gave up on: their code may still run, blocked in a C call.
        self._abandoned: set[str] = set()
        self._wait_cut = False  # a KeyboardInterrupt cut stop()'s waiting short
        # Timer ticks and throttled progress flushes run on the clock's thread.
        self.clock = Clock(self.job_id[:8])
        self._threads: list[threading.Thread] = []
        self.started_at: float | None = None

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Start every thread and return at once."""
        self.started_at = time.time()
        capture.install()
        threads = [
            threading.Thread(
                target=self._run_operators, daemon=True, name=f"dora-runtime-{self.job_id[:8]}"
            )
        ]
        for runner in self.runners.values():
            if runner.spec.kind == "node":
                runner.thread = threading.Thread(
                    target=self._run_node,
                    args=(runner,),
                    daemon=True,
                    name=f"dora-node-{runner.id}",
                )
                threads.append(runner.thread)
        threads += [playback.thread for playback in self._playbacks]
        self._playing = True
        self._threads = threads
        self.clock.start()
        for runner in self.runners.values():
            self._set_status(runner, "running")
        if not self.runners:
            self._finish_run()
        for thread in threads:
            thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every node has finished; False if ``timeout`` passed first."""
        return wait_event(self.done, timeout)  # safe against an interrupt (see there)

    # -- what the Dataflow asks of every engine (core.protocol.Engine) -------------

    def live(self, node_id: str) -> bool:
        runner = self.runners.get(node_id)
        return runner is not None and not runner.finished

    def param(self, node_id: str, event: Event) -> bool:
        """Queue a ``PARAM_UPDATE`` or ``PARAM_DELETED`` event for node ``node_id``.

        It comes after everything that arrived before it and is never dropped
        (it counts against no input's queue). False if the node is not part of
        this run or gets no more events.
        """
        runner = self.runners.get(node_id)
        if runner is None:
            return False
        with self.lock:
            # A custom node being hot-swapped has a STOP due, yet its queues carry over.
            if runner.finished or (runner.stop_reason is not None and not runner.reloading):
                return False
            runner.push(runner.control, Control(event, next(self._seq)))
        return True

    def counters(self, node_id: str) -> Runner | None:
        return self.runners.get(node_id)

    def tap(self, node_id: str, output_id: str, tap: Tap) -> None:
        runner = self.runners.get(node_id)
        if runner is not None:
            with self.lock:
                self._user_taps[node_id, output_id] = tap
                self._watch(runner)

    def record(self, recording: Recording) -> None:
        """Hand ``recording`` every message sent on the outputs it wants, timers included.

        It replaces any recording attached before; it stops when the run ends.
        """
        with self.lock:
            if self.done.is_set():
                recording.stop()  # the run ended as it was being attached: nothing comes
                return
            self._recording = recording
            for runner in self.runners.values():
                self._watch(runner)
            self._timer_recorders = {}
            for spec in self._timers:
                self._record_timer(spec)

    def _watch(self, runner: Runner) -> None:
        """Set what takes the messages of each of ``runner``'s outputs (lock held).

        Only outputs someone taps or records get an entry: the others cost the
        sender one empty-dict check.
        """
        recording = self._recording
        sinks: dict[str, Sink] = {}
        for output in runner.routes:
            found: list[Sink] = []
            tap = self._user_taps.get((runner.id, output))
            if tap is not None:
                found.append(tap)
            if recording is not None and recording.wants(runner.id, output):
                found.append(recording.recorder(runner.id, output))
            if found:
                sinks[output] = found[0] if len(found) == 1 else Tee(*found)
        runner.taps = sinks

    def _record_timer(self, spec: str) -> None:
        """Record timer ``spec``'s ticks if the recording wants them (lock held)."""
        recording = self._recording
        output = spec.partition("/")[2]
        if recording is not None and recording.wants(TIMER_NODE, output):
            self._timer_recorders[spec] = recording.recorder(TIMER_NODE, output)

    def edge(self, node_id: str, input_id: str) -> EdgeCounts:
        runner = self.runners.get(node_id)
        queue = runner.queues.get(input_id) if runner is not None else None
        if queue is None:
            return EdgeCounts()
        return EdgeCounts(
            queue.received, queue.dropped, len(queue.items), latency=latency_p50(queue.latency)
        )

    def request_stop(self) -> None:
        """Ask every node to stop (``STOP`` with id ``MANUAL``) without waiting."""
        with self.lock:
            self._request_stop_locked()

    def _request_stop_locked(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        # Release nodes still waiting in Node() for the others to be ready.
        self.all_ready.set()
        for runner in self.runners.values():
            if not runner.finished and runner.stop_reason is None:
                runner.stop_reason = "MANUAL"
            self.wake(runner)
        self._runtime_cond.notify_all()
        self.room.notify_all()

    def stop(self, timeout: float = 2.0) -> list[str]:
        """Stop the graph; return within ``timeout`` seconds.

        Returns the ids of nodes that did not stop by themselves; their code
        got a :class:`StopRequested` exception and they are marked failed.
        It is raised by their next ``send_output`` if one comes within a
        tenth of ``timeout``; otherwise Python delivers it asynchronously, at
        the node's next bytecode. Code blocked in a C call (``time.sleep``, a
        socket read, a lock wait) gets it only once that call returns, and
        :meth:`blocked` says where it is until then. (The asynchronous one can
        land in Python code that a C extension runs and cannot fail: pyarrow
        aborts the whole process if it lands in the import its type inference
        makes, CI26. A node sending in a loop, the common stuck node, never
        gets that one.)
        What it sends then goes nowhere (its runner has finished); what it
        reports reaches the observers of this run only.

        A ``KeyboardInterrupt`` while it waits (the user interrupting the
        kernel) ends the waiting, not the stop: the stop completes at once,
        stuck nodes interrupted and marked failed, and the interrupt is raised
        again only then, so the engine is never left half stopped.
        """
        start = time.monotonic()
        self._wait_cut = False
        self.request_stop()
        self._join(start + timeout * 0.5)
        stuck = [r for r in self.runners.values() if not r.finished]
        if stuck:
            for runner in stuck:
                runner.interrupted = True  # raised by its next send (see send)
            self._join(start + timeout * 0.6)
            for runner in stuck:
                # Once only: code that got it from a send may be in its cleanup now.
                if runner.interrupted and not runner.finished:
                    runner.interrupted = False
                    self._interrupt(runner)
            self._join(start + timeout * 0.9)
            why = "(the wait for it was interrupted)" if self._wait_cut else f"within {timeout:g} s"
            with self.lock:
                for runner in stuck:
                    if not runner.finished:
                        self._abandoned.add(runner.id)
                        self._fail(runner, f"did not stop {why}")
                self._maybe_done()
        else:
            self._join(start + timeout * 0.9)
        names = [r.id for r in stuck]
        if self._wait_cut:
            self.clock.cancel()
            raise StopInterrupted(names)
        try:
            self.clock.stop(max(0.0, start + timeout - time.monotonic()))
        except KeyboardInterrupt:
            self.clock.cancel()  # the timers are stopped; only the join was cut short
            raise StopInterrupted(names) from None
        return names

    def _join(self, deadline: float) -> None:
        """Join the engine's threads until ``deadline``; an interrupt ends the waiting."""
        if self._wait_cut:
            return
        try:
            for thread in self._threads:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if thread is not threading.current_thread():
                    thread.join(remaining)
        except KeyboardInterrupt:
            self._wait_cut = True

    def _interrupt(self, runner: Runner) -> None:
        """Raise StopRequested in the thread running ``runner``'s code."""
        thread = self._thread_of(runner)
        if thread is None or thread.ident is None or not thread.is_alive():
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(StopRequested)
        )

    def _thread_of(self, runner: Runner) -> threading.Thread | None:
        """The thread running ``runner``'s code right now, if any."""
        if runner.is_operator:
            return self._threads[0] if self._current_op is runner and self._threads else None
        return runner.thread

    def blocked(self, runner: Runner) -> str | None:
        """``still blocked in time.sleep, line 4`` while the code of a node that
        :meth:`stop` gave up on has not returned; None otherwise."""
        if runner.id not in self._abandoned:
            return None
        thread = self._thread_of(runner)
        if thread is None:
            return None
        return blocked_at(thread, _code_files(runner.spec))

    # -- bookkeeping (lock held) ---------------------------------------------

    def next_seq(self) -> int:
        """The next number in the engine's arrival order (messages and close markers)."""
        return next(self._seq)

    def made_room(self) -> None:
        """A queue may have room now: wake the playbacks waiting for some."""
        if self.room_wanted:
            self.room.notify_all()

    @property
    def stopping(self) -> threading.Event:
        """Set once the run is asked to stop, or has ended."""
        return self._stopping

    # -- time and recordings ---------------------------------------------------

    def now(self, runner: Runner) -> datetime:
        """What time it is for ``runner``'s code (``Node.timestamp``, a sent ``timestamp``).

        The wall clock; in a replay (``recorded_time``), the recorded send time
        of the latest event the node was handed, so that a node replayed twice
        sees the same times, those of the recorded run.
        """
        if self._recorded_time is None:
            return monotonic_utc()
        metadata = runner.context._metadata()
        stamp = metadata.get("timestamp") if metadata else None
        if isinstance(stamp, datetime):
            self._recorded_time = stamp
        return self._recorded_time

    def replay_routes(self, source: str) -> list[tuple[Runner, InputQueue]]:
        """The subscribers of ``dora/replay/PATH/NODE/OUTPUT`` (made, and playing, if new).

        ``PATH`` is a key of the ``recordings`` the engine was given, or a
        recording's file (relative to the working directory), loaded once per
        run. Every edge of one recording is played by one :class:`Playback`
        (one order between them), unless it started already: a node that
        subscribes later gets its own. Raises :class:`GraphError` in one line
        if the file or the edge is not there. Lock held (or not yet running).
        """
        replay = ReplaySource.parse(source)
        recording = self._recording_at(replay.path, source)
        edge = f"{replay.node}/{replay.output}"
        if edge not in recording.recorded_edges():
            recorded = ", ".join(recording.recorded_edges()) or "none"
            raise GraphError(
                f"{source}: the recording at {replay.path!r} has no message of {edge} "
                f"(recorded: {recorded})"
            )
        for playback in self._playbacks:
            if playback.source is recording and not playback.started:
                return playback.routes(replay.node, replay.output)
        playback = Playback(replay.path, recording, self._replay_speed, self)
        self._playbacks.append(playback)
        routes = playback.routes(replay.node, replay.output)
        if self._playing:  # a hot swap subscribed it
            self._threads.append(playback.thread)
            playback.start()
        return routes

    def _recording_at(self, path: str, source: str) -> Source:
        recording = self._recordings.get(path)
        if recording is None:
            try:
                recording = Recording.load(Path(path).expanduser().absolute())
            except RecordingError as exc:
                raise GraphError(f"{source}: {exc}") from None
            self._recordings[path] = recording
        return recording

    def wake(self, runner: Runner) -> None:
        if runner.is_operator:
            if not runner.scheduled and self.all_ready.is_set():
                runner.scheduled = True
                self._ready_ops.append(runner)
                if self._runtime_waiting:
                    self._runtime_cond.notify()
        elif runner.waiting:
            runner.cond.notify_all()  # a cancelled recv_async's waiter must not take the wake-up

    def _set_status(self, runner: Runner, status: str) -> None:
        runner.status = status
        self.emit(runner.id, "status", status)

    def emit(self, node_id: str, kind: str, data: Any) -> None:
        if kind == "log":
            data = self._route_log(node_id, data)
            if data is None:
                return
        # Observers are not node code: what they print, or a traceback of
        # theirs, must not land in the node's log, which would report it to
        # them again, without end.
        local = capture.current
        sink, local.sink = local.sink, None
        try:
            self._report(Report(node_id, kind, data, time.time()))
        except Exception:  # a broken observer must not break the graph
            traceback.print_exc()
        finally:
            local.sink = sink

    # -- logs ------------------------------------------------------------------

    def _route_log(self, node_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """A line or record of a node's log, routed as dora-rs 1.1 routes it.

        Dropped (None) below the node's ``min_log_level``; else returned with
        its ``record`` (a print line is a ``stdout`` one) to be shown, and
        queued for the node's ``send_logs_as`` output and the ``dora/logs``
        inputs that take it. Delivery takes the engine's lock, which the
        caller may hold (a node's last line is flushed as it finishes): what
        cannot go now goes, in order, from the clock's thread.
        """
        runner = self.runners.get(node_id)
        record = data.get("record") or logs.LogRecord(logs.STDOUT, data["line"])
        if runner is None:
            return data
        minimum, output = logs.node_settings(runner.spec.extra)
        if not logs.passes(record.level, minimum):
            return None
        if output is not None or self._log_routes:
            self._log_out.append((runner, record))
            if self.lock.acquire(blocking=False):
                try:
                    self._deliver_logs()
                finally:
                    self.lock.release()
            else:
                self.clock.call_later(0, self._deliver_logs_locked)
        return {**data, "record": record}

    def _deliver_logs_locked(self) -> None:
        with self.lock:
            self._deliver_logs()

    def _deliver_logs(self) -> None:
        """Send the queued records as dora does: its JSON text in a one-string array. Lock held."""
        dataflow_id = str(uuid.UUID(self.job_id))
        # Only what is queued now: a delivery that overflows a subscriber's queue
        # queues that drop's warning, which goes in a later call, not in this
        # loop (two overflowing subscribers would hand each other warnings
        # forever, with the lock held).
        for _ in range(len(self._log_out)):
            runner, record = self._log_out.popleft()
            value = pa.array([record.to_json(runner.id, dataflow_id)])
            meta = {"timestamp": utcnow()}
            output = logs.node_settings(runner.spec.extra)[1]
            if output in runner.routes and not runner.finished:
                runner.sent += 1
                seq = self._push_all(runner.routes[output], value, meta)
                sink = runner.taps.get(output)
                if sink is not None:
                    sink.record(value, meta, 0, seq)  # from no input: the node's code logged
            # dora-rs 1.1 never hands a node its own records (measured with dora run:
            # a dora/logs subscriber that prints would otherwise feed itself forever).
            routes = self._log_routes.items()
            targets = [
                t
                for f, ts in routes
                if f.accepts(record.level, runner.id)
                for t in ts
                if t[0] is not runner
            ]
            self._push_all(targets, value, meta)

    def _push_all(
        self, routes: list[tuple[Runner, InputQueue]], value: pa.Array, meta: dict[str, Any]
    ) -> int:
        """Queue one message on every subscriber, each with its own metadata: its number."""
        seq = next(self._seq)
        for target, queue in routes:
            target.push(queue, Message(value, dict(meta), seq))
        return seq

    def log_routes(self, source: str) -> list[tuple[Runner, InputQueue]]:
        """The subscribers of a ``dora/logs[/LEVEL[/NODE]]`` source (made if new). Lock held."""
        return self._log_routes.setdefault(logs.LogFilter.parse(source), [])

    def _mark_ready(self, runner: Runner) -> None:
        if runner.ready:
            return
        runner.ready = True
        self._unready -= 1
        if self._unready == 0:
            self.all_ready.set()
            self._start_timers()
            for op in self._operators:
                if op.has_event():
                    self.wake(op)
            self._runtime_cond.notify_all()

    def _close_outputs(self, runner: Runner) -> None:
        for routes in runner.routes.values():
            for target, queue in routes:
                target.push(queue, closed_marker(self))

    def _finish(self, runner: Runner) -> None:
        if runner.finished:
            return
        # The node's last lines go out on its send_logs_as output (and to dora/logs
        # inputs) before that output closes, as dora-rs sends a node's records while
        # it runs: queued here for later, they would find the node finished and be
        # dropped (1 run in 4 lost a last print).
        runner.sink.flush()
        if self._log_out:
            self._deliver_logs()
        runner.finished = True
        runner.clear()
        self.made_room()  # a playback waiting for its queue plays on (into nothing)
        self._close_outputs(runner)
        runner.sink.flush()  # what the node's other threads printed meanwhile
        runner.context.flush_progress()  # the last progress precedes the final status
        self._set_status(runner, "failed" if runner.error is not None else "finished")
        self._maybe_done()

    def _fail(self, runner: Runner, error: str) -> None:
        self._error(runner, error)
        self._finish(runner)

    def _error(self, runner: Runner, error: str) -> None:
        runner.error = error
        self.emit(runner.id, "error", error)
        if runner.status != "failed":
            self._set_status(runner, "failed")

    def node_error(self, runner: Runner, error: str) -> None:
        """A node reported an error: it is marked failed but keeps running."""
        with self.lock:
            self._error(runner, error)

    def finish_node(self, runner: Runner) -> None:
        """The node said it is done (oocana's ``done``): close its outputs."""
        with self.lock:
            self._finish(runner)

    def _maybe_done(self) -> None:
        if all(r.finished for r in self.runners.values()):
            self._finish_run()

    def _finish_run(self) -> None:
        if not self.done.is_set():
            self._stopping.set()
            self.clock.cancel()
            if self._playbacks:
                self.room.notify_all()
            if self._recording is not None:
                self._recording.stop()  # a recording is of one run
            self.done.set()
            self._runtime_cond.notify_all()
            capture.uninstall()

    # -- sending -------------------------------------------------------------

    def send(
        self,
        runner: Runner,
        output_id: str,
        data: object,
        metadata: dict[str, Any] | None = None,
        convert: bool = True,
    ) -> None:
        """``send_output`` of ``runner``: validate, then queue on every subscriber.

        ``convert=False`` sends ``data`` as it is (the context's by-reference outputs).
        """
        if runner.interrupted:
            # stop() gave up waiting for this node: its code ends here, in a call of
            # ours, not by an exception raised wherever it happens to be (see stop).
            # Once: its cleanup may send, as after the asynchronous one.
            runner.interrupted = False
            raise StopRequested
        routes = runner.routes.get(output_id)
        if routes is None:
            declared = ", ".join(sorted(runner.routes)) or "none"
            raise NodeError(
                f"node {runner.id!r} has no output {output_id!r} (declared outputs: {declared})"
            )
        value = to_arrow(data) if convert and not isinstance(data, pa.Array) else data
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
        try:
            meta = check_metadata(metadata)
        except (TypeError, OverflowError) as exc:
            if not runner.is_operator or isinstance(exc, NodeError):
                raise
            # dora's operator callback reports a refused value as a RuntimeError.
            raise NodeError(str(exc)) from exc
        # As in dora, a forwarded timestamp is kept: it dates the original input.
        if "timestamp" not in meta:
            meta["timestamp"] = utcnow() if self._recorded_time is None else self.now(runner)
        with self.lock:
            if runner.finished:
                return
            runner.sent += 1
            # Its number (the arrival order) and send time (the edge's latency), which a
            # recording keeps too, with the number of the input its node is handling.
            seq, sent = next(self._seq), time.monotonic_ns()
            if runner.taps:  # the one check an output nobody taps or records costs
                sink = runner.taps.get(output_id)
                if sink is not None:
                    sink.record(value, meta, sent, seq, runner.cause)
            if routes:
                if len(routes) == 1:
                    target, queue = routes[0]
                    target.push(queue, Message(value, meta, seq, sent))
                else:
                    # Receivers share the value but each gets its own metadata dict.
                    for target, queue in routes:
                        target.push(queue, Message(value, dict(meta), seq, sent))

    # -- the runtime thread --------------------------------------------------

    def _run_operators(self) -> None:
        for runner in self._operators:
            self._build_operator(runner)
        with self.lock:
            for runner in self._operators:
                self._mark_ready(runner)
            # An operator without inputs never gets an event: it is done.
            for runner in self._operators:
                if not runner.queues and not runner.finished:
                    self._finish(runner)
        self.all_ready.wait()
        while True:
            try:
                with self.lock:
                    # What an interrupted batch did not hand out goes back first.
                    self._put_back(list(self._batch))
                    if self._reloads:
                        request = self._reloads.popleft()
                    else:
                        request = None
                        batch = self._next_operator_events()
                        if not batch:
                            if self._reloads:
                                continue
                            return
                        self._batch = iter(batch)
                if request is None:
                    self._handle()
                else:
                    self._reload_operator(*request)
            except StopRequested:
                # stop() interrupts a stuck operator; this one already returned.
                continue

    def _next_operator_events(self) -> list[Lent]:
        """Every event queued for an operator, in arrival order; [] when all are done.

        Waits while nothing is queued. A message sent to several operators
        goes to them in definition order; a due STOP comes before any input.
        Anything sent later, by the operators of this batch too, arrives
        later, so handing out a batch in order is handing out one event at a
        time.
        """
        while True:
            while not self._ready_ops:
                if self._reloads:
                    return []
                if self.done.is_set() or all(r.finished for r in self._operators):
                    return []
                self._runtime_waiting = True
                self._runtime_cond.wait()
                self._runtime_waiting = False
            ready = list(self._ready_ops)
            self._ready_ops.clear()
            if len(ready) > 1:
                ready.sort(key=self._rank.__getitem__)
            batch: list[Lent] = []
            for runner in ready:
                runner.scheduled = False
                if not runner.finished:
                    runner.lend(batch)
            if len(batch) > 1:
                batch.sort(key=_ARRIVAL)  # stable: ties stay in definition order
            if batch:
                return batch

    def _handle(self) -> None:
        """Hand the events of ``self._batch`` to their operators, in order, then
        those of the next batch while more is queued.

        Each batch is taken under one lock acquisition. A batch stops early,
        the rest going back to the queues, before an event its operator must
        not get now: the operator finished, a STOP is due (it goes first), or
        a reload waits (reloads go between events). A lent message for whose
        input newer messages filled the queue in the meantime is dropped, the
        oldest, as if it had stayed queued. Otherwise the lock is taken only
        for what is rare: a close, a STOP, a status other than CONTINUE.
        """
        try:
            while True:
                if not self._handle_batch():
                    return
                with self.lock:
                    self.made_room()  # the batch handed out its messages: their queues have room
                    if self._reloads or not self._ready_ops:
                        return  # the loop above waits, or reloads
                    self._batch = iter(self._next_operator_events())
        finally:
            capture.current.sink = None

    def _handle_batch(self) -> bool:
        """Hand out ``self._batch`` (see :meth:`_handle`); False if it stopped early."""
        local = capture.current
        sink = local.sink
        for entry in self._batch:
            _, runner, queue, item = entry
            if runner.finished or self._reloads or (queue is not None and runner.stop_reason):
                with self.lock:
                    self._put_back([entry, *self._batch])
                return False
            message = type(item) is Message
            # What the operator sends while handling it answers it (a recording keeps this).
            runner.cause = item.seq if message else -1  # type: ignore[union-attr]
            if queue is None:
                event = stop_event(item)  # type: ignore[arg-type]
            elif not message:
                event = item.event if type(item) is Control else closed_event(queue.input_id)
            else:
                queue.lent -= 1
                if queue.lent + len(queue.items) >= queue.capacity:
                    # Perhaps newer messages filled its queue: check under the lock.
                    with self.lock:
                        if runner.outrun(queue):
                            continue
                # Only this thread counts an operator's receipts.
                queue.received += 1
                runner.received += 1
                event = input_event(queue.input_id, item.value, item.metadata)  # type: ignore[union-attr]
            # Print capture follows the operator, switched only when it changes.
            if runner.sink is not sink:
                sink = local.sink = runner.sink
            runner.context._set_event(event)
            # One clock read dates the receipt (the edge's latency) and starts the busy time.
            runner.busy_since = now = time.monotonic_ns()
            if message and item.sent:  # type: ignore[union-attr]
                queue.latency[queue.received & (LATENCY_RING - 1)] = now - item.sent  # type: ignore[union-attr]
            status = self._dispatch(runner, event)
            runner.busy_ns += time.monotonic_ns() - now
            runner.busy_since = 0
            if status != 0 or not message:
                with self.lock:
                    # STOP ends an operator, and so does its last INPUT_CLOSED.
                    ending = queue is None or (
                        not message and type(item) is not Control and runner.close_input(queue)
                    )
                    self._settle(runner, status, ending)
        return True

    def _put_back(self, rest: list[Lent]) -> None:
        """Return what a batch did not hand out to its queues, newest first (lock held)."""
        for _, runner, queue, item in reversed(rest):
            runner.put_back(queue, item)
        for runner in {entry[1] for entry in rest}:
            if not runner.finished and runner.has_event():
                self.wake(runner)

    def _settle(self, runner: Runner, status: int | None, ending: bool) -> None:
        """After ``on_event`` returned ``status`` (None if it raised): finish if done."""
        if status is None:
            return  # it failed, and so finished
        if status != 0 or ending:
            self._finish(runner)
        if status == 2:
            self._request_stop_locked()

    def _build_operator(self, runner: Runner) -> None:
        capture.current.sink = runner.sink
        try:
            cls = load_operator_class(runner.spec, self.api.dora)
            runner.instance = cls()
        except StopRequested:
            with self.lock:
                self._fail(runner, "did not stop while starting")
        except BaseException:
            with self.lock:
                self._fail(runner, _format_exc())
        finally:
            capture.current.sink = None

    def _dispatch(self, runner: Runner, event: Event) -> int | None:
        """Call ``on_event``; return its status, or None if it raised (node failed).

        The caller routes prints to the operator's log (``capture.current``).
        """
        self._current_op = runner
        try:
            return status_value(runner.instance.on_event(event, runner.context))
        except StopRequested:
            error = f"did not stop: interrupted while handling {event['type']} {event.get('id')!r}"
        except BaseException:
            error = _format_exc()
        finally:
            self._current_op = None
        with self.lock:
            self._fail(runner, error)
        return None

    # -- hot redefinition ------------------------------------------------------

    def reload(self, spec: NodeSpec) -> Future[str | None]:
        """Swap node ``spec.id`` for a new definition while the graph runs.

        The future gives None once the new version runs, or the reason it
        does not (the running version then keeps running). Queued messages
        and counters carry over; changed inputs and outputs are rewired.
        """
        future: Future[str | None] = Future()
        runner = self.runners[spec.id]
        with self.lock:
            if runner.finished or self.done.is_set():
                future.set_result(
                    f"node {spec.id!r} has {runner.status}; stop and start the dataflow to run "
                    "the new version"
                )
            elif spec.kind != runner.spec.kind:
                future.set_result(
                    f"node {spec.id!r} changed from {runner.spec.kind} to {spec.kind}; "
                    "stop and start the dataflow to run it"
                )
            elif runner.is_operator:
                self._reloads.append((runner, spec, future))
                if self._runtime_waiting:
                    self._runtime_cond.notify()
        if not future.done() and not runner.is_operator:
            threading.Thread(
                target=self._reload_node,
                args=(runner, spec, future),
                name=f"dora-reload-{spec.id}",
                daemon=True,
            ).start()
        return future

    def _reload_operator(self, runner: Runner, spec: NodeSpec, future: Future[str | None]) -> None:
        """On the runtime thread: build the new operator, then hand it its RELOAD event."""
        local = capture.current
        local.sink = runner.sink
        try:
            new = load_operator_class(spec, self.api.dora)()
        except BaseException:
            error = _format_exc()
            self.emit(
                runner.id,
                "warning",
                f"the new version failed; the previous one keeps running\n{error}",
            )
            future.set_result(error)
            local.sink = None
            return
        # dora's hot reload: the old instance's attributes carry over.
        new.__dict__.update(getattr(runner.instance, "__dict__", {}))
        with self.lock:
            if runner.finished:
                future.set_result(f"node {runner.id!r} finished while it was being reloaded")
                local.sink = None
                return
            rewire(self, runner, spec)
            self._watch(runner)  # its outputs may have changed
            runner.instance = new
        status = None
        try:
            status = self._dispatch(runner, reload_event(runner.id))
        finally:
            local.sink = None
            with self.lock:
                self._settle(runner, status, ending=False)
                future.set_result(None)

    def _reload_node(self, runner: Runner, spec: NodeSpec, future: Future[str | None]) -> None:
        """Stop the node's running script, then run the new one on the same queues."""
        try:
            compile(spec.source or "", spec.code_name(), "exec")
        except SyntaxError:
            future.set_result(_format_exc())
            return
        with self.lock:
            runner.reloading = True
            if runner.stop_reason is None:
                runner.stop_reason = "MANUAL"
            self.wake(runner)
        old = runner.thread
        if old is not None:
            old.join(1.5)
            if old.is_alive():
                self._interrupt(runner)
                old.join(0.5)
        with self.lock:
            runner.reloading = False
            if old is not None and old.is_alive():
                future.set_result(f"the running version of {runner.id!r} did not stop")
                return
            if runner.finished:
                future.set_result(f"node {runner.id!r} finished while it was being reloaded")
                return
            runner.stop_reason = None
            runner.stop_delivered = False
            rewire(self, runner, spec)
            self._watch(runner)  # its outputs may have changed
            runner.thread = threading.Thread(
                target=self._run_node, args=(runner,), daemon=True, name=f"dora-node-{runner.id}"
            )
            self._threads.append(runner.thread)
            runner.thread.start()
        future.set_result(None)

    # -- custom-node threads -------------------------------------------------

    def _run_node(self, runner: Runner) -> None:
        capture.current.sink = runner.sink
        bind_runner(runner)
        error: str | None = None
        try:
            if runner.spec.obj is not None:
                runner.spec.obj()
            elif runner.spec.script is not None:
                run_script(runner.spec, self.api.dora)
            else:
                load_module(runner.spec, self.api.dora, as_main=True)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                error = f"exited with code {exc.code}"
        except StopRequested:
            error = "did not stop: interrupted"
        except BaseException:
            error = _format_exc()
        finally:
            capture.current.sink = None
            bind_runner(None)
        with self.lock:
            if runner.busy_since:  # its code ended: so did its handling of the last event
                runner.busy_ns += time.monotonic_ns() - runner.busy_since
                runner.busy_since = 0
            if runner.reloading:
                return  # the new version takes over this node's queues
            self._mark_ready(runner)
            if error is not None:
                self._fail(runner, error)
            else:
                self._finish(runner)

    def node_ready(self, runner: Runner) -> None:
        """Called by ``Node()``: block until every node is ready."""
        with self.lock:
            self._mark_ready(runner)
        self.all_ready.wait()

    def next_event(self, runner: Runner, timeout: float | None) -> Event | None:
        """``Node.next``: the next event, an ERROR event on timeout, None at the end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            if runner.busy_since:  # the node handled its last event until now
                runner.busy_ns += time.monotonic_ns() - runner.busy_since
                runner.busy_since = 0
            while True:
                event = runner.take()
                if event is not None:
                    runner.busy_since = time.monotonic_ns()
                    return event
                if runner.stop_delivered or runner.finished:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return error_event(
                        f"Timeout event stream error: Receiver timed out after {timeout} s"
                    )
                runner.waiting += 1
                try:
                    runner.cond.wait(remaining)
                finally:
                    runner.waiting -= 1

    # -- timers ----------------------------------------------------------------

    def _start_timers(self) -> None:
        """Schedule every timer's first tick (when all nodes are ready)."""
        for spec, targets in self._timers.items():
            self._schedule_timer(spec, targets)

    def _schedule_timer(self, spec: str, targets: list[tuple[Runner, InputQueue]]) -> None:
        interval = Timer.parse(spec).interval
        due = time.monotonic() + interval
        self.clock.call_at(due, self._ticker(spec, targets, due, interval))

    def timer_routes(self, spec: str) -> list[tuple[Runner, InputQueue]]:
        """The subscribers of timer ``spec``, made (and ticking) if new. Lock held."""
        spec = Timer.parse(spec).spec  # one timer per interval, however it is spelled
        targets = self._timers.get(spec)
        if targets is None:
            targets = self._timers[spec] = []
            self._record_timer(spec)
            if self.all_ready.is_set():
                self._schedule_timer(spec, targets)
        return targets

    def _ticker(
        self, spec: str, targets: list[tuple[Runner, InputQueue]], due: float, interval: float
    ) -> Callable[[], None]:
        def tick() -> None:
            if self._stopping.is_set():
                return
            with self.lock:
                now, seq, sent = utcnow(), next(self._seq), time.monotonic_ns()
                for target, queue in targets:
                    target.push(queue, Message(_EMPTY, {"timestamp": now}, seq, sent))
                if self._timer_recorders:
                    recorder = self._timer_recorders.get(spec)
                    if recorder is not None:
                        recorder.record(_EMPTY, {"timestamp": now}, sent, seq)
            nxt = _next_due(due, interval)
            self.clock.call_at(nxt, self._ticker(spec, targets, nxt, interval))

        return tick


def _next_due(due: float, interval: float) -> float:
    nxt = due + interval
    now = time.monotonic()
    # Skip ticks missed while the machine was busy rather than bursting them.
    return nxt if nxt > now else now + interval


def _code_files(spec: NodeSpec) -> set[str]:
    """The file names a node's code runs under (its frames' ``co_filename``)."""
    files = {spec.code_name()}
    if spec.obj is not None:
        with contextlib.suppress(TypeError, OSError):  # a builtin has no file
            files.add(inspect.getfile(spec.obj))
    return files


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _format_exc() -> str:
    """The current exception's traceback without the engine's own frames."""
    exc_type, exc, tb = sys.exc_info()
    while tb is not None and os.path.dirname(tb.tb_frame.f_code.co_filename) == _PACKAGE_DIR:
        tb = tb.tb_next
    return "".join(traceback.format_exception(exc_type, exc, tb)).rstrip()
