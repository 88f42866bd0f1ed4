"""An operator that counts ticks of its timer and returns STOP at the ``TICKS``-th."""

from __future__ import annotations

from typing import Any

import recorder
from dora import DoraStatus

TICKS = 4


class Operator:
    """Records its ticks; stops itself after ``TICKS`` of them."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("tickop")
        self.ticks = 0

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            self.ticks += 1
            if self.ticks == TICKS:
                return DoraStatus.STOP
        return DoraStatus.CONTINUE
