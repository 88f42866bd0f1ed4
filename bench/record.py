"""What a recording costs (issue 16 item 6), on the embedded engine:

    python bench/record.py             # the full run, about a minute
    python bench/record.py --quick     # a smoke run, a few seconds
    python bench/record.py --out raw.json

(a) **Throughput.** The benchmark chain of ``bench/run.py`` (``src -> op1 -> op2
-> op3 -> sink``, 8 B payloads, a paced warm-up then a burst as fast as the
source can send), run alternately without a recording and while recording
every edge (9 runs each); the median rate of each, the median of each
recorded run's cost against the plain run just before it, and the
process's CPU time per message; every recording is checked complete.
Target: recording costs at most 10 % of the rate. Beside it, what one
``EdgeRecorder.record`` call costs in a loop of its own (thread CPU).

(b) **A camera within the budget.** 60 s of 30 fps 640x480 rgb8 frames (1800
distinct frames, each dated 1/30 s after the last, sent as fast as the
engine takes them) to a consumer, every edge recorded within the default
256 MB: the frames that fit stay, the rest are dropped and counted, which
must be exactly ``1800 - floor(budget / frame)``; the process's peak memory
growth is sampled.

(c) **Saving 1 GB.** A recording of 1024 messages of 1 MB (random bytes, which
no format compresses) saved as Arrow IPC and as Parquet, beside a plain
write of the same bytes to a file in the same folder (the disk's speed);
each timed to the end of the write and to the end of an ``fsync``, three
rounds, each starting with the next of the three, the median of each.

Exits 1 if a recording is incomplete or the budget's count is wrong; the
speed targets are reported (MET / MISSED), not enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import engine_embedded
import numpy as np
import pipelines
import psutil
import pyarrow as pa
from common import Settings, SizePlan, throughput_result

from dora_notebook import Dataflow, Recording

__all__ = ["main"]

FRAME = (480, 640, 3)
FRAME_BYTES = FRAME[0] * FRAME[1] * FRAME[2]
MIB = 1 << 20

CAMERA = """
import numpy as np
import pyarrow as pa
from datetime import datetime, timedelta, timezone
from dora import Node

node = Node()
start = datetime(2026, 1, 1, tzinfo=timezone.utc)
for i in range(FRAMES):
    frame = np.full(SHAPE, i % 256, np.uint8)  # a new frame each time, as a camera's
    meta = {"timestamp": start + timedelta(seconds=i / 30), "width": SHAPE[1],
            "height": SHAPE[0], "encoding": "rgb8"}
    node.send_output("image", pa.array(frame.ravel()), meta)
"""

DETECTOR = """
class Operator:
    def __init__(self):
        self.frames = 0

    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            self.frames += 1
"""


# -- (a) throughput ---------------------------------------------------------------------


def chain_rate(plan: SizePlan, record: bool) -> tuple[float, float, str]:
    """One burst through the chain: its rate (msg/s), the process's CPU time per message
    (us, warm-up included), and, if recorded, the recording's status.

    Raises if a recording missed or dropped anything.
    """
    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="bench-record-") as folder:
        stages = pipelines.chain(Path(folder), plan, 0.0)
        flow = engine_embedded.build(stages)
        recording = flow.record() if record else None
        cpu = sum(process.cpu_times()[:2])
        flow.start()
        finished = flow.wait(120)
        flow.stop()
        cpu = sum(process.cpu_times()[:2]) - cpu
        if not finished:
            raise RuntimeError("the chain did not finish within 120 s")
        result = throughput_result("dora-notebook", pipelines.read_outcome(Path(folder)))
    if result.rate is None:
        raise RuntimeError(result.error or "no rate")
    status = ""
    if recording is not None:
        status = recording.status()
        expected = {f"{n}/out": plan.total for n in ("src", "op1", "op2", "op3")}
        got = {e: len(recording.messages(*e.split("/"))) for e in expected}
        if got != expected or recording.dropped:
            raise RuntimeError(f"the recording is incomplete: {got} of {expected}; {status}")
    return result.rate, cpu / plan.total * 1e6, status


def throughput(runs: int, count: int) -> dict[str, Any]:
    plan = replace_count(Settings().throughput_plan(), count)
    rates: dict[str, list[float]] = {"plain": [], "recorded": []}
    cpu: dict[str, list[float]] = {"plain": [], "recorded": []}
    status = ""
    chain_rate(plan, False)  # a first run warms the imports and caches
    for _ in range(runs):
        # Alternated, so that a change in the machine's load hits both alike.
        for key in ("plain", "recorded"):
            rate, per_message, status = chain_rate(plan, key == "recorded")
            rates[key].append(rate)
            cpu[key].append(per_message)
    plain, recorded = (statistics.median(rates[k]) for k in ("plain", "recorded"))
    cpu_plain, cpu_recorded = (statistics.median(cpu[k]) for k in ("plain", "recorded"))
    # Each recorded run against the plain run just before it: the same moment's load.
    paired = [1 - r / p for p, r in zip(rates["plain"], rates["recorded"], strict=True)]
    return {
        "messages": plan.count,
        "warmup": plan.warmup,
        "runs": runs,
        "rates": rates,
        "cpu_us": cpu,
        "plain": plain,
        "recorded": recorded,
        "cost": 1 - recorded / plain,
        "paired_cost": statistics.median(paired),
        "cpu_plain": cpu_plain,
        "cpu_recorded": cpu_recorded,
        "cpu_cost": cpu_recorded / cpu_plain - 1,
        "status": status,
    }


def record_call(count: int, repeats: int = 15) -> dict[str, Any]:
    """What one ``EdgeRecorder.record`` costs in a loop of its own: thread CPU per call (ns),
    the minimum and median of ``repeats`` loops of ``count`` calls, as the engine makes them
    (an 8 B array, the chain's metadata, the engine's send time, number and cause)."""
    value = pa.array(np.zeros(8, np.uint8))
    meta = {"t": time.monotonic_ns(), "i": 7, "timestamp": datetime.now(timezone.utc)}
    per_call = []
    for _ in range(repeats):
        record = Recording(max_bytes=1 << 40).recorder("src", "out").record
        began = time.thread_time_ns()
        for i in range(count):
            record(value, meta, 1, i, -1)
        per_call.append((time.thread_time_ns() - began) / count)
    return {
        "calls": count,
        "repeats": repeats,
        "min_ns": min(per_call),
        "median_ns": statistics.median(per_call),
    }


def replace_count(plan: SizePlan, count: int) -> SizePlan:
    return SizePlan(plan.size, count, plan.warmup, plan.pace_s, plan.warmup_pace_s)


# -- (b) frames within the budget ---------------------------------------------------------


class PeakRss:
    """Samples this process's resident memory every 5 ms until stopped: its peak."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def frames(count: int, max_mb: int) -> dict[str, Any]:
    flow = Dataflow(echo=False)
    code = CAMERA.replace("FRAMES", str(count)).replace("SHAPE", repr(FRAME))
    flow.add_node("camera", code, outputs=["image"])
    flow.add_operator("detector", DETECTOR, inputs={"image": "camera/image"})
    recording = flow.record(max_mb=max_mb)
    rss = PeakRss()
    began = time.perf_counter()
    flow.start()
    finished = flow.wait(300)
    took = time.perf_counter() - began
    flow.stop()
    rss.stop()
    if not finished:
        raise RuntimeError("the camera graph did not finish within 300 s")
    kept = recording.messages("camera", "image")
    fit = recording.max_bytes // FRAME_BYTES
    expected_drops = max(0, count - fit)
    span = (kept[-1].send_time - kept[0].send_time).total_seconds() if kept else 0.0
    seqs = [m.seq for m in kept]
    return {
        "frames": count,
        "frame_bytes": FRAME_BYTES,
        "budget_bytes": recording.max_bytes,
        "kept": len(kept),
        "kept_bytes": recording.nbytes,
        "dropped": recording.dropped_by_edge().get("camera/image", 0),
        "expected_kept": min(count, fit),
        "expected_dropped": expected_drops,
        "newest_kept": seqs == list(range(count - len(kept), count)),
        "kept_span_s": span,
        "seconds": took,
        "frames_per_s": count / took,
        "peak_rss_growth_mb": (rss.peak - rss.start) / MIB,
        "status": recording.status(),
    }


# -- (c) saving ------------------------------------------------------------------------------


def _timed_write(path: Path, write: Any) -> dict[str, float]:
    """Seconds to write (to the page cache), then to fsync; the file is removed after."""
    began = time.perf_counter()
    write(path)
    written = time.perf_counter()
    with open(path, "rb+") as file:
        os.fsync(file.fileno())
    synced = time.perf_counter()
    size = path.stat().st_size
    path.unlink()
    return {"bytes": size, "write_s": written - began, "fsync_s": synced - began}


def saving(total_mb: int, folder: Path, rounds: int) -> dict[str, Any]:
    rng = np.random.default_rng(16)
    blob = np.frombuffer(rng.bytes(total_mb * MIB), np.uint8)
    recording = Recording(max_bytes=(total_mb + 64) * MIB)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(total_mb):  # 1 MB slices of one buffer: by reference, as an engine keeps them
        value = pa.array(blob[i * MIB : (i + 1) * MIB])
        recording.record("camera", "image", value, {"timestamp": start + timedelta(seconds=i)})
    recording.stop()
    writes = {
        "plain write": (folder / "plain.bin", lambda p: p.write_bytes(blob.data)),
        "save .arrow": (folder / "rec.arrow", recording.save),
        "save .parquet": (folder / "rec.parquet", recording.save),
    }
    timed: dict[str, list[dict[str, float]]] = {name: [] for name in writes}
    names = list(writes)
    for round_ in range(rounds):
        # The second write of a round was the slower one, whichever it was (measured):
        # each round starts with the next.
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            path, write = writes[name]
            timed[name].append(_timed_write(path, write))
    runs = {}
    for name, done in timed.items():
        run = {key: statistics.median(t[key] for t in done) for key in done[0]}
        run["write_mb_s"] = run["bytes"] / MIB / run["write_s"]
        run["fsync_mb_s"] = run["bytes"] / MIB / run["fsync_s"]
        runs[name] = run
    return {"messages": total_mb, "value_bytes": recording.nbytes, "rounds": rounds, "runs": runs}


# -- report ------------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> tuple[str, bool]:
    """The tables as text, and whether every correctness check held."""
    out = []
    ok = True
    a = results["throughput"]
    out.append(
        f"(a) chain throughput, 8 B, {a['messages']} messages after {a['warmup']} paced, "
        f"median of {a['runs']} runs each (alternated)"
    )
    for label, key in (("no recording", "plain"), ("recording every edge", "recorded")):
        out.append(f"    {label:<21} {a[key]:>9,.0f} msg/s   {_rates(a['rates'][key])}")
    verdict = "MET" if a["cost"] <= 0.10 else "MISSED"
    out.append(
        f"    cost {a['cost'] * 100:.1f} % of the rate (target <= 10 %): {verdict}; "
        f"median of the paired runs' costs {a['paired_cost'] * 100:.1f} %"
    )
    out.append(
        f"    CPU time of the process per message {a['cpu_plain']:.1f} us -> "
        f"{a['cpu_recorded']:.1f} us ({a['cpu_cost'] * 100:+.1f} %)"
    )
    out.append(f"    last recording: {a['status']}")
    call = results["record_call"]
    out.append(
        f"    one EdgeRecorder.record, in a loop of {call['calls']:,}: {call['min_ns']:.0f} ns "
        f"(median {call['median_ns']:.0f} ns of {call['repeats']}, thread CPU)"
    )
    b = results["frames"]
    held = b["kept_bytes"] <= b["budget_bytes"]
    exact = b["dropped"] == b["expected_dropped"] and b["kept"] == b["expected_kept"]
    ok = ok and held and exact and b["newest_kept"]
    out.append(
        f"(b) {b['frames']} frames of 640x480 rgb8 ({b['frame_bytes']:,} B), budget "
        f"{b['budget_bytes'] / MIB:.0f} MB, sent in {b['seconds']:.2f} s "
        f"({b['frames_per_s']:.0f} frames/s)"
    )
    out.append(
        f"    kept {b['kept']} (expected {b['expected_kept']}, the newest: {b['newest_kept']}, "
        f"{b['kept_span_s']:.2f} s of video), {b['kept_bytes'] / MIB:.1f} MB: "
        f"budget {'held' if held else 'EXCEEDED'}"
    )
    out.append(
        f"    dropped {b['dropped']} (expected {b['expected_dropped']}): "
        f"{'exact' if exact else 'WRONG'}; peak memory growth {b['peak_rss_growth_mb']:.0f} MB"
    )
    c = results["saving"]
    out.append(
        f"(c) save of {c['messages']} messages of 1 MB "
        f"({c['value_bytes'] / MIB:,.0f} MB of values), median of {c['rounds']} rounds"
    )
    out.append("    what                 file        to cache             with fsync")
    for name, run in c["runs"].items():
        out.append(
            f"    {name:<18} {run['bytes'] / MIB:>7,.0f} MB  {run['write_s']:>5.2f} s "
            f"{run['write_mb_s']:>6,.0f} MB/s  "
            f"{run['fsync_s']:>5.2f} s {run['fsync_mb_s']:>6,.0f} MB/s"
        )
    plain = c["runs"]["plain write"]["fsync_mb_s"]
    arrow = c["runs"]["save .arrow"]["fsync_mb_s"]
    out.append(f"    .arrow with fsync at {arrow / plain * 100:.0f} % of the plain write's speed")
    c["arrow_vs_plain"] = arrow / plain
    return "\n".join(out), ok


def _rates(rates: list[float]) -> str:
    return "(" + ", ".join(f"{r / 1000:.1f}k" for r in rates) + ")"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/record.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="every number as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        plan = {"runs": 1, "count": 2000, "frames": 300, "max_mb": 64, "save_mb": 64, "rounds": 1}
    else:
        plan = {
            "runs": 9,
            "count": 20_000,
            "frames": 1800,
            "max_mb": 256,
            "save_mb": 1024,
            "rounds": 3,
        }
    began = time.time()
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
            "pyarrow": pa.__version__,
        },
        "quick": args.quick,
    }
    results["throughput"] = throughput(plan["runs"], plan["count"])
    results["record_call"] = record_call(plan["count"] * 5, 3 if args.quick else 15)
    results["frames"] = frames(plan["frames"], plan["max_mb"])
    with tempfile.TemporaryDirectory(prefix="bench-record-save-") as folder:
        results["saving"] = saving(plan["save_mb"], Path(folder), plan["rounds"])
    results["seconds"] = time.time() - began
    text, ok = report(results)
    print(text)
    print(f"{results['seconds']:.1f} s; load {results['machine']['load'][0]:.2f} at the start")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
