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
import json
import queue
import statistics
import threading
import time
from typing import Any

from jupyter_client.manager import KernelManager

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


class _Traffic:
    """Counts iopub messages and bytes in a background reader."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.counting = False
        self.messages = 0
        self.bytes = 0
        self.idle: queue.Queue[str] = queue.Queue()
        self.streams: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-iopub", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            if self.counting:
                self.messages += 1
                self.bytes += len(json.dumps(msg["content"], default=str)) + len(
                    json.dumps(msg["header"], default=str)
                )
            if msg["msg_type"] == "stream":
                parent = msg["parent_header"].get("msg_id", "")
                self.streams[parent] = self.streams.get(parent, "") + msg["content"]["text"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                self.idle.put(msg["parent_header"].get("msg_id", ""))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def _run_cell(client: Any, traffic: _Traffic, code: str, timeout: float = 60) -> float:
    """Execute ``code``; return the time until the kernel is idle again."""
    return _run(client, traffic, code, timeout)[0]


def _run(client: Any, traffic: _Traffic, code: str, timeout: float = 60) -> tuple[float, str]:
    began = time.perf_counter()
    msg_id = client.execute(code)
    deadline = time.monotonic() + timeout
    while True:
        got = traffic.idle.get(timeout=max(0.0, deadline - time.monotonic()))
        if got == msg_id:
            return time.perf_counter() - began, traffic.streams.pop(msg_id, "")


def measure(seconds: float, hz: float) -> dict[str, float]:
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    traffic = _Traffic(client)
    try:
        _run_cell(client, traffic, "%load_ext dora_notebook")
        _run_cell(client, traffic, f"%config DoraMagics.preview_hz = {hz}")
        idle = [_run_cell(client, traffic, "1 + 1") for _ in range(20)]
        _run_cell(client, traffic, GRAPH)
        _run_cell(client, traffic, SINK)
        _run_cell(client, traffic, "%dora_start")
        time.sleep(1.0)  # warm-up
        traffic.counting = True
        began = time.monotonic()
        busy = []
        while time.monotonic() - began < seconds:
            busy.append(_run_cell(client, traffic, "1 + 1"))
            time.sleep(0.05)
        elapsed = time.monotonic() - began
        traffic.counting = False
        _run_cell(client, traffic, "%dora_stop")
        _, counts = _run(
            client,
            traffic,
            "import dora_notebook\nflow = dora_notebook.current()\n"
            "print(flow.node('busy').received, flow.node('show').received)",
        )
    finally:
        traffic.stop()
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    busy.sort()
    return {
        "idle_p50_ms": statistics.median(idle) * 1e3,
        "busy_p50_ms": statistics.median(busy) * 1e3,
        "busy_p95_ms": busy[int(len(busy) * 0.95) - 1] * 1e3,
        "cells": len(busy),
        "iopub_msgs_per_s": traffic.messages / elapsed,
        "iopub_kb_per_s": traffic.bytes / elapsed / 1e3,
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
