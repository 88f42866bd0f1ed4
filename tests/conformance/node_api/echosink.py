"""Record every event until the stream ends."""

from __future__ import annotations

import recorder
from dora import Node

rec = recorder.Recorder("echosink")
node = Node()
for event in node:
    rec.event(event)
rec.note(stream_ended=True)
