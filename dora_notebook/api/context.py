"""The OOMOL/oocana-style context every operator and custom node gets.

An operator's ``on_event(dora_event, send_output)`` receives a
:class:`Context` as ``send_output``: calling it is dora's
``send_output(output_id, data, metadata=None)``, so dora code runs unchanged,
and its methods are oocana's block API. A custom node reaches the same
object as ``node.context``.

.. code-block:: python

    class Operator:
        def on_event(self, dora_event, context):
            if dora_event["type"] == "INPUT":
                frame = dora_event["value"].to_numpy()
                context.report_progress(50)
                context.preview({"type": "text", "data": f"{frame.size} pixels"})
                context.output(frame.mean(), "brightness")

The API itself is :class:`BaseContext`; what differs between engines is only
the transport. :class:`Context` sends through the embedded engine, and
:class:`dora_notebook.dora_rs.shim.DoraContext` through dora-rs's
``send_output`` and the node's standard output (exported dataflows).
"""

from __future__ import annotations

import json
import logging
import numbers
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..core import logs
from ..core.events import to_arrow

if TYPE_CHECKING:
    from ..core.runner import Runner

__all__ = ["PROGRESS_INTERVAL", "SESSION_ID", "BaseContext", "Context", "as_arrow"]

#: How many distinct misuse warnings (bad progress values, bad previews) a node
#: gets; past it the panel has said enough.
_MAX_WARNED = 100

#: One id per process (per kernel), as oocana has one session per kernel.
SESSION_ID = uuid.uuid4().hex

#: Progress reports of one node are sent at most this often (seconds); the
#: latest value always arrives, at the latest this long after it was given.
PROGRESS_INTERVAL = 0.05

_DEFAULT_SLOT = "default"


def as_arrow(value: object) -> pa.Array | None:
    """Convert what oocana's ``output`` accepts to an Arrow array, or None if Arrow can't.

    Scalars become one-element arrays, lists arrays, numpy arrays flat arrays
    (zero-copy when contiguous), DataFrames, Tables and RecordBatches struct
    arrays with one row per record.

    >>> as_arrow(3).to_pylist(), as_arrow([1.5, 2.5]).type
    ([3], DataType(double))
    >>> as_arrow(object()) is None
    True
    """
    if isinstance(value, (pa.Array, bytes)):
        return to_arrow(value)
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    if isinstance(value, (bool, int, float, str, np.generic)):
        return pa.array([value])
    if isinstance(value, np.ndarray):
        return pa.array(value.ravel())
    if isinstance(value, pa.Table):
        return value.to_struct_array().combine_chunks()
    if isinstance(value, pa.RecordBatch):
        return value.to_struct_array()
    if hasattr(value, "__dataframe__") and hasattr(value, "to_dict"):  # a pandas DataFrame
        return pa.Table.from_pandas(value, preserve_index=False).to_struct_array().combine_chunks()
    if isinstance(value, (list, tuple)):
        try:
            return pa.array(value)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            return None
    return None


def _numbers(value: object, what: str) -> list[float]:
    """``value`` (a number, or a sequence or 1-D array of them) as a list of floats.

    NaN is kept (a gap in the line); what is not a real number raises.

    >>> _numbers(np.array([1, 2], np.int16), "y"), _numbers(2.5, "y")
    ([1.0, 2.0], [2.5])
    """
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        value = value.to_numpy(zero_copy_only=False)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return [float(value)]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{what} must be a number or a sequence of numbers, got {_short(value)}")
    array = np.asarray(value)
    if array.ndim != 1 or not (
        np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)
    ):
        raise TypeError(f"{what} must be a number or a sequence of numbers, got {_short(value)}")
    return array.astype(float).tolist()


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


class _Progress:
    """Per-node progress throttling: latest value wins, nothing is lost at the end.

    The context's transport supplies ``_emit`` (send a report) and
    ``_call_at`` (run a function at a ``time.monotonic()`` instant).
    """

    def __init__(self, context: BaseContext) -> None:
        self._context = context
        self._lock = threading.Lock()
        self._last_sent = -1e9
        self._pending: float | None = None
        self._scheduled = False

    def report(self, value: float) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_sent >= PROGRESS_INTERVAL and not self._scheduled:
                self._last_sent = now
                self._pending = None
                send = True
            else:
                self._pending = value
                send = False
                if not self._scheduled:
                    self._scheduled = True
                    self._context._call_at(self._last_sent + PROGRESS_INTERVAL, self.flush)
        if send:
            self._context._emit("progress", value)

    def flush(self) -> None:
        with self._lock:
            value, self._pending, self._scheduled = self._pending, None, False
            if value is not None:
                self._last_sent = time.monotonic()
        if value is not None:
            self._context._emit("progress", value)


#: Log levels as the panel shows them: Python's words for dora's and Python's levels.
_LEVELS = {
    "critical": "critical",
    "error": "error",
    "warn": "warning",
    "warning": "warning",
    "info": "info",
    "debug": "debug",
    "trace": "trace",
}


class _PanelHandler(logging.Handler):
    """``context.logger``'s handler: each record on the panel, with its level, file and line."""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(logging.DEBUG)
        self._context = context
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._context.report_record(
            record.levelname, text, file=record.pathname, line=record.lineno
        )


class BaseContext:
    """oocana's block API for one node, whatever carries its messages.

    Everything a node can ask of its context lives here once; a subclass
    supplies the transport, i.e. how an output is sent and where a report
    goes: :class:`Context` uses the embedded engine, and
    :class:`dora_notebook.dora_rs.shim.DoraContext` dora's ``send_output`` and
    the node's standard output. The hooks a transport implements:

    ``__call__(output_id, data, metadata=None)``
        dora's ``send_output``.
    ``_declares(handle)``
        whether the node declares output ``handle``.
    ``_send(handle, value)``
        send an oocana output (any value :func:`as_arrow` may convert) with
        the metadata of the event being handled.
    ``_emit(kind, data)``
        publish a report (``preview``, ``progress``, ``log``, ...).
    ``_report_error(error)``
        report an error; the node is marked failed.
    ``_finish()``
        the node said it is done.
    ``_call_at(when, function)``
        call ``function()`` at ``time.monotonic()`` instant ``when`` (used
        to deliver a throttled progress value).
    ``job_id``, ``block_path``
        properties.
    """

    def __init__(self, node_id: str) -> None:
        self._node_id = node_id
        self._event: Mapping[str, Any] | None = None
        self._inputs: dict[str, Any] = {}
        self._done = False
        self._progress = _Progress(self)
        self._warned: set[str] = set()  # what _warn_once has said already
        self._plotted: dict[str, int] = {}  # points plotted per series (the default x)
        # A logger of its own, outside logging's tree: records never reach
        # the root logger (and so the kernel's current cell).
        self.logger = logging.Logger(f"dora_notebook.node.{node_id}", logging.DEBUG)
        self.logger.addHandler(_PanelHandler(self))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of node {self.node_id!r}>"

    # -- the transport (see the class docstring) ----------------------------------

    def __call__(
        self, output_id: str, data: object, metadata: dict[str, Any] | None = None
    ) -> None:
        """dora's ``send_output``: ``data`` is ``bytes`` or a pyarrow Array."""
        raise NotImplementedError

    def _declares(self, handle: str) -> bool:
        raise NotImplementedError

    def _send(self, handle: str, value: object) -> None:
        raise NotImplementedError

    def _emit(self, kind: str, data: Any) -> None:
        raise NotImplementedError

    def _report_error(self, error: str) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _call_at(self, when: float, function: Callable[[], None]) -> None:
        raise NotImplementedError

    # -- the event being handled --------------------------------------------------

    def _set_event(self, event: Mapping[str, Any]) -> None:
        self._event = event
        if event["type"] == "INPUT":
            self._inputs[event["id"]] = event["value"]

    def _metadata(self) -> dict[str, Any] | None:
        event = self._event
        return event.get("metadata") if event is not None else None

    # -- oocana: outputs ----------------------------------------------------------

    def output(self, output: object, handle: str, done: bool = False) -> None:
        """Send ``output`` on ``handle`` (oocana's argument order), then finish if ``done``."""
        if self._check_handles([handle]):
            self._send(handle, output)
            if done:
                self.done()

    def outputs(self, values: Mapping[str, object]) -> None:
        """Send several outputs at once; nothing is sent if any key is undeclared."""
        if self._check_handles(list(values)):
            for handle, value in values.items():
                self._send(handle, value)

    def _check_handles(self, handles: list[str]) -> bool:
        for handle in handles:
            if not self._declares(handle):
                self.send_error(
                    f"Output handle key: [{handle}] is not defined in Block outputs schema."
                )
                return False
        return True

    def done(self, error: str | None = None) -> None:
        """The node has finished (failed, with ``error``); a second call is ignored."""
        if self._done:
            return
        self._done = True
        self._progress.flush()
        if error is not None:
            self.send_error(error)
        self._finish()

    def finish(self, result: Mapping[str, object] | None = None, error: str | None = None) -> None:
        """Send ``result`` (as :meth:`outputs`), then :meth:`done`."""
        if self._done:
            return
        if result:
            self.outputs(result)
        self.done(error)

    # -- oocana: reports ------------------------------------------------------------

    def send_message(self, payload: object) -> None:
        self._emit("message", payload)

    def preview(
        self, payload: object, id: str | None = None, *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Show ``payload`` on the node's panel; one slot per ``id``.

        An image (a dora INPUT event with ``width``/``height``/``encoding``
        metadata, a value with such ``metadata``, a numpy uint8 ``HxW[xC]``
        array, a PIL image) is kept as it is, by reference: it is encoded only
        if and when the panel shows it, so the node pays no encoding. A node
        that writes into the same array for its next frame may see the newer
        pixels shown: preview a copy then (dora's event values never change).

        .. code-block:: python

            context.preview(dora_event)  # an image input, as dora sends it
            context.preview(frame, metadata={"width": 640, "height": 480, "encoding": "bgr8"})
        """
        from ..preview.normalize import normalize

        try:
            normalized = normalize(payload, metadata)
        except Exception as exc:  # node code passed something previews cannot show
            text = f"preview: {exc} (nothing shown)"
            self._warn_once(text, text)
            return
        self._emit(
            "preview", {"slot": _DEFAULT_SLOT if id is None else str(id), "payload": normalized}
        )

    def plot(self, name: str, y: object, x: object = None, *, window: int = 500) -> None:
        """Append a point (or several) to the series ``name`` of the node's live chart.

        ``y`` is a number or a sequence of numbers, ``x`` the same or None (then
        each point's x is its number in the series: 0, 1, 2...). The chart keeps
        the latest ``window`` points of each series; the browser draws it, at
        most ``preview_hz`` times a second with every point since the last
        redraw. Several names share the node's one chart. A value that is not
        a number is ignored with one warning.

        .. code-block:: python

            context.plot("temperature", dora_event["value"][0].as_py())
            context.plot("error", [0.1, 0.3], x=[t0, t1], window=2000)
        """
        try:
            ys = _numbers(y, "y")
            if x is None:
                first = self._plotted.get(str(name), 0)
                xs = [float(first + i) for i in range(len(ys))]
            else:
                xs = _numbers(x, "x")
                if len(xs) != len(ys):
                    raise ValueError(f"x has {len(xs)} values and y {len(ys)}")
            if isinstance(window, bool) or not isinstance(window, int) or window < 1:
                raise ValueError(f"window must be a positive int, got {window!r}")
        except (TypeError, ValueError) as exc:
            self._warn_once(f"plot {name}", f"plot {name!r}: {exc} (ignored, and any like it)")
            return
        if not ys:
            return
        name = str(name)
        self._plotted[name] = self._plotted.get(name, 0) + len(ys)
        self._emit("plot", {"name": name, "x": xs, "y": ys, "window": window})

    def report_progress(self, progress: float) -> None:
        """Progress in [0, 100]; throttled, the latest value always shown.

        A number outside [0, 100] is clamped (``inf`` is 100); ``nan`` and
        anything that is not a number (``None``, ``"50"``) are ignored, with
        one warning on the panel: a progress bar is not worth failing a node.
        """
        if isinstance(progress, numbers.Real) and not isinstance(progress, bool):
            value = float(progress)
            if value == value:  # not nan
                self._progress.report(min(100.0, max(0.0, value)))
                return
        self._warn_once(
            "progress",
            f"report_progress takes a number in [0, 100]; ignored {progress!r} "
            "(and any other such value)",
        )

    def _warn_once(self, key: str, text: str) -> None:
        """A warning on the panel, once per ``key`` for this node (a frame loop
        passing the same bad value would otherwise flood the panel)."""
        if key not in self._warned and len(self._warned) < _MAX_WARNED:
            self._warned.add(key)
            self.send_warning(text)

    def flush_progress(self) -> None:
        """Send a progress value held back by throttling now."""
        self._progress.flush()

    def report_log(self, line: str, stdio: str = "stdout") -> None:
        self._emit("log", {"line": str(line), "stdio": stdio})

    def report_record(
        self,
        level: str,
        message: str,
        target: str | None = None,
        fields: Mapping[str, str] | None = None,
        *,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        """A log record (dora's ``node.log``, ``context.logger``) on the panel, with its level.

        dora's level words are shown as Python's (``warn`` as ``warning``);
        a level dora does not know is ``info``, as in dora-rs 1.1. As
        ``dora run`` does, the target precedes the message. The whole record
        (:class:`~dora_notebook.core.logs.LogRecord`) travels in the report's
        ``record`` for observers, ``dora-notebook run`` and ``dora/logs``.
        """
        stdio = _LEVELS.get(str(level).lower(), "info")
        text = f"{target} {message}" if target else str(message)
        fields = {str(k): str(v) for k, v in fields.items()} if fields else None
        record = logs.LogRecord(
            logs.node_level(level), str(message), target, fields, file=file, line=line
        )
        data = {"line": text, "stdio": stdio, "target": target, "fields": fields or {}}
        self._emit("log", {**data, "record": record})

    def log_record(self, record: logging.LogRecord) -> None:
        """A record node code logged with Python's ``logging``, as dora-rs 1.1 logs it.

        The panel shows its level and message; elsewhere (``dora-notebook
        run``, ``dora/logs``, ``send_logs_as``, ``min_log_level``) it is what
        dora 1.1 makes of it, a ``stdout`` line of JSON, and below INFO it is
        dropped, as dora's bridge drops it (see :func:`~dora_notebook.core.logs.from_python`).
        """
        try:
            as_dora = logs.from_python(record)
        except Exception:  # bad %-arguments: reported as logging's own handlers report them
            logging.Handler().handleError(record)
            return
        if as_dora is None:
            return
        text = record.getMessage()
        stdio = _LEVELS.get(record.levelname.lower(), "error" if record.levelno > 40 else "info")
        self._emit("log", {"line": text, "stdio": stdio, "record": as_dora})

    def log_json(self, payload: object) -> None:
        try:
            text = json.dumps(payload, default=str)
        except (TypeError, ValueError) as exc:
            self.send_error(f"log_json: {exc}")
            return
        self._emit("log_json", {"text": text, "payload": payload})

    def send_warning(self, warning: str) -> None:
        self._emit("warning", str(warning))

    def send_error(self, error: str) -> None:
        """Report an error: shown on the panel, and the node is marked failed."""
        self._report_error(str(error))

    def error(self, error: str) -> None:
        """Alias of :meth:`send_error` (oocana's name)."""
        self.send_error(error)

    # -- oocana: properties -------------------------------------------------------

    @property
    def inputs(self) -> dict[str, Any]:
        """The latest value of each input."""
        return dict(self._inputs)

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def session_id(self) -> str:
        return SESSION_ID

    @property
    def job_id(self) -> str:
        raise NotImplementedError

    @property
    def block_path(self) -> str:
        """Where the node's code comes from."""
        raise NotImplementedError

    @property
    def job_info(self) -> dict[str, str]:
        return {"session_id": self.session_id, "job_id": self.job_id}

    @property
    def block_info(self) -> dict[str, Any]:
        return {
            **self.job_info,
            "stacks": [{"node_id": self.node_id}],
            "block_path": self.block_path,
        }

    @property
    def keepAlive(self) -> bool:
        """Whether the node keeps running after :meth:`done` (never, here)."""
        return False


class Context(BaseContext):
    """oocana's block context, bound to one node of one run of the embedded engine."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._engine = runner.engine
        super().__init__(runner.id)

    # -- the embedded engine as transport --------------------------------------------

    def __call__(
        self, output_id: str, data: object, metadata: dict[str, Any] | None = None
    ) -> None:
        """dora's ``send_output``: ``data`` is ``bytes`` or a pyarrow Array."""
        self._engine.send(self._runner, output_id, data, metadata)

    send_output = __call__

    def _declares(self, handle: str) -> bool:
        return handle in self._runner.routes

    def _send(self, handle: str, value: object) -> None:
        array = as_arrow(value)
        # What Arrow cannot hold travels by reference (oocana's var handles).
        payload = array if array is not None else value
        self._engine.send(self._runner, handle, payload, self._metadata(), convert=False)

    def _emit(self, kind: str, data: Any) -> None:
        self._engine.emit(self._runner.id, kind, data)

    def _report_error(self, error: str) -> None:
        self._engine.node_error(self._runner, error)

    def _finish(self) -> None:
        self._engine.finish_node(self._runner)

    def _call_at(self, when: float, function: Callable[[], None]) -> None:
        self._engine.clock.call_at(when, function)

    @property
    def job_id(self) -> str:
        return self._engine.job_id

    @property
    def block_path(self) -> str:
        return self._runner.spec.code_name()
