"""A slow operator: takes ``DELAY`` seconds per input."""

from __future__ import annotations

import time
from typing import Any

import recorder
from dora import DoraStatus

DELAY = 0.03  # seconds per input


class Operator:
    """Records every event, sleeping after each input."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("op_q1")

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            time.sleep(DELAY)
        return DoraStatus.CONTINUE
