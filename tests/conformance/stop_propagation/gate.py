"""Forward the first ``FORWARD`` inputs, then return STOP at the next one.

It returns STOP at an input it does not forward rather than right after
forwarding the last one: dora-rs may deliver the closing of the output before
a message sent just before the operator stopped.
"""

from __future__ import annotations

from typing import Any

import recorder
from dora import DoraStatus

FORWARD = 3


class Operator:
    """Records what it gets; nothing may arrive after its STOP."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("gate")
        self.inputs = 0

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] != "INPUT":
            return DoraStatus.CONTINUE
        self.inputs += 1
        if self.inputs > FORWARD:
            self.rec.note(returning="STOP")
            return DoraStatus.STOP
        send_output("out", dora_event["value"], dora_event["metadata"])
        return DoraStatus.CONTINUE
