"""First operator of the chain: add one (int64 stays int64)."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
import recorder
from dora import DoraStatus


class Operator:
    """Adds 1, appends its name to ``path``, records."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("op1")

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            path = [*dora_event["metadata"]["path"], "op1"]
            send_output("out", pc.add(dora_event["value"], 1), {"path": path})
        return DoraStatus.CONTINUE
