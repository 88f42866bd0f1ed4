"""Second operator of the chain: multiply by 2.5 (int64 becomes double)."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
import recorder
from dora import DoraStatus


class Operator:
    """Scales, appends its name to ``path``, records."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("op2")

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            path = [*dora_event["metadata"]["path"], "op2"]
            send_output("out", pc.multiply(dora_event["value"], 2.5), metadata={"path": path})
        return DoraStatus.CONTINUE
