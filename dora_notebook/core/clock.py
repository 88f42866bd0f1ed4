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

__all__ = ["Clock", "monotonic_utc", "wait_event"]

# One reading of the wall clock anchors the monotonic one: what
# monotonic_utc gives never goes backwards, even when the system clock is
# set back, as dora's hybrid logical clock never does.
_WALL_AT_ZERO = time.time() - time.monotonic()


#: How often the main thread looks at an event it waits for (seconds): first,
#: then twice as long after each look, up to the most. Each look wakes the
#: kernel's main thread: every 5 ms through a whole ``%dora_start --wait`` cost
#: 1.2 % of a core (measured beside a 30 Hz camera); a long wait ends at most
#: MAIN_THREAD_POLL_MAX_S late.
MAIN_THREAD_POLL_S = 0.005
MAIN_THREAD_POLL_MAX_S = 0.05


def wait_event(event: threading.Event, timeout: float | None = None) -> bool:
    """``event.wait(timeout)``, which a KeyboardInterrupt cannot break for other threads.

    Python delivers signals to the main thread, and an interrupt that lands
    inside ``Event.wait`` can leave the event's own lock held (a ``with``
    statement is not atomic against an asynchronous exception: CPython's
    bpo-29988). Every later ``set()`` then blocks for good, in a thread that
    may hold more: an interrupted ``%dora_start --wait`` left the engine's
    runtime thread stuck in ``done.set()`` with the engine's lock, and the next
    ``%dora_reset`` waited for that lock forever (seen in CI, 1 run in 4 of a
    test that interrupts a wait, under load). On the main thread the event is
    polled instead, without its lock; elsewhere this is ``event.wait``.

    >>> done = threading.Event()
    >>> wait_event(done, 0.01)
    False
    >>> done.set(); wait_event(done)
    True
    """
    if threading.current_thread() is not threading.main_thread():
        return event.wait(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    interval = MAIN_THREAD_POLL_S
    while not event.is_set():
        if deadline is None:
            time.sleep(interval)
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(remaining, interval))
        interval = min(2 * interval, MAIN_THREAD_POLL_MAX_S)
    return True


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
