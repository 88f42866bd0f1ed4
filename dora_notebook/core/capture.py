"""Route ``print()`` and Python ``logging`` from node code to that node's log.

While any graph runs, ``sys.stdout`` and ``sys.stderr`` are wrapped by a
:class:`ThreadRouter`. A thread that is executing node code has that node's
:class:`LineSink` in :data:`current`; its writes become complete lines handed
to the sink. Every other thread writes straight through to the stream that
was there before, so the kernel's own output is unchanged.

Work a node hands to other threads stays in its log: while any graph runs,
``threading.Thread.start`` notes the starting thread's sink on the new
thread, which begins with it. This follows a ``ThreadPoolExecutor``'s
workers (started by ``submit``), asyncio's default executor, ``Timer`` and
threads made by any module, since they are all started through
``threading.Thread.start`` by the thread that needs them.

Records of Python's ``logging`` that node code makes (with any logger, as
dora's examples call ``logging.info``) go to its sink's ``record`` function,
as dora-rs 1.1's bridge hands a node's records to dora: while a graph runs,
three ``logging`` hooks act for node threads only. The root logger's level
and handlers are the kernel's, so for node code a level is what the logger
or a parent below the root sets (the root stands at 0, as dora's bridge
leaves it), records that reach the root go to the node instead of the root's
handlers (so the kernel never prints them), and ``logging.basicConfig`` does
nothing (the node's log is its configuration). Other threads log as before.

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

import logging
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, TextIO

__all__ = [
    "LineSink",
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

    __slots__ = ("_emit", "_lock", "_partial", "record", "threads")

    def __init__(
        self,
        emit: Callable[[str, str], None],
        record: Callable[[logging.LogRecord], None] | None = None,
    ) -> None:
        self._emit = emit
        #: Where the node's ``logging`` records go (None: logging as outside nodes).
        self.record = record
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()
        #: The threads started while this sink was current (the node's own
        #: threads and pool workers): a stop cannot end them, so it names them.
        self.threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()

    def running_threads(self) -> list[threading.Thread]:
        """The threads this node's code started that are still alive."""
        return [t for t in list(self.threads) if t.is_alive()]

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
    def __init__(self) -> None:
        # Runs in each thread on its first use there: a thread started while
        # a node's sink was current begins with that sink (see _start).
        self.sink: LineSink | None = getattr(threading.current_thread(), "_dora_sink", None)


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


# The start method _start calls: the one in place when install() hooked in.
_thread_start = threading.Thread.start


def _start(thread: threading.Thread) -> None:
    """``threading.Thread.start`` while a graph runs: the new thread inherits the sink.

    A hook on thread start rather than a ``contextvars`` sink: neither
    ``ThreadPoolExecutor.submit`` nor ``threading.Thread`` copies the context,
    while every thread, a pool's worker included, is started here by the
    thread that asks for it. A pool's worker thus keeps the sink of the node
    whose work started it, even for work submitted later by someone else.
    """
    sink = current.sink
    if sink is not None:
        thread._dora_sink = sink  # type: ignore[attr-defined]
        sink.threads.add(thread)
    _thread_start(thread)


def _node_sink() -> LineSink | None:
    """The sink of the node the calling thread serves, if it takes ``logging`` records."""
    sink = current.sink
    return sink if sink is not None and sink.record is not None else None


_is_enabled_for = logging.Logger.isEnabledFor
_call_handlers = logging.Logger.callHandlers
_basic_config = logging.basicConfig


def _enabled(logger: logging.Logger, level: int) -> bool:
    """``Logger.isEnabledFor`` while a graph runs: node code ignores the root's (kernel's) level."""
    if _node_sink() is None:
        return _is_enabled_for(logger, level)
    if logger.disabled or logger.manager.disable >= level:
        return False
    while logger.parent is not None:
        if logger.level:
            return level >= logger.level
        logger = logger.parent
    return True


def _handle(logger: logging.Logger, record: logging.LogRecord) -> None:
    """``Logger.callHandlers`` while a graph runs: what reaches the root goes to the node."""
    sink = _node_sink()
    if sink is None:
        _call_handlers(logger, record)
        return
    at: logging.Logger | None = logger
    while at is not None:
        if at is logging.root:
            sink.record(record)  # type: ignore[misc]
            return
        for handler in at.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)
        at = at.parent if at.propagate else None


def _basic(*args: Any, **kwargs: Any) -> None:
    """``logging.basicConfig`` while a graph runs: nothing for node code (see the module doc)."""
    if _node_sink() is None:
        _basic_config(*args, **kwargs)


_lock = threading.Lock()
_users = 0


def install() -> None:
    """Wrap stdout and stderr, hook thread start and ``logging`` (for node threads).

    Counted: every ``install`` needs an ``uninstall``.
    """
    global _users, _thread_start
    with _lock:
        _users += 1
        if logging.Logger.callHandlers is not _handle:
            logging.Logger.isEnabledFor = _enabled  # type: ignore[method-assign]
            logging.Logger.callHandlers = _handle  # type: ignore[method-assign]
            logging.basicConfig = _basic
        if threading.Thread.start is not _start:
            _thread_start = threading.Thread.start
            threading.Thread.start = _start  # type: ignore[method-assign]
        if not isinstance(sys.stdout, ThreadRouter):
            sys.stdout = ThreadRouter(sys.stdout, "stdout")  # type: ignore[assignment]
        if not isinstance(sys.stderr, ThreadRouter):
            sys.stderr = ThreadRouter(sys.stderr, "stderr")  # type: ignore[assignment]


def uninstall() -> None:
    """Undo one :func:`install`; the last one restores the original streams.

    A stream (or ``Thread.start``) that someone else replaced in the
    meantime is left alone.
    """
    global _users
    with _lock:
        _users = max(0, _users - 1)
        if _users:
            return
        if threading.Thread.start is _start:
            threading.Thread.start = _thread_start  # type: ignore[method-assign]
        if logging.Logger.callHandlers is _handle:
            logging.Logger.isEnabledFor = _is_enabled_for  # type: ignore[method-assign]
            logging.Logger.callHandlers = _call_handlers  # type: ignore[method-assign]
            logging.basicConfig = _basic_config
        if isinstance(sys.stdout, ThreadRouter):
            sys.stdout = sys.stdout.wrapped
        if isinstance(sys.stderr, ThreadRouter):
            sys.stderr = sys.stderr.wrapped


def original(stdio: str) -> TextIO:
    """The stream under the router: where writes that bypass node capture go."""
    stream = sys.stderr if stdio == "stderr" else sys.stdout
    return stream.wrapped if isinstance(stream, ThreadRouter) else stream
