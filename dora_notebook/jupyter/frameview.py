"""A preview's image as the browser shows a video: decoded off the page's thread, drawn on a canvas.

An anywidget whose JavaScript is the string :data:`_ESM` below (inside the
package: no CDN, no frontend build step). The frame travels as the binary
buffer ``value`` (JPEG or PNG bytes, never base64 text), as with a stock
``ipywidgets.Image``; what differs is the page's side. A stock Image makes a
blob URL of each frame and sets it as its ``src``: the page then loads that
URL through the browser process and decodes it for painting. Here the bytes
go to ``createImageBitmap`` (decoded on a worker thread) and are drawn on a
canvas. Measured in headless Chromium, 640x480 JPEGs at 30 Hz and nothing else
on the page (``bench/page_images.py``): 49 % of a core for the blob URLs, 28 %
for the canvas (medians of 3 runs); in a notebook, 21-32 points less than a
stock Image (``bench/video.py --pairs``, bench/README.md).

Newest wins in the page too: while a frame is being decoded, only the latest
of those that arrive meanwhile is decoded next. Each frame drawn increments
the canvas's ``data-frames`` attribute (tests and ``bench/video.py`` watch it;
no style rule reads it, so setting it costs no style recalculation).

The saved widget state keeps the last frame's bytes: a reopened notebook draws it.

>>> view = FrameView(format="png", value=b"\\x89PNG...")
>>> view
<FrameView png, 7 bytes>
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

__all__ = ["FrameView"]

_ESM = r"""
function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "dora-preview-image";
  canvas.setAttribute("role", "img");
  // Its own size, scaled down to fit (as an <img> with max-width).
  canvas.style.cssText = "display:block;max-width:100%;height:auto";
  canvas.width = 0;
  canvas.height = 0;
  el.append(canvas);
  const g = canvas.getContext("2d");
  let busy = false, again = false, frames = 0, errors = 0, alive = true;

  function show() {
    if (busy) { again = true; return; }  // newest wins: decoded when this one is drawn
    const value = model.get("value");
    if (!value || !value.byteLength) return;
    busy = true;
    const blob = new Blob([value], { type: "image/" + model.get("format") });
    createImageBitmap(blob).then((bitmap) => {
      if (alive) {
        // Setting a canvas's size clears it and lays the page out again: only when it changes.
        if (canvas.width !== bitmap.width) canvas.width = bitmap.width;
        if (canvas.height !== bitmap.height) canvas.height = bitmap.height;
        g.clearRect(0, 0, canvas.width, canvas.height);  // a PNG may have alpha
        g.drawImage(bitmap, 0, 0);
        canvas.dataset.frames = String(++frames);
      }
      bitmap.close();
    }).catch(() => {
      canvas.dataset.errors = String(++errors);  // bytes no browser decodes: nothing drawn
    }).finally(() => {
      busy = false;
      if (again && alive) { again = false; show(); }
    });
  }

  model.on("change:value", show);
  show();
  return () => { alive = false; model.off("change:value", show); };
}

export default { render };
"""


class FrameView(anywidget.AnyWidget):
    """One image preview slot: JPEG or PNG bytes, drawn by the browser on a canvas."""

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    #: The frame's encoded bytes: a binary buffer of the widget message.
    value = traitlets.Bytes(b"").tag(sync=True)
    #: ``jpeg`` or ``png``: the bytes' format, as in ``ipywidgets.Image``.
    format = traitlets.Unicode("jpeg").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("dora-frame-view")

    def __repr__(self) -> str:
        return f"<FrameView {self.format}, {len(self.value)} bytes>"
