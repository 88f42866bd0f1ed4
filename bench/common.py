"""What the benchmark measures and how much: payload plans, result records, statistics."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "CHAIN_HOPS",
    "ENGINES",
    "MEASUREMENTS",
    "OP_SPAN_HOPS",
    "Outcome",
    "Result",
    "Settings",
    "SizePlan",
    "percentile",
    "size_label",
]

#: Engine names, in table order.
ENGINES = ("dora-notebook", "dora-rs", "streamz")

#: Measurement names, in table order.
MEASUREMENTS = ("node_hop", "chain_hop", "op_hop", "throughput")

#: Hops of source -> op1 -> op2 -> op3 -> sink.
CHAIN_HOPS = 4

#: Hops between op1's and op3's receive stamps: op1 -> op2 -> op3.
OP_SPAN_HOPS = 2

KIB = 1024
MIB = 1024 * KIB

#: The payload sizes of the full run, in bytes.
FULL_SIZES = (8, 4 * KIB, 4 * MIB, 40 * MIB)

#: The payload sizes of a ``--quick`` run.
QUICK_SIZES = (8,)


@dataclass(frozen=True)
class SizePlan:
    """How one latency run at one payload size is paced.

    ``warmup`` messages go first and are not measured; ``pace_s`` is the
    pause after each send, long enough that no engine builds a queue.
    """

    size: int
    count: int
    warmup: int
    pace_s: float

    @property
    def total(self) -> int:
        return self.count + self.warmup

    @property
    def duration_s(self) -> float:
        """How long the source sends, at least."""
        return self.total * self.pace_s


# Paces follow dora-rs's cost per hop (about 1 ms at 4 MB, 250 ms at 40 MB)
# so that even its slowest stage is idle when the next message comes.
_FULL_PLANS = {
    8: SizePlan(8, 200, 50, 0.005),
    4 * KIB: SizePlan(4 * KIB, 200, 50, 0.005),
    4 * MIB: SizePlan(4 * MIB, 100, 10, 0.020),
    40 * MIB: SizePlan(40 * MIB, 20, 2, 0.500),
}
_QUICK_PLANS = {
    8: SizePlan(8, 30, 10, 0.005),
    4 * KIB: SizePlan(4 * KIB, 30, 10, 0.005),
    4 * MIB: SizePlan(4 * MIB, 10, 2, 0.020),
    40 * MIB: SizePlan(40 * MIB, 4, 1, 0.500),
}


@dataclass(frozen=True)
class Settings:
    """One benchmark invocation: which engines, sizes and message counts."""

    quick: bool = False
    engines: tuple[str, ...] = ENGINES
    sizes: tuple[int, ...] = FULL_SIZES
    throughput_count: int = 20_000
    #: Pause of every dora-rs source before its first message: dora-rs drops
    #: what is sent before all nodes are connected.
    dora_delay_s: float = 1.0

    @classmethod
    def create(cls, *, quick: bool, engines: tuple[str, ...] | None = None,
               sizes: tuple[int, ...] | None = None) -> Settings:
        return cls(
            quick=quick,
            engines=engines or ENGINES,
            sizes=sizes or (QUICK_SIZES if quick else FULL_SIZES),
            throughput_count=2_000 if quick else 20_000,
        )

    def plan(self, size: int) -> SizePlan:
        """The pacing of ``size``; sizes not in the table get the nearest larger plan."""
        plans = _QUICK_PLANS if self.quick else _FULL_PLANS
        for known in sorted(plans):
            if size <= known:
                return SizePlan(size, *_plan_fields(plans[known]))
        return SizePlan(size, *_plan_fields(plans[max(plans)]))


def _plan_fields(plan: SizePlan) -> tuple[int, int, float]:
    return plan.count, plan.warmup, plan.pace_s


@dataclass
class Outcome:
    """What a run's source and sink recorded (times are ``time.monotonic_ns()``).

    ``latencies_ns`` are end-to-end, source send to sink receive; ``spans_ns``
    are op1's receive to op3's receive (chain runs only). Both leave out the
    warm-up messages.
    """

    sent: int = 0
    received: int = 0
    first_send_ns: int = 0
    last_send_ns: int = 0
    first_recv_ns: int = 0
    last_recv_ns: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    spans_ns: list[int] = field(default_factory=list)

    @classmethod
    def from_records(cls, source: dict[str, Any], sink: dict[str, Any]) -> Outcome:
        """Join the source's and the sink's JSON records."""
        return cls(
            sent=int(source["sent"]),
            received=int(sink["received"]),
            first_send_ns=int(source["first_send_ns"]),
            last_send_ns=int(source["last_send_ns"]),
            first_recv_ns=int(sink["first_recv_ns"]),
            last_recv_ns=int(sink["last_recv_ns"]),
            latencies_ns=[int(x) for x in sink["latencies_ns"]],
            spans_ns=[int(x) for x in sink["spans_ns"]],
        )


@dataclass
class Result:
    """One cell of the table: an engine's number for one measurement at one size.

    Latency measurements fill ``median_us``/``p95_us`` (per hop) and keep the
    per-message samples; throughput fills ``rate`` (messages per second).
    """

    engine: str
    measurement: str
    size: int
    sent: int = 0
    received: int = 0
    expected: int = 0
    median_us: float | None = None
    p95_us: float | None = None
    rate: float | None = None
    samples_us: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def lost(self) -> int:
        """Messages the sink should have had but did not get."""
        return max(0, self.expected - self.received)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "lost": self.lost}


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latency_result(engine: str, measurement: str, size: int, outcome: Outcome,
                   expected: int, samples_ns: list[int], hops: int) -> Result:
    """A latency cell: per-hop median and p95 of ``samples_ns`` spread over ``hops``."""
    samples_us = [x / hops / 1000 for x in samples_ns]
    result = Result(engine, measurement, size, sent=outcome.sent, received=outcome.received,
                    expected=expected, samples_us=samples_us)
    if samples_us:
        result.median_us = statistics.median(samples_us)
        result.p95_us = percentile(samples_us, 0.95)
    else:
        result.error = "the sink received no measured message"
    return result


def throughput_result(engine: str, outcome: Outcome, expected: int) -> Result:
    """A throughput cell: messages received per second, first send to last receive."""
    result = Result(engine, "throughput", 8, sent=outcome.sent, received=outcome.received,
                    expected=expected)
    elapsed_ns = outcome.last_recv_ns - outcome.first_send_ns
    if outcome.received and elapsed_ns > 0:
        result.rate = outcome.received / (elapsed_ns / 1e9)
    else:
        result.error = "the sink received nothing"
    return result


def failed(engine: str, measurement: str, size: int, error: str) -> Result:
    """A cell whose run did not complete."""
    return Result(engine, measurement, size, error=error)


def size_label(size: int) -> str:
    """``8 B``, ``4 KB``, ``40 MB`` (binary multiples)."""
    for unit, factor in (("MB", MIB), ("KB", KIB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"
