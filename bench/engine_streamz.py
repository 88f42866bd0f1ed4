"""The same measurements on streamz: synchronous ``Stream.map`` steps in this thread.

A message is a ``(value, metadata)`` pair, as in dora; a "node hop" is one
``map`` step, the chain is three stamping ``map`` steps and a ``sink``.
streamz holds downstream nodes weakly, so the last node of each graph is
kept referenced while messages flow, then destroyed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from common import Outcome, SizePlan
from streamz import Stream

__all__ = ["chain", "node_hop"]

Message = tuple[pa.Array, dict[str, Any]]


class _Recorder:
    """The sink's side of :class:`~common.Outcome`."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.outcome = Outcome()

    def __call__(self, message: Message) -> None:
        now = time.monotonic_ns()
        meta = message[1]
        outcome = self.outcome
        outcome.received += 1
        if meta["i"] < self.warmup:
            return
        outcome.measured_received += 1
        outcome.first_recv_ns = outcome.first_recv_ns or now
        outcome.last_recv_ns = now
        outcome.latencies_ns.append(now - meta["t"])
        if "t_op3" in meta:
            outcome.spans_ns.append(meta["t_op3"] - meta["t_op1"])


def _stamper(key: str) -> Callable[[Message], Message]:
    """An operator: stamp the receive time, forward the same value."""

    def stamp(message: Message) -> Message:
        message[1][key] = time.monotonic_ns()
        return message

    return stamp


def _send(source: Stream, recorder: _Recorder, plan: SizePlan) -> Outcome:
    """Emit the messages of ``plan`` into ``source``, as the dora source node does."""
    payload = pa.array(np.zeros(plan.size, np.uint8))
    emit = source.emit
    first = time.monotonic_ns()
    for i in range(plan.total):
        if i == plan.warmup:
            first = time.monotonic_ns()
        emit((payload, {"t": time.monotonic_ns(), "i": i}))
        pace = plan.warm_pace_s if i < plan.warmup else plan.pace_s
        if pace:
            time.sleep(pace)
    outcome = recorder.outcome
    outcome.sent = plan.total
    outcome.measured_sent = plan.count
    outcome.first_send_ns = first
    outcome.last_send_ns = time.monotonic_ns()
    return outcome


def node_hop(plan: SizePlan) -> Outcome:
    """One ``map`` hop whose function is the receiver."""
    source = Stream()
    recorder = _Recorder(plan.warmup)
    hop = source.map(recorder)
    try:
        return _send(source, recorder, plan)
    finally:
        hop.destroy()


def chain(plan: SizePlan) -> Outcome:
    """``source -> map(op1) -> map(op2) -> map(op3) -> sink``."""
    source = Stream()
    recorder = _Recorder(plan.warmup)
    stream = source
    for index in (1, 2, 3):
        stream = stream.map(_stamper(f"t_op{index}"))
    sink = stream.sink(recorder)
    try:
        return _send(source, recorder, plan)
    finally:
        sink.destroy()
