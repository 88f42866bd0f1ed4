"""Replay against the live graph: an operator fed recorded messages vs the same operator live.

The graph is ``src -> op``: ``src`` a custom node sending COUNT messages of
8 B (a ``UInt8Array``, as ``bench/run.py``'s throughput row) as fast as it
can, ``op`` an operator that forwards each input with its metadata. Every
input queue holds a whole run (``queue_size`` = COUNT), so nothing is
dropped live either.

* **live**: the graph runs (no recording), REPEAT times; the rate is COUNT /
  (op's last handled message - src's first send), the time the operator's
  messages took end to end.
* **recorded**: one more run records ``src/n`` and ``op/out``
  (``Dataflow.record``).
* **replay**: ``Dataflow.replay("op", speed=0)`` feeds the COUNT recorded
  messages into op, alone, REPEAT times; its rate is COUNT / (op's last
  handled message - the start of the call), and the whole call (the
  diff included) is timed too. Also with op's queue at dora's default (10),
  where the replay waits for room in the queue instead of dropping.

Each replay must find every message the same (``COUNT same``); the script
fails otherwise. Medians are printed.

    python bench/replay.py [--count 100000] [--repeat 3] [--quick] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pyarrow as pa

from dora_notebook import Dataflow, Node


def source(count: int, stamps: dict[str, float]) -> Any:
    """The custom node ``src``: COUNT messages of 8 B as fast as it can."""

    def run() -> None:
        node = Node()
        payload = pa.array(np.zeros(8, np.uint8))
        stamps["first_send"] = time.perf_counter()
        for i in range(count):
            node.send_output("n", payload, {"i": i})

    return run


def operator_class(stamps: dict[str, float]) -> type:
    """The operator under test: forwards each input; notes when it handled the first and last."""

    class Operator:
        def on_event(self, dora_event: dict[str, Any], send_output: Any) -> None:
            if dora_event["type"] == "INPUT":
                now = time.perf_counter()
                stamps.setdefault("first", now)
                stamps["last"] = now
                send_output("out", dora_event["value"], dora_event["metadata"])

    Operator.stamps = stamps  # type: ignore[attr-defined]
    return Operator


def build(count: int, stamps: dict[str, float], queue_size: int) -> Dataflow:
    flow = Dataflow(echo=False)
    flow.add_node("src", source(count, stamps), outputs=["n"])
    flow.add_operator(
        "op", operator_class(stamps), inputs={"x": "src/n"}, outputs=["out"], queue_size=queue_size
    )
    return flow


def live(count: int, record: bool = False) -> tuple[dict[str, float], Dataflow]:
    """One live run: op's rates (its own, and from src's first send), in messages a second."""
    stamps: dict[str, float] = {}
    flow = build(count, stamps, count)
    if record:
        flow.record(["src/n", "op/out"], max_mb=4096)
    flow.start()
    if not flow.wait(600):
        raise SystemExit("the live run did not finish in 600 s")
    flow.stop()
    received = flow.node("op").received
    if received != count:
        raise SystemExit(f"live: op received {received} of {count}")
    rates = {
        "op": count / (stamps["last"] - stamps["first"]),
        "end_to_end": count / (stamps["last"] - stamps["first_send"]),
    }
    return rates, flow


def replay(flow: Dataflow, count: int) -> dict[str, float]:
    """One replay of op: its own rate, its rate from the call's start, the whole call's."""
    stamps = flow.graph["op"].obj.stamps
    stamps.clear()
    began = time.perf_counter()
    result = flow.replay("op", speed=0)
    ended = time.perf_counter()
    line = result.diff["out"].line()
    if (
        result.inputs != {"x": count}
        or line != f"op/out: {count} same, 0 changed, 0 new, 0 missing"
    ):
        raise SystemExit(f"replay: {result.summary()}")
    return {
        "op": count / (stamps["last"] - stamps["first"]),
        "from_call": count / (stamps["last"] - began),
        "call": count / (ended - began),
    }


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (default 3)")
    parser.add_argument("--quick", action="store_true", help="10000 messages, one run each")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    count, repeat = (10_000, 1) if args.quick else (args.count, args.repeat)

    lives = [live(count)[0] for _ in range(repeat)]
    _, flow = live(count, record=True)
    recorded = flow.recording
    assert recorded is not None
    replays = [replay(flow, count) for _ in range(repeat)]
    # The same replay with dora's default queue (10): the playback waits for room.
    stamps = flow.graph["op"].obj.stamps
    flow.add_operator(
        "op", operator_class(stamps), inputs={"x": "src/n"}, outputs=["out"], replace=True
    )
    smalls = [replay(flow, count) for _ in range(repeat)]

    figures = {
        "machine": f"{platform.node()} {platform.machine()} Python {platform.python_version()}",
        "count": count,
        "repeat": repeat,
        "recorded_messages": len(recorded),
        "live_op": median(lives, "op"),
        "live_end_to_end": median(lives, "end_to_end"),
        "replay_op": median(replays, "op"),
        "replay_from_call": median(replays, "from_call"),
        "replay_call": median(replays, "call"),
        "replay_queue10_op": median(smalls, "op"),
        "replay_queue10_call": median(smalls, "call"),
    }
    print(f"replay benchmark: {count:,} messages of 8 B through one operator, median of {repeat}")
    rows = [
        ("live: op (its first to last message)", "live_op"),
        ("live: src's first send to op's last", "live_end_to_end"),
        ("replay, queue as live: op (first to last)", "replay_op"),
        ("replay, queue as live: call start to op's last", "replay_from_call"),
        ("replay, queue as live: the whole call (+ diff)", "replay_call"),
        ("replay, queue of 10: op (first to last)", "replay_queue10_op"),
        ("replay, queue of 10: the whole call (+ diff)", "replay_queue10_call"),
    ]
    print(f"{'run':<48} {'msg/s':>10}")
    for name, key in rows:
        print(f"{name:<48} {figures[key]:>10,.0f}")
    ratio = figures["replay_op"] / figures["live_op"]
    print(f"op's rate, replay / live: {ratio:.2f}x; every replay: {count:,} same, 0 changed")
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
