"""Image frames for previews: kept by reference, encoded only when shown.

A node that previews a camera frame must not pay for its encoding: it may
send 30 frames a second while the panel shows 10. So a preview of an image
becomes a :class:`Frame`, which holds the pixels (or the JPEG/PNG bytes) as
they are, without a copy; :class:`FrameEncoder` turns the newest frame of a
slot into JPEG or PNG bytes when the UI draws it.

What becomes a frame:

* a dora INPUT event whose metadata follows dora's image convention
  (``width``, ``height``, ``encoding`` in :data:`ENCODINGS`), as
  ``context.preview(dora_event)``;
* any value with such metadata, as ``context.preview(value, metadata=...)``
  (a pyarrow UInt8Array, a numpy array, bytes);
* a numpy ``uint8`` array of shape ``HxW`` (``mono8``) or ``HxWxC`` with C
  in 1, 3, 4 (``mono8``, ``rgb8``, ``rgba8``);
* a PIL image.

>>> import numpy as np
>>> frame = frame_or_none(np.zeros((480, 640, 3), np.uint8))
>>> frame
<Frame 640x480 rgb8>
>>> event = {"type": "INPUT", "id": "image", "value": pa.array(np.zeros(12, np.uint8)),
...          "metadata": {"width": 2, "height": 2, "encoding": "bgr8"}}
>>> frame_from_event(event)
<Frame 2x2 bgr8>
>>> mime, data = FrameEncoder().encode(frame)
>>> mime, data[:3] == b"\\xff\\xd8\\xff" or data[:4] == b"\\x89PNG"
('image/png', True)

The module is pure: numpy and pyarrow, and Pillow (or simplejpeg, for a
raw frame shown as JPEG) imported only when a frame is encoded.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import PreviewError
from .jsonsafe import type_name

__all__ = [
    "ENCODINGS",
    "JPEG_QUALITY",
    "Frame",
    "FrameEncoder",
    "frame_from",
    "frame_from_event",
    "frame_or_none",
    "is_image_event",
    "thumbnail",
]

#: dora's image encodings a preview shows (the ``encoding`` metadata key).
ENCODINGS = ("rgb8", "bgr8", "rgba8", "mono8", "jpeg", "png")
#: Channels per pixel of the raw encodings.
_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "mono8": 1}
#: The Pillow mode a raw encoding is shown in, and the raw mode its bytes are read as
#: (Pillow swaps bgr8 to RGB as it reads it: no swapped copy of the frame).
_PIL_MODES = {"rgb8": ("RGB", "RGB"), "bgr8": ("RGB", "BGR"), "mono8": ("L", "L")}
#: The simplejpeg colorspace a raw encoding is read as (an rgba8 frame only if opaque).
_JPEG_SPACES = {"rgb8": "RGB", "bgr8": "BGR", "mono8": "GRAY", "rgba8": "RGBX"}
#: The quality of the JPEG a frame is shown as.
JPEG_QUALITY = 80
#: How often (seconds) a slot tries PNG again beside JPEG, to keep the smaller.
RECHECK_S = 2.0
#: The longest a slot waits between two such tries: each time PNG was smaller
#: but too slow to keep (a video of a smooth scene), the wait doubles, up to this,
#: since trying costs a PNG encoding (~5 ms of a 640x480 frame) and that frame
#: waits for it.
RECHECK_MAX_S = 32.0
#: A JPEG smaller than raw / this may be beaten by PNG (smooth or synthetic
#: images); a larger one never is (photos, noise): PNG is not tried then.
_PNG_MAY_WIN = 8
#: Frames of at most this many bytes always try PNG too (it is cheap for them).
_SMALL = 64 * 1024
#: A smaller PNG is kept for the next frames only if its encoding took at most
#: this many seconds: a 640x480 gradient is 2.3x smaller as PNG but 6.5x slower
#: to encode (4.7 ms against 0.72 ms, measured), which at 30 frames a second is
#: 14 % of a core instead of 2 %. (Not a ratio to the JPEG's time: the first
#: JPEG of a process takes several times longer, and made PNG win for 2 s.)
_PNG_CHEAP_S = 0.002


@dataclass(frozen=True, eq=False)
class Frame:
    """One image as a node previewed it: the pixels by reference, not encoded.

    ``pixels`` is an ``HxWxC`` (or ``HxW``) uint8 array for the raw
    encodings, the encoded bytes (a uint8 array or bytes) for ``jpeg`` and
    ``png``, or a PIL image (``encoding`` ``"pil"``). ``lossless`` asks for
    PNG whatever its size.
    """

    width: int
    height: int
    encoding: str
    pixels: Any
    lossless: bool = False

    def __repr__(self) -> str:
        return f"<Frame {self.width}x{self.height} {self.encoding}>"

    def describe(self) -> str:
        """``image 640x480 rgb8``: the frame's text form (a notebook's text/plain)."""
        return f"image {self.width}x{self.height} {self.encoding}"


def is_image_event(event: Any) -> bool:
    """Whether ``event`` is a dora INPUT event whose metadata names an image encoding."""
    if not isinstance(event, Mapping) or event.get("type") != "INPUT" or "value" not in event:
        return False
    metadata = event.get("metadata")
    return isinstance(metadata, Mapping) and "encoding" in metadata


def frame_from_event(event: Mapping[str, Any]) -> Frame:
    """The frame of a dora INPUT event with image metadata (see :func:`frame_from`)."""
    return frame_from(event["value"], event.get("metadata") or {})


def frame_from(value: Any, metadata: Mapping[str, Any], *, lossless: bool = False) -> Frame:
    """The frame of ``value`` described by dora's image ``metadata``.

    ``metadata`` needs ``encoding`` (one of :data:`ENCODINGS`) and, for the
    raw encodings, ``width`` and ``height``; ``value`` holds the bytes (a
    pyarrow UInt8Array, a numpy uint8 array, bytes). Nothing is copied: the
    frame views the value's buffer. A mismatch raises :class:`PreviewError`.

    >>> frame_from(bytes(6), {"width": 3, "height": 2, "encoding": "mono8"}).pixels.shape
    (2, 3)
    >>> frame_from(bytes(5), {"width": 3, "height": 2, "encoding": "rgb8"})
    Traceback (most recent call last):
    ...
    dora_notebook.errors.PreviewError: image rgb8 3x2 needs 18 bytes (height x width x 3), got 5
    """
    encoding = metadata.get("encoding")
    if encoding not in ENCODINGS:
        raise PreviewError(
            f"image encoding {encoding!r} is not one previews show: use one of "
            f"{', '.join(ENCODINGS)} (dora's metadata key 'encoding')"
        )
    flat = _bytes_view(value)
    lossless = lossless or bool(metadata.get("lossless", False))
    if encoding in ("jpeg", "png"):
        mime = _sniff(flat)
        if mime != f"image/{encoding}":
            raise PreviewError(f"image data with encoding {encoding!r} is not a {encoding} file")
        width, height = _dimension(metadata, "width", 0), _dimension(metadata, "height", 0)
        return Frame(width, height, encoding, flat, lossless)
    width, height = _dimension(metadata, "width"), _dimension(metadata, "height")
    channels = _CHANNELS[encoding]
    need = width * height * channels
    if flat.size != need:
        raise PreviewError(
            f"image {encoding} {width}x{height} needs {need} bytes "
            f"(height x width x {channels}), got {flat.size}"
        )
    shape = (height, width) if channels == 1 else (height, width, channels)
    return Frame(width, height, encoding, flat.reshape(shape), lossless)


def frame_or_none(value: Any) -> Frame | None:
    """A frame for a numpy uint8 ``HxW[xC]`` array or a PIL image, else None.

    >>> frame_or_none(np.zeros((2, 3), np.uint8))
    <Frame 3x2 mono8>
    >>> frame_or_none(np.zeros((2, 3), np.float32)) is None  # data, not an image
    True
    """
    if isinstance(value, np.ndarray):
        if value.dtype != np.uint8 or value.ndim not in (2, 3) or 0 in value.shape:
            return None
        height, width = value.shape[:2]
        channels = 1 if value.ndim == 2 else value.shape[2]
        encoding = {1: "mono8", 3: "rgb8", 4: "rgba8"}.get(channels)
        if encoding is None:
            return None
        pixels = value[:, :, 0] if value.ndim == 3 and channels == 1 else value
        return Frame(width, height, encoding, pixels)
    if _is_pil(value):
        width, height = value.size
        return Frame(width, height, "pil", value)
    return None


def _is_pil(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("PIL.") and hasattr(value, "mode") and hasattr(value, "size")


def _bytes_view(value: Any) -> np.ndarray:
    """A flat uint8 view of ``value``'s bytes, without a copy where the value allows."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array):
        if not pa.types.is_uint8(value.type) and not pa.types.is_int8(value.type):
            raise PreviewError(f"image data must be a UInt8Array, got an Arrow {value.type} array")
        if value.null_count:
            raise PreviewError("image data has null values")
        return value.to_numpy(zero_copy_only=True).view(np.uint8)
    if isinstance(value, np.ndarray):
        if value.dtype != np.uint8:
            raise PreviewError(f"image data must be uint8, got a numpy {value.dtype} array")
        return value.reshape(-1)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(value, dtype=np.uint8)
    raise PreviewError(
        f"image data must be a pyarrow UInt8Array, a uint8 numpy array or bytes, "
        f"got {type_name(value)}"
    )


def _dimension(metadata: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = metadata.get(key, default)
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    # 0 only as the default: JPEG/PNG need no size (the file has it).
    if is_int and (value > 0 or (value == 0 and default is not None)):
        return int(value)
    raise PreviewError(f"image metadata {key!r} must be a positive int, got {value!r}")


def _sniff(flat: np.ndarray) -> str | None:
    head = flat[:8].tobytes()
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


class FrameEncoder:
    """Encodes the frames of one slot: JPEG, or PNG when it is smaller or lossless is asked.

    Which of the two is smaller depends on the picture (a photo is ~4x
    smaller as JPEG, a synthetic gradient ~2x smaller as PNG), and trying
    both costs a PNG encoding (~50 ms for a 640x480 photo): so PNG is tried
    only for small frames and when the JPEG is small for its pixels (where PNG
    may win), at most every :data:`RECHECK_S` seconds; the smaller is shown,
    and used in between if it is JPEG, or a PNG that was cheap to encode too
    (``_PNG_CHEAP_S``): a video must not cost the kernel its CPU.

    >>> encoder = FrameEncoder()
    >>> encoder.encode(frame_or_none(np.zeros((8, 8), np.uint8)))[0]  # flat: PNG wins
    'image/png'
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._clock = clock
        self._timer = timer  # times a PNG encoding (is it cheap enough to keep?)
        self._png = False  # the current choice for lossy frames
        self._checked = float("-inf")
        self._recheck = RECHECK_S  # until PNG is tried again (see RECHECK_MAX_S)
        # The Pillow image raw frames are read into, reused: a new one per frame costs
        # an allocation and a fill, 0.1-0.4 ms of a 640x480 frame (measured).
        self._canvas: Any = None

    def encode(self, frame: Frame) -> tuple[str, bytes]:
        """``(mime, data)`` of ``frame``: JPEG or PNG bytes (JPEG/PNG input passes as is)."""
        if frame.encoding in ("jpeg", "png"):
            return f"image/{frame.encoding}", _as_bytes(frame.pixels)
        # A raw frame goes to simplejpeg as it is; Pillow needs it read into an image
        # first (about a quarter of the cost of a 640x480 frame), made only when needed.
        source = None if frame.lossless else _jpeg_source(frame)
        if source is None:
            image = self._image(frame)
            if frame.lossless or image.mode not in ("L", "RGB"):  # alpha: JPEG has none
                return "image/png", _save(image, "PNG", compress_level=1)
            bands = len(image.getbands())
        else:
            image, bands = None, min(source[0].shape[2], 3)  # RGBX: shown as RGB
        now = self._clock()
        if self._png and now - self._checked < self._recheck:
            return "image/png", self._png_of(frame, image)
        jpeg = _save(image, "JPEG", quality=JPEG_QUALITY) if source is None else _jpeg(*source)
        if now - self._checked < self._recheck:
            return "image/jpeg", jpeg
        self._checked = now
        raw = frame.width * frame.height * bands
        self._png = False
        if raw <= _SMALL or len(jpeg) * _PNG_MAY_WIN < raw:
            began = self._timer()
            png = self._png_of(frame, image)
            png_s = self._timer() - began
            if len(png) < len(jpeg):
                # Kept only if cheap too: a video must not cost the kernel its CPU. Too
                # slow, it is tried again less often: it is likely to stay so.
                self._png = png_s <= _PNG_CHEAP_S
                self._recheck = RECHECK_S if self._png else min(2 * self._recheck, RECHECK_MAX_S)
                return "image/png", png
        self._recheck = RECHECK_S
        return "image/jpeg", jpeg

    def _image(self, frame: Frame) -> Any:
        """``frame`` as a Pillow image (a raw frame read into the reused one)."""
        image = _pil_image(frame, self._canvas)
        if frame.encoding in _CHANNELS:
            self._canvas = image
        return image

    def _png_of(self, frame: Frame, image: Any) -> bytes:
        """PNG bytes of ``frame`` (``image``: its Pillow image, if made already)."""
        return _save(image if image is not None else self._image(frame), "PNG", compress_level=1)


def thumbnail(frame: Frame, size: tuple[int, int] = (160, 120)) -> tuple[str, bytes]:
    """``(mime, data)``: ``frame`` scaled down to fit ``size``, as a JPEG (PNG with alpha).

    >>> mime, data = thumbnail(frame_or_none(np.zeros((480, 640, 3), np.uint8)))
    >>> mime, data[:3]
    ('image/jpeg', b'\xff\xd8\xff')
    """
    if frame.encoding in ("jpeg", "png"):
        from PIL import Image

        image = Image.open(io.BytesIO(_as_bytes(frame.pixels)))
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    else:
        image = _pil_image(frame).copy()  # thumbnail() works in place
    image.thumbnail(size)
    if image.mode == "RGBA":
        return "image/png", _save(image, "PNG", compress_level=1)
    return "image/jpeg", _save(image, "JPEG", quality=JPEG_QUALITY)


def _as_bytes(pixels: Any) -> bytes:
    if isinstance(pixels, np.ndarray):
        return pixels.tobytes()
    return bytes(pixels)


@functools.cache
def _simplejpeg() -> Any:
    """simplejpeg (libjpeg-turbo on numpy arrays), or None: Pillow encodes then."""
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def _jpeg_source(frame: Frame) -> tuple[np.ndarray, str] | None:
    """The ``HxWxC`` pixels and colorspace simplejpeg encodes ``frame`` from, or None.

    None for a frame it cannot take as it is (a PIL image, a translucent
    rgba8 frame: PNG shows those), or without simplejpeg.
    """
    colorspace = _JPEG_SPACES.get(frame.encoding)
    if colorspace is None or _simplejpeg() is None:
        return None
    pixels = np.ascontiguousarray(frame.pixels)
    if colorspace == "RGBX" and not bool((pixels[:, :, 3] == 255).all()):
        return None
    return (pixels[:, :, None] if pixels.ndim == 2 else pixels), colorspace


def _jpeg(pixels: np.ndarray, colorspace: str) -> bytes:
    """JPEG bytes of ``pixels`` by simplejpeg, with Pillow's settings (4:2:0, JPEG_QUALITY)."""
    encode = _simplejpeg().encode_jpeg
    try:
        return encode(pixels, quality=JPEG_QUALITY, colorspace=colorspace, colorsubsampling="420")
    except Exception as exc:
        raise PreviewError(f"cannot encode the image as JPEG: {exc}") from None


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise PreviewError(
            "showing an image frame needs Pillow: pip install pillow "
            "(it comes with dora-notebook[jupyter])"
        ) from None
    return Image


def _pil_image(frame: Frame, canvas: Any = None) -> Any:
    """``frame`` as a Pillow image in mode L, RGB or RGBA.

    The pixels of a raw frame are read into ``canvas`` when it has the mode and
    size (a new image otherwise); a PIL frame is returned as it is, or converted.
    """
    image_module = _pillow()
    if frame.encoding == "pil":
        image = frame.pixels
        if image.mode in ("L", "RGB", "RGBA"):
            return image
        return image.convert("RGBA" if "A" in image.getbands() else "RGB")
    pixels = np.ascontiguousarray(frame.pixels)
    if frame.encoding == "rgba8":
        opaque = bool((pixels[:, :, 3] == 255).all())  # then as RGB, so that JPEG may show it
        mode, raw_mode = ("RGB", "RGBX") if opaque else ("RGBA", "RGBA")
    else:
        mode, raw_mode = _PIL_MODES[frame.encoding]
    size = (frame.width, frame.height)
    if canvas is None or canvas.mode != mode or canvas.size != size:
        canvas = image_module.new(mode, size)
    canvas.frombytes(pixels, "raw", raw_mode)
    return canvas


def _save(image: Any, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    try:
        image.save(buffer, fmt, **options)
    except Exception as exc:
        raise PreviewError(f"cannot encode the image as {fmt}: {exc}") from None
    return buffer.getvalue()
