"""A slow custom node: takes ``DELAY`` seconds per input. Its id is its argument."""

from __future__ import annotations

import sys
import time

import recorder
from dora import Node

DELAY = 0.03  # seconds per input

rec = recorder.Recorder(sys.argv[1])
node = Node()
for event in node:
    rec.event(event)
    if event["type"] == "INPUT":
        time.sleep(DELAY)
