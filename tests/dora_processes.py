"""What the dora-engine tests look for: processes left behind, a node's process, the engine.

To wait for something to happen, see :mod:`tests.waiting`.
"""

from __future__ import annotations

import re

import psutil

from dora_notebook import Dataflow
from dora_notebook.dora_rs.engine import DoraEngine

#: dora-rs 1.1.0 itself loses a few messages early in a run, without a warning, for any
#: consumer of the default queue policy: under plain ``dora run`` (a counter at 50 Hz,
#: three sinks with ``queue_size: 10000``) 12 of 30 sinks missed 1 to 9 of 40 messages.
#: The kernel's bridge is such a consumer (see private.py for why it stays one), and so
#: are the nodes: what they count is what dora-rs delivered them, within this bound.
DORA_LOSS = 10


def live_descendants() -> list[psutil.Process]:
    """Every live (not zombie) process below this one: after a run, there should be none."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def node_process(node_id: str) -> psutil.Process | None:
    """The process dora-rs runs ``node_id`` in (a descendant of this test), found by its config."""
    for proc in psutil.Process().children(recursive=True):
        try:
            config = proc.environ().get("DORA_NODE_CONFIG", "")
        except psutil.Error:
            continue
        if re.search(rf"^node_id: {re.escape(node_id)}$", config, re.MULTILINE):
            return proc
    return None


def engine_of(flow: Dataflow) -> DoraEngine:
    """The dora engine of ``flow``'s current run."""
    engine = flow.engine
    assert isinstance(engine, DoraEngine)
    return engine
