"""Camera frames and a live chart in a real browser: shown fps, page latency, CPU, traffic.

Issue 15 item 4's method. A Jupyter server (``jupyter lab``, or ``jupyter
notebook`` for Notebook 7) serves a temporary folder on 127.0.0.1; Playwright
drives Debian's ``chromium`` (headless, never a downloaded browser). For each
case a fresh notebook is opened, a MutationObserver is installed in the page,
and the notebook's cells are run from the Run menu, as a user would:

* ``gradient``: a custom node sends a 640x480 ``rgb8`` camera at 30 Hz (a
  moving gradient) and an operator previews each frame as it is,
  ``context.preview(dora_event)``, with ``preview_hz`` 30;
* ``noise``: the same with photo-like frames (every pixel random): a gradient
  compresses unusually well, noise about as badly as it gets;
* ``reference``: no dora at all: a thread in the kernel encodes the gradient
  frames to JPEG (Pillow, quality 80) and sets a stock ``ipywidgets.Image``'s
  bytes at 30 Hz, the issue's "widget with binary JPEG buffers";
* ``chart``: a custom node plots a 100 Hz signal with ``context.plot`` (its
  window holds the whole run, so every point must reach the page).

What is measured, over the steady part of each run (from 1 s after the
first frame or point to the last):

* shown fps: the frames the page showed (the observer counts a panel's
  FrameView canvas setting ``data-frames``, the reference's Image a new ``src``);
* page latency: each frame carries its send time (``time.time()`` in ms,
  mod 2**32) as 32 black or white 16x16 blocks in its top rows; the page
  reads the blocks (the probe) and subtracts them from its own clock
  (``performance.timeOrigin + performance.now()``, the same wall clock on one
  machine). For an Image, "set" is when the new ``src`` was set, "decoded" when
  the image was decoded and could be painted; a canvas draws a frame once it is
  decoded, so both are then. ``--no-probe`` (and ``--pairs``) reads no stamp:
  reading one decodes an Image's frame again on the page's thread;
* CPU: psutil, the kernel process and every Chromium process, in % of one core;
* websocket: frames and bytes the page received (Playwright's ``websocket``
  events);
* page work: Chromium's own counters for the page (CDP ``Performance.getMetrics``),
  from 1 s after the first frame or chart draw to the end: the renderer's main
  thread busy (ms a second), style recalculations and layouts a second. Less noisy than the CPU of
  Chromium's processes, which includes its GPU and browser processes;
* chart: points plotted against points the chart finally draws (lost), and how
  often the chart redrew (its ``data-points`` attribute is set on each draw).

    python bench/video.py                        # both apps, every case, 20 s each: ~7 min
    python bench/video.py --quick                # JupyterLab, gradient and chart, 4 s each
    python bench/video.py --apps lab --cases noise,chart --seconds 10 --out raw.json
    python bench/video.py --pairs 8              # gradient against reference, 8 pairs an app
    python bench/video.py --no-probe --cases gradient    # CPU without reading stamps

Chromium's CPU moves by up to 10 points between two runs of one case, so one run
against one cannot tell ours from the reference within that. ``--pairs N`` runs
only those two, alternating, N times each in each app, and reports the mean of
the N differences with its 95 % confidence interval, per Chromium process type too.

Needs ``playwright``, ``jupyterlab`` 4, ``notebook`` 7 (pip) and ``chromium`` (apt).
The exit status is 1 when a case failed to run, 0 otherwise (a missed target does
not change it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

TOKEN = "dora-notebook-video-bench"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
CASES = ("gradient", "noise", "reference", "chart")
APPS = ("lab", "notebook")
#: Frames a second of the camera, samples a second of the signal.
CAMERA_HZ = 30
SIGNAL_HZ = 100
PREVIEW_HZ = 30
#: The issue's targets (item 4).
TARGET_FPS = 29.0
TARGET_LATENCY_MS = 12.0
TARGET_KERNEL_CPU = 10.0
#: Skipped at the start of a run: the first frames pay for imports and first paints.
WARMUP_S = 1.0

# ---------------------------------------------------------------------------------------
# The notebooks' cells

#: Frames and the send-time stamp, shared by the camera node and the reference cell.
FRAMES = """
import time
import numpy as np

W, H = 640, 480
KIND = {kind!r}
SECONDS = {seconds!r}
HZ = {hz!r}
if KIND == "noise":
    # Photo-like: every pixel its own value, which JPEG cannot compress much.
    rng = np.random.default_rng(0)
    FRAMES = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(8)]
else:
    yy, xx = np.mgrid[0:H, 0:W]
    FRAMES = [
        np.stack([(xx + 8 * i) % 256, yy * 255 // H, np.full_like(xx, 128)], -1).astype(np.uint8)
        for i in range(32)
    ]


def stamped(i):
    \"\"\"Frame i, with the send time (ms, mod 2**32) as 32 black/white 16x16 blocks.\"\"\"
    frame = FRAMES[i % len(FRAMES)].copy()
    ms = int(time.time() * 1000) & 0xFFFFFFFF
    for bit in range(32):
        frame[0:16, 16 * bit : 16 * bit + 16] = 255 if ms >> (31 - bit) & 1 else 0
    return frame
"""

CAMERA = (
    "%%dora_node camera --outputs image\n"
    + FRAMES
    + """
import pyarrow as pa
from dora import Node

node = Node()
start = time.monotonic()
for i in range(int(HZ * SECONDS)):
    time.sleep(max(0.0, start + i / HZ - time.monotonic()))  # paced, no drift
    node.send_output("image", pa.array(stamped(i).ravel()),
                     {{"width": W, "height": H, "encoding": "rgb8", "i": i}})
"""
)

VIEWER = """%%dora_operator viewer --inputs image=camera/image
class Operator:
    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            context.preview(dora_event)
"""

REFERENCE = (
    FRAMES
    + """
import io
import threading

import ipywidgets as widgets
from IPython.display import display
from PIL import Image

image = widgets.Image(format="jpeg", layout={{"max_width": "100%"}})
image.add_class("dora-preview-image")  # found by the same observer as a panel's image
display(image)


def run():
    start = time.monotonic()
    for i in range(int(HZ * SECONDS)):
        time.sleep(max(0.0, start + i / HZ - time.monotonic()))
        buffer = io.BytesIO()
        Image.fromarray(stamped(i)).save(buffer, "JPEG", quality=80)
        image.value = buffer.getvalue()


camera = threading.Thread(target=run)
camera.start()
"""
)

SIGNAL = """%%dora_node signal
import math
import time
from dora import Node

HZ = {hz!r}
N = int(HZ * {seconds!r})
node = Node()
start = time.monotonic()
for i in range(N):
    time.sleep(max(0.0, start + i / HZ - time.monotonic()))
    # The window holds the whole run: every point must reach the page.
    node.context.plot("signal", math.sin(i / 15) + 0.2 * math.sin(i / 2.3), x=i, window=N)
"""

DONE = "BENCH-DONE"


def cells(case: str, seconds: float) -> list[str]:
    """The cells of one case's notebook; the last prints :data:`DONE` when the run ended."""
    head = ["%load_ext dora_notebook", f"%config DoraMagics.preview_hz = {PREVIEW_HZ}"]
    wait = f"%dora_start --wait --timeout {seconds + 60:.0f}\nprint({DONE!r})"
    if case in ("gradient", "noise"):
        camera = CAMERA.format(kind=case, seconds=seconds, hz=CAMERA_HZ)
        return [*head, camera, VIEWER, wait]
    if case == "reference":
        frames = REFERENCE.format(kind="gradient", seconds=seconds, hz=CAMERA_HZ)
        return [frames, f"camera.join()\nprint({DONE!r})"]
    if case == "chart":
        return [*head, SIGNAL.format(hz=SIGNAL_HZ, seconds=seconds), wait]
    raise ValueError(f"unknown case {case!r}")


# ---------------------------------------------------------------------------------------
# The page's side

#: Installed in the page before the cells run: a MutationObserver that notes each frame
#: shown (a stock Image's new ``src``, a FrameView's ``data-frames``), the latency read
#: from the frame's stamp when ``probe`` is true, and each chart draw.
OBSERVER_JS = """(probe) => {
  const rec = window.__bench = {sets: [], latency: [], draws: [], errors: 0};
  const canvas = document.createElement('canvas');
  canvas.width = 512; canvas.height = 16;
  const g = canvas.getContext('2d', {willReadFrequently: true});
  const clock = () => performance.timeOrigin + performance.now();
  // Milliseconds from the stamp's send time to `at`, both mod 2**32.
  const since = (stamp, at) => {
    let d = (Math.floor(at) % 4294967296) - stamp;
    if (d < -2147483648) d += 4294967296;
    return d + (at - Math.floor(at));
  };
  // The stamp in the frame's top rows, from the image or canvas `el` shows it in.
  const read = (el) => {
    g.drawImage(el, 0, 0, 512, 16, 0, 0, 512, 16);
    const px = g.getImageData(0, 0, 512, 16).data;
    let stamp = 0;
    for (let b = 0; b < 32; b++) stamp = stamp * 2 + (px[(8 * 512 + 16 * b + 8) * 4] > 127 ? 1 : 0);
    return stamp;
  };
  new MutationObserver(records => {
    for (const r of records) {
      const el = r.target, at = clock();
      if (!el.classList.contains('dora-preview-image')) {
        if (r.attributeName === 'data-points') rec.draws.push([at, Number(el.dataset.points)]);
      } else if (r.attributeName === 'src') {  // a stock Image: a new blob URL
        rec.sets.push(at);
        if (!probe) continue;
        const src = el.src;
        el.decode().then(() => {
          if (el.src !== src) return;  // a newer frame came meanwhile
          const decoded = clock();
          const stamp = read(el);
          rec.latency.push([at, since(stamp, at), since(stamp, decoded)]);
        }).catch(() => { rec.errors++; });
      } else if (r.attributeName === 'data-frames') {  // a FrameView: a frame drawn
        rec.sets.push(at);
        if (!probe) continue;
        const stamp = read(el);
        rec.latency.push([at, since(stamp, at), since(stamp, at)]);
      } else if (r.attributeName === 'data-errors') {
        rec.errors++;
      }
    }
  }).observe(document.body, {
    subtree: true, attributes: true,
    attributeFilter: ['src', 'data-frames', 'data-errors', 'data-points'],
  });
}"""

DONE_JS = """(done) => [...document.querySelectorAll('.jp-OutputArea-output')]
  .some(e => e.textContent.includes(done))"""


# ---------------------------------------------------------------------------------------
# Server, processes, CPU


@dataclass
class Server:
    """A Jupyter server this benchmark started: ``app`` is "lab" or "notebook"."""

    app: str
    url: str
    root: Path
    process: subprocess.Popen[bytes]

    def notebook_url(self, name: str) -> str:
        quoted = urllib.parse.quote(name)
        if self.app == "lab":
            return f"{self.url}/lab/tree/{quoted}?reset&token={TOKEN}"
        return f"{self.url}/notebooks/{quoted}?token={TOKEN}"

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernel(self, notebook: str, timeout: float = 30.0) -> psutil.Process:
        """The kernel process of the session of ``notebook`` (found by its connection file)."""
        deadline = time.monotonic() + timeout
        while True:
            ids = [
                session["kernel"]["id"]
                for session in self.api("GET", "/api/sessions")
                if session.get("path") == notebook and session.get("kernel")
            ]
            for child in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if ids and any(f"kernel-{ids[0]}.json" in part for part in child.cmdline()):
                        return child
            if time.monotonic() > deadline:
                raise RuntimeError(f"no kernel process for {notebook} (sessions: {ids})")
            time.sleep(0.2)

    def shutdown_kernels(self) -> None:
        """Shut every session and kernel down; wait until no kernel process is left."""
        for kind in ("sessions", "kernels"):
            with contextlib.suppress(OSError):  # one already gone (HTTP 404/500): go on
                for item in self.api("GET", f"/api/{kind}"):
                    with contextlib.suppress(OSError):
                        self.api("DELETE", f"/api/{kind}/{item['id']}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            kernels = []
            for child in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if any("ipykernel" in part for part in child.cmdline()):
                        kernels.append(child)
            if not kernels:
                return
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def jupyter(app: str, base: Path) -> Iterator[Server]:
    """``jupyter {app}`` serving ``base/notebooks``, with config/data/runtime dirs of its
    own; stopped (with its kernels) afterwards."""
    root = base / "notebooks"
    root.mkdir(parents=True)
    dirs = {name: base / name for name in ("config", "data", "runtime", "ipython")}
    for path in dirs.values():
        path.mkdir()
    settings = dirs["config"] / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["ipython"]),
    }
    env.pop("JUPYTER_TOKEN", None)
    port = _free_port()
    module = {"lab": "jupyterlab", "notebook": "notebook"}[app]
    command = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
    ]
    with (base / f"jupyter-{app}.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    server = Server(app, f"http://127.0.0.1:{port}", root, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter {app} exited, see {base}/jupyter-{app}.log")
            with contextlib.suppress(OSError):
                if server.api("GET", "/api/status") is not None:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter {app} does not answer")
            time.sleep(0.2)
        yield server
    finally:
        server.shutdown_kernels()
        children = psutil.Process(process.pid).children(recursive=True)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(children, timeout=10)


def _chromium_processes() -> list[psutil.Process]:
    """Every Chromium process this benchmark started (children of Playwright's driver)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "chrom" in child.name().lower():
                found.append(child)
    return found


#: Chromium's process types, as its ``--type=`` argument names them, and how they are
#: reported; the browser process has no ``--type``.
PROCESS_TYPES = {"renderer": "renderer", "gpu-process": "gpu", "utility": "utility"}


def _process_type(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        for part in process.cmdline():
            if part.startswith("--type="):
                return PROCESS_TYPES.get(part.removeprefix("--type="), "other")
    return "browser"


def host_times() -> tuple[int, int]:
    """The machine's CPU time so far, all cores: ``(total, stolen)`` in clock ticks.

    Stolen time is what the hypervisor gave other guests while this one wanted to
    run (``/proc/stat``'s steal): on a busy host the same work costs more CPU
    time (caches, memory), so each run says how busy the host was. ``(0, 0)``
    where ``/proc/stat`` is not there.
    """
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


class CpuSampler:
    """Samples the CPU time of the kernel and of each Chromium process every ``every`` s.

    A sample is ``(time.time(), kernel seconds, {Chromium pid: seconds})``; the
    machine's :func:`host_times` are kept beside them in :attr:`host`.
    """

    def __init__(self, kernel: psutil.Process, every: float = 0.25) -> None:
        self.kernel = kernel
        self.every = every
        self.samples: list[tuple[float, float, dict[int, float]]] = []
        self.types: dict[int, str] = {}  # Chromium pid -> its process type, read once
        self.host: list[tuple[float, int, int]] = []  # (time.time(), *host_times())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()

    @staticmethod
    def _seconds(process: psutil.Process) -> float | None:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            return times.user + times.system
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            chromium: dict[int, float] = {}
            for process in _chromium_processes():
                seconds = self._seconds(process)
                if seconds is not None:
                    if process.pid not in self.types:
                        self.types[process.pid] = _process_type(process)
                    chromium[process.pid] = seconds
            now = time.time()
            self.samples.append((now, self._seconds(self.kernel) or 0.0, chromium))
            self.host.append((now, *host_times()))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def percent(self, start: float, end: float) -> tuple[float, dict[str, float]]:
        """Kernel CPU, and Chromium's per process type, in % of one core between two
        ``time.time()`` instants (nan and {} with fewer than two samples).

        Each Chromium process counts from its first sample in the span to its last,
        so one that starts or ends inside the span adds what it used there.
        """
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return float("nan"), {}
        (t0, k0, _), (t1, k1, _) = inside[0], inside[-1]
        first: dict[int, float] = {}
        last: dict[int, float] = {}
        for _, _, chromium in inside:
            for pid, seconds in chromium.items():
                first.setdefault(pid, seconds)
                last[pid] = seconds
        by_type: dict[str, float] = {}
        for pid, seconds in last.items():
            kind = self.types[pid]
            by_type[kind] = by_type.get(kind, 0.0) + 100 * (seconds - first[pid]) / (t1 - t0)
        return 100 * (k1 - k0) / (t1 - t0), by_type

    def steal(self, start: float, end: float) -> float:
        """The host's stolen time between two ``time.time()`` instants, in % of all cores."""
        inside = [h for h in self.host if start <= h[0] <= end]
        if len(inside) < 2 or inside[-1][1] <= inside[0][1]:
            return float("nan")
        (_, total0, stolen0), (_, total1, stolen1) = inside[0], inside[-1]
        return 100 * (stolen1 - stolen0) / (total1 - total0)


# ---------------------------------------------------------------------------------------
# One case


@dataclass
class Result:
    app: str
    case: str
    seconds: float
    sent: int
    shown_fps: float = float("nan")
    latency_set_p50: float = float("nan")
    latency_decoded_p50: float = float("nan")
    latency_set_p95: float = float("nan")
    kernel_cpu: float = float("nan")
    #: The host's stolen CPU time during the run, % of all cores (see host_times).
    steal: float = float("nan")
    chromium_cpu: float = float("nan")
    #: Chromium's CPU per process type (renderer, gpu, browser, utility, other).
    chromium_by_type: dict[str, float] = field(default_factory=dict)
    ws_frames_s: float = float("nan")
    ws_bytes_s: float = float("nan")
    frame_bytes: float = float("nan")
    draws_s: float = float("nan")
    page_task_ms_s: float = float("nan")
    style_recalcs_s: float = float("nan")
    layouts_s: float = float("nan")
    points_shown: int = 0
    lost: int = 0
    decode_errors: int = 0
    summary: list[str] = field(default_factory=list)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=20)[-1]


def run_case(browser: Any, server: Server, case: str, seconds: float, probe: bool = True) -> Result:
    """Open a fresh notebook of ``case``, run it, and measure (see the module's doc).

    ``probe`` false: the page counts frames but reads no stamp (no latency), so
    that the CPU measured is the page's own work, not the reading's.
    """
    import nbformat

    name = f"{case}.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells(case, seconds)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
    (server.root / name).write_text(nbformat.writes(nb), encoding="utf-8")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    frames: list[tuple[float, int]] = []  # (time.time(), bytes) of each websocket frame in

    def on_websocket(ws: Any) -> None:
        ws.on("framereceived", lambda payload: frames.append((time.time(), len(payload))))

    page.on("websocket", on_websocket)
    try:
        page.goto(server.notebook_url(name))
        _wait_for_kernel(page)
        kernel = server.kernel(name)
        page.evaluate(OBSERVER_JS, probe)
        sampler = CpuSampler(kernel)
        try:
            _run_all_cells(page)
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.wait_for_function(STARTED_JS, polling=50, timeout=(seconds + 120) * 1000)
            page.wait_for_timeout(WARMUP_S * 1000)  # as the other figures: from 1 s on
            before = _page_metrics(cdp)
            page.wait_for_function(DONE_JS, arg=DONE, polling=500, timeout=(seconds + 120) * 1000)
            after = _page_metrics(cdp)
            # The last frame's decode and the chart's final draw.
            page.wait_for_timeout(500)
        finally:
            sampler.stop()
        record = page.evaluate("() => window.__bench")
        outputs = page.locator(".jp-OutputArea-output").all_text_contents()
    finally:
        context.close()
        server.shutdown_kernels()
    result = _measure(server.app, case, seconds, record, frames, sampler, outputs)
    span = after["Timestamp"] - before["Timestamp"]
    if span > 0:
        result.page_task_ms_s = 1000 * (after["TaskDuration"] - before["TaskDuration"]) / span
        result.style_recalcs_s = (after["RecalcStyleCount"] - before["RecalcStyleCount"]) / span
        result.layouts_s = (after["LayoutCount"] - before["LayoutCount"]) / span
    return result


#: True once the page has shown a frame or drawn the chart.
STARTED_JS = "() => window.__bench.sets.length + window.__bench.draws.length > 0"


def _page_metrics(cdp: Any) -> dict[str, float]:
    """Chromium's performance counters of the page (``Timestamp`` in seconds)."""
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def _run_all_cells(page: Any, attempts: int = 3) -> None:
    """Run > Run All Cells, as a user would; again if no cell started within 10 s.

    Right after the page loaded, the menu's command can still be disabled (the
    app has not made the notebook its current widget yet): the click then does
    nothing, and the case would wait for its frames until its timeout.
    """
    started = page.locator(".jp-InputPrompt").filter(has_text=re.compile(r"\[(\*|\d+)\]"))
    for attempt in range(attempts):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            started.first.wait_for(timeout=10_000)
            return
        except Exception:
            if attempt == attempts - 1:
                raise RuntimeError("Run All Cells ran no cell") from None
            page.keyboard.press("Escape")  # close the menu if it stayed open


def _wait_for_kernel(page: Any) -> None:
    """Accept a kernel-selection dialog if one shows; wait for an idle kernel."""
    root = page.locator(".jp-NotebookPanel").filter(visible=True)
    idle = root.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    button = page.locator(".jp-Dialog .jp-mod-accept")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        button.or_(idle).first.wait_for(timeout=60_000)
        if not button.is_visible():
            break
        button.click()
    idle.wait_for(timeout=60_000)


def _measure(
    app: str,
    case: str,
    seconds: float,
    record: dict[str, Any],
    frames: list[tuple[float, int]],
    sampler: CpuSampler,
    outputs: list[str],
) -> Result:
    hz = SIGNAL_HZ if case == "chart" else CAMERA_HZ
    result = Result(app, case, seconds, sent=int(hz * seconds))
    result.summary = [
        line for text in outputs for line in text.splitlines() if ": finished" in line
    ]
    result.decode_errors = int(record["errors"])
    if case == "chart":
        times = [at for at, _ in record["draws"]]
        result.points_shown = int(record["draws"][-1][1]) if record["draws"] else 0
        result.lost = result.sent - result.points_shown
    else:
        times = list(record["sets"])
    if len(times) < 2:
        return result
    start, end = times[0] + WARMUP_S * 1000, times[-1]
    if end <= start:
        start = times[0]
    span = (end - start) / 1000
    changes = [t for t in times if start <= t <= end]
    rate = (len(changes) - 1) / span if span > 0 else float("nan")
    if case == "chart":
        result.draws_s = rate
    else:
        result.shown_fps = rate
        steady = [(s, d) for at, s, d in record["latency"] if start <= at <= end]
        result.latency_set_p50 = _median([s for s, _ in steady])
        result.latency_set_p95 = _p95([s for s, _ in steady])
        result.latency_decoded_p50 = _median([d for _, d in steady])
    result.kernel_cpu, result.chromium_by_type = sampler.percent(start / 1000, end / 1000)
    result.steal = sampler.steal(start / 1000, end / 1000)
    if result.chromium_by_type:
        result.chromium_cpu = sum(result.chromium_by_type.values())
    inside = [size for at, size in frames if start / 1000 <= at <= end / 1000 + 0.5]
    result.ws_frames_s = len(inside) / span
    result.ws_bytes_s = sum(inside) / span
    if case != "chart" and changes:
        result.frame_bytes = sum(inside) / len(changes)
    return result


# ---------------------------------------------------------------------------------------
# Report


def _f(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def table(results: list[Result]) -> str:
    """A Markdown table of the results, one row per app and case."""
    head = (
        "| app | case | shown fps | p50 set / decoded (ms) | p95 set (ms) | kernel CPU | "
        "host steal | Chromium CPU | ws frames/s | KB/s | KB/frame | chart draws/s | points lost |"
    )
    rows = [head, "|" + "---|" * 13]
    for r in results:
        chart = r.case == "chart"
        rows.append(
            f"| {r.app} | {r.case} | {'-' if chart else _f(r.shown_fps)} | "
            f"{_f(r.latency_set_p50)} / {_f(r.latency_decoded_p50)} | {_f(r.latency_set_p95)} | "
            f"{_f(r.kernel_cpu, 0)} % | {_f(r.steal)} % | {_f(r.chromium_cpu, 0)} % | "
            f"{_f(r.ws_frames_s, 0)} | "
            f"{_f(r.ws_bytes_s / 1024, 0)} | {_f(r.frame_bytes / 1024)} | "
            f"{_f(r.draws_s) if chart else '-'} | "
            f"{f'{r.lost} of {r.sent}' if chart else '-'} |"
        )
    rows += ["", "| app | case | page main thread (ms/s) | style recalcs/s | layouts/s |"]
    rows.append("|" + "---|" * 5)
    for r in results:
        rows.append(
            f"| {r.app} | {r.case} | {_f(r.page_task_ms_s, 0)} | {_f(r.style_recalcs_s)} | "
            f"{_f(r.layouts_s)} |"
        )
    return "\n".join(rows)


#: Two-sided 95 % points of Student's t for 1..30 degrees of freedom (a confidence
#: interval of the mean of a few paired differences).
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
       2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
       2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


@dataclass
class Paired:
    """Ours (``gradient``) minus the reference, run by run, in one app."""

    app: str
    differences: list[float]  # Chromium CPU points, one per pair
    by_type: dict[str, list[float]]  # the same per process type
    #: Kernel CPU points, ours minus the reference, one per pair.
    kernel: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.differences)

    @property
    def half_width(self) -> float:
        """Half the 95 % confidence interval of :attr:`mean` (nan for one pair)."""
        return _half_width(self.differences)


def _half_width(values: list[float]) -> float:
    """Half the 95 % confidence interval of the mean of ``values`` (nan for fewer than 2).

    >>> round(_half_width([1.0, 3.0]), 2)
    12.71
    """
    n = len(values)
    if n < 2:
        return float("nan")
    return T95[min(n - 1, len(T95)) - 1] * statistics.stdev(values) / n**0.5


def paired(results: list[Result]) -> list[Paired]:
    """Each app's ``gradient`` runs against its ``reference`` runs, in the order run.

    >>> r = [Result("lab", c, 20, 600, chromium_cpu=v, kernel_cpu=k) for c, v, k in
    ...      [("gradient", 60, 9), ("reference", 62, 8), ("reference", 70, 9), ("gradient", 69, 9)]]
    >>> [(p.app, p.differences, p.kernel) for p in paired(r)]
    [('lab', [-2, -1], [1, 0])]
    """
    out = []
    for app in dict.fromkeys(r.app for r in results):
        ours = [r for r in results if r.app == app and r.case == "gradient"]
        theirs = [r for r in results if r.app == app and r.case == "reference"]
        pairs = list(zip(ours, theirs, strict=False))
        if not pairs:
            continue
        kinds = sorted({k for a, b in pairs for k in (*a.chromium_by_type, *b.chromium_by_type)})
        out.append(
            Paired(
                app,
                [a.chromium_cpu - b.chromium_cpu for a, b in pairs],
                {
                    k: [
                        a.chromium_by_type.get(k, 0.0) - b.chromium_by_type.get(k, 0.0)
                        for a, b in pairs
                    ]
                    for k in kinds
                },
                [a.kernel_cpu - b.kernel_cpu for a, b in pairs],
            )
        )
    return out


def paired_table(pairs: list[Paired]) -> str:
    """Ours minus the reference in Chromium CPU points: each pair, and the mean with
    its 95 % confidence interval, in all and per process type."""
    rows = [
        "| app | pairs | Chromium CPU, ours minus the reference | mean (95 % CI) | "
        "per process type, mean | kernel CPU, ours minus the reference: mean (95 % CI) |",
        "|" + "---|" * 6,
    ]
    for p in pairs:
        each = ", ".join(f"{d:+.1f}" for d in p.differences)
        types = ", ".join(f"{k} {statistics.fmean(v):+.1f}" for k, v in sorted(p.by_type.items()))
        rows.append(
            f"| {p.app} | {len(p.differences)} | {each} | {p.mean:+.1f} "
            f"({p.mean - p.half_width:+.1f} to {p.mean + p.half_width:+.1f}) | {types} | "
            f"{_interval(p.kernel)} |"
        )
    return "\n".join(rows)


def _interval(values: list[float]) -> str:
    """``mean (low to high)`` of ``values`` with its 95 % confidence interval.

    >>> _interval([1.0, 3.0])
    '+2.0 (-10.7 to +14.7)'
    """
    if not values:
        return "-"
    mean, half = statistics.fmean(values), _half_width(values)
    return f"{mean:+.1f} ({mean - half:+.1f} to {mean + half:+.1f})"


def targets(results: list[Result]) -> list[str]:
    """The issue's targets, one line each, met or missed.

    Chromium CPU is compared with the reference's pair by pair; with several pairs
    the target is met when the mean difference is not above 0.
    """
    lines = []

    def say(ok: bool, text: str) -> None:
        lines.append(f"{'met   ' if ok else 'MISSED'} {text}")

    for r in results:
        where = f"{r.app} {r.case}:"
        if r.case == "gradient":
            say(r.shown_fps >= TARGET_FPS, f"{where} shown fps {_f(r.shown_fps)} >= {TARGET_FPS}")
            if r.latency_set_p50 == r.latency_set_p50:  # not measured without the probe
                say(
                    r.latency_set_p50 <= TARGET_LATENCY_MS,
                    f"{where} latency p50 {_f(r.latency_set_p50)} ms <= {TARGET_LATENCY_MS}",
                )
        if r.case in ("gradient", "chart"):
            say(
                r.kernel_cpu <= TARGET_KERNEL_CPU,
                f"{where} kernel CPU {_f(r.kernel_cpu)} % <= {TARGET_KERNEL_CPU:.0f} % "
                f"(host steal {_f(r.steal)} %)",
            )
        if r.case == "chart":
            say(r.lost == 0, f"{where} {r.lost} of {r.sent} points lost")
            say(
                r.draws_s >= 0.9 * PREVIEW_HZ,
                f"{where} {_f(r.draws_s)} redraws/s at preview_hz {PREVIEW_HZ}",
            )
    for p in paired(results):
        spread = "" if len(p.differences) < 2 else f" (95 % CI +-{p.half_width:.1f})"
        say(
            p.mean <= 0,
            f"{p.app} gradient: Chromium CPU minus the reference's, mean of "
            f"{len(p.differences)} pair(s): {p.mean:+.1f} points{spread} <= 0",
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="JupyterLab, gradient and chart, 4 s")
    parser.add_argument("--apps", default=",".join(APPS), help="lab,notebook")
    parser.add_argument("--cases", default=",".join(CASES), help=",".join(CASES))
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="run only gradient and reference, N times each, alternating (ABBA) in each app",
    )
    parser.add_argument(
        "--no-probe",
        action="store_true",
        help="count frames without reading their stamps (no latency; CPU of the page alone)",
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    apps, cases, seconds = args.apps.split(","), args.cases.split(","), args.seconds
    # Reading a frame's stamp costs the page work of its own, and not the same for
    # an <img> (decoded again on the page's thread) as for a canvas: pairs, which
    # compare CPU, leave it out.
    probe = not (args.no_probe or args.pairs)
    if args.pairs:
        # ABBA: each case runs as often first as second in a pair, so a drift over the
        # run (the machine warming, a page cache filling) does not favour one of them.
        order = [("gradient", "reference"), ("reference", "gradient")]
        cases = [case for i in range(args.pairs) for case in order[i % 2]]
    if args.quick:
        apps, cases, seconds = ["lab"], ["gradient", "chart"], 4.0
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    results: list[Result] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="video-bench-") as scratch, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            for app in apps:
                with jupyter(app, Path(scratch) / app) as server:
                    for case in cases:
                        print(f"{app} {case}: {seconds:g} s ...", file=sys.stderr, flush=True)
                        try:
                            results.append(run_case(browser, server, case, seconds, probe))
                        except Exception as exc:  # one case failing must not hide the others
                            failed += 1
                            print(f"{app} {case} failed: {exc!r}", file=sys.stderr)
        finally:
            browser.close()
    load = os.getloadavg()
    print(
        f"{CAMERA_HZ} Hz 640x480 rgb8 camera, {SIGNAL_HZ} Hz signal, preview_hz {PREVIEW_HZ}, "
        f"{seconds:g} s a run, {os.cpu_count()} cores, load {load[0]:.1f}"
    )
    print(table(results))
    if args.pairs:
        print()
        print(paired_table(paired(results)))
    for result in results:
        if result.summary:
            print(f"{result.app} {result.case}: " + "; ".join(result.summary))
    for line in targets(results):
        print(line)
    if args.out:
        args.out.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
