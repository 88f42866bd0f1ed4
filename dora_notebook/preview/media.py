"""Images, media and iframes for previews: everything that ends up as a URL.

This module owns data URLs and the sniffing of image, audio and video bytes,
the checks on http(s) and data URLs, and the rendering of figures (with Agg,
never through pyplot; matplotlib is imported only when a figure is drawn),
of other objects with ``savefig`` and of PIL images to PNG.

>>> image_data(b"GIF89a" + bytes(10))
'data:image/gif;base64,R0lGODlhAAAAAAAAAAAAAA=='
>>> media_data("audio", "https://example.com/a.mp3")
'https://example.com/a.mp3'
"""

from __future__ import annotations

import base64
import io
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import PreviewError
from .jsonsafe import one_line, plain_str, truncate, type_name

_FALLBACK_RENDER_LOCK = threading.RLock()
# A data URL, base64 or percent-encoded (``data:text/html,<h1>hi</h1>`` too).
_DATA_URL = re.compile(r"data:([\w.+-]+)/([\w.+-]+)(;[\w.+-]+=[^;,]*)*(;base64)?,")
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(raw: bytes) -> str | None:
    """The MIME type of PNG, JPEG, GIF or WebP bytes, else None."""
    for magic, mime in _IMAGE_MAGIC:
        if raw.startswith(magic):
            return mime
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def _sniff_media(kind: str, raw: bytes) -> str:
    if raw[4:8] == b"ftyp":
        return f"{kind}/mp4"
    if raw.startswith(b"\x1a\x45\xdf\xa3"):
        return f"{kind}/webm"
    if raw.startswith(b"OggS"):
        return f"{kind}/ogg"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WAVE":
        return "audio/wav"
    if raw.startswith(b"fLaC"):
        return "audio/flac"
    if raw.startswith(b"ID3") or (len(raw) > 1 and raw[0] == 0xFF and raw[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return "application/octet-stream"


def data_url(mime: str, raw: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def _is_http_url(text: str) -> bool:
    if any(ch.isspace() for ch in text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_data_url(text: str, top_levels: tuple[str, ...]) -> bool:
    match = _DATA_URL.match(text)
    return match is not None and match.group(1) in top_levels


# ---------------------------------------------------------- explicit payloads


def image_data(data: Any) -> str:
    """The ``data`` of an explicit ``image`` payload: a data URL or an http(s) URL."""
    if isinstance(data, str):
        if _is_data_url(data, ("image",)) or _is_http_url(data):
            return plain_str(data)
        raise PreviewError(
            f"image data must be a data URL ('data:image/...,...') or an http(s) URL, "
            f"got {truncate(repr(data), 60)}"
        )
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        mime = sniff_image(raw)
        if mime is None:
            raise PreviewError(f"image bytes ({len(raw)}) are not a PNG, JPEG, GIF or WebP image")
        return data_url(mime, raw)
    image = image_or_none(data)
    if image is not None:
        return image
    raise PreviewError(
        f"image data must be a URL str, image bytes, a figure or a PIL image, got {type_name(data)}"
    )


def iframe_data(data: Any, extras: dict[Any, Any]) -> str:
    """The URL of an explicit ``iframe`` payload; a ``{"src": ...}`` dict's other keys
    go into *extras*."""
    url = data
    if isinstance(data, Mapping):
        url = data.get("src", data.get("url"))
        for key, value in data.items():
            if key not in ("src", "url"):
                extras.setdefault(key, value)  # e.g. width/height, kept beside data
    if isinstance(url, str) and (_is_http_url(url) or _is_data_url(url, ("text",))):
        return plain_str(url)
    raise PreviewError(
        "iframe data must be an http(s) URL, a data:text/... URL or {'src': url}, "
        f"got {truncate(repr(url), 60) if isinstance(url, str) else type_name(url)}"
    )


def media_data(kind: str, data: Any) -> str:
    """The URL of an explicit ``video`` or ``audio`` payload (bytes become a data URL)."""
    if isinstance(data, str):
        if _is_http_url(data) or _is_data_url(data, ("video", "audio", "application")):
            return plain_str(data)
        raise PreviewError(
            f"{kind} data must be an http(s) URL or a data URL, got {truncate(repr(data), 60)}"
        )
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if not raw:
            raise PreviewError(f"{kind} data is empty")
        return data_url(_sniff_media(kind, raw), raw)
    raise PreviewError(f"{kind} data must be a URL str or bytes, got {type_name(data)}")


# -------------------------------------------------------- figures, PIL images


def _attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _matplotlib_figure(obj: Any) -> Any:
    """*obj* itself or its ``.figure`` if that is a matplotlib Figure, else None."""
    module = sys.modules.get("matplotlib.figure")  # not imported: cannot be a Figure
    if module is None:
        return None
    for candidate in (obj, _attr(obj, "figure")):
        if isinstance(candidate, module.Figure):
            return candidate
    return None


def image_or_none(obj: Any) -> str | None:
    """A PNG data URL of a figure, an object with ``savefig`` or a PIL image, else None."""
    if isinstance(obj, (str, bytes, bytearray, memoryview, Mapping, list, tuple, np.ndarray)):
        return None
    if callable(_attr(obj, "savefig")):
        figure = _matplotlib_figure(obj)
        raw = _render_figure(figure) if figure is not None else _call_savefig(obj)
    elif callable(_attr(obj, "save")) and _attr(obj, "mode") is not None:
        raw = _save_pil(obj)
    else:
        return None
    mime = sniff_image(raw)
    if mime is None:
        raise PreviewError(f"cannot preview {type_name(obj)}: it did not produce a PNG image")
    return data_url(mime, raw)


def _render_figure(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # Figure._render_lock is the class-wide re-entrant lock Figure.draw holds; taking it
    # around the canvas swap means no draw anywhere can see the borrowed canvas.
    lock = getattr(type(figure), "_render_lock", None) or _FALLBACK_RENDER_LOCK
    buffer = io.BytesIO()
    with lock:
        previous = figure.canvas
        try:
            FigureCanvasAgg(figure).print_png(buffer)
        except Exception as exc:
            raise PreviewError(f"cannot render the figure: {one_line(exc)}") from None
        finally:
            figure.set_canvas(previous)
    return buffer.getvalue()


def _call_savefig(obj: Any) -> bytes:
    buffer = io.BytesIO()
    try:
        obj.savefig(buffer, format="png")
    except Exception as exc:
        raise PreviewError(
            f"cannot preview {type_name(obj)}: savefig failed: {one_line(exc)}"
        ) from None
    return buffer.getvalue()


def _save_pil(image: Any) -> bytes:
    buffer = io.BytesIO()
    try:
        image.save(buffer, format="PNG")
    except Exception:
        buffer = io.BytesIO()
        try:  # modes PNG cannot hold (CMYK, I;16B, ...)
            image.convert("RGBA").save(buffer, format="PNG")
        except Exception as exc:
            raise PreviewError(
                f"cannot preview {type_name(image)}: saving it as PNG failed: {one_line(exc)}"
            ) from None
    return buffer.getvalue()
