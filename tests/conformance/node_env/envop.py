"""An operator that notes its env and working directory, then stops."""

from __future__ import annotations

import os
from typing import Any

import recorder
from dora import DoraStatus

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["GREETING", "CONFORMANCE_INHERITED", "OP_SETTING"]


class Operator:
    """Notes what it sees when built; stops at its first tick."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("envop")
        self.rec.note(
            cwd_is_descriptor_folder=os.path.samefile(os.getcwd(), HERE),
            environ={name: os.environ.get(name) for name in NAMES},
        )

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        return DoraStatus.STOP
