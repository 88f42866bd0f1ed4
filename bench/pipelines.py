"""The dataflows both dora engines run: the same node and operator source text.

Each program is a template whose constants (message count, payload size,
pace, result file...) are filled in as a block of assignments, so the
dora-rs files and the embedded engine's code are the very same text. The
source and the sink write their records as JSON into the run's folder.

Two shapes:

* node hop: ``src -> sink``, two custom nodes;
* chain: ``src -> op1 -> op2 -> op3 -> sink``, custom nodes around three
  operators, each of which stamps its receive time into the metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import Outcome, SizePlan

__all__ = ["Stage", "chain", "node_hop", "read_outcome"]

_PARAMS = "# <params>"

SOURCE = f'''"""Benchmark source: WARMUP paced messages, then COUNT measured ones, each
stamped with its send time and index."""

import json
import time

import numpy as np
import pyarrow as pa
from dora import Node

{_PARAMS}


def main() -> None:
    node = Node()
    payload = pa.array(np.zeros(SIZE, np.uint8))
    time.sleep(DELAY_S)
    first = time.monotonic_ns()
    for i in range(WARMUP + COUNT):
        if i == WARMUP:
            first = time.monotonic_ns()
        node.send_output("out", payload, {{"t": time.monotonic_ns(), "i": i}})
        pace = WARMUP_PACE_S if i < WARMUP else PACE_S
        if pace:
            time.sleep(pace)
    last = time.monotonic_ns()
    record = {{"sent": WARMUP + COUNT, "measured_sent": COUNT,
              "first_send_ns": first, "last_send_ns": last}}
    with open(RECORD, "w") as file:
        json.dump(record, file)


if __name__ == "__main__":
    main()
'''

SINK = f'''"""Benchmark sink: note when each message arrives."""

import json
import time

from dora import Node

{_PARAMS}


def main() -> None:
    node = Node()
    latencies, spans = [], []
    received = measured = first = last = 0
    for event in node:
        if event["type"] != "INPUT":
            continue
        now = time.monotonic_ns()
        meta = event["metadata"]
        received += 1
        if meta["i"] < WARMUP:
            continue
        measured += 1
        first = first or now
        last = now
        latencies.append(now - meta["t"])
        if "t_op3" in meta:
            spans.append(meta["t_op3"] - meta["t_op1"])
    record = {{"received": received, "measured_received": measured,
              "first_recv_ns": first, "last_recv_ns": last,
              "latencies_ns": latencies, "spans_ns": spans}}
    with open(RECORD, "w") as file:
        json.dump(record, file)


if __name__ == "__main__":
    main()
'''

OPERATOR = f'''"""Benchmark operator: stamp the receive time, forward the same value."""

import time

from dora import DoraStatus

{_PARAMS}


class Operator:
    def on_event(self, dora_event, send_output):
        if dora_event["type"] == "INPUT":
            metadata = dora_event["metadata"]
            metadata[STAMP] = time.monotonic_ns()
            send_output("out", dora_event["value"], metadata)
        return DoraStatus.CONTINUE
'''


def render(template: str, **params: Any) -> str:
    """``template`` with its parameter block replaced by ``NAME = value`` lines."""
    block = "\n".join(f"{name} = {value!r}" for name, value in params.items())
    return template.replace(_PARAMS, block)


@dataclass
class Stage:
    """One node of a benchmark dataflow, engine-neutral."""

    id: str
    kind: str  # "node" or "operator"
    code: str
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    queue_size: int | None = None


def _source(folder: Path, plan: SizePlan, delay_s: float) -> Stage:
    code = render(
        SOURCE,
        SIZE=plan.size,
        COUNT=plan.count,
        WARMUP=plan.warmup,
        PACE_S=plan.pace_s,
        WARMUP_PACE_S=plan.warm_pace_s,
        DELAY_S=delay_s,
        RECORD=str(folder / "source.json"),
    )
    return Stage("src", "node", code, outputs=["out"])


def _sink(folder: Path, plan: SizePlan, upstream: str) -> Stage:
    code = render(SINK, WARMUP=plan.warmup, RECORD=str(folder / "sink.json"))
    return Stage("sink", "node", code, inputs={"in": upstream}, queue_size=plan.total)


def node_hop(folder: Path, plan: SizePlan, delay_s: float) -> list[Stage]:
    """``src -> sink``: one hop between two custom nodes."""
    return [_source(folder, plan, delay_s), _sink(folder, plan, "src/out")]


def chain(folder: Path, plan: SizePlan, delay_s: float) -> list[Stage]:
    """``src -> op1 -> op2 -> op3 -> sink``: three operators between custom nodes.

    Every queue holds a whole run, so nothing needs to be dropped.
    """
    stages = [_source(folder, plan, delay_s)]
    upstream = "src/out"
    for index in (1, 2, 3):
        op_id = f"op{index}"
        code = render(OPERATOR, STAMP=f"t_{op_id}")
        stages.append(
            Stage(
                op_id,
                "operator",
                code,
                inputs={"in": upstream},
                outputs=["out"],
                queue_size=plan.total,
            )
        )
        upstream = f"{op_id}/out"
    stages.append(_sink(folder, plan, upstream))
    return stages


def read_outcome(folder: Path) -> Outcome:
    """The records the source and the sink left in ``folder``."""
    records = []
    for name in ("source.json", "sink.json"):
        path = folder / name
        if not path.is_file():
            raise RuntimeError(f"{name} was not written (the node did not finish)")
        records.append(json.loads(path.read_text(encoding="utf-8")))
    return Outcome.from_records(*records)
