"""An operator: forward twice each value, with its metadata."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
import recorder
from dora import DoraStatus


class Operator:
    """Doubles and records."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("double")

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            doubled = pc.multiply(dora_event["value"], 2)
            send_output("doubled", doubled, {"i": dora_event["metadata"]["i"]})
        return DoraStatus.CONTINUE
