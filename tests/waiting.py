"""Waiting in tests: on a condition, never for a fixed time.

>>> box = []
>>> wait_for(lambda: box.append(1) or len(box) == 3, 1.0, "three calls")
>>> box
[1, 1, 1]
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_for"]


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` every ``interval`` seconds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
