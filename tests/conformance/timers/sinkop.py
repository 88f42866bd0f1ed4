"""An operator that records every event it gets."""

from __future__ import annotations

from typing import Any

import recorder
from dora import DoraStatus


class Operator:
    """Records events; never stops by itself."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("sinkop")

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        return DoraStatus.CONTINUE
