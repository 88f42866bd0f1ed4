"""Send one message per payload case (named in the metadata), then a large one.

The first message goes alone, ``SETTLE`` seconds ahead of the others: dora-rs
may lose messages that follow the first one on a new connection too closely.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pyarrow as pa
from dora import Node

SETTLE = 0.7  # seconds after the first message
SPACING = 0.05  # seconds between the other messages
LINGER = 0.5  # seconds before exiting: the input must close after the last message
LARGE = 1_000_000  # bytes

CASES: dict[str, object] = {
    "bytes": b"hello",
    "empty bytes": b"",
    "int64": pa.array([1, 2, 3]),
    "uint16": pa.array([0, 65535], type=pa.uint16()),
    "float32": pa.array([1.5, -0.25], type=pa.float32()),
    "double with null": pa.array([1.5, None]),
    "bool": pa.array([True, False, True]),
    "string": pa.array(["a", "bé", ""]),
    "binary": pa.array([b"\x00\x01", b""], type=pa.binary()),
    "empty int32": pa.array([], type=pa.int32()),
    "struct": pa.array([{"x": 1, "y": "z"}, {"x": 2, "y": None}]),
    "list": pa.array([[1, 2], [], [3]]),
    "slice": pa.array([10, 11, 12, 13, 14]).slice(1, 3),
    "timestamp": pa.array(
        [datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)], type=pa.timestamp("us", tz="UTC")
    ),
}

node = Node()
node.next()  # the first tick of `start`: every node is connected
for index, (case, data) in enumerate(CASES.items()):
    node.send_output("data", data, {"case": case})
    time.sleep(SETTLE if index == 0 else SPACING)
node.send_output("large", bytes(range(256)) * (LARGE // 256), {"case": "large bytes"})
time.sleep(LINGER)
