"""Taps: the last N messages of an output, kept only while someone asks for them.

An output nobody taps or records costs one empty-dict check per message. A
tap keeps a bounded buffer of (time, metadata, value) and turns it into a
DataFrame. The engine hands each message of such an output to one
:class:`Sink`: a tap, a recording's edge, or a :class:`Tee` of both.

>>> import pyarrow as pa
>>> from datetime import datetime, timezone
>>> tap = Tap(2)
>>> for i in range(3):
...     tap.record(pa.array([i]), {"timestamp": datetime(2026, 1, 1, tzinfo=timezone.utc), "i": i})
>>> tap.frame()[["metadata", "value"]]
   metadata value
0  {'i': 1}   [1]
1  {'i': 2}   [2]
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Sink", "Tap", "Tee"]


class Sink(Protocol):
    """What the engine hands each message sent on an output that someone watches.

    With the message: when it was sent (``time.monotonic_ns()``, 0 if not
    taken), the engine's number for it and that of the input its node was
    handling (-1: none), which a recording keeps (see :mod:`.record`).
    """

    def record(
        self,
        value: Any,
        metadata: dict[str, Any],
        sent_ns: int = 0,
        number: int = -1,
        cause: int = -1,
    ) -> None: ...


class Tee:
    """One sink that hands each message to several (a tapped output being recorded).

    >>> seen = []
    >>> class Keep:
    ...     def record(self, value, metadata, sent_ns=0, number=-1, cause=-1): seen.append(value)
    >>> Tee(Keep(), Keep()).record(1, {}); seen
    [1, 1]
    """

    __slots__ = ("sinks",)

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = sinks

    def record(
        self,
        value: Any,
        metadata: dict[str, Any],
        sent_ns: int = 0,
        number: int = -1,
        cause: int = -1,
    ) -> None:
        for sink in self.sinks:
            sink.record(value, metadata, sent_ns, number, cause)


class Tap:
    """A bounded buffer of the messages sent on one output."""

    def __init__(self, size: int) -> None:
        self._items: deque[tuple[Any, dict[str, Any], Any]] = deque(maxlen=size)
        self._cond = threading.Condition()
        self.total = 0

    @property
    def size(self) -> int:
        return self._items.maxlen or 0

    def resize(self, size: int) -> None:
        with self._cond:
            if size > self.size:
                self._items = deque(self._items, maxlen=size)

    def record(
        self,
        value: Any,
        metadata: dict[str, Any],
        sent_ns: int = 0,
        number: int = -1,
        cause: int = -1,
    ) -> None:
        """Keep one message (the times and numbers a recording keeps are not needed here)."""
        with self._cond:
            self._items.append((metadata.get("timestamp"), metadata, value))
            self.total += 1
            self._cond.notify_all()

    def wait(self, count: int, timeout: float) -> None:
        """Wait until ``count`` messages are buffered, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._items) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    return

    def frame(self, last: int | None = None) -> pd.DataFrame:
        """The buffered messages, oldest first: ``time``, ``metadata``, ``value``."""
        import pandas as pd

        with self._cond:
            items = list(self._items)
        if last is not None:
            items = items[-last:] if last else []
        rows = [
            {
                "time": stamp,
                "metadata": {k: v for k, v in meta.items() if k != "timestamp"},
                "value": value.to_pylist() if isinstance(value, pa.Array) else value,
            }
            for stamp, meta, value in items
        ]
        return pd.DataFrame(rows, columns=["time", "metadata", "value"])
