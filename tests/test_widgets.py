"""Node panels and the UI pump, headless: every widget message lands on a recording comm.

As ipywidgets tests its own widgets, no kernel runs here: each widget gets a
comm that keeps what it would send to the frontend. The pump runs on fake
time: while it waits between two ticks, the fake clock moves on one
millisecond at a time and lets the test's reports arrive, so a flood of
thousands of reports a second is exact and takes no real time.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import comm
import pytest
from ipywidgets.widgets import widget as widget_module

from dora_notebook.core.observe import NodeState, Report
from dora_notebook.jupyter.widgets import NodePanel, RealTime, UIPump

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
        self.header, self.progress, self.previews, self.log = panel.children
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


def test_a_new_rate_applies_to_a_running_pump() -> None:
    """`%config DoraMagics.preview_hz = 50` sets ``hz`` while the pump waits out 2 s."""
    time = FakeTime()
    pump = RoundCounter(time, hz=0.5, until_ms=1000)
    time.between = lambda ms: setattr(pump, "hz", 50.0) if ms == 100 else None
    pump.start()
    try:
        wait_for(lambda: not pump.running(), 30, "the pump to end")
        rounds = list(pump.rounds)
    finally:
        pump.stop()
    # At once, then every 20 ms, up to the final round when the graph ends at 1000 ms.
    assert rounds == [0, *range(100, 1001, 20)]
