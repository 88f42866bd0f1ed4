"""The dora-rs processes of a run: finding the CLI, their environment, ending them.

Every process the dora engine starts is the leader of a session of its own,
so :func:`end_session` can end exactly what one run started, its children
included (dora's daemon spawns the nodes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import DataflowError
from .shim import INPUTS_ENV, READY_ENV, REPORTS_ENV, TOKEN_ENV

__all__ = ["child_env", "dora_cli", "end_session", "error_text", "free_port", "session_pids"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dora_cli() -> str:
    """The ``dora`` command: next to this Python first, then on PATH."""
    here = Path(sys.executable).parent / "dora"
    found = str(here) if here.is_file() else shutil.which("dora")
    if found is None:
        raise DataflowError(
            "the dora engine needs the dora CLI (dora-rs-cli): pip install 'dora-notebook[dora]'"
        )
    return found


def child_env(folder: Path | None = None) -> dict[str, str]:
    """The environment of dora's processes: this Python and this dora-notebook first.

    With ``folder`` (the run's private folder), what dora-rs writes outside
    its working folder goes inside ``folder`` instead: its coordinator makes
    ``$TMPDIR/dora-artifacts-<uuid>`` and its daemon runs ``uv python find``,
    which fills uv's cache (``~/.cache/uv``). The nodes inherit both, so their
    temporary files are removed with the folder too.
    """
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [package_root, env.get("PYTHONPATH", "")] if p)
    env["NO_COLOR"] = "1"
    env["RUST_BACKTRACE"] = "0"
    # A kernel started from inside a node must not hand that run's settings on.
    for name in (REPORTS_ENV, READY_ENV, INPUTS_ENV, TOKEN_ENV):
        env.pop(name, None)
    if folder is not None:
        tmp = folder / "tmp"
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(tmp)
        env["UV_CACHE_DIR"] = str(folder / "uv-cache")
    return env


def session_pids(session: int) -> list[int]:
    """Live processes of ``session`` (Linux /proc; empty elsewhere)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        with contextlib.suppress(OSError):
            if os.getsid(pid) == session and pid != os.getpid():
                pids.append(pid)
    return pids


def end_session(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM ``proc`` (a session leader), then SIGKILL whatever is left of its session."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    for pid in session_pids(proc.pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    deadline = time.monotonic() + grace
    while session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def error_text(output: str) -> str:
    """The gist of a dora CLI error: its first meaningful lines, without locations."""
    lines = []
    for line in output.splitlines():
        text = line.strip()
        if not text or text == "[ERROR]":
            continue
        if text.startswith(("Location:", "Stack backtrace:")):
            break
        lines.append(text)
    return " ".join(lines[:6]) or "no output"
