"""Fan-in: join ``a`` and ``b`` by index and send ``a + b`` once both arrived.

Which of ``a`` and ``b`` arrives first is a race, under both engines; the
joined output is the same either way.
"""

from __future__ import annotations

import pyarrow as pa
import recorder
from dora import Node

rec = recorder.Recorder("merge")
node = Node()
pending: dict[str, dict[int, int]] = {"a": {}, "b": {}}
for event in node:
    rec.event(event)
    if event["type"] != "INPUT":
        continue
    i = event["metadata"]["i"]
    pending[event["id"]][i] = event["value"][0].as_py()
    if i in pending["a"] and i in pending["b"]:
        total = pending["a"].pop(i) + pending["b"].pop(i)
        node.send_output("sum", pa.array([total]), {"i": i})
rec.note(stream_ended=True, unmatched=pending)
