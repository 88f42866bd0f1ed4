"""An operator at the end of the fan-in: records the joined values."""

from __future__ import annotations

from typing import Any

import recorder
from dora import DoraStatus


class Operator:
    """Records every event."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("total")

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        return DoraStatus.CONTINUE
