"""An operator that forwards each value with ``dora_event["metadata"]`` unchanged."""

from __future__ import annotations

from typing import Any

import recorder
from dora import DoraStatus


class Operator:
    """Records and forwards."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("fwd")

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            send_output("out", dora_event["value"], dora_event["metadata"])
        return DoraStatus.CONTINUE
