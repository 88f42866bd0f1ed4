"""An operator that tries the edge cases with its ``send_output``.

It answers ``hello`` with ``hello`` (the first message on its connection goes
alone) and tries the cases at ``go``, which comes a while later.
"""

from __future__ import annotations

from typing import Any

import cases
import pyarrow as pa
import recorder
from dora import DoraStatus


class Operator:
    """Says hello, then runs the cases once, at ``go``."""

    def __init__(self) -> None:
        self.rec = recorder.Recorder("opsrc")

    def on_event(self, dora_event: dict[str, Any], send_output: Any) -> DoraStatus:
        self.rec.event(dora_event)
        if dora_event["type"] == "INPUT":
            case = dora_event["metadata"].get("case")
            if case == "hello":
                send_output("out", pa.array([0]), {"case": "hello"})
            elif case == "go":
                cases.run_cases(send_output, self.rec)
        return DoraStatus.CONTINUE
