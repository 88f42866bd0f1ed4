"""Send ``COUNT`` pairs with ``path: ["src"]`` in the metadata, then exit.

The first message goes alone, ``SETTLE`` seconds ahead of the others: dora-rs
may lose messages that follow the first one on a new connection too closely.
"""

from __future__ import annotations

import time

import pyarrow as pa
from dora import Node

COUNT = 4
SETTLE = 0.7  # seconds after the first message
SPACING = 0.05  # seconds between the other messages
LINGER = 0.5  # seconds before exiting: the input must close after the last message

node = Node()
node.next()  # the first tick of `start`: every node is connected
for i in range(COUNT):
    node.send_output("out", pa.array([i, -i]), {"path": ["src"]})
    time.sleep(SETTLE if i == 0 else SPACING)
time.sleep(LINGER)
