"""Record what arrives from the node and from the operator (input by input)."""

from __future__ import annotations

import recorder
from dora import Node

rec = recorder.Recorder("sink")
node = Node()
for event in node:
    rec.event(event)
rec.note(stream_ended=True)
