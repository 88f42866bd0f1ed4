"""Run a benchmark dataflow on real dora-rs: ``dora run`` of a generated descriptor.

Every stage becomes a Python file next to a ``dataflow.yml`` in the run's
folder. ``dora run`` is bounded twice: by ``--stop-after`` and by a hard
timeout after which its whole process session is killed. After each run
any process still in that session, or still working in the run's folder,
is killed by pid, so no dora process of ours outlives the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from pipelines import Stage

__all__ = ["available", "leftovers", "run"]

#: Seconds ``dora run`` needs to spawn the nodes and tear them down.
_OVERHEAD_S = 5.0
#: Seconds given on top of ``--stop-after`` before the session is killed.
_KILL_GRACE_S = 15.0

#: (session id, folder) of every ``dora run`` started by this process.
_STARTED: list[tuple[int, Path]] = []


def dora_env() -> dict[str, str]:
    """This environment with the interpreter's folder first in PATH: dora spawns ``python``."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env


def dora_cli() -> str | None:
    """The ``dora`` executable nodes will be run with, if installed."""
    return shutil.which("dora", path=dora_env()["PATH"])


def available() -> bool:
    return dora_cli() is not None


def descriptor(stages: list[Stage]) -> dict[str, Any]:
    """The dora-rs descriptor of ``stages``; stage ``X`` runs the file ``X.py``."""
    nodes = []
    for stage in stages:
        inputs = {
            name: {"source": source, "queue_size": stage.queue_size} if stage.queue_size else source
            for name, source in stage.inputs.items()
        }
        entry: dict[str, Any] = {"id": stage.id}
        if stage.kind == "operator":
            entry["operator"] = {
                "python": f"{stage.id}.py",
                "inputs": inputs,
                "outputs": stage.outputs,
            }
        else:
            entry["path"] = f"{stage.id}.py"
            if inputs:
                entry["inputs"] = inputs
            if stage.outputs:
                entry["outputs"] = stage.outputs
        nodes.append(entry)
    return {"nodes": nodes}


def write(stages: list[Stage], folder: Path) -> Path:
    """Write the stages' files and the descriptor into ``folder``; return the descriptor."""
    for stage in stages:
        (folder / f"{stage.id}.py").write_text(stage.code, encoding="utf-8")
    path = folder / "dataflow.yml"
    path.write_text(yaml.safe_dump(descriptor(stages), sort_keys=False), encoding="utf-8")
    return path


def run(stages: list[Stage], folder: Path, expected_s: float) -> None:
    """``dora run`` the stages in ``folder``; the sources send for about ``expected_s`` s.

    Raises if dora failed or had to be stopped; ``dora.log`` in ``folder``
    keeps its output.
    """
    cli = dora_cli()
    if cli is None:
        raise RuntimeError("the dora CLI is not installed")
    path = write(stages, folder)
    stop_after = expected_s + _OVERHEAD_S
    log = folder / "dora.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [cli, "run", str(path), "--stop-after", f"{round(stop_after * 1000)}ms"],
            cwd=folder,
            env=dora_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        _STARTED.append((proc.pid, folder))
        try:
            code = proc.wait(timeout=stop_after + _KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            kill_leftovers(proc.pid, folder)
            proc.wait()
    if code is None:
        raise RuntimeError(
            f"dora run was killed after {stop_after + _KILL_GRACE_S:.0f} s{_log_tail(log)}"
        )
    if code != 0:
        raise RuntimeError(f"dora run exited with {code}{_log_tail(log)}")


def _log_tail(log: Path, lines: int = 8) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n  " + "\n  ".join(text[-lines:]) if text else ""


def _live_session(pid: int) -> int | None:
    """The session id of process ``pid``; None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command: state ppid pgrp session ...
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] in ("Z", "X") else int(fields[3])


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def leftover_pids(session: int, folder: Path) -> list[int]:
    """Live processes of ``session`` or working in ``folder`` (never this process)."""
    me = os.getpid()
    folder = folder.resolve()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        live = _live_session(pid)
        if live is None:
            continue
        cwd = _cwd(pid)
        if live == session or (cwd is not None and Path(cwd) == folder):
            pids.append(pid)
    return pids


def leftovers() -> list[int]:
    """Pids of processes of any ``dora run`` of this process that are still alive."""
    return sorted({pid for session, folder in _STARTED for pid in leftover_pids(session, folder)})


def kill_leftovers(session: int, folder: Path) -> None:
    """SIGTERM, then SIGKILL, every process that this run left behind."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = leftover_pids(session, folder)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and leftover_pids(session, folder):
            time.sleep(0.05)
