"""Record every event until the stream ends, then note that it ended."""

from __future__ import annotations

import recorder
from dora import Node

rec = recorder.Recorder("sink")
node = Node()
for event in node:
    rec.event(event)
rec.note(stream_ended=True)
