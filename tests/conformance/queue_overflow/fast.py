"""Send ``HELLO``, settle, send ``BURST`` values at once, pause, send ``LAST``.

``HELLO`` goes alone, ``SETTLE`` seconds ahead of the others: dora-rs may
lose messages that follow the first one on a new connection too closely,
which is not the loss this dataflow is about. The note lists what was sent.
"""

from __future__ import annotations

import time

import pyarrow as pa
import recorder
from dora import Node

HELLO = -1
BURST = 60
LAST = 1000
#: The consumers and their queue sizes, as in dataflow.yml.
CONSUMERS = {"node_q5": 5, "node_default": 10, "op_q5": 5, "op_q1": 1}
SETTLE = 0.7  # seconds after the first message
PAUSE = 0.5  # seconds: long enough for every consumer to empty its queue
LINGER = 0.5  # seconds before exiting: the input must close after the last message

rec = recorder.Recorder("fast")
node = Node()
node.next()  # the first tick of `start`: every node is connected
node.send_output("out", pa.array([HELLO]))
time.sleep(SETTLE)
for i in range(BURST):
    node.send_output("out", pa.array([i]))
time.sleep(PAUSE)
node.send_output("out", pa.array([LAST]))
rec.note(hello=HELLO, burst=list(range(BURST)), last=LAST, consumers=CONSUMERS)
time.sleep(LINGER)
