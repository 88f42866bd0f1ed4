"""Exercise the Node API before, during and after the event stream."""

from __future__ import annotations

import helpers
import pyarrow as pa
import recorder
from dora import DoraStatus, Node

rec = recorder.Recorder("api")
node = Node()
rec.note(
    step="before any event",
    is_empty=recorder.outcome(node.is_empty),
    try_recv=recorder.outcome(node.try_recv),
    drain=recorder.outcome(node.drain),
)
rec.event(node.next(timeout=0.1), step="next(timeout=0.1) with nothing to get")
dataflow_id = node.dataflow_id()
config = node.node_config()
descriptor = node.dataflow_descriptor()
rec.note(
    dataflow_id_is_text=isinstance(dataflow_id, str) and len(dataflow_id) > 0,
    node_config=config,
    descriptor_type=type(descriptor).__name__,
    descriptor_node_ids=sorted(entry["id"] for entry in descriptor["nodes"]),
    helper_sees_same_node_class=helpers.Node is Node,
    helper_sees_same_status=helpers.DoraStatus is DoraStatus,
)
node.send_output("unused", pa.array([1]))  # a declared output nobody listens to
for event in node:
    rec.event(event)
rec.note(
    step="after the end",
    next=recorder.outcome(node.next),
    try_recv=recorder.outcome(node.try_recv),
    is_empty=recorder.outcome(node.is_empty),
    drain=recorder.outcome(node.drain),
)
