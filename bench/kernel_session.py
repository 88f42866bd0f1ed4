"""A real ipykernel for the notebook benchmarks: run cells, count the iopub traffic.

One reader thread takes every iopub message: it counts messages and bytes
(content and header, while :attr:`KernelSession.counting` is true), keeps what
each cell printed, and tells which cell went idle. A cell's output always comes
before its idle status, so once a cell is idle its text is complete.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from types import TracebackType
from typing import Any

import psutil
from jupyter_client.manager import KernelManager


class KernelSession:
    """A started kernel; use as a context manager so that it is always shut down."""

    def __init__(self) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel()
        self.client: Any = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.counting = True
        self.messages = 0
        self.bytes = 0
        self._idle: queue.Queue[str] = queue.Queue()
        self._printed: dict[str, str] = {}
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="bench-iopub", daemon=True)
        self._reader.start()

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            if self.counting:
                self.messages += 1
                self.bytes += len(json.dumps(msg["content"], default=str)) + len(
                    json.dumps(msg["header"], default=str)
                )
            parent = msg["parent_header"].get("msg_id", "")
            if msg["msg_type"] == "stream":
                self._printed[parent] = self._printed.get(parent, "") + msg["content"]["text"]
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                self._idle.put(parent)

    def run(self, code: str, timeout: float = 120) -> tuple[float, str]:
        """Execute ``code``; return the seconds until the kernel was idle, and what it printed."""
        began = time.perf_counter()
        msg_id = self.client.execute(code)
        deadline = time.monotonic() + timeout
        while self._idle.get(timeout=max(0.0, deadline - time.monotonic())) != msg_id:
            pass
        return time.perf_counter() - began, self._printed.pop(msg_id, "")

    def cells_while_running(self, seconds: float) -> tuple[list[float], float]:
        """Start the defined graph, then time trivial cells for ``seconds`` while it runs.

        After a second of warm-up, iopub traffic is counted from zero for exactly that
        window; the graph is stopped at the end. Returns each cell's seconds and how long
        the window really was.
        """
        self.run("%dora_start")
        time.sleep(1.0)  # warm-up
        self.bytes = self.messages = 0
        self.counting = True
        began = time.monotonic()
        cells = []
        while time.monotonic() - began < seconds:
            cells.append(self.run("1 + 1")[0])
            time.sleep(0.05)
        elapsed = time.monotonic() - began
        self.counting = False
        self.run("%dora_stop")
        return cells, elapsed

    def process(self) -> psutil.Process:
        """The kernel's own process."""
        for child in psutil.Process().children(recursive=True):
            if self.manager.connection_file in " ".join(child.cmdline()):
                return child
        raise RuntimeError("kernel process not found")

    def close(self) -> None:
        self._stop.set()
        self._reader.join(2)
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)
