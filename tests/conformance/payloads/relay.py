"""An operator: forward every value as it is, and send bytes of its own once."""

from __future__ import annotations

from typing import Any

import recorder
from dora import DoraStatus


class Operator:
    """Relays; at its first input it also sends ``b"from-op"`` on ``raw``."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("relay")
        self.first = True

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            send_output("out", dora_event["value"], dora_event["metadata"])
            if self.first:
                send_output("raw", b"\x00from-op", {"case": "operator bytes"})
                self.first = False
        return DoraStatus.CONTINUE
