"""Takes 0.1 s per input behind a queue of one: dora drops most of what ``counter`` sends."""

import time

from dora import Node

node = Node()
for event in node:
    if event["type"] == "INPUT":
        print(f"slow got {event['value'][0].as_py()}", flush=True)
        time.sleep(0.1)
