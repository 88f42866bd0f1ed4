"""Where a node's thread is blocked: the line of the node's code, and the call on it.

:meth:`EmbeddedEngine.stop <dora_notebook.core.engine.EmbeddedEngine.stop>`
raises an exception in a node's thread that did not stop, but Python only
delivers it between bytecodes: a thread inside a C call (``time.sleep``, a
socket read, a lock wait) goes on until that call returns. This module says
where such a thread is, in the node's own code, for its panel and for
``%dora_stop``.

>>> import socket, threading
>>> a, b = socket.socketpair()
>>> def node():
...     a.recv(1)
>>> thread = threading.Thread(target=node)
>>> thread.start()
>>> import time
>>> while (where := blocked_at(thread, {node.__code__.co_filename})) is None:
...     time.sleep(0.01)
>>> where.startswith("still blocked in a.recv, line ")
True
>>> _ = b.send(b"x"); thread.join(); a.close(); b.close()
"""

from __future__ import annotations

import ast
import linecache
import sys
import threading
from collections.abc import Collection
from types import FrameType

__all__ = ["blocked_at"]


def blocked_at(thread: threading.Thread, files: Collection[str]) -> str | None:
    """``still blocked in time.sleep, line 4``: where ``thread`` is in the code of ``files``.

    The innermost frame of ``thread`` whose code comes from one of ``files``
    (a node's :meth:`~dora_notebook.core.graph.NodeSpec.code_name`) gives the
    line; the call it is executing, as written there, gives the name. None
    when the thread has ended or is not inside that code.
    """
    ident = thread.ident
    if ident is None or not thread.is_alive():
        return None
    frame = sys._current_frames().get(ident)
    while frame is not None and frame.f_code.co_filename not in files:
        frame = frame.f_back
    if frame is None:
        return None
    called = _called(frame)
    line = f"line {frame.f_lineno}"
    return f"still blocked in {called}, {line}" if called else f"still blocked at {line}"


def _called(frame: FrameType) -> str | None:
    """The function the frame's current call names (``time.sleep``), if it is a plain call.

    Python 3.11 and later give each instruction the source span of its
    expression; for a call that span is the whole call, whose callee is read
    back with :mod:`ast`. Anything else (Python 3.10, source not at hand) gives None.
    """
    positions = getattr(frame.f_code, "co_positions", None)
    if positions is None:
        return None
    try:
        start, end, col, end_col = list(positions())[frame.f_lasti // 2]
    except IndexError:
        return None
    lines = linecache.getlines(frame.f_code.co_filename, frame.f_globals)
    if start is None or end is None or col is None or end_col is None or end > len(lines):
        return None
    # Column offsets count UTF-8 bytes.
    span = [line.encode() for line in lines[start - 1 : end]]
    span[-1] = span[-1][:end_col]
    span[0] = span[0][col:]
    try:
        call = ast.parse(b"".join(span).decode(), mode="eval").body
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None
    return ast.unparse(call.func) if isinstance(call, ast.Call) else None
