"""Both engines implement the one engine interface, member for member."""

from __future__ import annotations

import inspect
import time

import pytest

from dora_notebook import Dataflow
from dora_notebook.core.engine import EmbeddedEngine
from dora_notebook.core.protocol import Engine
from dora_notebook.dataflow import ENGINES
from dora_notebook.dora_rs.engine import DoraEngine

OPERATOR = "class Operator:\n    def on_event(self, event, send_output):\n        pass\n"


def _members() -> list[str]:
    hints = [n for n in Engine.__annotations__]
    methods = [
        n for n, v in vars(Engine).items() if inspect.isfunction(v) and not n.startswith("_")
    ]
    return sorted({*hints, *methods})


@pytest.mark.parametrize("cls", [EmbeddedEngine, DoraEngine])
def test_every_engine_has_every_member_of_the_protocol(cls: type) -> None:
    missing = []
    for name in _members():
        if hasattr(cls, name) or name == "done":  # `done` is an instance attribute
            continue
        missing.append(name)
    assert missing == []
    for name in _members():
        if name in vars(Engine) and inspect.isfunction(vars(Engine)[name]):
            expected = list(inspect.signature(getattr(Engine, name)).parameters)
            assert list(inspect.signature(getattr(cls, name)).parameters) == expected, name


def test_the_registry_builds_engines_that_satisfy_the_protocol() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("op", OPERATOR, inputs={"t": "dora/timer/millis/50"})
    for name, build in ENGINES.items():
        engine = build(flow, lambda report: None)
        assert isinstance(engine, Engine)
        assert engine.name == name
        assert engine.counters("op") is not None
        assert engine.counters("nobody") is None
        assert engine.edge("op", "t").delivered == 0


def test_liveness_and_edge_counts_come_through_the_protocol() -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("op", OPERATOR, inputs={"t": "dora/timer/millis/5"})
    flow.start()
    try:
        engine = flow.engine
        assert engine is not None and engine.live("op")
        deadline = time.monotonic() + 10
        while engine.edge("op", "t").delivered < 3 and time.monotonic() < deadline:
            engine.wait(0.01)
        assert flow.edges()[0]["delivered"] >= 3
    finally:
        flow.stop()
    assert not engine.live("op")
    assert engine.done.is_set()
