"""Two inputs: ``g`` closes when ``gate`` stops, ``s`` when ``src`` exits.

STOP (ALL_INPUTS_CLOSED) must come only after both closed. How events of ``g``
and ``s`` interleave is a race; the harness compares them input by input.
"""

from __future__ import annotations

import recorder
from dora import Node

rec = recorder.Recorder("mixed")
node = Node()
while (event := node.next()) is not None:
    rec.event(event)
rec.note(stream_ended=True)
