"""Counts 40 timer ticks out on ``n`` (metadata ``i``), printing and logging as it goes."""

import logging

import pyarrow as pa
from dora import Node

print("counter: before Node()", flush=True)
node = Node()
node.log("warn", "counter is up", "counter")
logging.warning("a python warning from counter")
sent = 0
for event in node:
    if event["type"] == "INPUT":
        node.send_output("n", pa.array([sent]), {"i": sent})
        print(f"count {sent}", flush=True)
        sent += 1
        if sent == 40:
            break
