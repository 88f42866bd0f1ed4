"""Live node panels, built from stock ipywidgets 8, and the UI pump that updates them.

A :class:`NodePanel` shows one node: a header (id, kind, status, counts), a
progress bar with its percentage, one slot per preview id, and the last
lines of its log. Engine threads never touch widgets: they only mark a panel
dirty. One :class:`UIPump` thread redraws dirty panels at most ``hz`` times
a second (latest value wins) and once more when the graph finishes, so the
final state is always shown. Widgets are updated by setting traits and
assigning ``Output.outputs`` (never ``with output:`` from a thread).

This is the only module that imports ipywidgets.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..preview.mime import mimebundle
from .graphview import STATUS_COLOURS, render_dataflow_svg, render_text

if TYPE_CHECKING:
    from ..core.observe import NodeState
    from ..dataflow import Dataflow

__all__ = ["LOG_LINES_SHOWN", "GraphView", "NodePanel", "UIPump"]

#: How many of a node's latest log lines its panel shows (more are kept in its state).
LOG_LINES_SHOWN = 15

_STDIO_COLOURS = {"stderr": "#b35900", "warning": "#9a6700", "error": "#cf222e"}


class _FullText:
    """Widgets cut their text/plain repr at 110 characters; ours is short and whole."""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        bundle["text/plain"] = repr(self)
        return bundle


class NodePanel(_FullText, widgets.VBox):
    """The live panel of one node; its text repr summarises the node truthfully."""

    def __init__(self, state: NodeState) -> None:
        self._state = state
        self._header = widgets.HTML()
        self._bar = widgets.FloatProgress(min=0.0, max=100.0, layout={"width": "60%"})
        self._percent = widgets.Label()
        self._progress = widgets.HBox([self._bar, self._percent], layout={"display": "none"})
        self._previews = widgets.VBox()
        self._slots: dict[str, widgets.Output] = {}
        self._log = widgets.HTML(layout={"display": "none"})
        self._shown: dict[str, Any] = {}
        self._lock = threading.Lock()
        super().__init__([self._header, self._progress, self._previews, self._log])
        self.add_class("dora-node-panel")
        self.redraw()

    def __repr__(self) -> str:
        return self._state.summary()

    @property
    def node_id(self) -> str:
        return self._state.node_id

    def redraw(self) -> int:
        """Bring every widget up to date; return how many were changed."""
        with self._lock:
            changes = self._header_update() + self._progress_update()
            changes += self._previews_update() + self._log_update()
            return changes

    def _set(self, key: str, value: Any, apply: Any) -> int:
        if self._shown.get(key) == value:
            return 0
        self._shown[key] = value
        apply(value)
        return 1

    def _header_update(self) -> int:
        s = self._state
        colour = STATUS_COLOURS.get(s.status, STATUS_COLOURS["defined"])
        counts = f"{s.received} received · {s.sent} sent · {s.dropped} dropped"
        value = (
            f'<b>{html.escape(s.node_id)}</b> <span style="color:#777">({s.kind})</span> '
            f'<span style="color:{colour};font-weight:bold">{s.status}</span> '
            f'<span style="color:#555">{counts}</span>'
        )
        blocked = s.blocked  # the code a stop gave up on, until its C call returns
        if blocked:
            colour = STATUS_COLOURS["failed"]
            value += f' <span style="color:{colour}">{html.escape(blocked)}</span>'
        threads = s.threads_left if s.status in ("finished", "failed") else 0
        if threads:  # a stop cannot end them: say so where the user looks
            text = "1 thread it started is" if threads == 1 else f"{threads} threads it started are"
            colour = STATUS_COLOURS["failed"]
            value += f' <span style="color:{colour}">{text} still running</span>'
        return self._set("header", value, lambda v: setattr(self._header, "value", v))

    def _progress_update(self) -> int:
        progress = self._state.progress
        if progress is None:
            return 0

        def apply(value: float) -> None:
            with self._progress.hold_sync(), self._bar.hold_sync():
                self._bar.value = value
                self._percent.value = f"{value:.0f}%"
                self._progress.layout.display = "flex"

        return self._set("progress", progress, apply)

    def _previews_update(self) -> int:
        changes = 0
        for slot, payload in list(self._state.previews.items()):
            key = f"preview:{slot}"
            if self._shown.get(key) is payload:
                continue
            self._shown[key] = payload
            output = self._slots.get(slot)
            if output is None:
                output = self._slots[slot] = widgets.Output()
                self._previews.children = (*self._previews.children, output)
            output.outputs = (
                {"output_type": "display_data", "data": mimebundle(payload), "metadata": {}},
            )
            changes += 1
        return changes

    def _log_update(self) -> int:
        s = self._state
        lines = list(s.logs)[-LOG_LINES_SHOWN:]
        marker = (len(s.logs), s.logs_dropped, lines[-1] if lines else None)
        if self._shown.get("log") == marker:
            return 0
        self._shown["log"] = marker
        hidden = len(s.logs) + s.logs_dropped - len(lines)
        parts = [f'<div style="color:#777">… {hidden} earlier lines</div>'] if hidden else []
        for line in lines:
            colour = _STDIO_COLOURS.get(line.stdio)
            text = html.escape(line.text)
            parts.append(f'<span style="color:{colour}">{text}</span>' if colour else text)
        with self._log.hold_sync():
            # Only the newest lines, and no scroll box: a redraw would scroll it back.
            self._log.value = (
                '<pre style="margin:0;font-size:12px;line-height:1.3;white-space:pre-wrap">'
                + "\n".join(parts)
                + "</pre>"
            )
            self._log.layout.display = "block" if lines else "none"
        return 1


class GraphView(_FullText, widgets.HTML):
    """The graph of a dataflow as SVG, with live status and counts.

    Its text repr is the plain-text summary of the same graph.
    """

    def __init__(self, flow: Dataflow, max_hz: float = 2.0) -> None:
        super().__init__()
        self._flow = flow
        # The view follows the run it was shown for: the current or last one,
        # or the first to start if the graph never ran.
        self._engine = flow.engine
        self._period = 1.0 / max_hz
        self._last = float("-inf")
        self.redraw(force=True)

    def __repr__(self) -> str:
        flow = self._flow
        return render_text(flow.graph, flow.status(), flow.edges())

    def redraw(self, force: bool = False) -> int:
        """Re-render (at most ``max_hz`` times a second unless forced)."""
        if self._engine is None:
            self._engine = self._flow.engine
        if self._engine is not None and self._flow.engine is not self._engine:
            return 0  # a later run: this view stays as its own run ended
        now = time.monotonic()
        if not force and now - self._last < self._period:
            return 0
        self._last = now
        # Scaled down to the output area's width, never up.
        svg = render_dataflow_svg(self._flow).replace(
            "<svg ", '<svg style="max-width:100%;height:auto" ', 1
        )
        if svg == self.value:
            return 0
        self.value = svg
        return 1


class RealTime:
    """How the pump reads the time and waits: a test passes a fake with these two methods."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait ``timeout`` seconds or until ``event`` is set; return whether it is."""
        return event.wait(timeout)


class UIPump:
    """One named thread that redraws panels at most ``hz`` times a second.

    It runs while ``active()`` is true, then draws the final state and ends;
    :meth:`start` again when a graph starts. Every widget change it makes is
    counted in :attr:`redraws`. Setting :attr:`hz` applies at once, to a
    running pump too.

    >>> pump = UIPump(lambda: False, hz=10)
    >>> pump.stop()  # never started: nothing to join
    """

    def __init__(
        self, active: Callable[[], bool], hz: float = 10.0, *, clock: RealTime | None = None
    ) -> None:
        self._hz = hz
        self._active = active
        self._clock = clock or RealTime()
        self._panels: dict[str, NodePanel] = {}
        self._views: list[GraphView] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set by stop() and by a new hz
        self._thread: threading.Thread | None = None
        self.redraws = 0

    @property
    def hz(self) -> float:
        return self._hz

    @hz.setter
    def hz(self, value: float) -> None:
        self._hz = value
        # A pump waiting out a period of the old rate starts the new one now.
        self._wake.set()

    def panel(self, state: NodeState) -> NodePanel:
        """A new panel for ``state``'s node; it replaces the one shown before.

        The previous panel (under the cell of an earlier definition) gets a
        last redraw and then stays as it was.
        """
        panel = NodePanel(state)
        with self._lock:
            previous = self._panels.get(state.node_id)
            self._panels[state.node_id] = panel
        if previous is not None:
            previous.redraw()
        return panel

    def track(self, view: GraphView) -> None:
        """Keep a graph view up to date (the few most recent ones)."""
        with self._lock:
            self._views = [*self._views[-4:], view]

    def forget(self) -> None:
        """Drop every panel and view (after a reset)."""
        with self._lock:
            self._panels.clear()
            self._views.clear()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start redrawing (no-op if already running)."""
        if self.running():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="dora-ui", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and join the thread, then draw the final state."""
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)
        self.flush()

    def flush(self, force: bool = True) -> int:
        """Redraw every panel and view; return how many widgets changed."""
        with self._lock:
            panels = list(self._panels.values())
            views = list(self._views)
        changes = sum(panel.redraw() for panel in panels)
        changes += sum(view.redraw(force) for view in views)
        self.redraws += changes
        return changes

    def _run(self) -> None:
        while True:
            began = self._clock.monotonic()
            active = self._active()
            # Counters change without any report: redraw on a fixed period.
            self.flush(force=not active)
            if not active:
                return
            # The period is read anew after each wake, so that
            # `%config DoraMagics.preview_hz = N` applies to a running graph.
            while True:
                self._wake.clear()  # before the checks: a later stop or hz sets it again
                if self._stopping.is_set():
                    return
                rest = 1.0 / max(self._hz, 0.1) - (self._clock.monotonic() - began)
                if rest <= 0 or not self._clock.wait(self._wake, rest):
                    break
