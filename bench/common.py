"""What the benchmark measures and how much: payload plans, result records, statistics."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, replace
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
    "failed",
    "latency_result",
    "percentile",
    "size_label",
    "throughput_result",
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
    """How the source of one run sends.

    ``warmup`` messages go first, ``warmup_pace_s`` apart, and are not
    measured: dora-rs is slow to pass its first messages (see the README).
    Then come ``count`` measured messages with a pause of ``pace_s`` after
    each: long enough that the engine builds no queue, or 0 for a burst.
    """

    size: int
    count: int
    warmup: int
    pace_s: float
    warmup_pace_s: float | None = None

    @property
    def warm_pace_s(self) -> float:
        return self.pace_s if self.warmup_pace_s is None else self.warmup_pace_s

    @property
    def total(self) -> int:
        return self.count + self.warmup

    @property
    def duration_s(self) -> float:
        """How long the source sends, at least."""
        return self.warmup * self.warm_pace_s + self.count * self.pace_s


#: The pace of every in-process latency run (dora-notebook, streamz), at every
#: size: their hops cost microseconds, and a longer idle time between messages
#: only adds the machine's wake-up time from idle (see the README).
_IN_PROCESS = SizePlan(0, 200, 120, 0.005)
_IN_PROCESS_QUICK = SizePlan(0, 30, 20, 0.005)

# dora-rs's paces follow its cost per message through the whole chain (about
# 2.5 ms per hop at 4 MB, 180 ms at 40 MB, on 2 cores) so that even its
# slowest stage is idle when the next message comes; 120 warm-up messages at
# 5 ms cover the ~0.4 s its operators take to pass their first message.
_DORA = {
    8: SizePlan(8, 200, 120, 0.005),
    4 * KIB: SizePlan(4 * KIB, 200, 120, 0.005),
    4 * MIB: SizePlan(4 * MIB, 100, 12, 0.050),
    40 * MIB: SizePlan(40 * MIB, 15, 2, 1.0),
}
_DORA_QUICK = {
    8: SizePlan(8, 30, 120, 0.005),
    4 * KIB: SizePlan(4 * KIB, 30, 120, 0.005),
    4 * MIB: SizePlan(4 * MIB, 10, 12, 0.050),
    40 * MIB: SizePlan(40 * MIB, 3, 1, 1.0),
}


@dataclass(frozen=True)
class Settings:
    """One benchmark invocation: which engines, sizes and message counts."""

    quick: bool = False
    engines: tuple[str, ...] = ENGINES
    sizes: tuple[int, ...] = FULL_SIZES
    #: Messages of the throughput burst, and how many bursts (the median counts).
    throughput_count: int = 20_000
    throughput_runs: int = 3
    #: Pause of every dora-rs source before its first message: dora-rs drops
    #: what is sent before all nodes are connected.
    dora_delay_s: float = 1.0

    @classmethod
    def create(
        cls,
        *,
        quick: bool,
        engines: tuple[str, ...] | None = None,
        sizes: tuple[int, ...] | None = None,
    ) -> Settings:
        return cls(
            quick=quick,
            engines=engines or ENGINES,
            sizes=sizes or (QUICK_SIZES if quick else FULL_SIZES),
            throughput_count=2_000 if quick else 20_000,
            throughput_runs=1 if quick else 3,
        )

    def plan(self, size: int, engine: str) -> SizePlan:
        """How ``engine``'s source sends ``size``-byte payloads in a latency run."""
        if engine != "dora-rs":
            fields = _IN_PROCESS_QUICK if self.quick else _IN_PROCESS
            return replace(fields, size=size)
        plans = _DORA_QUICK if self.quick else _DORA
        # Sizes not in the table get the plan of the nearest larger one.
        known = next((k for k in sorted(plans) if size <= k), max(plans))
        return replace(plans[known], size=size)

    def throughput_plan(self) -> SizePlan:
        """A paced warm-up, then ``throughput_count`` 8-byte messages as fast as possible."""
        warm = _DORA[8]
        return SizePlan(8, self.throughput_count, warm.warmup, 0.0, warm.pace_s)


@dataclass
class Outcome:
    """What a run's source and sink recorded (times are ``time.monotonic_ns()``).

    ``sent``/``received`` count every message, warm-up included; the
    ``measured_`` counts and the first/last times leave warm-up out.
    ``latencies_ns`` are end-to-end, source send to sink receive; ``spans_ns``
    are op1's receive to op3's receive (chain runs only).
    """

    sent: int = 0
    received: int = 0
    measured_sent: int = 0
    measured_received: int = 0
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
            **{
                name: source[name]
                for name in ("sent", "measured_sent", "first_send_ns", "last_send_ns")
            },
            **{
                name: sink[name]
                for name in (
                    "received",
                    "measured_received",
                    "first_recv_ns",
                    "last_recv_ns",
                    "latencies_ns",
                    "spans_ns",
                )
            },
        )


@dataclass
class Result:
    """One cell of the table: an engine's number for one measurement at one size.

    Latency measurements fill ``median_us``/``p95_us`` (per hop) and keep the
    per-message samples; throughput fills ``rate`` (messages per second
    received) and ``send_rate`` (how fast the source got them out).
    ``sent``/``received`` count every message, the ``measured_`` ones leave
    the warm-up out.
    """

    engine: str
    measurement: str
    size: int
    sent: int = 0
    received: int = 0
    measured_sent: int = 0
    measured_received: int = 0
    median_us: float | None = None
    p95_us: float | None = None
    rate: float | None = None
    send_rate: float | None = None
    samples_us: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def lost(self) -> int:
        """Measured messages that the sink never got."""
        return max(0, self.measured_sent - self.measured_received)

    @property
    def warmup_lost(self) -> int:
        """Warm-up messages that the sink never got."""
        return max(0, self.sent - self.received - self.lost)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "lost": self.lost, "warmup_lost": self.warmup_lost}


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _counts(outcome: Outcome) -> dict[str, int]:
    return {
        "sent": outcome.sent,
        "received": outcome.received,
        "measured_sent": outcome.measured_sent,
        "measured_received": outcome.measured_received,
    }


def latency_result(
    engine: str, measurement: str, size: int, outcome: Outcome, samples_ns: list[int], hops: int
) -> Result:
    """A latency cell: per-hop median and p95 of ``samples_ns`` spread over ``hops``."""
    samples_us = [x / hops / 1000 for x in samples_ns]
    result = Result(engine, measurement, size, **_counts(outcome), samples_us=samples_us)
    if samples_us:
        result.median_us = statistics.median(samples_us)
        result.p95_us = percentile(samples_us, 0.95)
    else:
        result.error = "the sink received no measured message"
    return result


def throughput_result(engine: str, outcome: Outcome) -> Result:
    """A throughput cell: measured messages received per second, first send to last receive."""
    result = Result(engine, "throughput", 8, **_counts(outcome))
    sending_ns = outcome.last_send_ns - outcome.first_send_ns
    if sending_ns > 0:
        result.send_rate = outcome.measured_sent / (sending_ns / 1e9)
    elapsed_ns = outcome.last_recv_ns - outcome.first_send_ns
    if outcome.measured_received and elapsed_ns > 0:
        result.rate = outcome.measured_received / (elapsed_ns / 1e9)
    else:
        result.error = "the sink received no measured message"
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
