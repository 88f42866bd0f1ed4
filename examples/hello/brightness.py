"""A dora operator: the mean brightness of each frame."""

import numpy as np
import pyarrow as pa
from dora import DoraStatus

HEIGHT, WIDTH = 48, 64


class Operator:
    def on_event(self, dora_event, send_output) -> DoraStatus:
        if dora_event["type"] == "INPUT":
            frame = dora_event["value"].to_numpy().reshape((HEIGHT, WIDTH, 3))
            mean = float(frame.mean())
            send_output("mean", pa.array([mean]), dora_event["metadata"])
        return DoraStatus.CONTINUE
