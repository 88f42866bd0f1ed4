"""Route ``print()`` from node code to that node's log.

While any graph runs, ``sys.stdout`` and ``sys.stderr`` are wrapped by a
:class:`ThreadRouter`. A thread that is executing node code has that node's
:class:`LineSink` in :data:`current`; its writes become complete lines handed
to the sink. Every other thread writes straight through to the stream that
was there before, so the kernel's own output is unchanged.

>>> import io
>>> lines = []
>>> router = ThreadRouter(io.StringIO(), "stdout")
>>> current.sink = LineSink(lambda line, stdio: lines.append((line, stdio)))
>>> _ = router.write("a\\nb")
>>> current.sink.flush(); current.sink = None
>>> lines
[('a', 'stdout'), ('b', 'stdout')]
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

__all__ = [
    "LineSink",
    "NodeThread",
    "ThreadRouter",
    "current",
    "install",
    "original",
    "uninstall",
]


class LineSink:
    """Cuts one node's writes into lines and hands each to ``emit(line, stdio)``.

    The unfinished line is kept per sink, not per thread: operators share the
    runtime thread, and a half line of one must not join the next one's text.
    """

    __slots__ = ("_emit", "_lock", "_partial")

    def __init__(self, emit: Callable[[str, str], None]) -> None:
        self._emit = emit
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()

    def write(self, text: str, stdio: str) -> None:
        with self._lock:
            *lines, rest = (self._partial.pop(stdio, "") + text).split("\n")
            if rest:
                self._partial[stdio] = rest
        for line in lines:
            self._emit(line, stdio)

    def flush(self) -> None:
        """Hand over the unfinished lines (at the end of the node)."""
        with self._lock:
            partial, self._partial = self._partial, {}
        for stdio, rest in partial.items():
            self._emit(rest, stdio)


class _Current(threading.local):
    sink: LineSink | None = None


#: The sink of the node whose code the current thread is running, if any.
current = _Current()


class ThreadRouter:
    """A text stream that sends node threads' writes to their sink."""

    def __init__(self, stream: TextIO, stdio: str) -> None:
        self._stream = stream
        self._stdio = stdio

    @property
    def wrapped(self) -> TextIO:
        return self._stream

    def write(self, text: str) -> int:
        sink = current.sink
        if sink is None:
            return self._stream.write(text)
        sink.write(text, self._stdio)
        return len(text)

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
