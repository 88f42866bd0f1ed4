"""Route ``print()`` from node code to that node's log.

While any graph runs, ``sys.stdout`` and ``sys.stderr`` are wrapped by a
:class:`ThreadRouter`. A thread that is executing node code has a *sink* set
in :data:`current`; its writes become complete lines handed to the sink.
Every other thread writes straight through to the stream that was there
before, so the kernel's own output is unchanged.

>>> import io
>>> lines = []
>>> router = ThreadRouter(io.StringIO(), "stdout")
>>> current.sink = lambda line, stdio: lines.append((line, stdio))
>>> _ = router.write("a\\nb"); router.flush_thread()
>>> current.sink = None
>>> lines
[('a', 'stdout'), ('b', 'stdout')]
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["NodeThread", "ThreadRouter", "current", "install", "original", "uninstall"]

Sink = Callable[[str, str], None]


class _Current(threading.local):
    sink: Sink | None = None


#: The sink of the node whose code the current thread is running, if any.
current = _Current()


class ThreadRouter:
    """A text stream that sends node threads' writes to their sink."""

    def __init__(self, stream: TextIO, stdio: str) -> None:
        self._stream = stream
        self._stdio = stdio
        self._partial = threading.local()

    @property
    def wrapped(self) -> TextIO:
        return self._stream

    def write(self, text: str) -> int:
        sink = current.sink
        if sink is None:
            return self._stream.write(text)
        buffered = getattr(self._partial, "text", "") + text
        *lines, rest = buffered.split("\n")
        self._partial.text = rest
        for line in lines:
            sink(line, self._stdio)
        return len(text)

    def flush_thread(self) -> None:
        """Hand the current thread's unterminated line to its sink."""
        rest = getattr(self._partial, "text", "")
        sink = current.sink
        if rest and sink is not None:
            self._partial.text = ""
            sink(rest, self._stdio)

    def flush(self) -> None:
        if current.sink is None:
            self._stream.flush()

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class NodeThread(threading.Thread):
    """A ``threading.Thread`` that keeps the sink of the node that created it.

    Node code sees this class as ``threading.Thread``, so the prints of the
    threads a node starts land in that node's log too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dora_sink = current.sink

    def run(self) -> None:
        current.sink = self._dora_sink
        try:
            super().run()
        finally:
            flush_current()
            current.sink = None


_lock = threading.Lock()
_users = 0


def install() -> None:
    """Wrap stdout and stderr (counted: every ``install`` needs an ``uninstall``)."""
    global _users
    with _lock:
        _users += 1
        if not isinstance(sys.stdout, ThreadRouter):
            sys.stdout = ThreadRouter(sys.stdout, "stdout")  # type: ignore[assignment]
        if not isinstance(sys.stderr, ThreadRouter):
            sys.stderr = ThreadRouter(sys.stderr, "stderr")  # type: ignore[assignment]


def uninstall() -> None:
    """Undo one :func:`install`; the last one restores the original streams.

    A stream that someone else replaced in the meantime is left alone.
    """
    global _users
    with _lock:
        _users = max(0, _users - 1)
        if _users:
            return
        if isinstance(sys.stdout, ThreadRouter):
            sys.stdout = sys.stdout.wrapped
        if isinstance(sys.stderr, ThreadRouter):
            sys.stderr = sys.stderr.wrapped


def original(stdio: str) -> TextIO:
    """The stream under the router: where writes that bypass node capture go."""
    stream = sys.stderr if stdio == "stderr" else sys.stdout
    return stream.wrapped if isinstance(stream, ThreadRouter) else stream


def flush_current() -> None:
    """Flush the calling thread's partial lines on both routed streams."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, ThreadRouter):
            stream.flush_thread()
