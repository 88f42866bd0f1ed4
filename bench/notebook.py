"""How the notebook layer behaves while a graph saturates the runtime.

Starts a real ipykernel, loads the extension and runs a graph whose operators
keep the runtime thread busy and preview on every message. Meanwhile it
executes trivial cells and measures their round-trip latency, and counts the
iopub messages and bytes the kernel sends (the panels' traffic), against
Jupyter Server's default limits (1000 messages/s, 1 MB/s).

    python bench/notebook.py [--seconds 10] [--hz 10]
"""

from __future__ import annotations

import argparse
import statistics

from kernel_session import KernelSession

GRAPH = """
%%dora_operator busy --inputs tick=dora/timer/millis/1 --outputs frame --queue-size 100
import time
import pyarrow as pa
class Operator:
    def __init__(self):
        self.n = 0
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.n += 1
            end = time.perf_counter() + 0.0009  # ~90% of the runtime thread
            while time.perf_counter() < end:
                pass
            context.send_output("frame", pa.array([self.n]))
            context.report_progress(self.n % 101)
"""

SINK = """
%%dora_operator show --inputs frame=busy/frame --queue-size 100
import pandas as pd
class Operator:
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            n = event["value"][0].as_py()
            rows = range(n % 20)
            context.preview(pd.DataFrame({"n": rows, "sq": [i * i for i in rows]}))
            context.preview({"type": "text", "data": f"frame {n}"}, id="last")
            print("frame", n)
"""


def measure(seconds: float, hz: float) -> dict[str, float]:
    with KernelSession() as kernel:
        kernel.counting = False
        kernel.run("%load_ext dora_notebook")
        kernel.run(f"%config DoraMagics.preview_hz = {hz}")
        idle = [kernel.run("1 + 1")[0] for _ in range(20)]
        kernel.run(GRAPH)
        kernel.run(SINK)
        busy, elapsed = kernel.cells_while_running(seconds)
        _, counts = kernel.run(
            "import dora_notebook\nflow = dora_notebook.current()\n"
            "print(flow.node('busy').received, flow.node('show').received)"
        )
    busy.sort()
    return {
        "idle_p50_ms": statistics.median(idle) * 1e3,
        "busy_p50_ms": statistics.median(busy) * 1e3,
        "busy_p95_ms": busy[int(len(busy) * 0.95) - 1] * 1e3,
        "cells": len(busy),
        "iopub_msgs_per_s": kernel.messages / elapsed,
        "iopub_kb_per_s": kernel.bytes / elapsed / 1e3,
        "ticks": int(counts.split()[0]),
        "previewed": int(counts.split()[1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hz", type=float, default=10.0, help="DoraMagics.preview_hz")
    args = parser.parse_args()
    r = measure(args.seconds, args.hz)
    print(f"trivial cell, idle kernel:        p50 {r['idle_p50_ms']:7.1f} ms")
    print(
        f"trivial cell, runtime saturated:  p50 {r['busy_p50_ms']:7.1f} ms   "
        f"p95 {r['busy_p95_ms']:7.1f} ms   (target p95 < 100 ms, {r['cells']} cells)"
    )
    print(
        f"graph: {r['ticks']} timer ticks handled, {r['previewed']} messages previewed "
        f"(twice each) during the run"
    )
    print(
        f"iopub traffic from the panels:    {r['iopub_msgs_per_s']:7.1f} msg/s  "
        f"{r['iopub_kb_per_s']:7.1f} kB/s   (limits 1000 msg/s, 1000 kB/s)"
    )


if __name__ == "__main__":
    main()
