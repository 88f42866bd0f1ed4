"""The live chart of a node's ``context.plot`` series: drawn by the browser on a canvas.

An anywidget whose JavaScript is the string :data:`_ESM` below: it ships
inside the package, and needs neither a CDN nor a frontend build step
(anywidget's own frontend extension, installed with its wheel, loads it in
JupyterLab 4 and Notebook 7).

What travels, as binary widget buffers of little-endian float64 (never
JSON numbers nor base64 text):

* ``chunk``: the points each series got since the previous redraw, with
  each series' window; the browser appends them and keeps the window. One
  message per redraw (at most ``preview_hz`` a second), never one per point.
* ``series``: every kept point of every series, sent when the chart first
  appears, every :data:`FULL_SYNC_S` seconds (so that a page opened meanwhile
  catches up) and when the graph stops: the saved widget state then holds
  the whole final chart, which a reopened notebook draws.

>>> chart = LiveChart()
>>> chart.update({"a": ([0.0, 1.0], [2.0, 3.0], 2, 500)}, full={"a": ([0.0, 1.0], [2.0, 3.0])})
32
>>> chart.series["names"], chart.series["counts"], len(chart.series["y"])
(['a'], [2], 16)
"""

from __future__ import annotations

from typing import Any

import anywidget
import numpy as np
import traitlets

__all__ = ["FULL_SYNC_S", "LiveChart"]

#: How often (seconds) a running chart sends all its points, not only the new ones.
FULL_SYNC_S = 5.0

_ESM = r"""
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function floats(view) {
  if (!view) return new Float64Array(0);
  if (view instanceof ArrayBuffer) return new Float64Array(view.slice(0));
  // A copy: a buffer's offset inside the message need not be 8-aligned.
  return new Float64Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function label(v) {
  if (!isFinite(v)) return "";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return String(Math.round(v * 1000) / 1000);
}

function render({ model, el }) {
  const store = new Map();  // name -> {x: number[], y: number[], window}
  const root = document.createElement("div");
  root.className = "dora-chart";
  root.style.cssText = "position:relative;width:100%;max-width:720px;font:11px sans-serif";
  const canvas = document.createElement("canvas");
  canvas.style.cssText = "width:100%;height:220px;display:block";
  const legend = document.createElement("div");
  legend.className = "dora-chart-legend";
  legend.style.cssText = "display:flex;flex-wrap:wrap;gap:0 12px;color:#444";
  root.append(canvas, legend);
  el.append(root);

  // Both traits: {names, windows, counts, x, y}; x and y hold every series' points
  // one after the other (counts[i] of series names[i]), as float64.
  function each(packed, visit) {
    if (!packed || !packed.names) return;
    const xs = floats(packed.x), ys = floats(packed.y);
    let at = 0;
    packed.names.forEach((name, i) => {
      const n = packed.counts[i];
      visit(name, packed.windows[i], xs.subarray(at, at + n), ys.subarray(at, at + n));
      at += n;
    });
  }

  function replace() {
    store.clear();
    each(model.get("series"), (name, window, xs, ys) => {
      store.set(name, { x: Array.from(xs), y: Array.from(ys), window });
    });
  }

  function append() {
    each(model.get("chunk"), (name, window, xs, ys) => {
      let kept = store.get(name);
      if (!kept) { kept = { x: [], y: [], window }; store.set(name, kept); }
      kept.window = window;
      for (let i = 0; i < ys.length; i++) { kept.x.push(xs[i]); kept.y.push(ys[i]); }
      const extra = kept.y.length - kept.window;
      if (extra > 0) { kept.x.splice(0, extra); kept.y.splice(0, extra); }
    });
  }

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function draw() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(200, canvas.clientWidth || 600), height = 220;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, points = 0;
    for (const s of store.values()) {
      for (let i = 0; i < s.y.length; i++) {
        const x = s.x[i], y = s.y[i];
        if (!isFinite(x) || !isFinite(y)) continue;
        points++;
        if (x < x0) x0 = x; if (x > x1) x1 = x;
        if (y < y0) y0 = y; if (y > y1) y1 = y;
      }
    }
    root.dataset.points = String(points);
    const left = 52, right = 8, top = 8, bottom = 20;
    g.strokeStyle = "#ccc"; g.lineWidth = 1;
    g.strokeRect(left, top, width - left - right, height - top - bottom);
    if (!points) { legend.textContent = "no points yet"; return; }
    if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
    const sx = (x) => left + (x - x0) / (x1 - x0) * (width - left - right);
    const sy = (y) => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
    g.fillStyle = "#666"; g.textAlign = "right"; g.textBaseline = "middle";
    for (const v of [y0, (y0 + y1) / 2, y1]) g.fillText(label(v), left - 4, sy(v));
    g.textAlign = "center"; g.textBaseline = "top";
    g.fillText(label(x0), left + 14, height - bottom + 4);
    g.fillText(label(x1), width - right - 14, height - bottom + 4);
    legend.textContent = "";
    let k = 0;
    for (const [name, s] of store) {
      const colour = COLOURS[k++ % COLOURS.length];
      g.strokeStyle = colour; g.lineWidth = 1.5; g.beginPath();
      let drawing = false;
      for (let i = 0; i < s.y.length; i++) {
        const x = s.x[i], y = s.y[i];
        if (!isFinite(x) || !isFinite(y)) { drawing = false; continue; }
        if (drawing) g.lineTo(sx(x), sy(y)); else g.moveTo(sx(x), sy(y));
        drawing = true;
      }
      g.stroke();
      const item = document.createElement("span");
      const last = s.y.length ? s.y[s.y.length - 1] : NaN;
      item.innerHTML = `<b style="color:${colour}">&#9644;</b> `;
      item.append(`${name} ${label(last)}`);
      legend.append(item);
    }
  }

  replace();
  const onSeries = () => { replace(); schedule(); };
  const onChunk = () => { append(); schedule(); };
  model.on("change:series", onSeries);
  model.on("change:chunk", onChunk);
  const resize = new ResizeObserver(schedule);
  resize.observe(canvas);
  draw();
  return () => {
    model.off("change:series", onSeries);
    model.off("change:chunk", onChunk);
    resize.disconnect();
  };
}

export default { render };
"""


def _packed(
    series: dict[str, tuple[list[float], list[float]]], windows: dict[str, int]
) -> dict[str, Any]:
    """``{names, windows, counts, x, y}``: every series' points in two float64 buffers.

    One layout whatever the names: the buffers' paths in the message (and in a
    saved notebook's widget state) are always ``x`` and ``y``.
    """
    names = list(series)
    xs = [x for name in names for x in series[name][0]]
    ys = [y for name in names for y in series[name][1]]
    return {
        "names": names,
        "windows": [windows.get(name, 500) for name in names],
        "counts": [len(series[name][1]) for name in names],
        "x": np.asarray(xs, dtype="<f8").tobytes(),
        "y": np.asarray(ys, dtype="<f8").tobytes(),
    }


class LiveChart(anywidget.AnyWidget):
    """A node's live chart; :meth:`update` brings it up to date in one message."""

    FULL_SYNC_S = FULL_SYNC_S

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    #: Every kept point (see :func:`_packed`).
    series = traitlets.Dict().tag(sync=True)
    #: The points since the previous redraw, and its number ``seq`` (see :func:`_packed`).
    chunk = traitlets.Dict().tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("dora-chart-widget")
        self._seq = 0
        self.windows: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<LiveChart of {', '.join(self.series.get('names', [])) or 'no series'}>"

    def update(
        self,
        new: dict[str, tuple[list[float], list[float], int, int]],
        full: dict[str, tuple[list[float], list[float]]] | None = None,
    ) -> int:
        """Send the ``new`` points (``{name: (x, y, total, window)}``), or all of
        ``full`` (``{name: (x, y)}``) instead; return the bytes of data sent."""
        for name, (_, _, _, window) in new.items():
            self.windows[name] = window
        if full is not None:
            self.series = _packed(full, self.windows)
            return sum(16 * len(y) for _, y in full.values())
        self._seq += 1
        points = {name: (x, y) for name, (x, y, _, _) in new.items()}
        self.chunk = {"seq": self._seq, **_packed(points, self.windows)}
        return sum(16 * len(y) for _, y in points.values())
