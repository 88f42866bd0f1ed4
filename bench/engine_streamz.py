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
from common import Outcome
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
        outcome.first_recv_ns = outcome.first_recv_ns or now
        outcome.last_recv_ns = now
        if meta["i"] >= self.warmup:
            outcome.latencies_ns.append(now - meta["t"])
            if "t_op3" in meta:
                outcome.spans_ns.append(meta["t_op3"] - meta["t_op1"])


def _stamper(key: str) -> Callable[[Message], Message]:
    """An operator: stamp the receive time, forward the same value."""
    def stamp(message: Message) -> Message:
        message[1][key] = time.monotonic_ns()
        return message
    return stamp


def _send(source: Stream, recorder: _Recorder, size: int, count: int, warmup: int,
          pace_s: float) -> Outcome:
    """Emit ``warmup + count`` messages into ``source``, ``pace_s`` apart."""
    payload = pa.array(np.zeros(size, np.uint8))
    emit = source.emit
    first = time.monotonic_ns()
    for i in range(warmup + count):
        emit((payload, {"t": time.monotonic_ns(), "i": i}))
        if pace_s:
            time.sleep(pace_s)
    outcome = recorder.outcome
    outcome.sent = warmup + count
    outcome.first_send_ns = first
    outcome.last_send_ns = time.monotonic_ns()
    return outcome


def node_hop(size: int, count: int, warmup: int, pace_s: float) -> Outcome:
    """One ``map`` hop whose function is the receiver."""
    source = Stream()
    recorder = _Recorder(warmup)
    hop = source.map(recorder)
    try:
        return _send(source, recorder, size, count, warmup, pace_s)
    finally:
        hop.destroy()


def chain(size: int, count: int, warmup: int, pace_s: float) -> Outcome:
    """``source -> map(op1) -> map(op2) -> map(op3) -> sink``."""
    source = Stream()
    recorder = _Recorder(warmup)
    stream = source
    for index in (1, 2, 3):
        stream = stream.map(_stamper(f"t_op{index}"))
    sink = stream.sink(recorder)
    try:
        return _send(source, recorder, size, count, warmup, pace_s)
    finally:
        sink.destroy()
