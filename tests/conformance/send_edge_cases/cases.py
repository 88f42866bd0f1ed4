"""The send_output edge cases shared by ``src`` (a node) and ``opsrc`` (an operator).

Each case sends one message with ``metadata={"case": name, **extra}``; what
it raises (or not) is noted by the sender, what arrives by the sink.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import recorder

#: name -> (data, extra metadata or a non-dict metadata); dora-rs 1.1 refuses these.
REFUSED: dict[str, tuple[Any, Any]] = {
    "data: list": ([1, 2, 3], {}),
    "data: str": ("text", {}),
    "data: int": (7, {}),
    "data: None": (None, {}),
    "data: numpy array": (np.array([1, 2, 3]), {}),
    "metadata: not a dict": (pa.array([0]), "abc"),
    "metadata: int key": (pa.array([0]), {1: "x"}),
    "metadata: int beyond 64 bits": (pa.array([0]), {"n": 2**63}),
    "metadata: mixed list": (pa.array([0]), {"l": [1, "a"]}),
}
#: name -> extra metadata that dora-rs 1.1 accepts but converts.
COERCED: dict[str, dict[str, Any]] = {
    "metadata: naive datetime": {"when": datetime(2024, 1, 2, 3, 4, 5)},
    "metadata: dict": {"d": {"a": 1, "b": "x"}},
    "metadata: None": {"n": None},
    "metadata: bytes": {"b": b"ab"},
}


def run_cases(send: Callable[..., None], rec: recorder.Recorder) -> None:
    """Try every case with ``send(output_id, data, metadata)``; note each outcome."""
    attempts = [
        (name, data, {"case": name, **extra} if isinstance(extra, dict) else extra)
        for name, (data, extra) in REFUSED.items()
    ]
    attempts += [(name, pa.array([1]), {"case": name, **extra}) for name, extra in COERCED.items()]
    for name, data, metadata in attempts:
        rec.note(case=name, outcome=recorder.outcome(partial(send, "out", data, metadata)))
