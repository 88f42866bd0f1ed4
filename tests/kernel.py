"""One class owns the boundary to a real ipykernel: run cells, collect outputs and widget state."""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import re
import signal
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager


@dataclass
class CellResult:
    """What one cell execution produced."""

    status: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """All stream text and text/plain of the cell's outputs, joined."""
        parts = []
        for out in self.outputs:
            if out["msg_type"] == "stream":
                parts.append(out["content"]["text"])
            elif out["msg_type"] in ("display_data", "execute_result"):
                parts.append(out["content"]["data"].get("text/plain", "") + "\n")
        return "".join(parts)

    def widget_ids(self) -> list[str]:
        """Model ids of the widgets the cell displayed."""
        return [
            out["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
            for out in self.outputs
            if out["msg_type"] in ("display_data", "execute_result")
            and "application/vnd.jupyter.widget-view+json" in out["content"]["data"]
        ]


class Kernel:
    """A real ipykernel (this interpreter) driven through jupyter_client.

    Widget models are rebuilt from the comm messages the kernel sends, so
    tests assert on what a frontend would show. Every comm message is kept
    with its arrival time in :attr:`comm_log`.
    """

    def __init__(self) -> None:
        # ipykernel's built-in "python3" spec runs this very interpreter.
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel()
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.models: dict[str, dict[str, Any]] = {}
        self.comm_log: list[tuple[float, str, dict[str, Any]]] = []
        self.other: list[dict[str, Any]] = []
        self._arm_stack_dump()

    def _arm_stack_dump(self) -> None:
        """Make SIGUSR1 write every kernel thread's Python stack to a file.

        A cell that never finishes is a deadlock or a busy thread in the kernel;
        the stacks say which, where a bare timeout says nothing. faulthandler
        writes them from the signal handler, without the GIL, so a deadlocked
        kernel still answers. The cell is silent: no execution count, no history.
        """
        fd, self._stack_file = tempfile.mkstemp(prefix="kernel-stacks-", suffix=".txt")
        os.close(fd)
        self._armed_pid = getattr(self.manager.provisioner, "pid", None)
        msg_id = self.client.execute(
            "__import__('faulthandler').register(__import__('signal').SIGUSR1, "
            f"file=open({self._stack_file!r}, 'w'), all_threads=True)",
            silent=True,
        )
        self.reply(msg_id, timeout=60)

    def reply(self, msg_id: str, timeout: float) -> dict[str, Any]:
        """The shell reply to request ``msg_id``, skipping replies to earlier requests.

        A kernel slow to start (under load) gets a second ``kernel_info_request``
        from ``wait_for_ready`` and answers both: the extra reply would
        otherwise be taken for the next request's, and every reply after it
        for the one before.
        """
        deadline = time.monotonic() + timeout
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def stacks(self) -> str:
        """Every kernel thread's Python stack, now (for a timeout's message)."""
        pid = getattr(self.manager.provisioner, "pid", None)
        if pid is None:
            return "(no kernel process to ask for its stacks)"
        if pid != self._armed_pid:  # restarted: SIGUSR1 would end it, not dump it
            return "(the kernel was restarted since it was asked to dump its stacks)"
        os.kill(pid, signal.SIGUSR1)
        # The handler writes in the kernel process: the dump is whole once the
        # file has stopped growing (a few hundred microseconds after the signal).
        deadline = time.monotonic() + 5
        text, size = "", -1
        while time.monotonic() < deadline:
            time.sleep(0.1)
            with open(self._stack_file) as f:
                text = f.read()
            if text and len(text) == size:
                break
            size = len(text)
        return text or "(the kernel wrote no stacks within 5 s)"

    def execute(self, code: str, timeout: float = 60, allow_error: bool = False) -> CellResult:
        msg_id = self.client.execute(code)
        result = CellResult(status="unknown")
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"cell did not finish within {timeout} s:\n{code}\n"
                    f"kernel threads now:\n{self.stacks()}"
                )
            try:
                msg = self.client.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            self._absorb(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                break
            if kind in ("stream", "display_data", "execute_result"):
                result.outputs.append(msg)
            elif kind == "error":
                result.error = msg["content"]
        reply = self.reply(msg_id, timeout=timeout)
        result.status = reply["content"]["status"]
        if result.error is not None and not allow_error:
            raise AssertionError("cell failed:\n" + "\n".join(result.error["traceback"]))
        return result

    def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Absorb iopub messages (widget updates from background threads) until ``predicate()``.

        What a cell's code drew before it ended needs no waiting: :meth:`execute`
        returns after the cell's ``idle``, and iopub keeps the kernel's order.
        """
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out waiting for {what}\nkernel threads now:\n{self.stacks()}"
                )
            with contextlib.suppress(queue.Empty):
                self._absorb(self.client.get_iopub_msg(timeout=remaining))

    def dora_threads(self) -> str:
        """The names of the dora threads alive in the kernel, as printed there."""
        return self.execute(
            "import threading; print(sorted(t.name for t in threading.enumerate() "
            "if t.name.startswith('dora')))"
        ).text.strip()

    def received(self, node_id: str) -> int:
        """How many messages the newest panel of ``node_id`` says it received (0 without one)."""
        pattern = re.compile(rf"<b>{re.escape(node_id)}</b>.*?(\d+) received")
        counts = [
            int(found.group(1))
            for model in self.models.values()
            if (found := pattern.search(str(model.get("value", ""))))
        ]
        return counts[-1] if counts else 0

    def _absorb(self, msg: dict[str, Any]) -> None:
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "comm_open":
            state = _with_buffers(msg)
            self.models[content["comm_id"]] = dict(state)
            self.comm_log.append((time.monotonic(), content["comm_id"], dict(state)))
        elif kind == "comm_msg":
            data = content["data"]
            if data.get("method") == "update":
                state = _with_buffers(msg)
                self.models.setdefault(content["comm_id"], {}).update(state)
                self.comm_log.append((time.monotonic(), content["comm_id"], state))
        elif kind not in ("status", "execute_input"):
            self.other.append(msg)

    def model(self, model_id: str) -> dict[str, Any]:
        return self.models[model_id]

    def child_ids(self, model_id: str) -> list[str]:
        """Model ids of a box's children (references are 'IPY_MODEL_<id>')."""
        return [c.removeprefix("IPY_MODEL_") for c in self.models[model_id].get("children", [])]

    def log_id(self, panel_id: str) -> str:
        """Model id of a node panel's log view (in the box with its level filter)."""
        return self.child_ids(self.child_ids(panel_id)[3])[1]

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)
        with contextlib.suppress(OSError):
            os.unlink(self._stack_file)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _with_buffers(msg: dict[str, Any]) -> dict[str, Any]:
    """A comm message's widget state with its binary buffers put back, as ``bytes``,
    where its ``buffer_paths`` say (as a frontend does)."""
    data = msg["content"]["data"]
    state = dict(data.get("state", {}))
    for path, buffer in zip(data.get("buffer_paths", []), msg.get("buffers", []), strict=True):
        target: Any = state
        for key in path[:-1]:
            target[key] = copy.copy(target[key])  # the message's own dicts stay as they came
            target = target[key]
        target[path[-1]] = bytes(buffer)
    return state


def define(kernel: Kernel, magic: str, body: str) -> CellResult:
    """Run a definition cell: the magic line, then ``body`` dedented."""
    return kernel.execute(f"{magic}\n{textwrap.dedent(body)}")
