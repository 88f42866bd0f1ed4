"""What showing a 30 Hz video costs the browser: an <img> fed blob URLs against a canvas.

No Jupyter and no kernel: a blank page in Debian's headless ``chromium``
(under Playwright) holds 32 JPEG frames (640x480, the moving gradient of
``bench/video.py``, Pillow quality 80) and shows one every 1/30 s, the way

* ``img``: a stock ``ipywidgets.Image`` does: a ``Blob`` of the bytes, a new
  object URL set as the ``src``, the old URL revoked;
* ``canvas``: the way a panel's ``FrameView`` does: ``createImageBitmap`` of
  the ``Blob`` (decoded off the page's thread), drawn on a canvas, newest wins.

For each run, 1.5 s after the start, the CPU of every Chromium process
(psutil, in % of one core) over the next ``--seconds``, and the frames shown a
second. The two alternate (ABBA), ``--runs`` times each.

    python bench/page_images.py               # 3 runs each, 10 s: ~1.5 min
    python bench/page_images.py --quick --out raw.json   # 1 run each, 2 s

Needs ``playwright``, Pillow, numpy and Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from video import (  # bench/ is on sys.path: a script's folder
    CHROMIUM_ARGS,
    CpuSampler,
    _chromium_processes,
)

MODES = ("img", "canvas")

#: Shows ``frames`` (base64 JPEGs) one after another at 30 Hz, as ``mode`` says.
SHOW_JS = """([frames, mode]) => {
  const bytes = frames.map(f => Uint8Array.from(atob(f), c => c.charCodeAt(0)));
  const img = document.createElement('img');
  const canvas = document.createElement('canvas');
  for (const el of [img, canvas]) el.style.cssText = 'display:block;max-width:100%;height:auto';
  const g = canvas.getContext('2d');
  document.body.append(mode === 'img' ? img : canvas);
  let i = 0, busy = false, again = false;
  window.__shown = 0;
  const draw = () => {
    if (busy) { again = true; return; }
    busy = true;
    const blob = new Blob([bytes[i % bytes.length]], {type: 'image/jpeg'});
    createImageBitmap(blob).then(bitmap => {
      if (canvas.width !== bitmap.width) canvas.width = bitmap.width;
      if (canvas.height !== bitmap.height) canvas.height = bitmap.height;
      g.drawImage(bitmap, 0, 0);
      bitmap.close();
      window.__shown++;
    }).finally(() => { busy = false; if (again) { again = false; draw(); } });
  };
  setInterval(() => {
    i++;
    if (mode === 'canvas') { draw(); return; }
    const old = img.src;
    img.src = URL.createObjectURL(new Blob([bytes[i % bytes.length]], {type: 'image/jpeg'}));
    if (old) URL.revokeObjectURL(old);
    window.__shown++;
  }, 1000 / 30);
}"""


def jpeg_frames(count: int = 32, width: int = 640, height: int = 480) -> list[str]:
    """The gradient frames of ``bench/video.py`` as base64 JPEGs (quality 80)."""
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(count):
        pixels = np.stack(
            [(xx + 8 * i) % 256, yy * 255 // height, np.full_like(xx, 128)], -1
        ).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
        frames.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return frames


def chromium_seconds() -> float:
    """CPU seconds used so far by every Chromium process."""
    seconds = (CpuSampler._seconds(process) for process in _chromium_processes())
    return sum(s for s in seconds if s is not None)  # None: gone meanwhile


def run(browser: object, frames: list[str], mode: str, seconds: float) -> tuple[float, float]:
    """``(Chromium CPU %, frames shown a second)`` of one run of ``mode``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.set_content("<html><body></body></html>")
        page.evaluate(SHOW_JS, [frames, mode])
        page.wait_for_timeout(1500)
        cpu, shown, start = chromium_seconds(), page.evaluate("window.__shown"), time.monotonic()
        page.wait_for_timeout(seconds * 1000)
        cpu = chromium_seconds() - cpu
        shown = page.evaluate("window.__shown") - shown
        span = time.monotonic() - start
    finally:
        context.close()
    return 100 * cpu / span, shown / span


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--quick", action="store_true", help="1 run each, 2 s")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds = 1, 2.0
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    frames = jpeg_frames()
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            for i in range(args.runs):
                for mode in MODES if i % 2 == 0 else MODES[::-1]:  # ABBA
                    results[mode].append(run(browser, frames, mode, args.seconds))
        finally:
            browser.close()
    print("| mode | Chromium CPU, each run | median | frames shown/s |")
    print("|---|---|---|---|")
    for mode, runs in results.items():
        cpus = ", ".join(f"{cpu:.1f} %" for cpu, _ in runs)
        median = statistics.median(cpu for cpu, _ in runs)
        fps = ", ".join(f"{fps:.1f}" for _, fps in runs)
        print(f"| {mode} | {cpus} | {median:.1f} % | {fps} |")
    if args.out:
        raw = {
            mode: [{"cpu": cpu, "fps": fps} for cpu, fps in runs] for mode, runs in results.items()
        }
        args.out.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
