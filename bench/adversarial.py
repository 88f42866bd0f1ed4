"""What a hostile node costs a real kernel: preview floods, huge previews, memory after reset.

Three measurements, each in a fresh ipykernel driven as a notebook user
would (``bench/kernel_session.py`` counts the iopub messages and bytes):

* ``ids N``: one node previews ``N`` distinct ids (``context.preview(i,
  id=f"id{i}")``) and ends; the iopub bytes and seconds until ``%dora_start
  --wait`` is back, then how long ``%dora_reset`` takes.
* ``big``: a node previews a 10 MB text at every tick of a 20 ms timer; the
  iopub bytes/s and the latency of trivial cells meanwhile.
* ``memory``: three define / start / reset cycles of one node sending one
  200 MB message to another; the kernel's RSS after ``gc.collect()``.

    python bench/adversarial.py [ids 1000 3000 20000] [big] [memory]
"""

from __future__ import annotations

import argparse
import statistics

from kernel_session import KernelSession

IDS = """
%%dora_node many
from dora import Node
node = Node()
for i in range({n}):
    node.context.preview(i, id=f"id{{i}}")
"""

BIG = """
%%dora_operator big --inputs tick=dora/timer/millis/20
text = "x" * 10_000_000
class Operator:
    def __init__(self):
        self.n = 0
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.n += 1
            context.preview(str(self.n) + text)
"""

SOURCE = """
%%dora_node source --outputs big
import numpy as np
import pyarrow as pa
from dora import Node
node = Node()
node.send_output("big", pa.array(np.ones({mb} * 2**20 // 8)))
"""

SINK = """
%%dora_operator sink --inputs big=source/big
class Operator:
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            context.preview(len(event["value"]))
"""

RSS = "import gc, psutil; gc.collect(); print(psutil.Process().memory_info().rss // 2**20)"


def ids(n: int, timeout: float) -> dict[str, float]:
    with KernelSession() as kernel:
        kernel.counting = False
        kernel.run("%load_ext dora_notebook")
        kernel.run(IDS.format(n=n))
        kernel.counting = True
        seconds, _ = kernel.run("%dora_start --wait --timeout 600", timeout=timeout)
        kernel.counting = False
        sent, messages = kernel.bytes, kernel.messages
        reset, _ = kernel.run("%dora_reset", timeout=timeout)
    return {"ids": n, "mb": sent / 1e6, "messages": messages, "s": seconds, "reset_s": reset}


def big(seconds: float) -> dict[str, float]:
    with KernelSession() as kernel:
        kernel.counting = False
        kernel.run("%load_ext dora_notebook")
        kernel.run(BIG)
        cells, elapsed = kernel.cells_while_running(seconds)
    return {
        "kb_per_s": kernel.bytes / elapsed / 1e3,
        "msgs_per_s": kernel.messages / elapsed,
        "cell_p50_ms": statistics.median(cells) * 1e3,
        "cell_max_ms": max(cells) * 1e3,
    }


def memory(mb: int, cycles: int) -> list[int]:
    with KernelSession() as kernel:
        kernel.counting = False
        kernel.run("%load_ext dora_notebook")
        rss = [int(kernel.run(RSS)[1])]
        for _ in range(cycles):
            kernel.run(SOURCE.format(mb=mb))
            kernel.run(SINK)
            kernel.run("%dora_start --wait --timeout 120")
            kernel.run("%dora_reset")
            rss.append(int(kernel.run(RSS)[1]))
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", default=["ids", "1000", "3000", "big", "memory"])
    parser.add_argument("--seconds", type=float, default=5.0, help="of the big-preview run")
    parser.add_argument("--timeout", type=float, default=300.0, help="per cell")
    args = parser.parse_args()
    counts = [int(w) for w in args.what if w.isdigit()]
    if "ids" in args.what:
        for n in counts or [1000, 3000, 20000]:
            r = ids(n, args.timeout)
            print(
                f"{r['ids']:6d} distinct ids: {r['mb']:8.2f} MB of iopub in {r['messages']:6d} "
                f"messages, %dora_start --wait {r['s']:6.2f} s, %dora_reset {r['reset_s']:5.2f} s"
            )
    if "big" in args.what:
        r = big(args.seconds)
        print(
            f"10 MB text every 20 ms: {r['kb_per_s']:9.1f} kB/s, {r['msgs_per_s']:6.1f} msg/s of "
            f"iopub; trivial cell p50 {r['cell_p50_ms']:.1f} ms, max {r['cell_max_ms']:.1f} ms"
        )
    if "memory" in args.what:
        rss = memory(200, 3)
        print("kernel RSS after gc, MB (start, then after each reset of a 200 MB run):", rss)


if __name__ == "__main__":
    main()
