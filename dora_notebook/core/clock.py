"""One thread that calls functions at given times: dora timers and throttled flushes.

>>> import threading
>>> clock = Clock("doc")
>>> clock.start()
>>> fired = threading.Event()
>>> clock.call_later(0.01, fired.set)
>>> fired.wait(1)
True
>>> clock.stop()
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["Clock", "monotonic_utc"]

# One reading of the wall clock anchors the monotonic one: what
# monotonic_utc gives never goes backwards, even when the system clock is
# set back, as dora's hybrid logical clock never does.
_WALL_AT_ZERO = time.time() - time.monotonic()


def monotonic_utc() -> datetime:
    """Now as a UTC datetime that never goes backwards (``Node.timestamp``).

    >>> first = monotonic_utc()
    >>> first.tzinfo is timezone.utc and monotonic_utc() >= first
    True
    """
    return datetime.fromtimestamp(_WALL_AT_ZERO + time.monotonic(), timezone.utc)


class Clock:
    """A named daemon thread running callbacks at ``time.monotonic()`` deadlines.

    Callbacks run on the clock's thread, one at a time, and must be short.
    """

    def __init__(self, name: str) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"dora-clock-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def call_at(self, due: float, callback: Callable[[], None]) -> None:
        """Call ``callback()`` at monotonic time ``due`` (ignored once stopped)."""
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._heap, (due, next(self._order), callback))
            if self._heap[0][2] is callback:
                self._cond.notify()

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self.call_at(time.monotonic() + delay, callback)

    def cancel(self) -> None:
        """Stop without waiting (safe under other locks); callbacks not yet due are dropped."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()

    def stop(self, timeout: float = 1.0) -> None:
        """Cancel, then join the thread."""
        self.cancel()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    delay = self._heap[0][0] - time.monotonic() if self._heap else None
                    if delay is not None and delay <= 0:
                        break
                    self._cond.wait(delay)
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:  # a failing callback must not stop the timers
                traceback.print_exc()
