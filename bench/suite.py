"""The measurements, engine by engine: each gives :class:`~common.Result` cells."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import engine_dora
import engine_embedded
import engine_streamz
import pipelines
from common import (
    CHAIN_HOPS,
    OP_SPAN_HOPS,
    Outcome,
    Result,
    Settings,
    SizePlan,
    failed,
    latency_result,
    throughput_result,
)

__all__ = ["make_engine", "measure"]

#: Seconds a message may take through a whole run at worst, plus per byte:
#: only a bound, since a run ends by itself when its source is done.
_WORST_PER_MESSAGE_S = 1e-3
_WORST_PER_BYTE_S = 10e-9


class Engine(Protocol):
    """Runs a shape (``node`` or ``chain``) once and returns what source and sink saw."""

    name: str

    def run(self, shape: str, plan: SizePlan) -> Outcome: ...


Builder = Callable[..., list[pipelines.Stage]]
_SHAPES: dict[str, Builder] = {"node": pipelines.node_hop, "chain": pipelines.chain}


def _expected_s(plan: SizePlan) -> float:
    """A generous bound of how long the run's messages take."""
    per_message = _WORST_PER_MESSAGE_S + plan.size * _WORST_PER_BYTE_S
    return plan.duration_s + plan.total * per_message


class EmbeddedEngine:
    """dora-notebook's embedded engine, in this process."""

    name = "dora-notebook"

    def run(self, shape: str, plan: SizePlan) -> Outcome:
        with tempfile.TemporaryDirectory(prefix="bench-nb-") as tmp:
            folder = Path(tmp)
            stages = _SHAPES[shape](folder, plan, 0.0)
            engine_embedded.run(stages, timeout_s=_expected_s(plan) + 30.0)
            return pipelines.read_outcome(folder)


class DoraEngine:
    """Real dora-rs, one ``dora run`` per measurement."""

    name = "dora-rs"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def run(self, shape: str, plan: SizePlan) -> Outcome:
        with tempfile.TemporaryDirectory(prefix="bench-dora-") as tmp:
            folder = Path(tmp)
            stages = _SHAPES[shape](folder, plan, self.delay_s)
            engine_dora.run(stages, folder, expected_s=self.delay_s + _expected_s(plan))
            return pipelines.read_outcome(folder)


class StreamzEngine:
    """streamz, synchronous, in this thread."""

    name = "streamz"

    def run(self, shape: str, plan: SizePlan) -> Outcome:
        run = engine_streamz.node_hop if shape == "node" else engine_streamz.chain
        return run(plan)


def make_engine(name: str, settings: Settings) -> Engine:
    if name == "dora-notebook":
        return EmbeddedEngine()
    if name == "dora-rs":
        return DoraEngine(settings.dora_delay_s)
    if name == "streamz":
        return StreamzEngine()
    raise ValueError(f"unknown engine {name!r}")


def _attempt(
    engine: Engine, shape: str, plan: SizePlan, measurements: tuple[str, ...]
) -> Outcome | list[Result]:
    """Run once; on failure, the failed cells instead of an outcome."""
    try:
        return engine.run(shape, plan)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        return [failed(engine.name, m, plan.size, message) for m in measurements]


def node_hop(engine: Engine, plan: SizePlan) -> list[Result]:
    """(a) custom node to custom node, one hop."""
    outcome = _attempt(engine, "node", plan, ("node_hop",))
    if isinstance(outcome, list):
        return outcome
    return [latency_result(engine.name, "node_hop", plan.size, outcome, outcome.latencies_ns, 1)]


def chain_hops(engine: Engine, plan: SizePlan) -> list[Result]:
    """(b) the 3-operator chain: end-to-end per hop, and operator-to-operator per hop."""
    outcome = _attempt(engine, "chain", plan, ("chain_hop", "op_hop"))
    if isinstance(outcome, list):
        return outcome
    return [
        latency_result(
            engine.name, "chain_hop", plan.size, outcome, outcome.latencies_ns, CHAIN_HOPS
        ),
        latency_result(engine.name, "op_hop", plan.size, outcome, outcome.spans_ns, OP_SPAN_HOPS),
    ]


def throughput(engine: Engine, plan: SizePlan, runs: int) -> list[Result]:
    """8-byte messages through the chain, the source sending as fast as it can.

    ``runs`` bursts; the one with the median rate is kept (a failed run
    fails the cell).
    """
    cells = []
    for _ in range(runs):
        outcome = _attempt(engine, "chain", plan, ("throughput",))
        if isinstance(outcome, list):
            return outcome
        cells.append(throughput_result(engine.name, outcome))
    if any(not cell.ok for cell in cells):
        return [next(cell for cell in cells if not cell.ok)]
    cells.sort(key=lambda cell: cell.rate or 0.0)
    return [cells[len(cells) // 2]]


def _steps(engine: Engine, settings: Settings) -> Iterator[tuple[str, Callable[[], list[Result]]]]:
    for size in settings.sizes:
        plan = settings.plan(size, engine.name)
        yield f"node hop {size} B", lambda plan=plan: node_hop(engine, plan)
        yield f"chain {size} B", lambda plan=plan: chain_hops(engine, plan)
    runs = settings.throughput_runs
    yield (
        f"throughput {runs} x {settings.throughput_count} msgs",
        lambda: throughput(engine, settings.throughput_plan(), runs),
    )


def measure(settings: Settings, log: Callable[[str], None] | None = None) -> list[Result]:
    """Every measurement on every engine of ``settings``."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    results: list[Result] = []
    for name in settings.engines:
        if name == "dora-rs" and not engine_dora.available():
            log("dora-rs: the dora CLI is not installed; skipped")
            continue
        engine = make_engine(name, settings)
        for label, step in _steps(engine, settings):
            start = time.monotonic()
            cells = step()
            errors = "; ".join(c.error for c in cells if c.error)
            status = f"FAILED: {errors}" if errors else "ok"
            log(f"{name}: {label}: {time.monotonic() - start:.1f} s, {status}")
            results.extend(cells)
    return results
