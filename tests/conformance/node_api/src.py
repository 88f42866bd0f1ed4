"""Wait a moment after the start (``api`` looks at its empty queue), send two values, exit.

The first message goes alone, ``SETTLE`` seconds ahead of the second: dora-rs
may lose messages that follow the first one on a new connection too closely.
"""

from __future__ import annotations

import time

import pyarrow as pa
from dora import Node

QUIET = 0.3  # seconds without messages after the start
SETTLE = 0.7  # seconds after the first message
LINGER = 0.5  # seconds before exiting: the input must close after the last message

node = Node()
node.next()  # the first tick of `start`: every node is connected
time.sleep(QUIET)
node.send_output("out", pa.array([0]))
time.sleep(SETTLE)
node.send_output("out", pa.array([1]))
time.sleep(LINGER)
