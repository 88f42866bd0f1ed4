"""Run a command in a session of its own, so that exactly its processes can be found
and killed afterwards (dora gives each node a process group of its own, but they all
stay in the session)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class Finished:
    """How a command ended: ``returncode`` is None when it timed out and was killed."""

    returncode: int | None
    console: str
    leftovers: list[int]


def session_processes(session: int) -> list[psutil.Process]:
    """Live processes of ``session``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == session and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def kill_session(session: int) -> list[int]:
    """Kill what is left of ``session``; return the pids that were left."""
    left = session_processes(session)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(left, timeout=3)
    return [p.pid for p in left]


def run_in_session(
    command: Sequence[str], folder: Path, env: Mapping[str, str], timeout: float
) -> Finished:
    """Run ``command`` in ``folder``; stdout and stderr together are the console."""
    proc = subprocess.Popen(
        list(command),
        cwd=folder,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        console, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(proc.pid)
        console, _ = proc.communicate()
        return Finished(None, console, [])
    return Finished(proc.returncode, console, kill_session(proc.pid))
