"""One graph, both engines, driven from a notebook kernel: embedded vs dora vs plain ``dora run``.

A real ipykernel (:class:`~kernel_session.KernelSession`) gets three cells,
``%%dora_node src``, ``%%dora_operator op`` and ``%%dora_node sink``
(``src -> op -> sink``), then runs that very graph three times:

1. ``%dora_start --wait``: the embedded engine, in the kernel;
2. ``%dora_start --engine dora --wait``: on dora-rs, with a loopback
   coordinator and daemon and the kernel's bridge node feeding the panels;
3. ``dora run`` of the folder ``%dora_export`` wrote: dora-rs alone, no
   kernel in the loop (started by this script, not by the kernel).

Then :mod:`startup` times how soon a small graph's first message reaches
its sink after ``%dora_start --engine dora`` (cold and warm), ``%dora_start``
and ``dora run``.

The source sends phases one after the other: paced 8 B, 4 KB and 4 MB
``UInt8Array`` payloads for latency, then two bursts of 8 B messages for
throughput, the second with the operator printing one line per message (a
log report per message: on the dora engine, one more dora message to the
kernel's bridge each). Each message carries its send time
(``time.monotonic_ns()``: CLOCK_MONOTONIC, one clock for every process on
Linux) in its metadata; the operator stamps its receive time, the sink notes
its own, and source and sink write JSON records into a temporary folder whose
path is part of the cells' source. After each phase the source waits until
the sink has seen the phase's last message, so no phase queues behind the
previous one.

    python bench/engines_notebook.py              # full run, about 70 s
    python bench/engines_notebook.py --quick      # smoke run, about 15 s
    python -m bench.engines_notebook --out raw.json

See bench/README.md ("Both engines from a notebook kernel").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__:
    # ``python -m bench.engines_notebook``: the bench modules import each other as
    # top-level modules (see bench/README.md), so their folder must be on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
import startup
from common import KIB, MIB, percentile, size_label
from engine_dora import dora_cli, dora_env, kill_leftovers
from kernel_session import KernelSession
from pipelines import render

__all__ = ["Phase", "Plan", "RunResult", "main", "measure"]

EMBEDDED, DORA_ENGINE, DORA_RUN = "embedded", "dora engine", "dora run"
ENGINES = (EMBEDDED, DORA_ENGINE, DORA_RUN)


@dataclass(frozen=True)
class Phase:
    """Messages the source sends in one go: ``count`` of ``size`` bytes, ``pace_s`` apart.

    ``kind`` is ``warmup`` (not reported), ``latency`` (paced) or ``burst``
    (as fast as the source can, for throughput); ``log`` makes the operator
    print a line for every message of the phase.
    """

    name: str
    kind: str
    size: int
    count: int
    pace_s: float
    log: bool = False

    @property
    def duration_s(self) -> float:
        return self.count * self.pace_s


@dataclass(frozen=True)
class Plan:
    """The phases of one run and the bounds around them."""

    phases: tuple[Phase, ...]
    #: The source's pause after ``Node()``: real dora-rs drops what is sent
    #: before every node is connected.
    delay_s: float = 0.5
    #: How long the source waits, at most, for the sink to see a phase's last
    #: message (dora-rs may drop it in a burst).
    drain_s: float = 20.0
    #: The source's pause between phases, once the sink has caught up.
    settle_s: float = 0.1

    @property
    def total(self) -> int:
        return sum(phase.count for phase in self.phases)

    @property
    def bound_s(self) -> float:
        """A generous bound of a whole run: sending, draining, dora-rs's start and stop."""
        per_phase = sum(phase.duration_s + self.settle_s + self.drain_s for phase in self.phases)
        return self.delay_s + per_phase + 60.0


# The paces follow run.py's dora-rs plans (5 ms up to 4 KB, 50 ms at 4 MB): even
# dora-rs's slowest hop is idle when the next message comes, so latency is not
# queueing. The 0.5 s delay and the warm-up cover dora-rs's slow first messages.
FULL = Plan(
    (
        Phase("warm-up", "warmup", 8, 100, 0.005),
        Phase("8 B", "latency", 8, 300, 0.005),
        Phase("4 KB", "latency", 4 * KIB, 300, 0.005),
        Phase("4 MB", "latency", 4 * MIB, 100, 0.050),
        Phase("burst", "burst", 8, 20_000, 0.0),
        Phase("burst + log line", "burst", 8, 20_000, 0.0, log=True),
    )
)
QUICK = Plan(
    (
        Phase("warm-up", "warmup", 8, 50, 0.005),
        Phase("8 B", "latency", 8, 40, 0.005),
        Phase("4 KB", "latency", 4 * KIB, 40, 0.005),
        Phase("4 MB", "latency", 4 * MIB, 10, 0.050),
        Phase("burst", "burst", 8, 2_000, 0.0),
        Phase("burst + log line", "burst", 8, 2_000, 0.0, log=True),
    ),
    drain_s=10.0,
)

# -- the cells ------------------------------------------------------------------------
# The node code is filled in by pipelines.render: its "# <params>" line becomes
# NAME = value assignments, so all three runs execute the very same text.

SOURCE = '''"""Benchmark source: the phases in order, each message stamped with its send time."""

import json
import os
import time

import numpy as np
import pyarrow as pa
from dora import Node

# <params>


def wait_drained(number):
    """Until the sink has seen phase ``number``'s last message (bounded)."""
    marker = os.path.join(RESULTS, f"drained-{number}")
    deadline = time.monotonic() + DRAIN_S
    while not os.path.exists(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def main():
    node = Node()
    ready = time.monotonic_ns()
    time.sleep(DELAY_S)
    records = []
    index = 0
    for number, (size, count, pace, log) in enumerate(PHASES):
        payload = pa.array(np.zeros(size, np.uint8))
        first = time.monotonic_ns()
        for _ in range(count):
            meta = {"t": time.monotonic_ns(), "i": index, "p": number, "log": log}
            node.send_output("out", payload, meta)
            index += 1
            if pace:
                time.sleep(pace)
        last = time.monotonic_ns()
        drained = wait_drained(number)
        records.append(
            {"sent": count, "first_send_ns": first, "last_send_ns": last, "drained": drained}
        )
        time.sleep(SETTLE_S)
    with open(os.path.join(RESULTS, "source.json"), "w") as file:
        json.dump({"ready_ns": ready, "end_ns": time.monotonic_ns(), "phases": records}, file)


if __name__ == "__main__":
    main()
'''

OPERATOR = '''"""Benchmark operator: stamp the receive time, forward the value, report progress."""

import time

from dora import DoraStatus

# <params>


class Operator:
    def __init__(self):
        self.n = 0

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            metadata = dora_event["metadata"]
            metadata["t_op"] = time.monotonic_ns()
            context.send_output("out", dora_event["value"], metadata)
            self.n += 1
            context.report_progress(100 * self.n / TOTAL)
            if metadata["log"]:
                print("message", metadata["i"])
        return DoraStatus.CONTINUE
'''

SINK = '''"""Benchmark sink: note when each message arrives, per phase."""

import json
import os
import time

from dora import Node

# <params>


def main():
    node = Node()
    phases = [
        {"received": 0, "first_recv_ns": 0, "last_recv_ns": 0, "latencies_ns": [], "hop_ns": []}
        for _ in LAST
    ]
    seen = [set() for _ in LAST]
    for event in node:
        if event["type"] != "INPUT":
            continue
        now = time.monotonic_ns()
        meta = event["metadata"]
        number = meta["p"]
        phase = phases[number]
        phase["received"] += 1
        phase["first_recv_ns"] = phase["first_recv_ns"] or now
        phase["last_recv_ns"] = now
        phase["latencies_ns"].append(now - meta["t"])
        phase["hop_ns"].append(meta["t_op"] - meta["t"])
        seen[number].add(meta["i"])
        if meta["i"] == LAST[number]:
            open(os.path.join(RESULTS, f"drained-{number}"), "w").close()
            print(f"phase {number}: {phase['received']} received")
    for number, phase in enumerate(phases):
        # Where in the phase messages went missing: the first few positions.
        first = LAST[number - 1] + 1 if number else 0
        missing = sorted(set(range(first, LAST[number] + 1)) - seen[number])
        phase["missing"] = [i - first for i in missing[:MISSING_SHOWN]]
    with open(os.path.join(RESULTS, "sink.json"), "w") as file:
        json.dump({"end_ns": time.monotonic_ns(), "phases": phases}, file)


if __name__ == "__main__":
    main()
'''


def cells(plan: Plan, results: Path) -> list[str]:
    """The three definition cells of the benchmark graph, magic line first."""
    # Every queue holds a whole run: a drop is the engine's, not a full queue's.
    queue_arg = f"--queue-size {plan.total + 10}"
    last, index = [], -1
    for phase in plan.phases:
        index += phase.count
        last.append(index)
    source = render(
        SOURCE,
        RESULTS=str(results),
        PHASES=[(p.size, p.count, p.pace_s, int(p.log)) for p in plan.phases],
        DELAY_S=plan.delay_s,
        DRAIN_S=plan.drain_s,
        SETTLE_S=plan.settle_s,
    )
    operator = render(OPERATOR, TOTAL=plan.total)
    sink = render(SINK, RESULTS=str(results), LAST=last, MISSING_SHOWN=10)
    return [
        f"%%dora_node src --outputs out\n{source}",
        f"%%dora_operator op --inputs in=src/out --outputs out {queue_arg}\n{operator}",
        f"%%dora_node sink --inputs in=op/out {queue_arg}\n{sink}",
    ]


# Counts every report the kernel's dataflow publishes (what feeds the panels), by kind.
SUBSCRIBE = """
import collections, json, threading
import dora_notebook
_bench_lock = threading.Lock()
_bench_reports = collections.Counter()
def _bench_count(report):
    with _bench_lock:
        _bench_reports[report.kind] += 1
_bench_unsubscribe = dora_notebook.current().subscribe(_bench_count)
"""

RESET = "with _bench_lock:\n    _bench_reports.clear()"

STATUS = """
_bench_flow = dora_notebook.current()
print(json.dumps({
    "nodes": {
        spec.id: {
            "status": (s := _bench_flow.node(spec.id)).status,
            "received": s.received,
            "sent": s.sent,
            "error": s.error,
        }
        for spec in _bench_flow.graph
    },
    "reports": dict(_bench_reports),
    "bridge_messages": getattr(_bench_flow.engine, "messages", None),
}))
"""

# -- results --------------------------------------------------------------------------


@dataclass
class PhaseResult:
    """What one phase of one run measured; latencies in microseconds."""

    name: str
    kind: str
    size: int
    sent: int
    received: int
    drained: bool
    #: End to end, src -> op -> sink (two hops).
    p50_us: float | None = None
    p95_us: float | None = None
    #: The first hop alone, src -> op (custom node to operator).
    hop_p50_us: float | None = None
    hop_p95_us: float | None = None
    #: Messages received per second, first send to last receive (bursts).
    rate: float | None = None
    #: How fast the source got the burst out.
    send_rate: float | None = None
    #: Positions in the phase (0 = its first message) of the first lost messages.
    missing: list[int] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.received)


@dataclass
class RunResult:
    """One run of the graph on one engine."""

    engine: str
    phases: list[PhaseResult] = field(default_factory=list)
    #: Command issued -> command done, as this script saw it (for the kernel
    #: runs: the ``%dora_start --wait`` cell, from execute request to idle).
    wall_s: float | None = None
    #: Command issued -> the source's ``Node()`` returned.
    startup_s: float | None = None
    #: The source's ``Node()`` -> the sink's last record.
    graph_s: float | None = None
    #: The sink's last record -> command done.
    shutdown_s: float | None = None
    #: Reports the kernel's dataflow published during the run, by kind.
    reports: dict[str, int] | None = None
    #: dora messages the kernel's bridge node received (dora engine only).
    bridge_messages: int | None = None
    #: iopub messages the kernel sent during the run (panels, the summary).
    iopub_messages: int | None = None
    nodes: dict[str, Any] | None = None
    error: str | None = None

    def phase(self, name: str) -> PhaseResult | None:
        return next((p for p in self.phases if p.name == name), None)

    @property
    def ok(self) -> bool:
        return self.error is None


def _us(values_ns: list[int]) -> tuple[float | None, float | None]:
    if not values_ns:
        return None, None
    values = [v / 1000 for v in values_ns]
    return statistics.median(values), percentile(values, 0.95)


def read_records(result: RunResult, plan: Plan, folder: Path, began_ns: int, ended_ns: int) -> None:
    """Fill ``result`` from the source's and the sink's records in ``folder``."""
    records = {}
    for name in ("source", "sink"):
        path = folder / f"{name}.json"
        if not path.is_file():
            raise RuntimeError(f"{path.name} was not written (the {name} node did not finish)")
        records[name] = json.loads(path.read_text(encoding="utf-8"))
    source, sink = records["source"], records["sink"]
    result.startup_s = (source["ready_ns"] - began_ns) / 1e9
    result.graph_s = (sink["end_ns"] - source["ready_ns"]) / 1e9
    result.shutdown_s = (ended_ns - sink["end_ns"]) / 1e9
    for phase, sent, got in zip(plan.phases, source["phases"], sink["phases"], strict=True):
        entry = PhaseResult(
            phase.name, phase.kind, phase.size, sent["sent"], got["received"], sent["drained"]
        )
        entry.missing = got["missing"]
        if phase.kind == "latency":
            entry.p50_us, entry.p95_us = _us(got["latencies_ns"])
            entry.hop_p50_us, entry.hop_p95_us = _us(got["hop_ns"])
        elif phase.kind == "burst":
            sending = sent["last_send_ns"] - sent["first_send_ns"]
            if sending > 0:
                entry.send_rate = sent["sent"] / (sending / 1e9)
            elapsed = got["last_recv_ns"] - sent["first_send_ns"]
            if got["received"] and elapsed > 0:
                entry.rate = got["received"] / (elapsed / 1e9)
        result.phases.append(entry)


# -- running --------------------------------------------------------------------------


def _clear(folder: Path) -> None:
    """Remove the records and markers of the previous run."""
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()


def run_cell(kernel: KernelSession, code: str, timeout: float = 120) -> str:
    """Run ``code`` in the kernel; return what it printed; raise if the cell failed.

    The execute reply says whether the cell raised (a magic's UsageError
    included); replies come in order, one per cell, and only this function
    runs cells, so the next reply is this cell's.
    """
    try:
        _, printed = kernel.run(code, timeout)
        reply = kernel.client.get_shell_msg(timeout=30)
    except queue.Empty:
        raise TimeoutError(f"no answer within {timeout:.0f} s: {code.splitlines()[0]}") from None
    content = reply["content"]
    if content.get("status") != "ok":
        raise RuntimeError(
            f"cell failed: {content.get('ename')}: {content.get('evalue')}\n"
            f"{code.splitlines()[0]}\n{printed}"
        )
    return printed


class Descendants:
    """Every process seen under the watched roots while sampling: what must be gone at the end.

    The dora engine starts its coordinator and daemon (and dora starts the
    nodes) from the kernel process; once the kernel has shut down they would
    be orphans that no parent-based check finds, so they are noted while alive.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        self.seen: dict[int, psutil.Process] = {}
        self._roots: list[psutil.Process] = []
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-descendants", daemon=True)

    def __enter__(self) -> Descendants:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def watch(self, root: psutil.Process) -> None:
        self._roots = [*self._roots, root]

    def _sample(self) -> None:
        while not self._stop.wait(self._interval_s):
            for root in self._roots:
                with contextlib.suppress(psutil.Error):
                    for proc in root.children(recursive=True):
                        self.seen.setdefault(proc.pid, proc)

    def alive(self) -> list[int]:
        """Pids seen earlier that still run (same process: psutil checks its start time)."""
        left = []
        for pid, proc in self.seen.items():
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    left.append(pid)
        return sorted(left)


def run_in_kernel(kernel: KernelSession, engine: str, plan: Plan, results: Path) -> RunResult:
    """``%dora_start [--engine dora] --wait`` of the kernel's graph; the run's numbers."""
    result = RunResult(engine)
    _clear(results)
    run_cell(kernel, RESET)
    option = " --engine dora" if engine == DORA_ENGINE else ""
    iopub = kernel.messages
    began = time.monotonic_ns()
    printed = run_cell(
        kernel, f"%dora_start{option} --wait --timeout {plan.bound_s:.0f}", plan.bound_s + 60
    )
    ended = time.monotonic_ns()
    result.wall_s = (ended - began) / 1e9
    result.iopub_messages = kernel.messages - iopub
    status = json.loads(run_cell(kernel, STATUS).strip().splitlines()[-1])
    result.nodes = status["nodes"]
    result.reports = status["reports"]
    result.bridge_messages = status["bridge_messages"]
    failed = {k: v for k, v in result.nodes.items() if v["status"] != "finished"}
    if failed or "stopped after" in printed:
        result.error = f"not every node finished: {failed or printed.strip()}"
        return result
    read_records(result, plan, results, began, ended)
    return result


def _child_env() -> dict[str, str]:
    """The environment of ``dora run``: :func:`dora_env`, with this checkout's dora-notebook.

    The exported node files import ``dora_notebook.dora_rs.shim``.
    """
    env = dora_env()
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [package_root, env.get("PYTHONPATH", "")] if p)
    return env


def run_exported(descriptor: Path, plan: Plan, results: Path, watch: Descendants) -> RunResult:
    """Plain ``dora run`` of the exported folder, started here: no kernel, no bridge."""
    result = RunResult(DORA_RUN)
    cli = dora_cli()
    if cli is None:
        result.error = "the dora CLI is not installed"
        return result
    _clear(results)
    folder = descriptor.parent
    log = folder / "dora.log"
    stop_after = f"{round(plan.bound_s)}s"
    with log.open("wb") as out:
        began = time.monotonic_ns()
        proc = subprocess.Popen(
            [cli, "run", str(descriptor), "--stop-after", stop_after],
            cwd=folder,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with contextlib.suppress(psutil.Error):
            watch.watch(psutil.Process(proc.pid))
        try:
            code = proc.wait(timeout=plan.bound_s + 15)
        except subprocess.TimeoutExpired:
            code = None
        ended = time.monotonic_ns()
        kill_leftovers(proc.pid, folder)
        proc.wait()
    result.wall_s = (ended - began) / 1e9
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-8:]
        result.error = f"dora run exited with {code}: " + " | ".join(tail)
        return result
    read_records(result, plan, results, began, ended)
    return result


def measure(
    plan: Plan, engines: Sequence[str] = ENGINES, log: Callable[[str], None] | None = None
) -> tuple[list[RunResult], list[int]]:
    """Run the graph on each of ``engines``; the results and the pids left running (if any)."""
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    runs: list[RunResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-engines-nb-") as tmp,
        Descendants() as watch,
    ):
        results = Path(tmp) / "results"
        results.mkdir()
        export = Path(tmp) / "export"
        start = time.monotonic()
        with KernelSession() as kernel:
            watch.watch(kernel.process())
            run_cell(kernel, "%load_ext dora_notebook")
            for code in cells(plan, results):
                run_cell(kernel, code)
            run_cell(kernel, SUBSCRIBE)
            run_cell(kernel, f"%dora_export {export}")
            say(f"kernel ready, graph defined and exported: {time.monotonic() - start:.1f} s")
            for engine in (e for e in engines if e != DORA_RUN):
                began = time.monotonic()
                try:
                    runs.append(run_in_kernel(kernel, engine, plan, results))
                except Exception as exc:
                    # The kernel may still be busy with that cell: run nothing more in it.
                    runs.append(RunResult(engine, error=f"{type(exc).__name__}: {exc}"))
                    say(f"{engine}: FAILED: {runs[-1].error}")
                    break
                say(f"{engine}: {time.monotonic() - began:.1f} s, {runs[-1].error or 'ok'}")
        if DORA_RUN in engines:
            began = time.monotonic()
            try:
                runs.append(run_exported(export / "dataflow.yml", plan, results, watch))
            except Exception as exc:
                runs.append(RunResult(DORA_RUN, error=f"{type(exc).__name__}: {exc}"))
            say(f"{DORA_RUN}: {time.monotonic() - began:.1f} s, {runs[-1].error or 'ok'}")
    # The kernel has shut down and every dora run ended: nothing seen may live on.
    deadline = time.monotonic() + 5.0
    while (left := watch.alive()) and time.monotonic() < deadline:
        time.sleep(0.1)
    say(f"processes seen under the kernel and dora run: {len(watch.seen)}, still running: {left}")
    return runs, left


# -- tables ---------------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``3.2x``."""
    if a is None or not b:
        return "-"
    value = a / b
    return f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


def _rate(phase: PhaseResult | None) -> str:
    if phase is None or phase.rate is None:
        return "-"
    return f"{phase.rate:,.0f} ({phase.received}/{phase.sent})"


def _stat(phase: PhaseResult | None, name: str) -> float | None:
    """Field ``name`` of ``phase`` (``p50_us``, ``hop_p95_us``...), if there is a phase."""
    return None if phase is None else getattr(phase, name)


def _lost(*phases: PhaseResult | None) -> str:
    return "/".join("-" if p is None else str(p.lost) for p in phases)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned text table; the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])]
        parts += [text.rjust(width) for text, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _by_engine(runs: Sequence[RunResult]) -> dict[str, RunResult]:
    return {run.engine: run for run in runs if run.ok}


def _phases(runs: Sequence[RunResult], kind: str) -> list[str]:
    names: list[str] = []
    for run in runs:
        names += [p.name for p in run.phases if p.kind == kind and p.name not in names]
    return names


def latency_table(runs: Sequence[RunResult], left: str, right: str) -> str:
    """p50/p95 in microseconds per payload, ``left`` engine against ``right``."""
    by = _by_engine(runs)
    a, b = by.get(left), by.get(right)
    header = [
        "payload / path",
        f"{left} p50",
        "p95",
        f"{right} p50",
        "p95",
        f"{right}/{left}",
        "lost",
    ]
    rows = []
    for name in _phases(runs, "latency"):
        ours = a.phase(name) if a else None
        theirs = b.phase(name) if b else None
        for path, prefix in (("src -> op -> sink", ""), ("src -> op", "hop_")):
            p50, p95 = f"{prefix}p50_us", f"{prefix}p95_us"
            rows.append(
                [
                    f"{name}, {path}",
                    _num(_stat(ours, p50)),
                    _num(_stat(ours, p95)),
                    _num(_stat(theirs, p50)),
                    _num(_stat(theirs, p95)),
                    _ratio(_stat(theirs, p50), _stat(ours, p50)),
                    _lost(ours, theirs) if not prefix else "",
                ]
            )
    return format_table(header, rows)


def throughput_table(runs: Sequence[RunResult], engines: Sequence[str]) -> str:
    """Messages per second through src -> op -> sink in each burst (received/sent)."""
    by = _by_engine(runs)
    header = ["burst (8 B)", *(f"{e} msg/s" for e in engines)]
    if len(engines) == 2:
        header.append(f"{engines[0]}/{engines[1]}")
    rows = []
    for name in _phases(runs, "burst"):
        found = [by[e].phase(name) if e in by else None for e in engines]
        row = [name, *(_rate(c) for c in found)]
        if len(engines) == 2:
            rates = [c.rate if c else None for c in found]
            row.append(_ratio(rates[0], rates[1]))
        rows.append(row)
    return format_table(header, rows)


def _reports(run: RunResult | None) -> str:
    if run is None or run.reports is None:
        return "-"
    return str(sum(run.reports.values()))


def bridge_table(runs: Sequence[RunResult]) -> str:
    """What the bridge adds: ``dora run`` of the export against the dora engine."""
    by = _by_engine(runs)
    plain, bridged = by.get(DORA_RUN), by.get(DORA_ENGINE)
    header = ["", DORA_RUN, DORA_ENGINE, "engine - run"]
    rows = []

    def add(label: str, a: float | None, b: float | None, unit: str, digits: int = 1) -> None:
        delta = None if a is None or b is None else b - a
        sign = "" if delta is None or delta < 0 else "+"
        rows.append(
            [
                label,
                f"{_num(a, digits)} {unit}".strip(),
                f"{_num(b, digits)} {unit}".strip(),
                "-" if delta is None else f"{sign}{delta:,.{digits}f} {unit}".strip(),
            ]
        )

    for name in _phases(runs, "latency"):
        a = plain.phase(name) if plain else None
        b = bridged.phase(name) if bridged else None
        add(f"latency {name} p50", a and a.p50_us, b and b.p50_us, "us")
        add(f"latency {name} p95", a and a.p95_us, b and b.p95_us, "us")
    for name in _phases(runs, "burst"):
        a = plain.phase(name) if plain else None
        b = bridged.phase(name) if bridged else None
        add(f"throughput {name}", a and a.rate, b and b.rate, "msg/s", 0)
    for label, attr in (
        ("wall time", "wall_s"),
        ("  start-up", "startup_s"),
        ("  graph running", "graph_s"),
        ("  shut-down", "shutdown_s"),
    ):
        add(label, plain and getattr(plain, attr), bridged and getattr(bridged, attr), "s", 2)
    lost = [sum(p.lost for p in r.phases) if r else None for r in (plain, bridged)]
    add("messages lost (all phases)", lost[0], lost[1], "", 0)
    reports = sum(bridged.reports.values()) if bridged and bridged.reports else None
    rows.append(["reports to the kernel", "-", _num(reports, 0), ""])
    messages = bridged.bridge_messages if bridged else None
    rows.append(["bridge messages received", "-", _num(messages, 0), ""])
    return format_table(header, rows)


def runs_table(runs: Sequence[RunResult]) -> str:
    """Each run: wall time and its parts, messages, reports and panel traffic."""
    header = [
        "run",
        "wall s",
        "start-up s",
        "graph s",
        "shut-down s",
        "sent",
        "received",
        "reports",
        "bridge msgs",
        "iopub msgs",
    ]
    rows = []
    for run in runs:
        if not run.ok:
            rows.append([run.engine, "FAILED", *[""] * (len(header) - 2)])
            continue
        rows.append(
            [
                run.engine,
                _num(run.wall_s, 2),
                _num(run.startup_s, 2),
                _num(run.graph_s, 2),
                _num(run.shutdown_s, 2),
                str(sum(p.sent for p in run.phases)),
                str(sum(p.received for p in run.phases)),
                _reports(run),
                "-" if run.bridge_messages is None else str(run.bridge_messages),
                "-" if run.iopub_messages is None else str(run.iopub_messages),
            ]
        )
    return format_table(header, rows)


def report_kinds(runs: Sequence[RunResult]) -> str:
    """One line per kernel run: the reports it published, by kind."""
    lines = []
    for run in runs:
        if run.ok and run.reports is not None:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(run.reports.items()))
            lines.append(f"reports by kind, {run.engine}: {kinds}")
    return "\n".join(lines)


def losses(runs: Sequence[RunResult]) -> str:
    """One line per phase that lost messages: how many, and where the first ones were."""
    return "\n".join(
        f"{run.engine} lost {p.lost} of {p.sent} in phase {p.name!r}, first at positions "
        + ", ".join(map(str, p.missing))
        + (" ..." if p.lost > len(p.missing) else "")
        for run in runs
        for p in run.phases
        if p.lost
    )


def undrained(runs: Sequence[RunResult]) -> str:
    """Phases whose last message never reached the sink (the source waited, then went on)."""
    return "\n".join(
        f"{run.engine}: the sink never got the last message of phase {p.name!r} "
        f"({p.received}/{p.sent} received)"
        for run in runs
        for p in run.phases
        if not p.drained
    )


# -- command line ---------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/engines_notebook.py",
        description="The same graph on the embedded engine, the dora engine and plain "
        "`dora run`, driven from a notebook kernel.",
    )
    parser.add_argument("--quick", action="store_true", help="few messages: a smoke run (~15 s)")
    parser.add_argument(
        "--out", type=Path, metavar="FILE.json", help="also write every number as JSON"
    )
    return parser


def _phase_line(plan: Plan) -> str:
    return "; ".join(
        f"{p.name}: {p.count} x {size_label(p.size)}"
        + (f" every {p.pace_s * 1000:g} ms" if p.pace_s else " unpaced")
        for p in plan.phases
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 1 if a run failed or a process was left running, else 0."""
    args = _parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    engines: tuple[str, ...] = ENGINES
    if dora_cli() is None:
        engines = (EMBEDDED,)
        print("the dora CLI is not installed: embedded engine only", file=sys.stderr)
    print(
        f"machine: {os.cpu_count()} cores, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        f"{' (quick)' if args.quick else ''}\nphases: {_phase_line(plan)}",
        flush=True,
    )
    began = time.monotonic()
    runs, left = measure(plan, engines)
    elapsed = time.monotonic() - began
    print(
        "\n1. Latency by payload, embedded vs dora engine (microseconds)\n"
        + latency_table(runs, EMBEDDED, DORA_ENGINE)
    )
    print(
        "\n2. Throughput, src -> op -> sink (messages/s received)\n"
        + throughput_table(runs, (EMBEDDED, DORA_ENGINE))
    )
    print(
        "\n3. The bridge's cost: plain `dora run` of the export vs `%dora_start --engine dora`\n"
        + bridge_table(runs)
    )
    print(f"\nRuns\n{runs_table(runs)}")
    print("\n4. Start-up: the first message at the sink, from the start command (s)", flush=True)
    startups = startup.measure(1 if args.quick else 5, progress=lambda _: None)
    print(startup.table(startups))
    for extra in (report_kinds(runs), losses(runs), undrained(runs)):
        if extra:
            print(extra)
    for run in runs:
        if run.error:
            print(f"\n{run.engine} FAILED:\n  {run.error}")
    for error in startups.errors:
        print(f"\nstart-up FAILED: {error}")
    left += startups.left_running
    if left:
        print(f"\nWARNING: processes still running: {left}")
    print(f"\nload after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; total {elapsed:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "quick": args.quick,
            "plan": asdict(plan),
            "elapsed_s": elapsed,
            "left_running": left,
            "runs": [asdict(run) for run in runs],
            "startup": asdict(startups),
        }
        args.out.write_text(json.dumps(data, indent=1), encoding="utf-8")
        print(f"raw numbers: {args.out}")
    return 1 if left or startups.errors or any(run.error for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
