"""Third operator of the chain: format the values as text (a string array)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import recorder
from dora import DoraStatus


class Operator:
    """Formats, appends its name to ``path``, records."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("op3")

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            path = [*dora_event["metadata"]["path"], "op3"]
            text = pa.array([f"{v:+.1f}" for v in dora_event["value"].to_pylist()])
            send_output("out", text, {"path": path})
        return DoraStatus.CONTINUE
