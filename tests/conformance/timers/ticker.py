"""Count ``TICKS`` timer ticks, sending the count at each, then end the loop and exit.

After its first message the node waits ``SETTLE`` seconds (the ticks queue
up meanwhile): dora-rs may lose messages that follow the first one on a new
connection too closely. It lingers before exiting, as the closing of the
downstream inputs could overtake the last messages in flight.
"""

from __future__ import annotations

import time

import pyarrow as pa
import recorder
from dora import Node

TICKS = 5
SETTLE = 0.7  # seconds after the first message
LINGER = 0.5  # seconds before exiting

rec = recorder.Recorder("ticker")
node = Node()
count = 0
for event in node:
    rec.event(event)
    if event["type"] == "INPUT" and event["id"] == "tick":
        node.send_output("count", pa.array([count], type=pa.int32()))
        count += 1
        if count == 1:
            time.sleep(SETTLE)
        if count == TICKS:
            break
rec.note(ended_after_ticks=count)
time.sleep(LINGER)
