"""Send ``hello``, settle, try the edge cases from a custom node, then send ``go``
for ``opsrc`` to try them too.

``hello`` goes alone, ``SETTLE`` seconds ahead of the others: dora-rs may
lose messages that follow the first one on a new connection too closely.
"""

from __future__ import annotations

import time

import cases
import pyarrow as pa
import recorder
from dora import Node

SETTLE = 0.7  # seconds after the first message
LINGER = 0.5  # seconds before exiting: the input must close after the last message

rec = recorder.Recorder("src")
node = Node()
node.next()  # the first tick of `start`: every node is connected
node.send_output("out", pa.array([0]), {"case": "hello"})
time.sleep(SETTLE)
cases.run_cases(node.send_output, rec)
node.send_output("out", pa.array([0]), {"case": "go"})
time.sleep(LINGER)
