"""Record every event until the stream ends, then what ``next()`` returns after it."""

from __future__ import annotations

import recorder
from dora import Node

rec = recorder.Recorder("sink")
node = Node()
for event in node:
    rec.event(event)
rec.note(stream_ended=True, next_after_end=repr(node.next()))
