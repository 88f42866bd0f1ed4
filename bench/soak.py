"""Soak: a graph running for minutes in a real kernel, with previews and progress on
every message, sampled for resident memory, threads and the panels' traffic.

A 1 kHz timer drives three operators in a chain; each previews a small DataFrame
and reports progress on every message. Every ``--every`` seconds the kernel
process's resident memory and thread count, and the iopub messages and bytes
of the last interval, are printed. At the end the verdicts: memory growth
after warm-up under 20 MB, no thread growth, and the panels' message rate
within the coalescing bound (``preview_hz`` redraws per widget).

    python bench/soak.py [--minutes 10] [--every 30] [--hz 10]
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from typing import Any

import psutil
from jupyter_client.manager import KernelManager

OPERATOR = """%%dora_operator {name} --inputs x={source} --outputs out --queue-size 50
import pandas as pd
import pyarrow as pa
class Operator:
    def __init__(self):
        self.n = 0
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.n += 1
            context.send_output("out", pa.array([self.n]))
            context.preview(pd.DataFrame({{"n": [self.n], "stage": ["{name}"]}}))
            context.report_progress(self.n % 101)
"""

STAGES = [("a", "dora/timer/millis/1"), ("b", "a/out"), ("c", "b/out")]
WIDGETS_PER_PANEL = 5  # header, bar, percent label, one preview slot, log


class _Iopub:
    """Counts the kernel's iopub messages and bytes; answers which cells went idle."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.messages = 0
        self.bytes = 0
        self.idle: queue.Queue[str] = queue.Queue()
        self.streams: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-iopub", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            self.messages += 1
            self.bytes += len(json.dumps(msg["content"], default=str))
            parent = msg["parent_header"].get("msg_id", "")
            if msg["msg_type"] == "stream":
                self.streams[parent] = self.streams.get(parent, "") + msg["content"]["text"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                self.idle.put(msg["parent_header"].get("msg_id", ""))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def _run_cell(client: Any, iopub: _Iopub, code: str, timeout: float = 120) -> str:
    """Execute ``code`` and return what it printed."""
    msg_id = client.execute(code)
    deadline = time.monotonic() + timeout
    while iopub.idle.get(timeout=max(0.0, deadline - time.monotonic())) != msg_id:
        pass
    time.sleep(0.3)  # the reader thread may still be handling the cell's last output
    return iopub.streams.pop(msg_id, "")


def _kernel_process(manager: KernelManager) -> psutil.Process:
    me = psutil.Process()
    for child in me.children(recursive=True):
        if manager.connection_file in " ".join(child.cmdline()):
            return child
    raise RuntimeError("kernel process not found")


def soak(minutes: float, every: float, hz: float) -> list[dict[str, float]]:
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    iopub = _Iopub(client)
    samples: list[dict[str, float]] = []
    try:
        kernel = _kernel_process(manager)
        _run_cell(client, iopub, "%load_ext dora_notebook")
        _run_cell(client, iopub, f"%config DoraMagics.preview_hz = {hz}")
        for name, source in STAGES:
            _run_cell(client, iopub, OPERATOR.format(name=name, source=source))
        _run_cell(client, iopub, "%dora_start")
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < minutes * 60:
            messages, size, mark = iopub.messages, iopub.bytes, time.monotonic()
            time.sleep(min(every, max(0.0, minutes * 60 - elapsed)))
            span = time.monotonic() - mark
            sample = {
                "t_s": time.monotonic() - began,
                "rss_mb": kernel.memory_info().rss / 2**20,
                "threads": kernel.num_threads(),
                "msgs_per_s": (iopub.messages - messages) / span,
                "kb_per_s": (iopub.bytes - size) / span / 1e3,
            }
            samples.append(sample)
            print(
                f"{sample['t_s']:7.0f} s  rss {sample['rss_mb']:7.1f} MB  "
                f"threads {sample['threads']:3d}  iopub {sample['msgs_per_s']:6.1f} msg/s "
                f"{sample['kb_per_s']:6.1f} kB/s",
                flush=True,
            )
        _run_cell(client, iopub, "%dora_stop")
        status = (
            "import dora_notebook\nfor s in dora_notebook.current().status().values(): print(s)"
        )
        print(_run_cell(client, iopub, status), end="")
    finally:
        iopub.stop()
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--hz", type=float, default=10.0, help="DoraMagics.preview_hz")
    args = parser.parse_args()
    samples = soak(args.minutes, args.every, args.hz)
    warm = [s for s in samples if s["t_s"] >= min(60.0, samples[-1]["t_s"] / 2)]
    growth = warm[-1]["rss_mb"] - warm[0]["rss_mb"]
    threads = {int(s["threads"]) for s in warm}
    bound = len(STAGES) * WIDGETS_PER_PANEL * args.hz + 10  # + status and stream messages
    peak = max(s["msgs_per_s"] for s in samples)
    print(
        f"memory after warm-up: {warm[0]['rss_mb']:.1f} -> {warm[-1]['rss_mb']:.1f} MB "
        f"({growth:+.1f} MB; bound 20 MB): {'met' if growth < 20 else 'MISSED'}"
    )
    print(f"threads after warm-up: {sorted(threads)}: {'met' if len(threads) == 1 else 'MISSED'}")
    print(
        f"iopub peak {peak:.1f} msg/s (coalescing bound {bound:.0f}): "
        f"{'met' if peak <= bound else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
