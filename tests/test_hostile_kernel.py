"""What a hostile node does to a real ipykernel, as a notebook user meets it.

A node previewing a new id per message, a node previewing 10 MB at every
tick, a graph sending a message of hundreds of MB: the kernel stays
responsive, its panels' iopub traffic stays within Jupyter Server's budget
(1 MB/s), and ``%dora_reset`` lets go of everything the graph held.
"""

from __future__ import annotations

import json
import time

import pytest

from dora_notebook.core.observe import PREVIEW_LIMIT
from dora_notebook.jupyter.widgets import PANEL_BYTES_PER_SECOND
from dora_notebook.preview.mime import MAX_CHARS

from .kernel import Kernel, define

#: Every test starts with an empty graph and leaves no dora thread behind.
pytestmark = pytest.mark.usefixtures("fresh_graph")


def comm_bytes(kernel: Kernel, since: float) -> int:
    """The bytes of widget state the kernel sent since ``since`` (monotonic)."""
    return sum(len(json.dumps(state)) for when, _, state in kernel.comm_log if when >= since)


def test_a_new_preview_id_per_message_keeps_the_kernel_responsive(kernel: Kernel) -> None:
    """Before: 20,000 ids sent 1.86 GB of iopub and ``%dora_reset`` was still blocked at 163 s."""
    many = define(
        kernel,
        "%%dora_node many",
        """
        from dora import Node
        node = Node()
        for i in range(20_000):
            node.context.preview(i, id=f"id{i}")
        """,
    )
    began = time.monotonic()
    kernel.execute("%dora_start --wait --timeout 60", timeout=60)
    seconds = time.monotonic() - began
    sent = comm_bytes(kernel, began)
    (panel_id,) = many.widget_ids()
    header, _, previews, _ = kernel.child_ids(panel_id)
    shown = [
        kernel.model(p)["outputs"][0]["data"]["text/plain"] for p in kernel.child_ids(previews)
    ]
    assert shown == [str(i) for i in range(20_000 - PREVIEW_LIMIT, 20_000)]
    assert "19950 older previews dropped" in kernel.model(header)["value"]
    assert sent < 2_000_000, sent
    assert seconds < 20, seconds
    began = time.monotonic()
    kernel.execute("%dora_reset", timeout=10)
    assert time.monotonic() - began < 2


def test_a_huge_text_preview_at_every_tick_stays_within_the_iopub_budget(kernel: Kernel) -> None:
    """Before: 10 MB at every redraw, 82-98 MB/s of iopub."""
    big = define(
        kernel,
        "%%dora_operator big --inputs tick=dora/timer/millis/20",
        """
        from dora import DoraStatus
        text = "x" * 10_000_000
        class Operator:
            def __init__(self):
                self.n = 0
            def on_event(self, event, context):
                if event["type"] == "INPUT":
                    self.n += 1
                    context.preview(f"{self.n} {text}")
                    if self.n == 100:
                        return DoraStatus.STOP
                return DoraStatus.CONTINUE
        """,
    )
    kernel.execute("import dora_notebook")
    began = time.monotonic()
    kernel.execute("%dora_start")
    cells = []
    while "finished" not in kernel.execute("print(dora_notebook.current().node('big'))").text:
        began_cell = time.monotonic()
        kernel.execute("1 + 1")
        cells.append(time.monotonic() - began_cell)
    (panel_id,) = big.widget_ids()
    (preview,) = kernel.child_ids(kernel.child_ids(panel_id)[2])

    def final() -> str:
        return kernel.model(preview)["outputs"][0]["data"]["text/plain"]

    # What the budget held back is drawn after the graph ended.
    kernel.until(lambda: final().startswith("100 x"), 10, "the last preview on the panel")
    seconds = time.monotonic() - began
    assert final().endswith(f"... {10_000_004 - MAX_CHARS:,} more characters")
    sent = comm_bytes(kernel, began)
    assert sent < PANEL_BYTES_PER_SECOND * (seconds + 1) + MAX_CHARS, (sent, seconds)
    assert max(cells) < 0.5, cells
    whole = kernel.execute(
        "print(len(dora_notebook.current().node('big').previews['default']['data']))"
    )
    assert whole.text.strip() == "10000004"  # Python keeps the whole value


BIG_SOURCE = """
import numpy as np
import pyarrow as pa
import weakref
import __main__
from dora import Node
node = Node()
payload = np.ones({mb} * 2**20 // 8)
__main__.PROBES.append(weakref.ref(payload))
node.send_output("big", pa.array(payload))  # zero-copy: the array keeps payload alive
"""

BIG_SINK = """
class Operator:
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.last = event["value"]
            context.preview(len(event["value"]))
"""


def run_big_message(kernel: Kernel, mb: int) -> None:
    """One run of a node sending ``mb`` MB to an operator that keeps it, shown in the graph view."""
    define(kernel, "%%dora_node source --outputs big", BIG_SOURCE.format(mb=mb))
    define(kernel, "%%dora_operator sink --inputs big=source/big", BIG_SINK)
    done = kernel.execute("%dora_start --wait --timeout 30")
    assert "sink: finished, 1 received" in done.text
    kernel.execute("%dora_status")


def alive(kernel: Kernel) -> str:
    """Which payloads sent through the graph are still reachable, after a collection."""
    return kernel.execute("import gc; gc.collect(); print([p() is not None for p in PROBES])").text


def test_reset_lets_go_of_every_message_the_graph_held(kernel: Kernel) -> None:
    """Before: input dict <- Context <- Runner <- NodeState <- NodePanel kept the last value."""
    kernel.execute("PROBES = []")
    run_big_message(kernel, 8)
    assert alive(kernel).strip() == "[True]"  # the sink keeps it: the probe can see it
    kernel.execute("%dora_start --wait --timeout 30")  # a new run of the same graph
    assert alive(kernel).strip() == "[False, True]"  # the first run's is gone
    kernel.execute("%dora_reset")
    assert alive(kernel).strip() == "[False, False]"


def test_the_kernel_does_not_grow_over_define_start_reset_cycles(kernel: Kernel) -> None:
    """Before: each cycle of a 400 MB message kept 400 MB (541 -> 1,341 MB over three)."""
    kernel.execute("PROBES = []")
    rss = "import gc, psutil; gc.collect(); print(psutil.Process().memory_info().rss)"
    before = int(kernel.execute(rss).text)
    for _ in range(3):
        run_big_message(kernel, 200)
        kernel.execute("%dora_reset")
    grown = int(kernel.execute(rss).text) - before
    assert grown < 100 * 2**20, f"the kernel grew by {grown / 2**20:.0f} MB over 3 cycles"
