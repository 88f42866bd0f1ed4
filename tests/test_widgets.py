"""Node panels and the UI pump, headless: every widget message lands on a recording comm.

As ipywidgets tests its own widgets, no kernel runs here: each widget gets a
comm that keeps what it would send to the frontend. The pump runs on fake
time: while it waits between two ticks, the fake clock moves on one
millisecond at a time and lets the test's reports arrive, so a flood of
thousands of reports a second is exact and takes no real time.
"""

from __future__ import annotations

import gc
import itertools
import json
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import comm
import ipywidgets as widgets
import pytest
from ipywidgets.widgets import widget as widget_module

from dora_notebook.core.observe import PREVIEW_LIMIT, NodeState, Report
from dora_notebook.jupyter.widgets import (
    COUNTERS_HZ,
    LOG_LINE_CHARS,
    PANEL_BYTES_PER_SECOND,
    NodePanel,
    RealTime,
    RoundSchedule,
    UIPump,
)
from dora_notebook.preview.mime import MAX_CHARS

from .waiting import wait_for

HZ = 10


class FakeTime(RealTime):
    """Milliseconds that pass only while the pump waits; ``between(ms)`` runs at each one."""

    def __init__(self) -> None:
        self.ms = 0
        self.between: Callable[[int], None] = lambda ms: None

    def monotonic(self) -> float:
        return self.ms / 1000

    def wait(self, event: threading.Event, timeout: float) -> bool:
        for _ in range(round(timeout * 1000)):
            if event.is_set():
                return True
            self.ms += 1
            self.between(self.ms)
        return event.is_set()


class Frontend:
    """What a frontend would get: each widget's opening state, then its updates in order."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.models: dict[str, dict[str, Any]] = {}
        self.updates: list[tuple[int, str, dict[str, Any]]] = []  # (ms, comm id, state)

    def comm(self, **kwargs: Any) -> RecordingComm:
        return RecordingComm(self, kwargs["data"]["state"])

    def receive(self, comm_id: str, data: dict[str, Any]) -> None:
        assert data["method"] == "update", data
        self.models[comm_id].update(data["state"])
        self.updates.append((self.time.ms, comm_id, data["state"]))

    def state(self, widget: Any) -> dict[str, Any]:
        return self.models[widget.model_id]


class RecordingComm:
    """A comm without a kernel: what a widget sends goes to a :class:`Frontend`."""

    kernel = "recording"  # widgets only send over a comm that has a kernel

    def __init__(self, frontend: Frontend, state: dict[str, Any]) -> None:
        self.comm_id = uuid.uuid4().hex
        self.frontend = frontend
        frontend.models[self.comm_id] = dict(state)

    def send(self, data: dict[str, Any], buffers: Any = None, **kwargs: Any) -> None:
        self.frontend.receive(self.comm_id, data)

    def on_msg(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def frontend(time: FakeTime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Frontend]:
    """Every widget made during the test talks to one recording frontend."""
    seen = Frontend(time)
    # ipywidgets opens a widget's comm through the comm package's create_comm.
    monkeypatch.setattr(comm, "create_comm", seen.comm)
    yield seen
    for made in list(widget_module._instances.values()):
        if isinstance(made.comm, RecordingComm):
            made.close()


class Parts:
    """The widgets of one panel, named as a user sees them."""

    def __init__(self, panel: NodePanel) -> None:
        self.header, self.progress, self.previews, log_view = panel.children
        self.log_level, self.log = log_view.children
        self.bar, self.percent = self.progress.children


def report(state: NodeState, kind: str, data: Any, ms: int) -> None:
    state.apply(Report(state.node_id, kind, data, ms / 1000))


def flood(state: NodeState, ms: int) -> None:
    """What a busy node reports in one millisecond: progress, a preview, a log line."""
    report(state, "progress", ms / 40, ms)
    report(state, "preview", {"slot": "default", "payload": {"type": "text", "data": f"{ms}"}}, ms)
    report(state, "log", {"line": f"line {ms}", "stdio": "stdout"}, ms)


def run_pump(frontend: Frontend, state: NodeState, until_ms: int) -> Parts:
    """Run a pump over a new panel of ``state`` while fake time is under ``until_ms``."""
    time = frontend.time
    pump = UIPump(lambda: time.ms < until_ms, hz=HZ, clock=time)
    parts = Parts(pump.panel(state))
    frontend.updates.clear()  # the panel's first draw
    pump.start()
    try:
        wait_for(lambda: not pump.running(), 30, "the pump to draw the end and stop")
    finally:
        drawn = len(frontend.updates)
        pump.stop()
    assert len(frontend.updates) == drawn, "the pump ended without drawing the final state"
    return parts


def updates_of(frontend: Frontend, widget: Any) -> list[int]:
    """When (fake ms) ``widget`` was updated."""
    return [ms for ms, comm_id, _ in frontend.updates if comm_id == widget.model_id]


def test_a_redraw_sends_only_what_changed(frontend: Frontend) -> None:
    state = NodeState("plot", "operator")
    panel = NodePanel(state)
    parts = Parts(panel)
    frontend.updates.clear()  # the first draw
    assert panel.redraw() == 0 and frontend.updates == []
    report(state, "progress", 40.0, 0)
    assert panel.redraw() == 1
    changed = {comm_id for _, comm_id, _ in frontend.updates}
    assert changed == {parts.bar.model_id, parts.percent.model_id, parts.progress.layout.model_id}
    assert frontend.state(parts.bar)["value"] == 40.0
    assert frontend.state(parts.percent)["value"] == "40%"
    frontend.updates.clear()
    assert panel.redraw() == 0 and frontend.updates == []


def test_a_running_pump_without_new_reports_sends_nothing(frontend: Frontend) -> None:
    state = NodeState("idle", "node")
    report(state, "status", "running", 0)
    report(state, "progress", 10.0, 0)
    run_pump(frontend, state, until_ms=2000)
    assert frontend.time.ms == 2000  # 21 ticks, the last one once the graph ended
    assert frontend.updates == []


def test_a_flood_is_drawn_at_most_hz_times_a_second_per_widget(frontend: Frontend) -> None:
    """Reports every millisecond for almost 3 s, then 1 s of quiet while the graph runs on."""
    state = NodeState("busy", "operator")
    report(state, "status", "running", 0)
    frontend.time.between = lambda ms: flood(state, ms) if ms < 2950 else None
    parts = run_pump(frontend, state, until_ms=4000)
    per_widget = Counter(comm_id for _, comm_id, _ in frontend.updates)
    assert len(per_widget) >= 4  # bar, percent, preview, log at least
    for comm_id in per_widget:
        times = [ms for ms, other, _ in frontend.updates if other == comm_id]
        busiest = max(sum(1 for t in times if start <= t < start + 1000) for start in times)
        assert busiest <= HZ, (comm_id, times)
    # Every tick of the flood drew the bar: the limit is reached, not undercut.
    assert updates_of(frontend, parts.bar) == list(range(100, 3001, 100))
    # The last reports (2949 ms) are drawn by the next tick; the quiet second sends nothing.
    assert max(ms for ms, _, _ in frontend.updates) == 3000
    assert frontend.state(parts.bar)["value"] == 2949 / 40
    assert frontend.state(parts.percent)["value"] == "74%"
    (preview,) = parts.previews.children
    assert frontend.state(preview)["outputs"][0]["data"] == {"text/plain": "2949"}
    log = frontend.state(parts.log)["value"]
    assert "line 2949</pre>" in log and "… 2934 earlier lines" in log


def test_the_final_state_is_drawn_when_the_graph_ends_between_two_ticks(
    frontend: Frontend,
) -> None:
    state = NodeState("last", "node")
    report(state, "status", "running", 0)

    def between(ms: int) -> None:
        if ms < 2950:
            flood(state, ms)
        elif ms == 2950:
            report(state, "status", "finished", ms)

    frontend.time.between = between
    parts = run_pump(frontend, state, until_ms=2950)  # the tick at 3000 ms is the last
    assert frontend.time.ms == 3000
    assert updates_of(frontend, parts.header) == [3000]  # running, then finished
    assert ">finished</span>" in frontend.state(parts.header)["value"]
    assert frontend.state(parts.bar)["value"] == 2949 / 40
    (preview,) = parts.previews.children
    assert frontend.state(preview)["outputs"][0]["data"] == {"text/plain": "2949"}


class RoundCounter(UIPump):
    """A pump that records the fake time of each of its rounds instead of drawing."""

    def __init__(self, time: FakeTime, hz: float, until_ms: int) -> None:
        super().__init__(lambda: time.ms < until_ms, hz=hz, clock=time)
        self.time = time
        self.rounds: list[int] = []

    def flush(self, force: bool = True) -> int:
        self.rounds.append(self.time.ms)
        return 0

    def run(self) -> list[int]:
        """Start the pump, let it run until the graph ends, stop it: its rounds' times."""
        self.start()
        try:
            wait_for(lambda: not self.running(), 30, "the pump to end")
            return list(self.rounds)
        finally:
            self.stop()


def test_a_new_rate_applies_to_a_running_pump() -> None:
    """`%config DoraMagics.preview_hz = 50` sets ``hz`` while the pump waits out 2 s."""
    time = FakeTime()
    pump = RoundCounter(time, hz=0.5, until_ms=1000)

    def between(ms: int) -> None:
        pump.poke()  # a node reports every millisecond
        if ms == 100:
            pump.hz = 50.0

    time.between = between
    rounds = pump.run()
    # At once, at the new rate's first wake (the change wakes the pump), then every 20 ms
    # up to the final round, the first after the graph ended at 1000 ms.
    assert rounds[:2] == [0, 100] and 1000 <= rounds[-1] < 1020, rounds
    steps = [b - a for a, b in itertools.pairwise(rounds[1:])]
    assert set(steps) == {20}, rounds


class LateTime(FakeTime):
    """Fake time in which the pump wakes ``late`` ms after it should, every other time."""

    def __init__(self, late: int) -> None:
        super().__init__()
        self.late = late
        self.wakes = 0

    def wait(self, event: threading.Event, timeout: float) -> bool:
        woken = super().wait(event, timeout)
        self.wakes += 1
        for _ in range(self.late if self.wakes % 2 else 0):
            self.ms += 1
            self.between(self.ms)
        return woken


def _delays(reports: list[int], rounds: list[int]) -> list[int]:
    """How long each report waited for the round that drew it (ms)."""
    return [min(r for r in rounds if r >= at) - at for at in reports]


def test_a_node_reporting_at_the_rate_is_drawn_as_it_reports() -> None:
    """A camera at exactly ``hz`` (issue 15): late wake-ups and a late frame cost no later frame.

    The pump wakes 8 ms late every other time; the node reports every 100 ms at 10 Hz
    (from 150 ms: its first report comes a period after the pump's first round), but its
    sixth report comes 30 ms late. A schedule held strictly at 10 Hz made every
    later report wait for each delay, for good (frames waited 17 ms at 30 Hz in a browser).
    """
    time = LateTime(late=8)
    pump = RoundCounter(time, hz=HZ, until_ms=3000)
    reports = [150 + 100 * i + (30 if i == 5 else 0) for i in range(28)]

    def between(ms: int) -> None:
        if ms in reports:
            pump.poke()

    time.between = between
    rounds = pump.run()
    delays = _delays(reports, rounds)
    late = delays[6:9]  # the three reports after the late one: it is made up at once
    assert max(delays[:6] + delays[9:]) <= 8, delays  # otherwise a late wake-up, no more
    assert max(late) <= 8 + RoundSchedule.TOLERANCE * 100 / 2, delays
    # One round per report, the first at 0 ms and the final one after the graph ended.
    assert len(rounds) == len(reports) + 2, rounds


def test_a_node_reporting_faster_than_the_rate_is_held_to_it() -> None:
    """Reports every 70 ms at ``hz`` 10 for 5 s: 10 rounds a second, give or take one."""
    time = FakeTime()
    pump = RoundCounter(time, hz=HZ, until_ms=5000)
    time.between = lambda ms: pump.poke() if ms % 70 == 0 else None
    rounds = pump.run()
    # SPEC: at most hz rounds a second over the run (RoundSchedule.BURST, 2, saved up at
    # the start, and the final round when the graph ended, on top); one second may hold
    # the one saved up. (Without the cap, this node, followed early, drew 53 in 5 s.)
    *running, _final = rounds
    busiest = max(sum(1 for t in running if start <= t < start + 1000) for start in running)
    assert busiest <= HZ + 1, rounds
    assert 5 * HZ <= len(running) <= 5 * HZ + 2, rounds


def _sent_bytes(updates: list[tuple[int, str, dict[str, Any]]]) -> int:
    return sum(len(json.dumps(state)) for _, _, state in updates)


def _outputs_open() -> int:
    return sum(isinstance(w, widgets.Output) for w in widget_module._instances.values())


def test_a_new_preview_id_per_message_keeps_the_panel_and_its_traffic_bounded(
    frontend: Frontend,
) -> None:
    """1,500 distinct ids in 1.5 s: the newest slots shown, the rest dropped and said so."""
    state = NodeState("many", "node")
    report(state, "status", "running", 0)

    def between(ms: int) -> None:
        if ms <= 1500:
            payload = {"type": "json", "data": ms}
            report(state, "preview", {"slot": f"id{ms}", "payload": payload}, ms)

    frontend.time.between = between
    parts = run_pump(frontend, state, until_ms=2000)
    shown = [
        frontend.state(frontend_output)["outputs"] for frontend_output in parts.previews.children
    ]
    assert [out[0]["data"]["text/plain"] for out in shown] == [
        str(ms) for ms in range(1500 - PREVIEW_LIMIT + 1, 1501)
    ]
    assert "1450 older previews dropped" in frontend.state(parts.header)["value"]
    assert _outputs_open() == PREVIEW_LIMIT  # the dropped slots' widgets were reused or closed
    children = [
        s["children"] for _, comm_id, s in frontend.updates if comm_id == parts.previews.model_id
    ]
    assert len(children) <= 16  # at most once a tick (15 ticks and the last draw)
    assert max(len(c) for c in children) == PREVIEW_LIMIT
    # Each tick sends what changed: 50 short previews and one list of 50 ids.
    assert _sent_bytes(frontend.updates) < 16 * PREVIEW_LIMIT * 200


def test_a_huge_text_preview_is_cut_and_the_panel_stays_within_its_budget(
    frontend: Frontend,
) -> None:
    state = NodeState("big", "operator")
    report(state, "status", "running", 0)
    text = "x" * 10_000_000

    def between(ms: int) -> None:
        if ms % 20 == 0 and ms < 3000:
            data = f"{ms} {text}" if ms < 2980 else "final " + text
            report(
                state, "preview", {"slot": "default", "payload": {"type": "text", "data": data}}, ms
            )

    frontend.time.between = between
    parts = run_pump(frontend, state, until_ms=3000)
    (preview,) = parts.previews.children
    shown = frontend.state(preview)["outputs"][0]["data"]["text/plain"]
    assert shown.startswith("final x") and shown.endswith(
        f"... {10_000_006 - MAX_CHARS:,} more characters"
    )
    assert state.previews["default"]["data"] == "final " + text  # Python keeps it whole
    times = [ms for ms, _, _ in frontend.updates]
    for start in range(0, 3000, 100):
        window = [u for u in frontend.updates if start <= u[0] < start + 1000]
        assert _sent_bytes(window) <= 2 * PANEL_BYTES_PER_SECOND + MAX_CHARS, (start, times)


def test_previews_the_budget_holds_back_are_drawn_after_the_graph_ends(
    frontend: Frontend,
) -> None:
    """Images are never cut: 1 MB images every 10 ms are paced, the last is drawn eventually."""
    state = NodeState("camera", "node")
    report(state, "status", "running", 0)
    image = "A" * 1_000_000
    last = "data:image/png;base64,B" + image

    def between(ms: int) -> None:
        if ms % 10 == 0 and ms < 2000:
            data = f"data:image/png;base64,{ms}{image}" if ms < 1990 else last
            report(
                state,
                "preview",
                {"slot": "default", "payload": {"type": "image", "data": data}},
                ms,
            )

    frontend.time.between = between
    parts = run_pump(frontend, state, until_ms=2000)
    (preview,) = parts.previews.children
    drawn = updates_of(frontend, preview)
    assert len(drawn) <= 3  # 1 MB at most every second or so, not 200 of them
    assert drawn[-1] > 2000  # after the graph ended: the pump kept drawing until nothing waited
    assert frontend.state(preview)["outputs"][0]["data"]["image/png"] == last.split(",")[1]


def test_panels_of_a_reset_graph_stay_as_drawn_and_let_go_of_their_node(
    frontend: Frontend,
) -> None:
    state = NodeState("gone", "node")
    report(state, "status", "finished", 0)
    report(state, "preview", {"slot": "default", "payload": {"type": "text", "data": "last"}}, 0)
    pump = UIPump(lambda: False, hz=HZ, clock=frontend.time)
    first = pump.panel(state)
    second = pump.panel(state)  # a redefinition: the first panel stays as it was
    pump.forget()  # %dora_reset
    held = weakref.ref(state)
    del state
    gc.collect()
    assert held() is None  # nothing the node reported stays reachable through its panels
    for panel in (first, second):
        assert repr(panel) == "gone: finished, 0 received, 0 sent"
        assert panel.redraw() == 0
        (preview,) = Parts(panel).previews.children
        assert frontend.state(preview)["outputs"][0]["data"] == {"text/plain": "last"}


def test_a_huge_log_line_is_cut_on_the_panel_and_kept_whole_in_the_state(
    frontend: Frontend,
) -> None:
    state = NodeState("chatty", "node")
    report(state, "log", {"line": "y" * 1_000_000, "stdio": "stdout"}, 0)
    parts = Parts(NodePanel(state))
    log = frontend.state(parts.log)["value"]
    assert f"… {1_000_000 - LOG_LINE_CHARS:,} more characters</pre>" in log
    assert len(log) < LOG_LINE_CHARS + 200
    assert state.log_text() == ["y" * 1_000_000]


def test_a_report_is_drawn_when_it_comes_not_at_the_next_round(frontend: Frontend) -> None:
    """A camera frame waits for no fixed period: drawn on arrival when the rate allows."""
    state = NodeState("cam", "operator")
    report(state, "status", "running", 0)

    def frame(ms: int) -> None:
        # 430: only 50 ms after 380, so it waits for 480, less the quarter period (25 ms)
        # a report that comes alone may come early (RoundSchedule.TOLERANCE).
        if ms in (380, 430, 700):
            payload = {"type": "text", "data": f"{ms}"}
            report(state, "preview", {"slot": "f", "payload": payload}, ms)

    frontend.time.between = frame
    parts = run_pump(frontend, state, until_ms=1000)
    (preview,) = parts.previews.children
    assert updates_of(frontend, preview) == [380, 430 + 50 - 25, 700]
    assert frontend.state(preview)["outputs"][0]["data"] == {"text/plain": "700"}


class Ticking:
    """Counters of a busy node: one more message received every millisecond."""

    status = "running"
    sent = dropped = threads_left = 0
    blocked = None

    def __init__(self, time: FakeTime) -> None:
        self.time = time

    @property
    def received(self) -> int:
        return self.time.ms


def test_counters_are_redrawn_at_counters_hz_while_previews_stream(frontend: Frontend) -> None:
    state = NodeState("busy", "operator")
    state.attach(Ticking(frontend.time), run=None)
    frontend.time.between = lambda ms: flood(state, ms) if ms < 4000 else None
    parts = run_pump(frontend, state, until_ms=4000)
    header = updates_of(frontend, parts.header)
    *running, final = header  # the final state is drawn when the graph ends, at once
    assert final == 4000
    assert all(b - a >= 1000 / COUNTERS_HZ for a, b in itertools.pairwise(running)), header
    assert len(running) >= 4 * COUNTERS_HZ - 1  # redrawn all along, not only at the end
    assert "4000 received" in frontend.state(parts.header)["value"]  # the final count
    assert len(updates_of(frontend, parts.bar)) >= 4 * HZ - 1  # the previews at hz


def test_settle_sends_the_final_chart_picture_from_the_calling_thread(
    frontend: Frontend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A headless run keeps only what the waiting cell's thread sends (nbclient).

    The UI thread may draw the final chart first, as the graph ends; settle() sends
    its picture again from the cell's thread.
    """
    import dora_notebook.jupyter.widgets as module

    sent: list[tuple[str, str]] = []

    def update_display(bundle: dict[str, Any], raw: bool, display_id: str) -> None:
        sent.append((threading.current_thread().name, display_id))
        assert raw and bundle["image/png"]

    monkeypatch.setattr(module, "update_display", update_display)
    state = NodeState("plot", "operator")
    report(state, "plot", {"name": "y", "x": [0.0], "y": [1.0], "window": 10}, 0)
    pump = UIPump(lambda: False, hz=HZ, clock=frontend.time)
    panel = pump.panel(state)
    drawer = threading.Thread(target=pump.flush, name="dora-ui")
    drawer.start()  # the UI thread draws the final state first
    drawer.join()
    assert sent == [("dora-ui", panel.display_id)]
    pump.settle()  # the cell's thread
    assert sent[-1] == (threading.current_thread().name, panel.display_id)


@pytest.mark.parametrize("with_anywidget", [True, False])
def test_a_frame_is_shown_as_bytes_in_a_frame_view_or_else_a_stock_image(
    frontend: Frontend, monkeypatch: pytest.MonkeyPatch, with_anywidget: bool
) -> None:
    """An image slot is a FrameView (a canvas in the browser); without anywidget, the
    stock ipywidgets.Image shows the same bytes."""
    import numpy as np

    from dora_notebook.jupyter import widgets as panels
    from dora_notebook.jupyter.frameview import FrameView
    from dora_notebook.preview.frames import frame_or_none

    if not with_anywidget:
        monkeypatch.setattr(panels, "_frame_kind", lambda: widgets.Image)
    state = NodeState("camera", "node")
    frame = frame_or_none(np.full((48, 64, 3), 200, np.uint8))
    report(state, "preview", {"slot": "default", "payload": {"type": "image", "data": frame}}, 0)
    (slot,) = Parts(NodePanel(state)).previews.children
    # (anywidget makes a subclass of FrameView per instance.)
    assert isinstance(slot, FrameView) is with_anywidget
    assert isinstance(slot, widgets.Image) is not with_anywidget
    assert "dora-preview-image" in slot._dom_classes or with_anywidget  # the canvas has it
    assert slot.value[:8] == b"\x89PNG\r\n\x1a\n"  # a flat picture: PNG is smaller
    assert frontend.state(slot)["format"] == "png"
