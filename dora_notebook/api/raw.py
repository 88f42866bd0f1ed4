"""``Node.send_output_raw``: fill a buffer in place, then send it without a copy.

As in dora-rs 1.1, ``send_output_raw(output_id, data_length, metadata)``
returns a :class:`SampleHandler` over ``data_length`` writable bytes; used as
a context manager it yields the buffer and sends it on a normal exit, or it
is filled through ``as_buffer()`` / ``as_memoryview()`` and sent with
``send()``. Receivers get a ``UInt8Array`` whose memory is the very buffer
that was filled (dora's shared memory, here the process's own).

>>> sent = []
>>> handler = SampleHandler(4, lambda array: sent.append(array))
>>> with handler as buf:
...     buf[:] = b"abcd"
>>> sent[0].to_pylist()
[97, 98, 99, 100]
>>> handler.send()
Traceback (most recent call last):
...
RuntimeError: Sample has already been sent
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from types import TracebackType

import pyarrow as pa

__all__ = ["SampleBuffer", "SampleHandler"]


class SampleBuffer(bytearray):
    """The writable memory of one sample (anything that takes a buffer writes into it)."""


class SampleHandler:
    """One output sample being filled; ``send`` hands it to ``deliver`` as a ``UInt8Array``.

    Like dora's, it refuses to send while a ``memoryview`` (or a numpy array
    made from one) of the buffer is still open, sends at most once, and a
    ``with`` block that raises sends nothing. Unlike dora's, the buffer is
    not revoked after sending: writing into it then changes what receivers
    see, so don't.
    """

    def __init__(self, data_length: int, deliver: Callable[[pa.Array], None]) -> None:
        self._buffer: SampleBuffer | None = SampleBuffer(operator.index(data_length))
        self._deliver = deliver
        self._sent = False

    def __repr__(self) -> str:
        state = "sent" if self._sent else f"{len(self._buffer or b'')} bytes"
        return f"<SampleHandler {state}>"

    def as_buffer(self) -> SampleBuffer:
        """The sample's memory, the same object on every call."""
        if self._buffer is None:
            raise RuntimeError("Cannot access buffer: the sample has already been sent")
        return self._buffer

    def as_memoryview(self) -> memoryview:
        """A new writable ``memoryview`` of the sample: release it before ``send``."""
        return memoryview(self.as_buffer())

    def send(self) -> None:
        """Send the sample, once; raises while views of its buffer are still open."""
        buffer = self._buffer
        if buffer is None:
            raise RuntimeError("Sample has already been sent")
        if _has_views(buffer):
            raise RuntimeError(
                "Cannot send: buffer view(s) are still open. Release all memoryview / numpy "
                "references before calling send()."
            )
        array = pa.Array.from_buffers(pa.uint8(), len(buffer), [None, pa.py_buffer(buffer)])
        self._deliver(array)
        self._buffer = None
        self._sent = True

    def __enter__(self) -> SampleBuffer:
        return self.as_buffer()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc_type is not None:
            # A body that raised may have left the buffer half written: send nothing.
            self._buffer = None
            return False
        try:
            self.send()
        except RuntimeError as error:
            raise RuntimeError(f"Failed to send: {error}") from None
        return False


def _has_views(buffer: bytearray) -> bool:
    """Whether something still holds a view of ``buffer``.

    A bytearray with exported views refuses to change size; Python offers no
    other way to ask.
    """
    try:
        buffer.append(0)
    except BufferError:
        return True
    del buffer[-1]
    return False
