"""A plain dora file whose node is a program (not a ``.py`` file) runs on the dora engine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dora_notebook import Dataflow
from dora_notebook.errors import GraphError

from .dora_processes import DORA_LOSS, live_descendants
from .needs import needs_dora

pytestmark = pytest.mark.dora

COUNTER = f"""#!{sys.executable}
# A dora node in a file without .py: dora runs it as a program, as it runs a Rust node.
import pyarrow as pa
from dora import Node

node = Node()
n = 0
for event in node:
    if event["type"] == "INPUT":
        n += 1
        node.send_output("count", pa.array([n]))
        if n == 30:
            break
"""

SINK = """
import os
from dora import Node

with open(os.environ["OUT_FILE"], "a") as out:
    for event in Node():
        if event["type"] == "INPUT":
            out.write(f"{event['value'][0].as_py()}\\n")
            out.flush()
"""


def test_a_program_node_runs_on_dora_and_is_refused_on_the_embedded_engine(
    tmp_path: Path,
) -> None:
    needs_dora()
    out = tmp_path / "out.txt"
    (tmp_path / "counter").write_text(COUNTER)
    (tmp_path / "counter").chmod(0o755)
    (tmp_path / "sink.py").write_text(SINK)
    (tmp_path / "dataflow.yml").write_text(
        "nodes:\n"
        "  - id: counter\n    path: ./counter\n"
        "    inputs: {tick: dora/timer/millis/50}\n    outputs: [count]\n"
        f"  - id: sink\n    path: sink.py\n    inputs: {{count: counter/count}}\n"
        f"    env: {{OUT_FILE: {out}}}\n"
    )
    flow = Dataflow.from_yaml(tmp_path / "dataflow.yml", echo=False)
    with pytest.raises(GraphError, match=r"is a program.*--engine dora"):
        flow.start()
    flow.start(engine="dora")
    try:
        # The counter ends the run after 30: its inputs then close and the sink ends.
        assert flow.wait(60), "the dataflow did not finish"
    finally:
        flow.stop()
    assert live_descendants() == []
    # What the sink wrote came from the program, in order. dora-rs itself may lose a
    # few early in a run (DORA_LOSS): a landing run that waited for exactly 1, 2, 3
    # timed out.
    values = [int(line) for line in out.read_text().splitlines()]
    assert values == sorted(set(values)) and set(values) <= set(range(1, 31)), values
    assert len(values) >= 30 - DORA_LOSS and values[-1] == 30, values
