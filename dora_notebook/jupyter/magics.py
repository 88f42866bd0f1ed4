"""IPython magics: thin adapters from notebook cells to :class:`~dora_notebook.Dataflow`.

``%load_ext dora_notebook`` registers :class:`DoraMagics`. Every magic parses
its arguments (a wrong one is a one-line usage error), makes one call into
the Python API, and displays the result. The graph is the kernel's one
:func:`~dora_notebook.current` dataflow.
"""

from __future__ import annotations

import inspect
import os
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Float

from ..core.build import not_built_note
from ..core.params import param_text
from ..core.record import DEFAULT_MAX_MB, Recording, RecordingError, size_text
from ..core.replay import ReplayResult
from ..dataflow import check_start
from ..dora_rs.media import HZ_ENV as MEDIA_HZ_ENV
from ..errors import DataflowError, ReloadError, StopInterrupted
from . import arguments, session
from .replayview import replay_html
from .widgets import tap_thumbnails

__all__ = ["DoraMagics"]


def _parse(magic: Any, line: str) -> Any:
    """Parse a magic's arguments; every mistake becomes a one-line UsageError."""
    try:
        return parse_argstring(magic, line)
    except ValueError as exc:  # unbalanced quotes and the like, from shlex
        usage = " ".join(magic.parser.format_usage().replace("::", "").split())
        raise UsageError(f"{exc}; usage: {usage}") from None


def _positive(name: str, value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise UsageError(f"{name} must be a positive number of seconds, not {value:g}")
    return value


def _arguments(name: str, *, prog: str | None = None) -> Any:
    """Decorate magic ``name`` with its arguments from :mod:`~dora_notebook.jupyter.arguments`.

    The same definitions parse a notebook's magic lines in ``dora-notebook
    export``. ``prog`` names the magic in its usage line.
    """

    def decorate(func: Any) -> Any:
        for names, options in reversed(arguments.ARGUMENTS[name]):
            func = argument(*names, **options)(func)
        return magic_arguments(name=prog)(func)

    return decorate


def _check(name: str, args: Any) -> Any:
    """The checks argparse cannot express (shared with the CLI), as a UsageError."""
    try:
        return arguments.check(name, args)
    except arguments.ArgumentError as exc:
        raise UsageError(str(exc)) from None


@magics_class
class DoraMagics(Magics):
    """The dora magics; configurable with ``%config DoraMagics.preview_hz = N``."""

    preview_hz = Float(10.0, help="How many times a second each panel widget redraws at most.").tag(
        config=True
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.observe(self._hz_changed, names="preview_hz")
        self._set_hz(self.preview_hz)
        if shell is not None:  # a replay's result shows its diff side by side
            html = shell.display_formatter.formatters["text/html"]
            html.for_type(ReplayResult, replay_html)

    def _hz_changed(self, change: dict[str, Any]) -> None:
        if not change["new"] > 0:
            raise UsageError("DoraMagics.preview_hz must be positive")
        self._set_hz(change["new"])

    @staticmethod
    def _set_hz(hz: float) -> None:
        session.pump().hz = hz
        # Nodes the dora engine starts from now on send frames and points as often
        # (they inherit the kernel's environment; see dora_rs.media).
        os.environ[MEDIA_HZ_ENV] = repr(float(hz))

    # -- definitions ----------------------------------------------------------

    # Named so that the usage line reads %%dora_operator, as the cell magic is typed.
    @_arguments("dora_operator", prog="%dora_operator")
    @cell_magic
    def dora_operator(self, line: str, cell: str) -> None:
        """Define a dora operator: the cell defines ``class Operator`` with ``on_event``.

        It runs on the runtime thread once the graph starts; re-running the
        cell while the graph runs hot-swaps it (dora's hot reload).
        """
        self._define("operator", self.dora_operator, line, cell)

    @_arguments("dora_node", prog="%dora_node")
    @cell_magic
    def dora_node(self, line: str, cell: str) -> None:
        """Define a dora custom node: the cell is a script using ``node = Node()``.

        It runs in a thread of its own once the graph starts.
        """
        self._define("node", self.dora_node, line, cell)

    def _define(self, kind: str, magic: Any, line: str, cell: str) -> None:
        args = _check(f"dora_{kind}", _parse(magic, line))
        try:
            arguments.check_cell(kind, args.node_id, cell)
        except arguments.ArgumentError as exc:
            raise UsageError(str(exc)) from None
        try:
            note = session.define(
                kind, args.node_id, cell, args.inputs, args.outputs, args.queue_size, args.machine
            )
        except ReloadError as exc:
            # The previous version keeps running; its panel says why the new one did not.
            _show(session.panel(args.node_id))
            raise UsageError(str(exc)) from None
        except DataflowError as exc:
            raise UsageError(str(exc)) from None
        _show(session.panel(args.node_id))
        if note:
            print(note)

    @_arguments("dora_dataflow")
    @line_cell_magic
    def dora_dataflow(self, line: str, cell: str | None = None) -> None:
        """Load nodes from a dora-rs dataflow descriptor (YAML in the cell, or a file path).

        File paths in it resolve against the notebook's working directory.
        """
        args = _check("dora_dataflow", _parse(self.dora_dataflow, line))
        if (cell is None) == (args.path is None):
            raise UsageError(
                "give either a descriptor PATH (%dora_dataflow PATH) or YAML as the "
                "body of %%dora_dataflow, not both"
            )
        try:
            ids = session.load_yaml(args.path if cell is None else cell)
        except DataflowError as exc:
            raise UsageError(str(exc)) from None
        for node_id in ids:
            _show(session.panel(node_id))

    # -- running ------------------------------------------------------------------

    @magic_arguments()
    @argument(
        "--engine",
        choices=["embedded", "dora"],
        default="embedded",
        help="where the graph runs (default: in this kernel)",
    )
    @argument("--coordinator", metavar="HOST:PORT", help="an existing dora coordinator")
    @argument(
        "--machine",
        metavar="NAME",
        help="with --coordinator: the machine id of this kernel's daemon"
        " (the bridge and nodes placed nowhere run there)",
    )
    @argument(
        "--daemon-port",
        type=int,
        metavar="PORT",
        help="with --coordinator: this kernel's daemon's --local-listen-port (default 53291)",
    )
    @argument("--wait", action="store_true", help="block until the graph finishes")
    @argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --wait: stop the graph after this many seconds",
    )
    @argument(
        "--speed",
        type=float,
        metavar="X",
        help="the pace of inputs that play a recording (dora/replay/PATH/NODE/OUTPUT): X times "
        "the recorded pace (default 1); 0: as fast as the queues take them, nothing dropped",
    )
    @line_magic
    def dora_start(self, line: str) -> None:
        """Start the graph in the background; the notebook stays usable.

        With ``--wait`` the cell blocks until the graph finishes (all nodes
        done, ``STOP_ALL``, or ``--timeout`` reached, which stops it); an
        interrupt of the kernel stops the graph cleanly.

        The embedded engine runs every node in this kernel: node code that may
        end its process (``os._exit``, a crashing C extension) takes the kernel
        with it. Run such code with ``--engine dora``, one process per node.
        """
        args = _parse(self.dora_start, line)
        timeout = _positive("--timeout", args.timeout)
        if args.timeout is not None and not args.wait:
            raise UsageError("--timeout applies to --wait; add --wait, or use %dora_wait --timeout")
        options = {
            "coordinator": args.coordinator,
            "machine": args.machine,
            "daemon_port": args.daemon_port,
            "replay_speed": args.speed,
        }
        try:
            check_start(args.engine, **options, as_flags=True)
            session.start(args.engine, **{k: v for k, v in options.items() if v is not None})
        except DataflowError as exc:
            raise UsageError(str(exc)) from None
        if note := not_built_note(session.current().graph):
            print(note)  # a start never runs build: commands; say which it skipped
        if args.wait:
            self._wait(timeout, stop_at_timeout=True)

    @magic_arguments()
    @line_magic
    def dora_build(self, line: str) -> None:
        """Run the graph's ``build:`` commands, as ``dora build`` does.

        Each line of a node's ``build:`` runs in the folder of its descriptor
        with the node's ``env``; the output is printed. ``%dora_start`` never
        runs them.
        """
        _parse(self.dora_build, line)
        try:
            ran = session.current().build()
        except DataflowError as exc:
            raise UsageError(str(exc)) from None
        print(f"build: {ran} command(s) ran" if ran else "build: no node has a build: command")

    @magic_arguments()
    @argument("--timeout", type=float, metavar="SECONDS", help="give up waiting after this long")
    @line_magic
    def dora_wait(self, line: str) -> None:
        """Block until the running graph finishes (or ``--timeout`` passes)."""
        args = _parse(self.dora_wait, line)
        self._wait(_positive("--timeout", args.timeout), stop_at_timeout=False)

    def _wait(self, timeout: float | None, stop_at_timeout: bool) -> None:
        flow = session.current()
        if flow.engine is None:
            raise UsageError("the dataflow was never started; use %dora_start")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            # Short waits keep the kernel responsive to an interrupt.
            while not flow.wait(0.1):
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            print("interrupted: the dataflow was stopped" + _stop())
            raise
        if flow.running:
            if not stop_at_timeout:
                print(f"still running after {timeout:g} s")
                return
            print(f"stopped after {timeout:g} s" + _stop())
        session.pump().settle()
        print(session.summary())

    @magic_arguments()
    @line_magic
    def dora_stop(self, line: str) -> None:
        """Stop the graph; returns within 2 seconds even if an operator is stuck."""
        _parse(self.dora_stop, line)
        flow = session.current()
        if not flow.running:
            print("the dataflow is not running")
            return
        print("stopped" + _stop())

    @magic_arguments()
    @line_magic
    def dora_status(self, line: str) -> None:
        """Show the graph: nodes, edges with their ids, timers, live status and counts."""
        _parse(self.dora_status, line)
        display(session.graph_view())

    @_arguments("dora_export")
    @line_magic
    def dora_export(self, line: str) -> None:
        """Write DIR/dataflow.yml and one Python file per node, runnable with ``dora run``.

        Cells become node files (operators keep their context under dora-rs),
        nodes loaded from files keep them; nodes given as Python objects
        cannot be exported. Relative paths resolve against the working
        directory. Prints the files written.
        """
        args = _check("dora_export", _parse(self.dora_export, line))
        try:
            written = session.export(args.directory, args.force)
        except (DataflowError, OSError) as exc:
            raise UsageError(str(exc)) from None
        print(session.export_note(written))

    @magic_arguments()
    @argument("source", metavar="NODE/OUTPUT", help="the output to look at")
    @argument("-n", type=int, default=10, metavar="N", help="how many messages (default 10)")
    @line_magic
    def dora_tap(self, line: str) -> Any:
        """The last N messages of an edge as a DataFrame (time, metadata, value).

        Images (metadata with dora's ``width``/``height``/``encoding``) are
        also shown as thumbnails, above the table. The first tap of an output
        starts recording it (untapped outputs cost nothing); while the graph
        runs it waits up to a second for N messages.
        """
        args = _parse(self.dora_tap, line)
        try:
            frame = session.current().tap(args.source, args.n)
        except DataflowError as exc:
            raise UsageError(str(exc)) from None
        thumbnails = tap_thumbnails(frame)  # an image edge: its frames, scaled down
        if thumbnails is not None:
            display(thumbnails)
        return frame

    @magic_arguments()
    @argument(
        "action",
        choices=["start", "stop", "status", "save"],
        metavar="start|stop|status|save",
        help="what to do",
    )
    @argument(
        "args",
        nargs="*",
        metavar="EDGE|PATH",
        help="start: the edges to record, node/output or dora/timer/... (none: every "
        "output of every node and every timer); save: the file, .arrow or .parquet",
    )
    @argument(
        "--max-mb",
        type=float,
        metavar="N",
        help=f"start: the memory budget in MB (default {DEFAULT_MAX_MB}); past it the "
        "oldest messages go, counted per edge",
    )
    @line_magic
    def dora_record(self, line: str) -> None:
        """Record what the graph sends, to replay it, compare runs, or save it for pandas.

        ``%dora_record start [EDGE ...] [--max-mb N]`` records the messages
        sent on the named outputs (``node/output``; without any, every
        output of every node, consumed or not, and every timer) while the
        graph runs, by reference (nothing is copied), within N MB: past it
        the oldest messages go and are counted. Started while the graph is
        stopped, it records from the next ``%dora_start``; it records one
        run. ``stop`` ends it (what it kept stays), ``status`` says how much
        it holds and what it dropped per edge (and, on the dora engine, what
        dora-rs lost before the kernel's bridge got it), ``save PATH`` writes it as
        Arrow IPC (``.arrow``) or Parquet (``.parquet``): one row per message
        with node, output, seq, send_time, receive_time, metadata (JSON),
        type and value (Arrow IPC bytes), readable with plain pandas or
        pyarrow (``dora_notebook.Recording.load(PATH)`` gives the values
        back as Arrow arrays). From Python: ``dora_notebook.current().record()``.
        """
        if set(line.split()) & {"-h", "--help"}:
            print(inspect.getdoc(self.dora_record))
            return
        args = _parse(self.dora_record, line)
        if args.max_mb is not None and args.action != "start":
            raise UsageError(f"--max-mb applies to %dora_record start, not {args.action}")
        if args.action in ("stop", "status") and args.args:
            raise UsageError(f"%dora_record {args.action} takes no argument")
        flow = session.current()
        recording = flow.recording
        if args.action == "start":
            self._record_start(args.args, args.max_mb)
        elif args.action == "save":
            if len(args.args) != 1:
                raise UsageError("give one file: %dora_record save PATH (.arrow or .parquet)")
            if recording is None:
                raise UsageError("nothing to save: start a recording with %dora_record start")
            print(_save(recording, args.args[0]))
        elif recording is None:
            print("no recording: start one with %dora_record start [EDGE ...]")
        else:
            if args.action == "stop":
                recording.stop()
            print(recording.status())
            for what, counts in (
                ("dropped", recording.dropped_by_edge()),
                ("lost in transport", recording.lost_by_edge()),
            ):
                if counts:
                    print(f"{what}: " + ", ".join(f"{e} {n}" for e, n in counts.items()))

    @staticmethod
    def _record_start(edges: list[str], max_mb: float | None) -> None:
        flow = session.current()
        if max_mb is not None and not 0 < max_mb < 1e9:
            raise UsageError(f"--max-mb must be a positive number of megabytes, not {max_mb:g}")
        previous = flow.recording
        was_live = previous is not None and previous.active
        try:
            recording = flow.record(edges or None, DEFAULT_MAX_MB if max_mb is None else max_mb)
        except DataflowError as exc:
            raise UsageError(str(exc)) from None
        what = ", ".join(edges) if edges else "every edge and timer"
        when = "" if flow.running else "; records from the next %dora_start"
        line = f"recording {what} (budget {size_text(recording.max_bytes)}){when}"
        if was_live and previous is not None:
            line += f"; the previous recording stopped with {len(previous)} messages"
        if flow.running and flow.engine is not None and recording.note:
            line += f" ({recording.note})"
        print(line)

    @magic_arguments()
    @argument("node_id", metavar="NODE", help="the node")
    @argument("key", nargs="?", metavar="KEY", help="the parameter (without it: list them all)")
    @argument(
        "value",
        nargs="*",
        metavar="VALUE",
        help='its new value, as JSON: 2.5, true, "fast", [1, 2], {"a": 1}',
    )
    @argument("--delete", action="store_true", help="delete KEY (the node gets PARAM_DELETED)")
    @line_magic
    def dora_param(self, line: str) -> None:
        """List, read or set a node's runtime parameters, as ``dora param list|get|set`` do.

        ``%dora_param NODE`` lists them, ``%dora_param NODE KEY`` prints one,
        ``%dora_param NODE KEY VALUE`` sets it: the node gets a ``PARAM_UPDATE``
        event (``id`` the key, ``value`` decoded from JSON) after what arrived
        before it, never dropped. Set while the graph is stopped, it is given
        to the node at the next start, before any input. ``%dora_param NODE
        KEY --delete`` deletes it (a ``PARAM_DELETED`` event). From Python
        (a slider's callback, say): ``dora_notebook.current().set_param(NODE,
        KEY, value)``.
        """
        args = _parse(self.dora_param, line)
        flow, node, key = session.current(), args.node_id, args.key
        if args.delete and (key is None or args.value):
            raise UsageError("--delete takes NODE KEY and no VALUE: %dora_param NODE KEY --delete")
        try:
            if args.delete:
                flow.delete_param(node, key)
                print(f"Deleted `{key}` from node `{node}`")
            elif args.value:
                value = arguments.param_value(args.value)
                given = flow.set_param(node, key, value)
                note = ""
                if not given:
                    who = "the node" if flow.running else "the graph"
                    note = f" ({who} is not running: the node gets it at the next start)"
                print(f"Set `{key}` = {param_text(value)} on node `{node}`{note}")
            else:
                self._show_params(node, key, flow.params(node))
                return
        except (DataflowError, arguments.ArgumentError) as exc:
            raise UsageError(str(exc)) from None
        session.pump().flush()  # the panel shows the change, running or not

    @staticmethod
    def _show_params(node: str, key: str | None, params: dict[str, Any]) -> None:
        """Print parameters as ``dora param list`` and ``dora param get`` do."""
        if key is None:
            if not params:
                print(f"No parameters set for node `{node}`")
                return
            print(f"Parameters for node `{node}`:")
            for name in sorted(params):
                print(f"  {name} = {param_text(params[name])}")
        elif key in params:
            print(param_text(params[key]))
        else:
            known = ", ".join(sorted(params)) or "none"
            raise UsageError(
                f"node {node!r} has no parameter {key!r} (set: {known}); "
                f"set it with %dora_param {node} {key} VALUE"
            )

    @magic_arguments()
    @argument("node_id", metavar="NODE", help="the node to replay, as it is defined now")
    @argument(
        "--from",
        dest="source",
        metavar="PATH",
        help="a saved recording (.arrow or .parquet, relative to the working directory), or "
        "a .drec file of `dora record` (played through `dora replay` on the dora engine); "
        "default: the live or last %%dora_record recording",
    )
    @argument("--last", type=int, metavar="N", help="only the last N recorded input messages")
    @argument(
        "--speed",
        type=float,
        default=0.0,
        metavar="X",
        help="X times the recorded pace; 0 (default): as fast as the node's queues allow, "
        "nothing dropped",
    )
    @line_magic
    def dora_replay(self, line: str) -> Any:
        """Feed NODE's recorded inputs into its current definition, alone, and compare.

        The node runs by itself on a private embedded engine: the graph,
        running or stopped, is not touched. Its inputs, wired as they are
        now, get the recorded messages of those edges in the order they were
        sent, with their metadata, at the recorded time (the ``timestamp``
        it sees and ``node.timestamp()``). Shown: one line per output
        (``op/out: 98 same, 2 changed (first: #17), 0 new, 0 missing``), the
        first differing message of each output, recorded beside replayed
        (tables and images as such), and the node's previews and printed
        lines. Edit an operator's cell, re-run it, replay: the loop of
        operator development. From Python: ``current().replay(NODE, ...)``.
        """
        args = _parse(self.dora_replay, line)
        if args.last is not None and args.last < 1:
            raise UsageError(f"--last must be a whole number >= 1, not {args.last}")
        try:
            return session.current().replay(
                args.node_id, args.source, last=args.last, speed=args.speed
            )
        except DataflowError as exc:
            raise UsageError(str(exc)) from None

    @magic_arguments()
    @line_magic
    def dora_reset(self, line: str) -> None:
        """Stop the graph and forget every node (threads, panels and the recording included).

        Helper modules the nodes imported from their folders are forgotten
        too: the next run loads them anew, edits included.
        """
        _parse(self.dora_reset, line)
        note = _stop()  # before the reset forgets where nodes are blocked
        session.reset()
        print("reset" + note)


def _save(recording: Recording, path: str) -> str:
    """Save ``recording`` to ``path``; the line saying where, how much and how fast."""
    count = len(recording)  # what save() takes: it writes what the recording holds as it starts
    began = time.perf_counter()
    try:
        target = recording.save(path).resolve()
    except (RecordingError, OSError) as exc:
        raise UsageError(str(exc)) from None
    took = time.perf_counter() - began
    size = target.stat().st_size
    rate = f", {size / took / (1 << 20):.1f} MB/s" if took > 0 else ""
    live = "; still recording: this is what it held now" if recording.active else ""
    return (
        f"saved {count} message{'' if count == 1 else 's'} ({size_text(size)}) to {target} "
        f"in {took:.2f} s{rate}{live}"
    )


def _stop() -> str:
    """Stop the graph; return what to add to the one line the magic prints.

    An interrupt while the stop waits for a stuck node ends the waiting: the
    stop completes at once and the line says so, with no traceback.
    """
    try:
        note = _stuck_note(session.stop())
    except StopInterrupted as exc:
        blocked = session.current().blocked()
        names = ", ".join(f"{n} ({blocked[n]})" if n in blocked else n for n in exc.stuck)
        note = "; interrupted while waiting" + (f": did not stop: {names}" if names else "")
    for node, count in session.current().threads_left().items():
        threads = "1 thread" if count == 1 else f"{count} threads"
        note += f"; {threads} started by node {node} {'is' if count == 1 else 'are'} still running"
    return note


def _stuck_note(stuck: list[str]) -> str:
    """``; did not stop within 2 s (interrupted): cam (still blocked in time.sleep, line 4)``."""
    if not stuck:
        return ""
    flow = session.current()
    fate = flow.engine.stuck_fate if flow.engine is not None else "interrupted"
    blocked = flow.blocked()
    names = [f"{n} ({blocked[n]})" if n in blocked else n for n in stuck]
    return f"; did not stop within 2 s ({fate}): " + ", ".join(names)


def _show(panel: Any) -> None:
    """Display a node panel under its display id (its static picture updates that output)."""
    display(panel, display_id=panel.display_id)
