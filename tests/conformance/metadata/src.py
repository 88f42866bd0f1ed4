"""Send ``COUNT`` messages whose metadata holds str, int, float, bool, lists and a datetime.

The first message goes alone, ``SETTLE`` seconds ahead of the others: dora-rs
may lose messages that follow the first one on a new connection too closely.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pyarrow as pa
from dora import Node

COUNT = 3
SETTLE = 0.7  # seconds after the first message
SPACING = 0.05  # seconds between the other messages
LINGER = 0.5  # seconds before exiting: the input must close after the last message

node = Node()
node.next()  # the first tick of `start`: every node is connected
for k in range(COUNT):
    metadata = {
        "k": k,
        "text": f"message {k}",
        "negative": -7 - k,
        "large": 2**62 + k,
        "ratio": 0.25 + k,
        "flag": k % 2 == 0,
        "ints": [1, 2, k],
        "floats": [0.5, -1.5],
        "words": ["a", "b c"],
        "empty": [],
        "when": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
    }
    node.send_output("out", pa.array([k]), metadata)
    time.sleep(SETTLE if k == 0 else SPACING)
time.sleep(LINGER)
