"""Record both inputs; at the end, note whether forwarding kept each timestamp.

A forwarded timestamp may differ by a microsecond of rounding under dora-rs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import recorder
from dora import Node

TOLERANCE = timedelta(milliseconds=1)

rec = recorder.Recorder("sink")
node = Node()
stamps: dict[str, dict[int, datetime]] = {"direct": {}, "forwarded": {}}
for event in node:
    rec.event(event)
    if event["type"] == "INPUT":
        stamps[event["id"]][event["metadata"]["k"]] = event["metadata"]["timestamp"]
kept = {
    k: abs(stamps["forwarded"][k] - sent) <= TOLERANCE if k in stamps["forwarded"] else None
    for k, sent in sorted(stamps["direct"].items())
}
rec.note(stream_ended=True, forwarded_timestamp_kept=kept)
