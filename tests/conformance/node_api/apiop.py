"""An operator: DoraStatus as seen by operator code and a helper module; keyword metadata."""

from __future__ import annotations

from typing import Any

import helpers
import recorder
from dora import DoraStatus


class Operator:
    """Notes DoraStatus, echoes each value with ``metadata=`` given by keyword."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("apiop")
        self.rec.note(
            status_members={s.name: s.value for s in DoraStatus},
            helper_sees_same_status=helpers.DoraStatus is DoraStatus,
        )

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            result = send_output("echo", dora_event["value"], metadata={"via": "keyword"})
            self.rec.note(send_output_returned=repr(result))
        return DoraStatus.CONTINUE
