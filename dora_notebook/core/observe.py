"""What a node reports, kept as a snapshot: the observation API.

Every engine thread turns what a node does into :class:`Report` objects
(``status``, ``log``, ``log_json``, ``message``, ``warning``, ``error``,
``progress``, ``preview``). A :class:`Dataflow <dora_notebook.Dataflow>`
hands each report to its subscribers (the widgets, the dora bridge, a
script) and folds it into one :class:`NodeState` per node, which a test or a
script can read at any time.

>>> state = NodeState("plot", "operator")
>>> state.apply(Report("plot", "progress", 40.0, 0.0))
>>> shown = {"slot": "main", "payload": {"type": "text", "data": "hi"}}
>>> state.apply(Report("plot", "preview", shown, 0.0))
>>> state.progress, state.previews["main"]["data"]
(40.0, 'hi')
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from .protocol import Counters

__all__ = [
    "LOG_LIMIT",
    "PREVIEW_LIMIT",
    "REPORT_LIMIT",
    "SERIES_LIMIT",
    "FinalCounters",
    "LogLine",
    "NodeState",
    "Report",
    "Series",
]

#: How many log lines a node keeps; older ones are dropped (and counted).
LOG_LIMIT = 1000

#: How many messages, and how many warnings and errors, a node keeps; older
#: ones are dropped (and counted), so a node reporting forever stays in memory.
REPORT_LIMIT = 1000

#: How many preview slots (distinct ids) a node keeps; past it the least
#: recently updated slot is dropped (and counted), so a node previewing a new
#: id per message keeps its panel, and the traffic to draw it, bounded.
PREVIEW_LIMIT = 50

#: The report kinds, in the words of the oocana context that produces most of them.
KINDS = (
    "status",
    "log",
    "log_json",
    "message",
    "warning",
    "error",
    "progress",
    "preview",
    "plot",
)

#: How many series (distinct names) a node's chart keeps; more are refused (and counted).
SERIES_LIMIT = 20


@dataclass(frozen=True)
class Report:
    """Something a node reported: ``kind`` is one of :data:`KINDS`.

    Or ``param``, which the dataflow reports, never a node: a parameter was set
    (``{"key": K, "value": V}``) or deleted (``{"key": K}``).
    """

    node_id: str
    kind: str
    data: Any
    time: float


@dataclass(frozen=True)
class LogLine:
    """One line of a node's log. ``stdio`` is stdout, stderr, a logging level, or json."""

    time: float
    stdio: str
    text: str


@dataclass(frozen=True)
class FinalCounters:
    """A node's counters as they were when its run was let go of: numbers, no runner.

    >>> FinalCounters("finished", 3, 3, 0).blocked is None
    True
    """

    status: str
    received: int
    sent: int
    dropped: int
    blocked: str | None = None
    threads_left: int = 0


class Series:
    """One series of a node's live chart: its latest ``window`` points, and how many came.

    >>> series = Series(window=3)
    >>> series.extend([0.0, 1.0, 2.0, 3.0], [5.0, 6.0, 7.0, 8.0])
    >>> series.points(), series.total
    (([1.0, 2.0, 3.0], [6.0, 7.0, 8.0]), 4)
    """

    def __init__(self, window: int) -> None:
        self.x: deque[float] = deque(maxlen=window)
        self.y: deque[float] = deque(maxlen=window)
        #: Points ever appended: a reader tells the new ones by it.
        self.total = 0

    @property
    def window(self) -> int:
        return self.x.maxlen or 0

    def extend(self, xs: list[float], ys: list[float], window: int | None = None) -> None:
        if window is not None and window != self.window:
            self.x = deque(self.x, maxlen=window)
            self.y = deque(self.y, maxlen=window)
        self.x.extend(xs)
        self.y.extend(ys)
        self.total += len(ys)

    def points(self) -> tuple[list[float], list[float]]:
        """The points kept, oldest first (a copy)."""
        return list(self.x), list(self.y)


class NodeState:
    """Everything known about one node: status, counters, progress, previews, logs.

    Counters read through to the live run, so they are current at any time.
    ``logs`` keeps the last :data:`LOG_LIMIT` lines; ``messages``,
    ``warnings`` and ``errors`` the last :data:`REPORT_LIMIT` of each, and
    ``previews`` the :data:`PREVIEW_LIMIT` most recently updated slots (least
    recently updated first), each with its whole payload. What fell off is
    counted in ``logs_dropped``, ``messages_dropped``, ``previews_dropped``...

    >>> state = NodeState("n", "node")
    >>> for i in range(REPORT_LIMIT + 2):
    ...     state.apply(Report("n", "message", i, 0.0))
    >>> state.messages[0], state.messages_dropped
    (2, 2)
    """

    def __init__(self, node_id: str, kind: str) -> None:
        self.node_id = node_id
        self.kind = kind
        self.status = "defined"
        self.error: str | None = None
        self.progress: float | None = None
        self.previews: dict[str, dict[str, Any]] = {}
        self.previews_dropped = 0
        #: Each slot's place on the panel: the order the node first previewed them in.
        self.preview_rank: dict[str, int] = {}
        self._ranked = 0
        #: The live chart's series by name (``context.plot``), in the order they came.
        self.series: dict[str, Series] = {}
        self.series_refused = 0
        self.logs: deque[LogLine] = deque(maxlen=LOG_LIMIT)
        self.logs_dropped = 0
        self.messages: list[Any] = []
        self.messages_dropped = 0
        self.warnings: list[str] = []
        self.warnings_dropped = 0
        self.errors: list[str] = []
        self.errors_dropped = 0
        #: The node's runtime parameters (``Dataflow.set_param``); they outlive runs.
        self.params: dict[str, Any] = {}
        self._runner: Counters | None = None
        self._run: int | None = None  # the run whose reports apply (Dataflow.start numbers them)
        self._lock = threading.Lock()
        #: Called (no arguments, on the reporting thread) after each report is folded
        #: in: a panel's pump draws it as soon as its rate allows (see UIPump.poke).
        self.on_report: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """One line: ``ticker: finished, 12 received, 12 sent`` (drops when there are any).

        A node whose code a stop left blocked says where: ``...; still blocked in
        time.sleep, line 4``.
        """
        text = f"{self.node_id}: {self.status}, {self.received} received, {self.sent} sent"
        text += f", {self.dropped} dropped" if self.dropped else ""
        blocked = self.blocked
        return text + (f"; {blocked}" if blocked else "")

    @property
    def received(self) -> int:
        return self._runner.received if self._runner is not None else 0

    @property
    def sent(self) -> int:
        return self._runner.sent if self._runner is not None else 0

    @property
    def dropped(self) -> int:
        return self._runner.dropped if self._runner is not None else 0

    @property
    def blocked(self) -> str | None:
        """Where the code a stop gave up on is still blocked (``still blocked in
        time.sleep, line 4``), until it returns; None otherwise."""
        return self._runner.blocked if self._runner is not None else None

    @property
    def threads_left(self) -> int:
        """How many threads the node's code started are still running."""
        return self._runner.threads_left if self._runner is not None else 0

    @property
    def busy(self) -> float | None:
        """Seconds the node's code has spent handling events in this run (see
        :class:`~dora_notebook.core.protocol.Counters`); None where the engine does not say."""
        return getattr(self._runner, "busy", None) if self._runner is not None else None

    def attach(self, runner: Counters | None, run: int | None = None) -> None:
        """Start observing a new run (or, with None, a redefined node): all begins anew.

        From now on only reports of ``run`` apply (see :meth:`apply`).
        """
        with self._lock:
            self._runner = runner
            self._run = run
            self.status = "defined" if runner is None else runner.status
            self.error = None
            self.progress = None
            self.previews.clear()
            self.previews_dropped = 0
            self.preview_rank.clear()
            self.series.clear()
            self.series_refused = 0
            self.logs.clear()
            self.logs_dropped = 0
            self.messages.clear()
            self.warnings.clear()
            self.errors.clear()
            self.messages_dropped = self.warnings_dropped = self.errors_dropped = 0

    def release(self) -> None:
        """Let go of the run's runner, keeping its counters as they are now.

        A panel outlives its graph (it stays under its cell after
        ``%dora_reset``); through the runner it would keep the whole run
        reachable: queued messages, the last inputs, the node's instance. A
        node whose code is still blocked, or whose threads still run, keeps
        its runner, so that its panel can go on saying so.

        >>> state = NodeState("n", "node")
        >>> state.attach(FinalCounters("finished", 2, 1, 0))
        >>> state.release()
        >>> state.received, state.sent
        (2, 1)
        """
        with self._lock:
            runner = self._runner
            if runner is None or runner.blocked or runner.threads_left:
                return
            self._runner = FinalCounters(
                runner.status, runner.received, runner.sent, runner.dropped
            )

    @property
    def run(self) -> int | None:
        """The number of the run observed (given to :meth:`attach`)."""
        return self._run

    def apply(self, report: Report, run: int | None = None) -> None:
        """Fold one report of ``run`` into the state, unless another run is observed.

        The code of an old run may outlive it (blocked in a C call when it was
        stopped); what it reports when it wakes must not land on a later run
        of a node with the same id, nor on a node redefined since.
        """
        kind, data = report.kind, report.data
        with self._lock:
            if run != self._run:
                return
            if kind == "status":
                self.status = data
            elif kind == "log":
                self._log(report.time, data["stdio"], data["line"])
            elif kind == "log_json":
                self._log(report.time, "json", data["text"])
            elif kind == "progress":
                self.progress = data
            elif kind == "preview":
                self._preview(data["slot"], data["payload"])
            elif kind == "plot":
                self._plot(data)
            elif kind == "message":
                self.messages_dropped += _keep(self.messages, data)
            elif kind == "warning":
                self.warnings_dropped += _keep(self.warnings, data)
                self._log(report.time, "warning", data)
            elif kind == "error":
                self.error = data
                self.errors_dropped += _keep(self.errors, data)
                self._log(report.time, "error", data)
            elif kind == "param":
                if "value" in data:
                    self.params[data["key"]] = data["value"]
                else:
                    self.params.pop(data["key"], None)
        notify = self.on_report
        if notify is not None:
            notify()

    def _preview(self, slot: str, payload: dict[str, Any]) -> None:
        # Re-inserted at the end: the first slot is always the least recently updated.
        self.previews.pop(slot, None)
        self.previews[slot] = payload
        if slot not in self.preview_rank:
            self.preview_rank[slot] = self._ranked
            self._ranked += 1
        if len(self.previews) > PREVIEW_LIMIT:
            dropped = next(iter(self.previews))
            del self.previews[dropped]
            del self.preview_rank[dropped]
            self.previews_dropped += 1

    def _plot(self, data: Any) -> None:
        # From another process too (the dora engine's bridge): malformed data is ignored.
        try:
            name, xs, ys, window = data["name"], data["x"], data["y"], data["window"]
        except (TypeError, KeyError):
            return
        well_formed = (
            isinstance(name, str)
            and isinstance(xs, list)
            and isinstance(ys, list)
            and len(xs) == len(ys)
            and isinstance(window, int)
            and window > 0
        )
        if not well_formed:
            return
        series = self.series.get(name)
        if series is None:
            if len(self.series) >= SERIES_LIMIT:
                self.series_refused += 1
                return
            series = self.series[name] = Series(window)
        series.extend(xs, ys, window)

    def series_points(self) -> dict[str, tuple[list[float], list[float], int]]:
        """Each series' kept points and total, read at once: ``{name: (x, y, total)}``."""
        with self._lock:
            return {name: (*s.points(), s.total) for name, s in self.series.items()}

    def series_since(
        self, seen: dict[str, int]
    ) -> dict[str, tuple[list[float], list[float], int, int]]:
        """The points of each series appended since it had ``seen[name]`` points.

        ``{name: (x, y, total, window)}`` for the series with new points (at
        most a window of them: older ones are gone).

        >>> state = NodeState("n", "operator")
        >>> state.apply(Report("n", "plot", {"name": "a", "x": [0.0, 1.0], "y": [5.0, 6.0],
        ...                                   "window": 10}, 0.0))
        >>> state.series_since({"a": 1})
        {'a': ([1.0], [6.0], 2, 10)}
        """
        out = {}
        with self._lock:
            for name, s in self.series.items():
                new = min(s.total - seen.get(name, 0), len(s.y))
                if new > 0:
                    xs = [s.x[-i] for i in range(new, 0, -1)]
                    ys = [s.y[-i] for i in range(new, 0, -1)]
                    out[name] = (xs, ys, s.total, s.window)
        return out

    def _log(self, when: float, stdio: str, text: str) -> None:
        if len(self.logs) == self.logs.maxlen:
            self.logs_dropped += 1
        self.logs.append(LogLine(when, stdio, text))

    def log_text(self) -> list[str]:
        """The log's lines as text, oldest first."""
        with self._lock:
            return [line.text for line in self.logs]


def _keep(items: list[Any], item: Any) -> int:
    """Append ``item``, dropping the oldest past :data:`REPORT_LIMIT`; return how many fell off.

    Lists, not deques like the log: they stay plain lists (JSON-ready, equal
    to a list), and dropping one of a thousand is a short memmove.
    """
    items.append(item)
    if len(items) <= REPORT_LIMIT:
        return 0
    del items[0]
    return 1
