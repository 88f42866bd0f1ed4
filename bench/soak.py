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
import time

from kernel_session import KernelSession

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


def soak(minutes: float, every: float, hz: float) -> list[dict[str, float]]:
    samples: list[dict[str, float]] = []
    with KernelSession() as kernel:
        process = kernel.process()
        kernel.run("%load_ext dora_notebook")
        kernel.run(f"%config DoraMagics.preview_hz = {hz}")
        for name, source in STAGES:
            kernel.run(OPERATOR.format(name=name, source=source))
        kernel.run("%dora_start")
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < minutes * 60:
            messages, size, mark = kernel.messages, kernel.bytes, time.monotonic()
            time.sleep(min(every, max(0.0, minutes * 60 - elapsed)))
            span = time.monotonic() - mark
            sample = {
                "t_s": time.monotonic() - began,
                "rss_mb": process.memory_info().rss / 2**20,
                "threads": process.num_threads(),
                "msgs_per_s": (kernel.messages - messages) / span,
                "kb_per_s": (kernel.bytes - size) / span / 1e3,
            }
            samples.append(sample)
            print(
                f"{sample['t_s']:7.0f} s  rss {sample['rss_mb']:7.1f} MB  "
                f"threads {sample['threads']:3d}  iopub {sample['msgs_per_s']:6.1f} msg/s "
                f"{sample['kb_per_s']:6.1f} kB/s",
                flush=True,
            )
        kernel.run("%dora_stop")
        status = (
            "import dora_notebook\nfor s in dora_notebook.current().status().values(): print(s)"
        )
        print(kernel.run(status)[1], end="")
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
