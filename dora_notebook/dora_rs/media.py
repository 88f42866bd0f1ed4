"""Image previews and plot points of a node under dora-rs: sent at most ``hz`` times a second.

On the embedded engine a frame is kept by reference until the panel shows
it; under dora-rs the node is a process of its own and its reports travel
as JSON (see :mod:`~dora_notebook.dora_rs.shim`), so a frame must be encoded
in the node to leave it. :class:`MediaReports` keeps that bounded: the
newest frame of each slot and the plot points since the last send wait, and
go out together at most :data:`DEFAULT_HZ` times a second (or
``$DORA_NOTEBOOK_PREVIEW_HZ``), a frame as a JPEG/PNG data URL beside its
``width``/``height``/``encoding`` (the kernel's panel turns it back into
bytes for the browser), the points of each series in one ``plot`` report.

>>> sent, now = [], [0.0]
>>> reports = MediaReports(lambda kind, data: sent.append((kind, data)), lambda when, f: None,
...                        hz=10, clock=lambda: now[0])
>>> all(reports.take("plot", {"name": "v", "x": [float(i)], "y": [i * 2.0], "window": 500})
...     for i in range(5))
True
>>> sent  # the first at once; the others wait for the next send
[('plot', {'name': 'v', 'x': [0.0], 'y': [0.0], 'window': 500})]
>>> reports.flush()
>>> sent[-1]
('plot', {'name': 'v', 'x': [1.0, 2.0, 3.0, 4.0], 'y': [2.0, 4.0, 6.0, 8.0], 'window': 500})
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..preview.frames import Frame, FrameEncoder

__all__ = ["DEFAULT_HZ", "HZ_ENV", "MediaReports"]

#: How many times a second a node sends its frames and points, unless told.
DEFAULT_HZ = 10.0
#: The environment variable that sets it (the kernel's ``preview_hz``).
HZ_ENV = "DORA_NOTEBOOK_PREVIEW_HZ"


def _hz() -> float:
    try:
        return max(0.1, float(os.environ.get(HZ_ENV, DEFAULT_HZ)))
    except ValueError:
        return DEFAULT_HZ


class MediaReports:
    """Frames and plot points of one node, coalesced and sent at most ``hz`` times a second.

    ``send(kind, data)`` publishes a report; ``call_at(when, function)``
    runs ``function`` at a ``time.monotonic()`` instant (the context's own
    scheduling, so that under the bridge transport dora's ``send_output``
    stays in the node's thread).
    """

    def __init__(
        self,
        send: Callable[[str, Any], None],
        call_at: Callable[[float, Callable[[], None]], None],
        *,
        hz: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._call_at = call_at
        self._period = 1.0 / (hz if hz is not None else _hz())
        self._clock = clock
        self._lock = threading.Lock()
        self._frames: dict[str, dict[str, Any]] = {}  # slot -> newest frame payload
        self._points: dict[str, dict[str, Any]] = {}  # name -> points since the last send
        self._encoders: dict[str, FrameEncoder] = {}
        self._last = float("-inf")
        self._scheduled = False

    def take(self, kind: str, data: Any) -> bool:
        """Hold a frame preview or plot points for the next send; False for anything else."""
        if kind == "preview" and isinstance(data["payload"].get("data"), Frame):
            with self._lock:
                self._frames[data["slot"]] = data
        elif kind == "plot":
            with self._lock:
                held = self._points.get(data["name"])
                if held is None:
                    self._points[data["name"]] = {
                        **data,
                        "x": list(data["x"]),
                        "y": list(data["y"]),
                    }
                else:
                    held["x"] += data["x"]
                    held["y"] += data["y"]
                    held["window"] = data["window"]
        else:
            return False
        now = self._clock()
        with self._lock:
            due = now - self._last >= self._period
            schedule = not due and not self._scheduled
            self._scheduled = self._scheduled or schedule
        if due:
            self.flush()
        elif schedule:
            self._call_at(self._last + self._period, self._scheduled_flush)
        return True

    def _scheduled_flush(self) -> None:
        with self._lock:
            self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send what is held now: each slot's newest frame, encoded, and the points."""
        with self._lock:
            frames, self._frames = self._frames, {}
            points, self._points = self._points, {}
            self._last = self._clock()
        for slot, data in frames.items():
            payload = data["payload"]
            frame = payload["data"]
            encoder = self._encoders.setdefault(slot, FrameEncoder(self._clock))
            try:
                mime, raw = encoder.encode(frame)
            except Exception as exc:  # Pillow missing, say: the panel says so
                self._send("warning", f"preview: {exc} (nothing shown)")
                continue
            url = f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"
            self._send("preview", {"slot": slot, "payload": {**payload, "data": url}})
        for data in points.values():
            self._send("plot", data)
