"""Live node panels, built from stock ipywidgets 8, and the UI pump that updates them.

A :class:`NodePanel` shows one node: a header (id, kind, status, counts), a
progress bar with its percentage, one slot per preview id (an image's slot is a
:class:`~.frameview.FrameView`, a live chart a :class:`~.chart.LiveChart`: two
small anywidgets), and the last lines of its log. Engine threads never touch
widgets: they only mark a panel dirty and poke the pump. One :class:`UIPump`
thread redraws dirty panels as soon as a report comes, at most ``hz`` times a
second (latest value wins), counters alone at :data:`IDLE_HZ`, and once more
when the graph finishes, so the final state is always shown. A redraw sends
only what changed, and a panel sends at most :data:`PANEL_BYTES_PER_SECOND` of
previews and log (a :class:`ByteBudget`): what would exceed it waits for a
later tick, and the pump keeps drawing after the graph ends until nothing
waits. Widgets are updated by setting traits and assigning ``Output.outputs``
(never ``with output:`` from a thread).

This is the only module that imports ipywidgets (anywidget's widgets are ipywidgets too).
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import io
import json
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
from IPython.display import update_display

from ..core.logs import passes
from ..core.params import param_text
from ..preview.frames import ENCODINGS, Frame, FrameEncoder, frame_from, thumbnail
from ..preview.mime import mimebundle
from .graphview import STATUS_COLOURS, Meter, render_dataflow_svg, render_text

if TYPE_CHECKING:
    from ..core.observe import NodeState
    from ..core.protocol import Engine
    from ..dataflow import Dataflow

__all__ = [
    "COUNTERS_HZ",
    "IDLE_HZ",
    "LOG_LINES_SHOWN",
    "LOG_LINE_CHARS",
    "PANEL_BYTES_PER_SECOND",
    "ByteBudget",
    "GraphView",
    "NodePanel",
    "RoundSchedule",
    "TapThumbnails",
    "UIPump",
    "tap_thumbnails",
]

#: How many of a node's latest log lines its panel shows (more are kept in its state).
LOG_LINES_SHOWN = 15

#: The most characters of one log line a panel shows (the state keeps it whole).
LOG_LINE_CHARS = 2000

#: The most characters of a node's parameters its panel shows (``params: gain=2.5, ...``).
PARAMS_CHARS = 300

#: What one panel sends of previews and log per second, in bytes: half of
#: Jupyter Server's iopub budget (1 MB/s), so that a node previewing 10 MB at
#: every message leaves the notebook usable and its output undropped.
PANEL_BYTES_PER_SECOND = 500_000

#: How often the pump draws when no node reported anything: only counters changed
#: (they change with every message, without a report), and a reader needs no more.
IDLE_HZ = 4.0
#: A panel's header redraws its counters at most this often; a new status at once.
#: A camera previewing at 30 Hz would otherwise re-render the header 30 times a
#: second, one more widget message and page layout per frame. Even at 4 Hz, the two
#: headers of a camera and its viewer cost the browser more than the frames' own
#: extra work: Chromium 57-61 % against the stock-Image reference's 50-54 %, and
#: 52-57 % against 54-57 % at 1 Hz (bench/video.py, issue 15).
COUNTERS_HZ = 1.0

_STDIO_COLOURS = {
    "stderr": "#b35900",
    "critical": "#cf222e",
    "error": "#cf222e",
    "warning": "#9a6700",
    "info": "#1a7f37",
    "debug": "#0969da",
    "trace": "#6e7781",
}

#: A log line's level as the panel's filter reads it (dora's); other lines are ``stdout``.
_LINE_LEVELS = {
    "critical": "ERROR",
    "error": "ERROR",
    "warning": "WARN",
    "info": "INFO",
    "debug": "DEBUG",
    "trace": "TRACE",
}

#: The log view's level filter, as dora's: a level hides plain output and lower levels.
_LEVEL_CHOICES = [
    ("all lines", "stdout"),
    ("error", "ERROR"),
    ("warning and up", "WARN"),
    ("info and up", "INFO"),
    ("debug and up", "DEBUG"),
    ("trace and up", "TRACE"),
]


class _FullText:
    """Widgets cut their text/plain repr at 110 characters; ours is short and whole."""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        bundle["text/plain"] = repr(self)
        return bundle


class ByteBudget:
    """A token bucket: ``rate`` bytes a second, at most one second's worth saved up.

    Something may be sent while the balance is positive, and its whole size is
    taken then: a preview larger than a second's worth still goes out whole,
    and the debt it leaves is waited out, so the rate holds over time.

    >>> now = [0.0]
    >>> budget = ByteBudget(1000, lambda: now[0])
    >>> budget.take(1500), budget.take(1)
    (True, False)
    >>> now[0] = 0.6  # 600 bytes later: the debt of 500 is paid
    >>> budget.take(1)
    True
    """

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._clock = clock
        self._balance = rate
        self._last = clock()

    def take(self, size: int) -> bool:
        """Whether ``size`` bytes may be sent now (then they are counted)."""
        if not self.ready():
            return False
        self._balance -= size
        return True

    def ready(self) -> bool:
        """Whether something may be sent now, whatever its size (see :meth:`take`).

        An image is encoded only then: encoding one the budget then refuses
        would cost the CPU for nothing.
        """
        now = self._clock()
        self._balance = min(self._rate, self._balance + (now - self._last) * self._rate)
        self._last = now
        return self._balance > 0


def _bundle_size(bundle: dict[str, Any]) -> int:
    """About the bytes a MIME bundle takes in a message (text counted as its length)."""
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in bundle.values())


#: Frames the dora engine's shim encoded as data URLs of these types go to an
#: Image widget as bytes.
_IMAGE_FORMATS = ("image/png", "image/jpeg", "image/gif", "image/webp")


def chart_png(series: dict[str, tuple[list[float], list[float]]], windows: dict[str, int]) -> bytes:
    """A static PNG of a live chart's series (drawn with matplotlib's Agg, no pyplot).

    >>> chart_png({"v": ([0.0, 1.0], [2.0, 3.0])}, {})[:4]
    b'\x89PNG'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.2, 2.4), dpi=72)
    axes = figure.add_subplot()
    for name, (x, y) in series.items():
        axes.plot(x, y, linewidth=1.2, label=name)
    axes.legend(loc="upper left", fontsize=8, frameon=False)
    axes.tick_params(labelsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


@functools.cache
def _frame_kind() -> type:
    """The widget an image slot shows its frames in: a :class:`FrameView` (its
    canvas costs the browser about half of a stock Image's blob URLs at 30 frames
    a second, see frameview.py), or a stock ``ipywidgets.Image`` without anywidget.

    Imported at the first image, as the chart is at the first point: anywidget
    takes ~30 ms to import, which ``%load_ext`` need not pay.
    """
    try:
        from .frameview import FrameView
    except ImportError:  # the [jupyter] extra brings anywidget; frames still show
        return widgets.Image
    return FrameView


def _slot_widget(kind: type) -> Any:
    if kind is widgets.Image:
        # Its own size (not stretched across the panel), scaled down to fit.
        layout = {"max_width": "100%", "height": "auto", "align_self": "flex-start"}
        image = widgets.Image(layout=layout)
        image.add_class("dora-preview-image")
        return image
    return kind()


class NodePanel(_FullText, widgets.VBox):
    """The live panel of one node; its text repr summarises the node truthfully.

    ``clock`` paces what the panel sends (see :class:`ByteBudget`).
    """

    def __init__(self, state: NodeState, clock: Callable[[], float] = time.monotonic) -> None:
        self._state: NodeState | None = state  # None once released
        #: The display id the panel is shown under (``%%dora_*`` cells use it): when its
        #: chart is final, that output also gets a static picture of it (see _picture).
        self.display_id = uuid.uuid4().hex
        self._node_id = state.node_id
        self._final = ""  # the summary when released
        self._budget = ByteBudget(PANEL_BYTES_PER_SECOND, clock)
        self._drawn: dict[str, Any] = {}  # slot -> payload shown, least recently drawn first
        self.waiting = 0  # previews (and the log) the budget held back at the last redraw
        self._header = widgets.HTML()
        self._bar = widgets.FloatProgress(min=0.0, max=100.0, layout={"width": "60%"})
        self._percent = widgets.Label()
        self._progress = widgets.HBox([self._bar, self._percent], layout={"display": "none"})
        self._previews = widgets.VBox()
        self._slots: dict[str, Any] = {}  # an Output, or a FrameView (or else an Image)
        self._encoders: dict[str, FrameEncoder] = {}  # per image slot: JPEG or PNG
        self._chart: Any = None  # the LiveChart, made with the first plotted point
        self._plotted: dict[str, int] = {}  # points of each series the chart has
        self._chart_synced = float("-inf")  # when the chart last got all its points
        self._clock = clock
        self._log = widgets.HTML()
        # The filter is this panel's own: each node's log can be read at its own level.
        self._log_level = widgets.Dropdown(
            options=_LEVEL_CHOICES, value="stdout", description="log", layout={"width": "14em"}
        )
        self._log_level.observe(lambda _: self.redraw(), "value")
        self._log_box = widgets.VBox([self._log_level, self._log], layout={"display": "none"})
        self._log_box.add_class("dora-node-log")
        self._shown: dict[str, Any] = {}
        self._header_status = ""  # the status the header last showed, and when it may
        self._header_due = float("-inf")  # show new counters (see COUNTERS_HZ)
        self._stale_chart = False  # points sent as chunks since the last full sync
        self._picture_bundle: dict[str, Any] | None = None  # the final chart's (see _picture)
        self._picture_sender = 0  # the thread that sent it last
        self._lock = threading.Lock()
        super().__init__([self._header, self._progress, self._previews, self._log_box])
        self.add_class("dora-node-panel")
        self.redraw()

    def __repr__(self) -> str:
        state = self._state
        return self._final if state is None else state.summary()

    @property
    def node_id(self) -> str:
        return self._node_id

    def redraw(self, final: bool = False) -> int:
        """Bring every widget up to date; return how many were changed.

        ``final`` (the graph stopped): the chart sends all its points, so that
        the saved widget state holds the whole final chart.
        """
        with self._lock:
            state = self._state
            if state is None:
                return 0  # released: it stays as it was drawn
            self.waiting = 0
            changes = self._header_update(state, final) + self._progress_update(state)
            changes += self._previews_update(state) + self._chart_update(state, final)
            changes += self._log_update(state)
            return changes

    def release(self) -> None:
        """Stay as drawn, and let go of the node's state (after a reset).

        The panel outlives its graph under its cell (the widget lives as long
        as the notebook shows it); through the state it would keep what the
        node reported (whole previews, messages) reachable.
        """
        with self._lock:
            if self._state is not None:
                self._final = self._state.summary()
            self._state = None
            self._drawn.clear()

    def _set(self, key: str, value: Any, apply: Any) -> int:
        if self._shown.get(key) == value:
            return 0
        self._shown[key] = value
        apply(value)
        return 1

    def _header_update(self, s: NodeState, final: bool = False) -> int:
        now = self._clock()
        if not final and s.status == self._header_status and now < self._header_due:
            return 0  # only counters can have changed: drawn at COUNTERS_HZ
        colour = STATUS_COLOURS.get(s.status, STATUS_COLOURS["defined"])
        counts = f"{s.received} received · {s.sent} sent · {s.dropped} dropped"
        if s.previews_dropped:
            counts += f" · {s.previews_dropped} older previews dropped"
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
        params = dict(s.params)  # a snapshot (one C call): the kernel may set one meanwhile
        if params:
            text = ", ".join(f"{k}={param_text(v)}" for k, v in sorted(params.items()))
            text = text if len(text) <= PARAMS_CHARS else f"{text[:PARAMS_CHARS]} …"
            value += f'<br><span style="color:#555">params: {html.escape(text)}</span>'
        changed = self._set("header", value, lambda v: setattr(self._header, "value", v))
        if changed:
            self._header_status, self._header_due = s.status, now + 1.0 / COUNTERS_HZ
        return changed

    def _progress_update(self, s: NodeState) -> int:
        progress = s.progress
        if progress is None:
            return 0

        def apply(value: float) -> None:
            with self._progress.hold_sync(), self._bar.hold_sync():
                self._bar.value = value
                self._percent.value = f"{value:.0f}%"
                self._progress.layout.display = "flex"

        return self._set("progress", progress, apply)

    def _previews_update(self, s: NodeState) -> int:
        """Draw the slots whose payload changed, as far as the budget allows.

        What waits is drawn first next time (never drawn, then least recently
        drawn), so no slot starves. The Output of a slot the state dropped
        goes to a new slot, or is closed: a node previewing a new id per
        message keeps a bounded set of widgets, and a redraw sends the list of
        children once, if it changed.
        """
        previews = dict(s.previews)  # a snapshot: engine threads keep reporting
        spare = [self._slots.pop(slot) for slot in list(self._slots) if slot not in previews]
        for slot in [slot for slot in self._drawn if slot not in previews]:
            del self._drawn[slot]
            self._encoders.pop(slot, None)
        order = [slot for slot in previews if slot not in self._drawn] + list(self._drawn)
        changes = 0
        for slot in order:
            payload = previews[slot]
            if self._drawn.get(slot) is payload:
                continue
            if isinstance(payload.get("data"), Frame) and not self._budget.ready():
                self.waiting += 1  # not encoded: it would wait anyway
                continue
            image = self._image_bytes(slot, payload)
            bundle = mimebundle(payload) if image is None else None
            size = len(image[1]) if image is not None else _bundle_size(bundle or {})
            if not self._budget.take(size):
                self.waiting += 1
                continue
            self._drawn.pop(slot, None)
            self._drawn[slot] = payload
            kind = widgets.Output if image is None else _frame_kind()
            widget = self._slots.get(slot)
            if not isinstance(widget, kind):
                if widget is not None:
                    spare.append(widget)
                same = [w for w in spare if isinstance(w, kind)]
                if same:
                    spare.remove(same[-1])
                widget = self._slots[slot] = same[-1] if same else _slot_widget(kind)
            if image is None:
                widget.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
            else:
                # Bytes: the frame travels as a binary buffer of the comm message.
                with widget.hold_sync():
                    widget.format = image[0].removeprefix("image/")
                    widget.value = image[1]
            changes += 1
        # In the order the node first previewed them, whatever order they were drawn in.
        rank = dict(s.preview_rank)
        slots = sorted(self._slots, key=lambda slot: rank.get(slot, len(rank)))
        children = tuple(self._slots[slot] for slot in slots)
        if self._chart is not None:
            children += (self._chart,)
        if children != self._previews.children:
            self._previews.children = children
            changes += 1
        for output in spare:
            output.close()  # after it left the children; its comm goes away with it
        return changes

    def _image_bytes(self, slot: str, payload: dict[str, Any]) -> tuple[str, bytes] | None:
        """``(mime, bytes)`` of an image preview, encoded now (on the UI thread); else None.

        A frame is encoded as JPEG or PNG by the slot's encoder; a frame the
        dora engine's shim encoded (a data URL, with the frame's ``encoding``
        beside it) is decoded back to its bytes. Other images (figures) stay
        in an Output, as the frontend's image/png renderer shows them.
        """
        if payload.get("type") != "image":
            return None
        data = payload.get("data")
        if isinstance(data, Frame):
            encoder = self._encoders.get(slot)
            if encoder is None:
                encoder = self._encoders[slot] = FrameEncoder(self._clock)
            try:
                return encoder.encode(data)
            except Exception:  # e.g. Pillow missing: the static form says why
                return None
        if isinstance(data, str) and "encoding" in payload:
            head, _, body = data.partition(",")
            mime = head.removeprefix("data:").removesuffix(";base64")
            if head.endswith(";base64") and mime in _IMAGE_FORMATS:
                try:
                    return mime, base64.b64decode(body, validate=True)
                except (binascii.Error, ValueError):
                    return None
        return None

    def _chart_update(self, s: NodeState, final: bool) -> int:
        """Send the chart the points plotted since the last redraw (all of them now and then)."""
        new = s.series_since(self._plotted)
        # Final: a last full sync and the picture, unless both are there already.
        unfinished = self._stale_chart or self._picture_bundle is None
        if not new and not (final and self._chart is not None and unfinished):
            return 0
        changes = 0
        if self._chart is None:
            try:
                from .chart import LiveChart
            except ImportError:  # the [jupyter] extra brings it: say what is missing, once
                self._chart = widgets.HTML("live charts need anywidget: pip install anywidget")
                self._previews.children = (*self._previews.children, self._chart)
                return 1
            self._chart = LiveChart()
            self._previews.children = (*self._previews.children, self._chart)
            changes += 1
        if isinstance(self._chart, widgets.HTML):
            return 0
        now = self._clock()
        full = final or now - self._chart_synced >= self._chart.FULL_SYNC_S
        size = sum(16 * len(y) for _, y, _, _ in new.values())
        if not full and not self._budget.take(size):
            self.waiting += 1
            return changes
        for name, (_, _, total, _) in new.items():
            self._plotted[name] = total
        if full:
            # Read with their totals at once: points plotted meanwhile go in the next chunk.
            points = s.series_points()
            self._plotted = {name: total for name, (_, _, total) in points.items()}
            self._chart.update(new, full={n: (x, y) for n, (x, y, _) in points.items()})
            self._chart_synced = now
            self._stale_chart = False
            if final:
                self._picture({n: (x, y) for n, (x, y, _) in points.items()})
        else:
            self._chart.update(new)
            self._stale_chart = True
        return changes + 1

    def _picture(self, series: dict[str, tuple[list[float], list[float]]]) -> None:
        """Add a PNG of the final chart to the panel's output, beside the widget.

        Where no widget can be drawn (an untrusted notebook, nbviewer, nbval's
        comparison), the frontend shows the richest type it can instead: this
        picture. The panel is displayed under :attr:`display_id`; updating that
        display keeps the widget and gives the output its static fallback.
        """
        try:
            png = chart_png(series, self._chart.windows if self._chart is not None else {})
        except Exception:  # a picture is a fallback: the chart itself is drawn anyway
            return
        bundle = {**self._repr_mimebundle_(), "image/png": base64.b64encode(png).decode("ascii")}
        self._picture_bundle = bundle
        self._picture_sender = threading.get_ident()
        update_display(bundle, raw=True, display_id=self.display_id)

    def show_picture(self) -> None:
        """Send the final chart's picture again, from the calling thread (see UIPump.settle).

        The UI thread may have sent it first, as the graph ended: a frontend
        applies that update wherever it came from, but a headless run of the
        notebook (nbclient, ``jupyter nbconvert --execute``) keeps only what the
        running cell's own thread sends, and would save the notebook without it.
        """
        bundle = self._picture_bundle
        if bundle is not None and self._picture_sender != threading.get_ident():
            self._picture_sender = threading.get_ident()
            update_display(bundle, raw=True, display_id=self.display_id)

    def _log_update(self, s: NodeState) -> int:
        level = self._log_level.value
        logged = list(s.logs)
        marker = (len(logged), s.logs_dropped, logged[-1] if logged else None, level)
        if self._shown.get("log") == marker:
            return 0
        if level != "stdout":
            logged = [x for x in logged if passes(_LINE_LEVELS.get(x.stdio, "stdout"), level)]
        lines = logged[-LOG_LINES_SHOWN:]
        hidden = len(logged) + (s.logs_dropped if level == "stdout" else 0) - len(lines)
        parts = [f'<div style="color:#777">… {hidden} earlier lines</div>'] if hidden else []
        for line in lines:
            colour = _STDIO_COLOURS.get(line.stdio)
            text = line.text
            if line.stdio in _LINE_LEVELS:  # a record: its level leads, as dora prints it
                text = f"{_LINE_LEVELS[line.stdio]:<6} {text}"
            if len(text) > LOG_LINE_CHARS:
                text = f"{text[:LOG_LINE_CHARS]} … {len(text) - LOG_LINE_CHARS:,} more characters"
            text = html.escape(text)
            parts.append(f'<span style="color:{colour}">{text}</span>' if colour else text)
        # Only the newest lines, and no scroll box: a redraw would scroll it back.
        value = (
            '<pre style="margin:0;font-size:12px;line-height:1.3;white-space:pre-wrap">'
            + "\n".join(parts)
            + "</pre>"
        )
        if not self._budget.take(len(value)):
            self.waiting += 1
            return 0
        self._shown["log"] = marker
        with self._log.hold_sync():
            self._log.value = value
        # The view (with its filter) appears with the first line, and stays.
        self._log_box.layout.display = "flex" if s.logs or s.logs_dropped else "none"
        return 1


class TapThumbnails(_FullText, widgets.HBox):
    """A row of thumbnails; its text repr says what they show."""

    def __init__(self, images: list[widgets.Image], what: str) -> None:
        super().__init__(images, layout={"flex_flow": "row wrap", "gap": "4px"})
        self._what = what

    def __repr__(self) -> str:
        return f"<{len(self.children)} thumbnails of {self._what}>"


def tap_thumbnails(frame: Any) -> TapThumbnails | None:
    """Thumbnails of the images among a tap's messages (``%dora_tap`` of an image edge).

    A row is an image when its metadata follows dora's convention (``width``,
    ``height``, ``encoding``); its value is shown scaled down, as a binary
    ``Image``. None when no row is an image.
    """
    images = []
    what = ""
    for metadata, value in zip(frame["metadata"], frame["value"], strict=True):
        if not isinstance(metadata, dict) or metadata.get("encoding") not in ENCODINGS:
            continue
        try:
            pixels = np.asarray(value, dtype=np.uint8)  # the tap holds the values as lists
            image_frame = frame_from(pixels, metadata)
            mime, data = thumbnail(image_frame)
        except Exception:
            continue  # not the image its metadata says: the table shows what it is
        image = widgets.Image(value=data, format=mime.removeprefix("image/"))
        image.add_class("dora-tap-thumbnail")
        images.append(image)
        what = image_frame.describe()
    return TapThumbnails(images, what) if images else None


class GraphView(_FullText, widgets.HTML):
    """The graph of a dataflow as SVG, with live status and counts.

    Its text repr is the plain-text summary of the same graph.
    """

    def __init__(self, flow: Dataflow, max_hz: float = 2.0) -> None:
        super().__init__()
        self._flow = flow
        # The view follows the run it was shown for: the current or last one,
        # or the first to start if the graph never ran. A weak reference: the
        # view outlives the run, and must not keep its messages reachable.
        self._engine: weakref.ref[Engine] | None = None
        self._period = 1.0 / max_hz
        self._last = float("-inf")
        self._meter = Meter()  # edge rates and busy shares, from the counters it samples
        self.redraw(force=True)

    def __repr__(self) -> str:
        flow = self._flow
        return render_text(flow.graph, flow.status(), flow.edges())

    def redraw(self, force: bool = False) -> int:
        """Re-render (at most ``max_hz`` times a second unless forced)."""
        engine = self._flow.engine
        if self._engine is None and engine is not None:
            self._engine = weakref.ref(engine)
        if self._engine is not None and self._engine() is not engine:
            return 0  # a later run, or a reset: this view stays as its own run ended
        now = time.monotonic()
        if not force and now - self._last < self._period:
            return 0
        self._last = now
        # Scaled down to the output area's width, never up.
        svg = render_dataflow_svg(self._flow, self._meter).replace(
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


class RoundSchedule:
    """When the UI pump's next round may come: ``hz`` a second, as the reports come.

    A round is due one period after the last one. A report that comes
    earlier waits for it; a node reporting faster than the rate (a flood) is
    drawn exactly ``hz`` times a second. A node that reports at about the rate
    (its report comes alone, or in the second half of the period) is
    *followed*: its report is drawn at once if it comes up to
    :attr:`TOLERANCE` of a period early, and each such round gives
    :attr:`YIELD` of a period back to it. Without that, a 30 Hz camera at
    ``preview_hz`` 30 (the source exactly as fast as the limit) could never
    make up a delay: each late wake-up of the UI thread or late frame pushed
    every later frame back for good (measured in a browser: frames waited 2,
    then 4, then 17 ms for their round, 17 ms of the page's latency). A
    followed node is drawn at most ``hz / (1 - YIELD)`` times a second.

    A round that begins late (the thread woke late) counts from when it was
    allowed, up to :attr:`CATCH_UP` of a period earlier than it began.

    Whatever the above allows, rounds come at most ``hz`` a second over a run
    (SPEC: at most ``preview_hz`` times a second): each takes a token, tokens
    come ``hz`` a second and at most :attr:`BURST` wait, so a node followed
    early now and then, or one round after a pause, spends what the rate
    saved, never more.

    >>> schedule = RoundSchedule()
    >>> schedule.begin(now=0.0, period=0.1, first=0.0, reports=50)
    >>> schedule.allowed(period=0.1, first=0.001, reports=50)  # a flood: a full period
    0.1
    >>> schedule.allowed(period=0.1, first=0.08, reports=1)  # a camera a little early
    0.08
    """

    #: How early (a share of the period) a followed node's report may be drawn.
    TOLERANCE = 0.25
    #: How much of a period each followed round gives back (so a delay is made up).
    YIELD = 1 / 16
    #: How much of a period a round that began late may count from before it began.
    CATCH_UP = 0.5
    #: How many rounds' worth of rate may be saved up (a round after a pause, and
    #: the slack a followed node's early rounds draw on).
    BURST = 2.0

    def __init__(self) -> None:
        self._last = float("-inf")  # when the last round began, as counted
        self._carry = 0.0  # how much more than a period after it the next one is due
        self._fresh = True  # the next round counts from when it begins
        self._tokens = self.BURST  # rounds the rate allows now ...
        self._tokens_at = float("-inf")  # ... as of then

    def restart(self) -> None:
        """The rate changed: the next round counts from when it begins, not before."""
        self._fresh = True

    def _follows(self, period: float, first: float, reports: int) -> bool:
        return reports == 1 or first >= self._last + self._carry + period / 2

    def allowed(self, period: float, first: float | None, reports: int, idle: float = 0.0) -> float:
        """When the next round may begin: ``first`` report since the last round came then
        (None: none came; a round then waits ``idle`` seconds at least), ``reports`` came."""
        due = self._last + period + self._carry
        if first is None:
            allowed = max(due, self._last + idle)
        elif self._follows(period, first, reports):
            allowed = max(first, due - self.TOLERANCE * period)
        else:
            allowed = max(first, due)
        # ... and when the rate has a token for it.
        return max(allowed, self._tokens_at + max(0.0, 1.0 - self._tokens) * period)

    def begin(self, now: float, period: float, first: float | None, reports: int) -> None:
        """A round begins at ``now``, for what came since the last one."""
        saved = self._tokens + (now - self._tokens_at) / period
        self._tokens, self._tokens_at = min(self.BURST, saved) - 1.0, now
        if first is None or self._fresh:
            self._last, self._carry, self._fresh = now, 0.0, False
            return
        due = self._last + period + self._carry
        given = self.YIELD * period if self._follows(period, first, reports) else 0.0
        counted = min(now, max(self.allowed(period, first, reports), now - self.CATCH_UP * period))
        self._last, self._carry = counted, max(0.0, due - given - counted)


class UIPump:
    """One named thread that redraws panels at most ``hz`` times a second.

    It runs while ``active()`` is true, then draws the final state and ends
    once no panel has anything its byte budget held back; :meth:`start`
    again when a graph starts. Every widget change it makes is
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
        self._wake = threading.Event()  # set by stop(), a new hz and poke()
        self._poke_lock = threading.Lock()
        self._poked_at: float | None = None  # the first report since the last round came then
        self._reports = 0  # how many came since the last round
        self._schedule = RoundSchedule()
        self._thread: threading.Thread | None = None
        self.redraws = 0

    @property
    def hz(self) -> float:
        return self._hz

    @hz.setter
    def hz(self, value: float) -> None:
        self._hz = value
        # A pump waiting out a period of the old rate starts the new one now.
        self._schedule.restart()
        self._wake.set()

    def poke(self) -> None:
        """A node reported something: draw it as soon as the rate allows.

        Called on the reporting thread (see ``NodeState.on_report``). A frame
        is then drawn when it comes, not at the next round of a fixed period:
        at 30 Hz that period alone made a frame wait 16 ms on average.
        """
        with self._poke_lock:
            if self._poked_at is None:
                self._poked_at = self._clock.monotonic()
            self._reports += 1
        self._wake.set()

    def panel(self, state: NodeState) -> NodePanel:
        """A new panel for ``state``'s node; it replaces the one shown before.

        The previous panel (under the cell of an earlier definition) gets a
        last redraw and then stays as it was.
        """
        panel = NodePanel(state, self._clock.monotonic)
        state.on_report = self.poke
        with self._lock:
            previous = self._panels.get(state.node_id)
            self._panels[state.node_id] = panel
        if previous is not None:
            previous.redraw()
            previous.release()
        return panel

    def track(self, view: GraphView) -> None:
        """Keep a graph view up to date (the few most recent ones)."""
        with self._lock:
            self._views = [*self._views[-4:], view]

    def forget(self) -> None:
        """Drop every panel and view (after a reset), and stop drawing.

        The panels stay as they were last drawn, and let go of their nodes.
        """
        self._halt()
        with self._lock:
            panels = list(self._panels.values())
            self._panels.clear()
            self._views.clear()
        for panel in panels:
            panel.release()

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
        """Stop and join the thread, then draw the final state.

        What the panels' byte budgets hold back is drawn by the thread, started
        again: it ends once everything is shown.
        """
        self._halt()
        self.settle()
        if self.waiting():
            self.start()

    def _halt(self) -> None:
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)

    def waiting(self) -> bool:
        """Whether a panel has something its byte budget held back."""
        with self._lock:
            return any(panel.waiting for panel in self._panels.values())

    def settle(self) -> int:
        """Draw the final state from the calling thread (a cell's), pictures included.

        What :meth:`flush` returns; each panel's final chart picture is sent
        again from here (see :meth:`NodePanel.show_picture`).
        """
        changes = self.flush()
        with self._lock:
            panels = list(self._panels.values())
        for panel in panels:
            panel.show_picture()
        return changes

    def flush(self, force: bool = True) -> int:
        """Redraw every panel and view; return how many widgets changed."""
        with self._lock:
            panels = list(self._panels.values())
            views = list(self._views)
        changes = sum(panel.redraw(final=force) for panel in panels)
        changes += sum(view.redraw(force) for view in views)
        self.redraws += changes
        return changes

    def _run(self) -> None:
        schedule = self._schedule
        while True:
            period = 1.0 / max(self._hz, 0.1)
            with self._poke_lock:  # before the flush: what comes during it pokes again
                first, self._poked_at = self._poked_at, None
                reports, self._reports = self._reports, 0
            schedule.begin(self._clock.monotonic(), period, first, reports)
            active = self._active()
            self.flush(force=not active)
            if not active and not self.waiting():
                return
            # The period is read anew after each wake, so that
            # `%config DoraMagics.preview_hz = N` applies to a running graph.
            while True:
                self._wake.clear()  # before the checks: a later stop, hz or poke sets it again
                if self._stopping.is_set():
                    return
                # Counters change without any report: alone, they are drawn at IDLE_HZ.
                period = 1.0 / max(self._hz, 0.1)
                with self._poke_lock:
                    first, reports = self._poked_at, self._reports
                allowed = schedule.allowed(period, first, reports, idle=1.0 / IDLE_HZ)
                rest = allowed - self._clock.monotonic()
                if rest <= 0 or not self._clock.wait(self._wake, rest):
                    break
