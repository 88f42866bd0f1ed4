"""Record everything; the large payload only by its length and sum."""

from __future__ import annotations

import recorder
from dora import Node

rec = recorder.Recorder("sink")
node = Node()
for event in node:
    rec.event(event, summarize=event["type"] == "INPUT" and event["id"] == "large")
rec.note(stream_ended=True)
