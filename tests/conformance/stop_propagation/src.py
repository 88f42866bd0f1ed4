"""Send 0, settle, 1, 2, pause, then 3, 4, 5 (``gate`` stops at 3), then exit.

The first message goes alone, ``SETTLE`` seconds ahead of the others: dora-rs
may lose messages that follow the first one on a new connection too closely.
The pause lets ``gate``'s outputs reach every receiver before ``gate`` stops:
the closing of an input could overtake messages still in flight.
"""

from __future__ import annotations

import time

import pyarrow as pa
from dora import Node

SETTLE = 0.7  # seconds after the first message
SPACING = 0.05  # seconds between the other messages
PAUSE = 0.5  # seconds before the message that makes `gate` stop
LINGER = 0.5  # seconds before exiting: the input must close after the last message

node = Node()
node.next()  # the first tick of `start`: every node is connected
for i in range(6):
    if i == 3:
        time.sleep(PAUSE)
    node.send_output("out", pa.array([i]))
    time.sleep(SETTLE if i == 0 else SPACING)
time.sleep(LINGER)
