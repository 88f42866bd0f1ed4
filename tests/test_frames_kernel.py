"""Images and live charts in a real ipykernel: binary buffers, bounded rates, batching."""

from __future__ import annotations

import base64
import io
import math
import time

import pytest
from PIL import Image

from .kernel import Kernel, define

#: Every test starts with an empty graph and leaves no dora thread behind.
pytestmark = pytest.mark.usefixtures("fresh_graph")

#: The start of base64 text of a JPEG, a PNG, and a data URL: none may travel.
BASE64_IMAGES = ("/9j/", "iVBORw0KGgo", "data:image")

CAMERA = """
import time
import numpy as np
import pyarrow as pa
from dora import Node
node = Node()
h, w = 480, 640
yy, xx = np.mgrid[0:h, 0:w]
for i in range({frames}):
    frame = np.stack([(xx + 8 * i) % 256, yy * 255 // h, np.full_like(xx, 128)], -1)
    node.send_output("image", pa.array(frame.astype(np.uint8).ravel()),
                     {{"width": w, "height": h, "encoding": "{encoding}", "i": i}})
    time.sleep(1 / 30)
"""

VIEWER = """
class Operator:
    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            context.preview(dora_event)
"""


def image_models(kernel: Kernel, panel_id: str) -> list[str]:
    """A panel's image slots: FrameViews (anywidgets with a ``format`` and a ``value``)."""
    _, _, previews, _ = kernel.child_ids(panel_id)
    return [c for c in kernel.child_ids(previews) if {"_esm", "format"} <= kernel.model(c).keys()]


def unpack(packed: dict) -> dict[str, dict]:
    """A chart's ``series`` or ``chunk`` as ``{name: {"x", "y", "window"}}``."""
    xs, ys = (list(memoryview(packed.get(k, b"")).cast("d")) for k in ("x", "y"))
    out, at = {}, 0
    for name, window, n in zip(
        packed.get("names", []), packed.get("windows", []), packed.get("counts", []), strict=True
    ):
        out[name] = {"x": xs[at : at + n], "y": ys[at : at + n], "window": window}
        at += n
    return out


def texts(state: object) -> list[str]:
    """Every str in a widget state (keys and values, nested)."""
    if isinstance(state, str):
        return [state]
    if isinstance(state, dict):
        return [t for k, v in state.items() for t in (str(k), *texts(v))]
    if isinstance(state, (list, tuple)):
        return [t for v in state for t in texts(v)]
    return []


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_a_camera_plays_as_binary_frames_at_preview_hz(kernel: Kernel, encoding: str) -> None:
    kernel.execute("%config DoraMagics.preview_hz = 10")
    define(
        kernel, "%%dora_node camera --outputs image", CAMERA.format(frames=60, encoding=encoding)
    )
    viewer = define(kernel, "%%dora_operator viewer --inputs image=camera/image", VIEWER)
    start = time.monotonic()
    done = kernel.execute("%dora_start --wait --timeout 30")
    elapsed = time.monotonic() - start
    assert "viewer: finished, 60 received, 0 sent" in done.text
    (panel_id,) = viewer.widget_ids()
    (image_id,) = image_models(kernel, panel_id)
    updates = [
        state for when, comm, state in kernel.comm_log if comm == image_id and "value" in state
    ]
    frames = [state["value"] for state in updates]
    # Binary buffers: bytes in the message, JPEG or PNG, never base64 text.
    assert frames and all(isinstance(f, bytes) for f in frames)
    assert not [t for s in updates for t in texts(s) if t.startswith(BASE64_IMAGES)]
    # Bounded by preview_hz (10 Hz over the run, plus the first and the final draw),
    # while the camera sent 30 a second: the UI skipped frames, newest wins.
    assert 3 <= len(frames) <= 10 * elapsed + 3, (len(frames), elapsed)
    last = Image.open(io.BytesIO(frames[-1]))
    assert last.size == (640, 480) and last.format in ("JPEG", "PNG")
    assert kernel.model(image_id)["format"] == last.format.lower()
    # The last frame (i = 59) is shown, in its own colours: red = (x + 8*59) % 256 at x=0.
    red, green, blue = last.convert("RGB").getpixel((0, 240))
    expected = (8 * 59) % 256
    if encoding == "bgr8":
        red, blue = blue, red
    assert abs(red - expected) <= 8 and abs(blue - 128) <= 8 and abs(green - 127) <= 8


def test_numpy_and_pil_previews_and_a_bad_image_warns(kernel: Kernel) -> None:
    shown = define(
        kernel,
        "%%dora_operator shown --inputs tick=dora/timer/millis/20",
        """
        import numpy as np
        from PIL import Image
        class Operator:
            def __init__(self):
                self.n = 0
            def on_event(self, dora_event, context):
                if dora_event["type"] != "INPUT":
                    return
                self.n += 1
                context.preview(np.full((30, 40), 200, np.uint8), id="mono")
                context.preview(Image.new("RGB", (20, 10), "red"), id="pil")
                context.preview(b"\\x00" * 5, id="bad", metadata={
                    "width": 4, "height": 4, "encoding": "rgb8"})
                if self.n == 3:
                    return 1
        """,
    )
    kernel.execute("%dora_start --wait --timeout 20")
    (panel_id,) = shown.widget_ids()
    images = [kernel.model(i)["value"] for i in image_models(kernel, panel_id)]
    sizes = sorted(Image.open(io.BytesIO(raw)).size for raw in images)
    assert sizes == [(20, 10), (40, 30)]
    log = kernel.model(kernel.log_id(panel_id))["value"]
    assert "image rgb8 4x4 needs 48 bytes (height x width x 3), got 5" in log
    assert log.count("needs 48 bytes") == 1  # one warning, not one per message


PLOTTER = """
import math, time
from dora import Node
node = Node()
ctx = node.context
start = time.monotonic()
for i in range({n}):
    ctx.plot("sin", math.sin(i / 10))
    ctx.plot("cos", math.cos(i / 10), x=i, window=300)
    time.sleep(max(0.0, start + (i + 1) / 100 - time.monotonic()))
print("plotted", {n})
"""


def test_plot_points_are_batched_per_redraw_and_all_arrive(kernel: Kernel) -> None:
    kernel.execute("%config DoraMagics.preview_hz = 10")
    plotter = define(kernel, "%%dora_node plotter", PLOTTER.format(n=200))
    start = time.monotonic()
    kernel.execute("%dora_start --wait --timeout 30")
    elapsed = time.monotonic() - start
    (panel_id,) = plotter.widget_ids()
    _, _, previews, _ = kernel.child_ids(panel_id)
    (chart_id,) = [c for c in kernel.child_ids(previews) if "series" in kernel.model(c)]
    updates = [state for when, comm, state in kernel.comm_log if comm == chart_id and when >= start]
    # A message per redraw (at most preview_hz a second), never one per point.
    assert len(updates) <= 10 * elapsed + 3 < 200
    assert sum(1 for s in updates if s.get("chunk")) >= 2  # points went as chunks while running
    full = unpack(kernel.model(chart_id)["series"])  # the final state: every kept point
    sin = full["sin"]["y"]
    assert len(sin) == 200 and sin[-1] == pytest.approx(math.sin(19.9))
    assert full["cos"]["x"] == [float(i) for i in range(200)]
    assert (full["cos"]["window"], full["sin"]["window"]) == (300, 500)
    # What the browser does with the messages (replace on series, append on chunk)
    # gives every point once, in order, at every step: none lost, none twice.
    shown: dict[str, list[float]] = {}
    for state in updates:
        if "series" in state:
            shown = {name: data["y"] for name, data in unpack(state["series"]).items()}
        for name, data in unpack(state.get("chunk", {})).items():
            shown.setdefault(name, []).extend(data["y"])
        assert shown.get("sin", []) == sin[: len(shown.get("sin", []))]
    assert shown == {"sin": sin, "cos": full["cos"]["y"]}
    assert not [t for s in updates for t in texts(s) if t.startswith(BASE64_IMAGES)]


def test_plot_keeps_its_window(kernel: Kernel) -> None:
    plotter = define(
        kernel,
        "%%dora_node windowed",
        """
        from dora import Node
        ctx = Node().context
        ctx.plot("v", list(range(1000)), window=50)
        ctx.plot("v", "not a number")
        """,
    )
    kernel.execute("%dora_start --wait --timeout 20")
    (panel_id,) = plotter.widget_ids()
    _, _, previews, _ = kernel.child_ids(panel_id)
    (chart_id,) = [c for c in kernel.child_ids(previews) if "series" in kernel.model(c)]
    y = unpack(kernel.model(chart_id)["series"])["v"]["y"]
    assert y == [float(v) for v in range(950, 1000)]
    log = kernel.model(kernel.log_id(panel_id))["value"]
    assert "plot &#x27;v&#x27;: y must be a number or a sequence of numbers" in log


@pytest.mark.dora
def test_on_the_dora_engine_frames_and_points_reach_the_panel_as_binary(kernel: Kernel) -> None:
    # Under dora-rs the node encodes (at most preview_hz times a second) and the
    # report travels as JSON; the kernel's panel turns the frame back into bytes.
    define(kernel, "%%dora_node camera --outputs image", CAMERA.format(frames=30, encoding="rgb8"))
    viewer = define(
        kernel,
        "%%dora_operator viewer --inputs image=camera/image",
        """
        class Operator:
            def __init__(self):
                self.n = 0
            def on_event(self, dora_event, context):
                if dora_event["type"] == "INPUT":
                    context.preview(dora_event)
                    context.plot("n", self.n)
                    self.n += 1
        """,
    )
    done = kernel.execute("%dora_start --engine dora --wait --timeout 60", timeout=120)
    assert "viewer: finished, 30 received, 0 sent" in done.text
    (panel_id,) = viewer.widget_ids()
    kernel.until(
        lambda: bool(image_models(kernel, panel_id)) and chart_points(kernel, panel_id) == 30,
        10,
        "the last frame and every point on the panel",
    )
    (image_id,) = image_models(kernel, panel_id)
    updates = [s for _, comm, s in kernel.comm_log if comm == image_id and "value" in s]
    assert all(isinstance(s["value"], bytes) for s in updates)
    assert not [t for s in updates for t in texts(s) if t.startswith(BASE64_IMAGES)]
    last = Image.open(io.BytesIO(kernel.model(image_id)["value"]))
    red = last.convert("RGB").getpixel((0, 240))[0]
    assert last.size == (640, 480) and abs(red - (8 * 29) % 256) <= 8  # the newest frame


def chart_points(kernel: Kernel, panel_id: str) -> int:
    """How many points of series ``n`` the panel's chart has (0 without a chart)."""
    _, _, previews, _ = kernel.child_ids(panel_id)
    charts = [c for c in kernel.child_ids(previews) if "series" in kernel.model(c)]
    series = unpack(kernel.model(charts[0]).get("series", {})) if charts else {}
    return len(series.get("n", {}).get("y", []))


def test_a_tap_of_an_image_edge_shows_thumbnails(kernel: Kernel) -> None:
    define(kernel, "%%dora_node camera --outputs image", CAMERA.format(frames=300, encoding="rgb8"))
    kernel.execute("%dora_start")
    tap = kernel.execute("%dora_tap camera/image -n 3")  # waits for 3 messages
    kernel.execute("%dora_stop")
    (box_id,) = tap.widget_ids()
    thumbnails = [kernel.model(c) for c in kernel.child_ids(box_id)]
    sizes = [Image.open(io.BytesIO(t["value"])).size for t in thumbnails]
    assert sizes == [(160, 120)] * 3  # 640x480 scaled down, as binary buffers
    assert tap.text.startswith("<3 thumbnails of image 640x480 rgb8>\n")
    assert "metadata" in tap.text and "value" in tap.text  # and the table, as before


def test_a_final_chart_adds_a_static_picture_to_its_panels_output(kernel: Kernel) -> None:
    plotter = define(kernel, "%%dora_node pictured", PLOTTER.format(n=50))
    (display,) = [o for o in plotter.outputs if o["msg_type"] == "display_data"]
    display_id = display["content"]["transient"]["display_id"]
    kernel.execute("%dora_start --wait --timeout 30")
    kernel.until(
        lambda: any(
            m["msg_type"] == "update_display_data"
            and m["content"]["transient"]["display_id"] == display_id
            for m in kernel.other
        ),
        10,
        "the panel's output to be updated",
    )
    updates = [
        m["content"]["data"]
        for m in kernel.other
        if m["msg_type"] == "update_display_data"
        and m["content"]["transient"]["display_id"] == display_id
    ]
    # Once, or twice alike: sent by the UI thread as the graph ended, then again by the
    # waiting cell's thread, for a headless run (see UIPump.settle).
    assert 1 <= len(updates) <= 2 and all(u == updates[0] for u in updates)
    update = updates[0]
    # The widget stays, with the final summary, and a PNG for frontends without widgets.
    widget = update["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert widget == plotter.widget_ids()[0]
    assert update["text/plain"] == "pictured: finished, 0 received, 0 sent"
    picture = Image.open(io.BytesIO(base64.b64decode(update["image/png"])))
    assert picture.format == "PNG" and picture.size[0] > 300


def test_preview_hz_reaches_the_nodes_the_dora_engine_starts(kernel: Kernel) -> None:
    # They inherit the kernel's environment: a dora node sends frames as often as panels draw.
    kernel.execute("%config DoraMagics.preview_hz = 25")
    try:
        seen = kernel.execute("import os\nprint(os.environ['DORA_NOTEBOOK_PREVIEW_HZ'])")
        assert seen.text.strip() == "25.0"
    finally:
        kernel.execute("%config DoraMagics.preview_hz = 10")
