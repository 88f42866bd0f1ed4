"""Start-up: how soon a graph's first message reaches its sink, from a notebook and in ``dora run``.

One small graph, three cells as a user writes them: ``%%dora_node src`` sends
on every tick of a 10 ms timer, ``%%dora_operator op`` forwards, and
``%%dora_node sink`` writes the ``time.monotonic()`` of its first message
into a file (CLOCK_MONOTONIC: one clock for every process on Linux). A
start is timed from just before the kernel is asked to run the start cell
to that first message at the sink:

* ``%dora_start --engine dora`` in a fresh kernel (cold: the kernel has not
  loaded the dora engine yet, and the OS caches are as the previous run left
  them), then again in the same kernel (warm), ``%dora_stop`` after each;
* ``%dora_start`` (the embedded engine), for scale;
* plain ``dora run`` of the folder ``%dora_export`` wrote from the same
  cells, started by this script: dora-rs's own start-up, no kernel, no
  coordinator, no bridge;
* ``dora run`` of the same graph written as plain dora-rs nodes, without
  dora-notebook in them (the operator calls ``send_output``): dora-rs's floor
  on this machine, alternated with the export's runs.

``%dora_stop`` is timed too (cell sent to kernel idle). Each dora engine
start also says when its nodes were spawned and when the bridge joined (the
files the engine keeps, read before the stop removes them).

    python bench/startup.py               # 5 warm starts, 5 dora runs
    python bench/startup.py --repeats 2   # smoke run

See bench/README.md ("Start-up").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

if __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_dora import dora_cli, dora_env, kill_leftovers
from kernel_session import KernelSession

__all__ = ["Startups", "cells", "main", "measure"]

SOURCE = """import time
import pyarrow as pa
from dora import Node

node = Node()
for event in node:
    if event["type"] == "INPUT":
        node.send_output("x", pa.array([time.monotonic()]))
"""

OPERATOR = """class Operator:
    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            context.output(dora_event["value"], "y")
"""

SINK = """import time
from dora import Node

first = None
for event in Node():
    if event["type"] == "INPUT" and first is None:
        first = time.monotonic()
        with open({path!r}, "a") as out:
            out.write(f"{{first}}\\n")
"""


PLAIN_OPERATOR = """from dora import DoraStatus


class Operator:
    def on_event(self, dora_event, send_output):
        if dora_event["type"] == "INPUT":
            send_output("y", dora_event["value"], dora_event["metadata"])
        return DoraStatus.CONTINUE
"""

PLAIN_DESCRIPTOR = """nodes:
  - id: src
    path: src.py
    inputs: {tick: dora/timer/millis/10}
    outputs: [x]
  - id: op
    operator:
      python: op.py
      inputs: {x: src/x}
      outputs: [y]
  - id: sink
    path: sink.py
    inputs: {y: op/y}
"""


def plain_folder(folder: Path, first: Path) -> Path:
    """The same graph as plain dora-rs files, no dora-notebook in them: dora-rs's floor."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "src.py").write_text(SOURCE, encoding="utf-8")
    (folder / "op.py").write_text(PLAIN_OPERATOR, encoding="utf-8")
    (folder / "sink.py").write_text(SINK.format(path=str(first)), encoding="utf-8")
    (folder / "dataflow.yml").write_text(PLAIN_DESCRIPTOR, encoding="utf-8")
    return folder


def cells(first: Path) -> list[str]:
    """The three cells; the sink appends its first message's time to ``first``."""
    return [
        f"%%dora_node src --inputs tick=dora/timer/millis/10 --outputs x\n{SOURCE}",
        f"%%dora_operator op --inputs x=src/x --outputs y\n{OPERATOR}",
        f"%%dora_node sink --inputs y=op/y\n{SINK.format(path=str(first))}",
    ]


@dataclass
class Startups:
    """Seconds from the start command to the sink's first message, per kind of start."""

    dora_cold: list[float] = field(default_factory=list)
    dora_warm: list[float] = field(default_factory=list)
    embedded: list[float] = field(default_factory=list)
    dora_run: list[float] = field(default_factory=list)
    #: ``dora run`` of the same graph written as plain dora-rs nodes (no dora-notebook).
    dora_run_plain: list[float] = field(default_factory=list)
    dora_stop: list[float] = field(default_factory=list)
    #: Per dora engine start: [spawned, bridge joined] seconds after the start command.
    dora_phases: list[list[float | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Processes seen under this one during the runs that were still alive at the end.
    left_running: list[str] = field(default_factory=list)


class _Seen:
    """Every process seen under this one (sampled at each step): none may outlive the runs."""

    def __init__(self) -> None:
        self.procs: dict[int, psutil.Process] = {}

    def sample(self) -> None:
        for proc in psutil.Process().children(recursive=True):
            self.procs.setdefault(proc.pid, proc)

    def alive(self) -> list[str]:
        left = []
        for proc in self.procs.values():
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{proc.pid} {' '.join(proc.cmdline())[:80]}")
        return left


def _first_after(path: Path, began: float, timeout: float) -> float | None:
    """Seconds from ``began`` to the first time written to ``path`` (None if none came)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text(encoding="utf-8").split()
            if text:
                return float(text[0]) - began
        time.sleep(0.002)
    return None


# Run in the kernel while the dora engine runs: when its nodes were spawned
# and the bridge joined (the ready file), as monotonic times.
PHASES = """
import json, os, psutil, time
from dora_notebook import current
_eng = current().engine
_folder = _eng.folder
_ready = _folder / "bridge-ready" if _folder else None
def _boot(p):
    return p.create_time() - time.time() + time.monotonic()
_spawned = [_boot(p) for p in psutil.Process().children(recursive=True)
            if any(a.endswith(('src.py', 'sink.py')) for a in p.cmdline())]
_joined = None
if _ready and _ready.exists():
    _joined = os.stat(_ready).st_mtime - time.time() + time.monotonic()
print(json.dumps([min(_spawned) if _spawned else None, _joined]))
"""


def _run_cell(kernel: KernelSession, code: str, timeout: float = 60) -> str:
    _, printed = kernel.run(code, timeout)
    reply = kernel.client.get_shell_msg(timeout=30)
    if reply["content"].get("status") != "ok":
        content = reply["content"]
        raise RuntimeError(
            f"{code.splitlines()[0]}: {content.get('ename')}: {content.get('evalue')}"
        )
    return printed


def _in_kernel(
    kernel: KernelSession,
    start: str,
    first: Path,
    into: list[float],
    out: Startups,
    seen: _Seen,
) -> None:
    first.unlink(missing_ok=True)
    began = time.monotonic()
    _run_cell(kernel, start)
    seconds = _first_after(first, began, timeout=30)
    seen.sample()
    if seconds is None:
        out.errors.append(f"{start}: no message reached the sink within 30 s")
    else:
        into.append(seconds)
    if "--engine dora" in start:
        try:
            phases = json.loads(_run_cell(kernel, PHASES).strip().splitlines()[-1])
            out.dora_phases.append([None if t is None else t - began for t in phases])
        except (RuntimeError, ValueError, IndexError) as exc:
            out.errors.append(f"phases: {exc}")
        stop_began = time.perf_counter()
        _run_cell(kernel, "%dora_stop")
        out.dora_stop.append(time.perf_counter() - stop_began)
    else:
        _run_cell(kernel, "%dora_stop")


def _dora_run(
    folder: Path, first: Path, out: Startups, seen: _Seen, into: list[float] | None = None
) -> None:
    cli = dora_cli()
    if cli is None:
        out.errors.append("the dora CLI is not installed")
        return
    env = dora_env()
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [root, env.get("PYTHONPATH", "")] if p)
    first.unlink(missing_ok=True)
    with (folder / "dora.log").open("wb") as log:
        began = time.monotonic()
        proc = subprocess.Popen(
            [cli, "run", str(folder / "dataflow.yml"), "--stop-after", "20s"],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        seconds = _first_after(first, began, timeout=30)
        seen.sample()
        kill_leftovers(proc.pid, folder)
        proc.wait()
    if seconds is None:
        out.errors.append(f"dora run {folder.name}: no message reached the sink within 30 s")
    else:
        (out.dora_run if into is None else into).append(seconds)


def measure(repeats: int, progress: Callable[[str], None] = print) -> Startups:
    """Cold and ``repeats`` warm dora engine starts, embedded starts, and ``dora run`` starts."""
    out = Startups()
    seen = _Seen()
    with tempfile.TemporaryDirectory(prefix="dora-notebook-startup-") as tmp:
        first = Path(tmp) / "first.txt"
        export = Path(tmp) / "export"
        with KernelSession() as kernel:
            kernel.counting = False
            _run_cell(kernel, "%load_ext dora_notebook")
            for cell in cells(first):
                _run_cell(kernel, cell)
            if dora_cli() is not None:
                progress("dora engine, cold")
                start = "%dora_start --engine dora"
                _in_kernel(kernel, start, first, out.dora_cold, out, seen)
                for index in range(repeats):
                    progress(f"dora engine, warm {index + 1}/{repeats}")
                    _in_kernel(kernel, start, first, out.dora_warm, out, seen)
            for index in range(repeats):
                progress(f"embedded {index + 1}/{repeats}")
                _in_kernel(kernel, "%dora_start", first, out.embedded, out, seen)
            _run_cell(kernel, f"%dora_export {export}")
        if dora_cli() is not None:
            plain = plain_folder(Path(tmp) / "plain", first)
            for index in range(repeats):  # alternated: the two see the same load
                progress(f"dora run {index + 1}/{repeats}: the export, then plain nodes")
                _dora_run(export, first, out, seen)
                _dora_run(plain, first, out, seen, out.dora_run_plain)
    out.left_running = seen.alive()
    return out


def _row(label: str, values: Sequence[float]) -> str:
    if not values:
        return f"{label:34s} {'-':>8s}"
    return (
        f"{label:34s} {statistics.median(values):8.3f} {min(values):8.3f} "
        f"{max(values):8.3f} {len(values):4d}"
    )


def table(out: Startups) -> str:
    """The figures, seconds: median, min, max, how many."""
    lines = [
        f"{'first message at the sink after':34s} {'median':>8s} {'min':>8s} {'max':>8s} {'n':>4s}"
    ]
    lines.append(_row("%dora_start --engine dora, cold", out.dora_cold))
    lines.append(_row("%dora_start --engine dora, warm", out.dora_warm))
    lines.append(_row("dora run (its own start-up)", out.dora_run))
    lines.append(_row("dora run, plain dora-rs nodes", out.dora_run_plain))
    lines.append(_row("%dora_start (embedded)", out.embedded))
    lines.append(_row("%dora_stop --engine dora (cell)", out.dora_stop))
    spawned = [p[0] for p in out.dora_phases if p[0] is not None]
    joined = [p[1] for p in out.dora_phases if p[1] is not None]
    lines.append(_row("  dora engine: nodes spawned", spawned))
    lines.append(_row("  dora engine: bridge joined", joined))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="warm starts and dora runs")
    parser.add_argument("--out", type=Path, help="write the raw figures here as JSON")
    args = parser.parse_args(argv)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load {load}", flush=True)
    out = measure(args.repeats, progress=lambda text: print(f"  {text}", flush=True))
    print(table(out))
    for error in out.errors:
        print(f"ERROR: {error}")
    if out.left_running:
        print(f"WARNING: processes still running: {out.left_running}")
    if args.out:
        args.out.write_text(json.dumps(asdict(out), indent=1), encoding="utf-8")
    return 1 if out.errors or out.left_running else 0


if __name__ == "__main__":
    sys.exit(main())
