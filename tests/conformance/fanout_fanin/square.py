"""A custom node: forward the square of each value, with its index."""

from __future__ import annotations

import pyarrow.compute as pc
import recorder
from dora import Node

rec = recorder.Recorder("square")
node = Node()
for event in node:
    rec.event(event)
    if event["type"] == "INPUT":
        squared = pc.multiply(event["value"], event["value"])
        node.send_output("squared", squared, {"i": event["metadata"]["i"]})
rec.note(stream_ended=True)
