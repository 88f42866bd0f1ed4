"""Node-hub nodes (``path: NAME``, an installed package's console script) on the embedded engine.

A fake node-hub package is written into a folder on ``sys.path`` with a
dist-info that declares its console script, as ``pip install`` would leave
it; the real ``opencv-video-capture`` from PyPI (in the ``[test]`` extra)
reads a short video the test writes, in-process, in a kernel and under
``dora-notebook run``.
"""

from __future__ import annotations

import base64
import importlib
import os
import re
import stat
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dora_notebook import Dataflow, GraphError
from dora_notebook.api import dora as api_dora
from dora_notebook.core.yaml12 import load as load_yaml12
from dora_notebook.dora_rs.export import render

from .dora_processes import live_descendants
from .needs import missing
from .sessions import run_in_session
from .waiting import wait_for

SENDER_MAIN = """
import argparse
import os

import pyarrow as pa
from dora import Node

import my_sender
from . import helper


def main():
    parser = argparse.ArgumentParser(description="sends COUNT numbers")
    parser.add_argument("--count", type=int, default=1)
    args = parser.parse_args()
    node = Node("my-sender")  # the package's name, as node-hub nodes pass it
    offset = int(os.getenv("OFFSET", "0"))
    for i in range(args.count):
        node.send_output("out", pa.array([helper.scale(i) + offset]))
    my_sender.SEEN.append((parser.prog, my_sender.__name__))
"""


def write_package(site: Path, dist: str, modules: dict[str, str], scripts: dict[str, str]) -> None:
    """A package as pip leaves it: its modules and a dist-info naming its console scripts."""
    for name, text in modules.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in scripts.items())
    (info / "entry_points.txt").write_text(f"[console_scripts]\n{lines}")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` holding the fake node-hub packages."""
    folder = tmp_path / "site"
    write_package(
        folder,
        "my-sender",
        {
            "my_sender/__init__.py": """
                try:
                    import dora
                except ImportError:  # dora-rs is not installed
                    dora = None
                SEEN = []
            """,
            "my_sender/main.py": SENDER_MAIN,
            "my_sender/helper.py": """
                import dora
                DORA = dora
                def scale(i):
                    return 10 * i
            """,
        },
        {"my-sender": "my_sender.main:main"},
    )
    write_package(
        folder,
        "my-rust-node",
        {
            "my_rust_node/__init__.py": "from ._native import main\n",
            f"my_rust_node/_native{importlib.machinery.EXTENSION_SUFFIXES[0]}": "",
        },
        {"my-rust-node": "my_rust_node:main"},
    )
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [n for n in sys.modules if n.startswith(("my_sender", "dora_notebook.hub."))]:
        del sys.modules[name]


class Collect:
    """An operator class that keeps what reaches it."""

    got: list[list[int]] = []

    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            Collect.got.append(event["value"].to_pylist())


def test_a_console_script_runs_in_process_with_its_own_dora_args_and_env(site: Path) -> None:
    Collect.got = []
    (site.parent / "dataflow.yml").write_text(
        textwrap.dedent("""
        nodes:
          - id: one
            path: my-sender
            args: --count 3
            env: {OFFSET: 1}
            outputs: [out]
          - id: two
            path: my-sender
            env: {OFFSET: 100}
            outputs: [out]
        """)
    )
    flow = Dataflow(echo=False)
    flow.load_yaml(site.parent / "dataflow.yml")
    assert flow.graph["one"].script == "my-sender" and flow.graph["one"].path is None
    flow.add_operator("sink", Collect, inputs={"a": "one/out", "b": "two/out"})
    assert flow.run(timeout=20) == []
    assert flow.node("one").error is None, flow.node("one").error
    assert sorted(Collect.got) == [[1], [11], [21], [100]]
    # Each node ran a copy of its own, whose every module got this package's dora.
    for node in ("one", "two"):
        private = sys.modules[f"dora_notebook.hub.{node}.my_sender"]
        assert [("my-sender", f"dora_notebook.hub.{node}.my_sender")] == private.SEEN
        assert sys.modules[f"dora_notebook.hub.{node}.my_sender.helper"].DORA is api_dora
        assert private.dora is api_dora
    # Elsewhere the package is the ordinary one, with the ordinary dora (if any).
    import my_sender
    import my_sender.helper

    assert my_sender.__name__ == "my_sender" and my_sender.SEEN == []
    assert my_sender.dora is not api_dora
    assert "dora" not in sys.modules or sys.modules["dora"] is not api_dora


def test_each_start_loads_the_package_anew(site: Path) -> None:
    Collect.got = []
    flow = Dataflow(echo=False)
    flow.load_yaml("nodes:\n  - id: src\n    path: my-sender\n    outputs: [out]\n", site)
    flow.add_operator("sink", Collect, inputs={"x": "src/out"})
    for _ in range(2):
        assert flow.run(timeout=20) == []
        # A module state kept between runs would hold two entries.
        assert sys.modules["dora_notebook.hub.src.my_sender"].SEEN == [
            ("my-sender", "dora_notebook.hub.src.my_sender")
        ]
    assert Collect.got == [[0], [0]]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "my-rust-node",
            "node 'n': path: 'my-rust-node' runs package my-rust-node 0.1, which has a compiled "
            "module (_native{suffix}) that talks to dora-rs itself; the embedded engine runs "
            "pure Python nodes only (use %dora_start --engine dora)",
        ),
        (
            "my-shell-node",
            "node 'n': path: 'my-shell-node' is the program {bin}/my-shell-node, not a console "
            "script of a Python package installed in this kernel's environment; the embedded "
            "engine runs Python nodes only (use %dora_start --engine dora)",
        ),
        (
            "no-such-node",
            "node 'n': path: 'no-such-node' is neither a file in {base} nor an installed "
            "command: install its package in this kernel's environment (pip install "
            "no-such-node), or run its build: (%dora_build)",
        ),
    ],
)
def test_a_command_the_embedded_engine_cannot_run_is_refused_before_start(
    site: Path, monkeypatch: pytest.MonkeyPatch, path: str, message: str
) -> None:
    bin_dir = site.parent / "bin"
    bin_dir.mkdir()
    shell = bin_dir / "my-shell-node"
    shell.write_text("#!/bin/sh\necho hello\n")
    shell.chmod(shell.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    flow = Dataflow(echo=False)
    # Loading accepts any command: a build: may install it, and the dora engine runs it.
    flow.load_yaml(f"nodes:\n  - id: n\n    path: {path}\n    outputs: [out]\n", site)
    with pytest.raises(GraphError) as refused:
        flow.start()
    expected = message.format(
        suffix=importlib.machinery.EXTENSION_SUFFIXES[0], bin=bin_dir, base=site
    )
    assert str(refused.value) == expected
    assert not flow.running


def test_an_export_keeps_the_command_for_dora_run(site: Path) -> None:
    flow = Dataflow(echo=False)
    flow.load_yaml("nodes:\n  - id: src\n    path: my-sender\n    outputs: [out]\n", site)
    flow.add_operator("sink", "class Operator:\n    pass\n", inputs={"x": "src/out"})
    files = render(flow.graph)
    assert sorted(files) == ["dataflow.yml", "sink.py"]
    nodes = load_yaml12(files["dataflow.yml"].decode())["nodes"]
    assert nodes[0] == {"id": "src", "path": "my-sender", "outputs": ["out"]}


def test_a_file_beside_the_descriptor_wins_over_a_command(site: Path) -> None:
    (site / "my-sender").write_text("not a python script")
    flow = Dataflow(echo=False)
    flow.load_yaml("nodes:\n  - id: n\n    path: my-sender\n", site)
    assert flow.graph["n"].script == str(site / "my-sender")  # the file, not the command
    with pytest.raises(GraphError, match="is a program, not a Python script"):
        flow.start()
    with pytest.raises(GraphError, match=r"file 'missing\.py' does not exist"):
        Dataflow(echo=False).load_yaml("nodes:\n  - id: n\n    path: missing.py\n", site)


# -- the real thing: opencv-video-capture from PyPI ---------------------------------------


def opencv_video_capture() -> None:
    try:
        importlib.import_module("opencv_video_capture.main")
    except ImportError:
        missing("opencv-video-capture is not installed: pip install -e '.[test]'")


def write_video(path: Path, frames: int = 20) -> None:
    """``frames`` frames of 64x48, frame i all of one grey level."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 10 * i % 256, np.uint8))
    writer.release()


CAMERA = """\
nodes:
  - id: camera
    path: opencv-video-capture
    inputs:
      tick: dora/timer/millis/20
    outputs:
      - image
    env:
      CAPTURE_PATH: {video}
"""

VIEWER = """
import cv2
from dora import DoraStatus

class Operator:
    def __init__(self):
        self.frames = 0

    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.frames += 1
            meta = event["metadata"]
            frame = event["value"].to_numpy().reshape(meta["height"], meta["width"], 3)
            context.preview(cv2.imencode(".png", frame)[1].tobytes(), id="frame")
            print("frame", self.frames, meta["width"], meta["height"], meta["encoding"])
            # The clip has 20 frames: stop well before the camera runs out.
            if self.frames == 10:
                return DoraStatus.STOP_ALL
        return DoraStatus.CONTINUE
"""


def test_opencv_video_capture_frames_reach_a_notebook_operator(tmp_path: Path) -> None:
    opencv_video_capture()
    from .kernel import Kernel

    write_video(tmp_path / "clip.avi")
    (tmp_path / "dataflow.yml").write_text(CAMERA.format(video=tmp_path / "clip.avi"))
    kernel = Kernel()
    try:
        kernel.execute("%load_ext dora_notebook")
        kernel.execute(f"%dora_dataflow {tmp_path / 'dataflow.yml'}")
        viewer = kernel.execute(f"%%dora_operator viewer --inputs image=camera/image\n{VIEWER}")
        done = kernel.execute("%dora_start --wait --timeout 30")
        assert "viewer: finished, 10 received" in done.text, done.text
        assert "camera: finished" in done.text, done.text
        assert len(viewer.widget_ids()) == 1  # the viewer's panel

        # What a frontend shows, wherever the panel puts it: the log and the frame.
        def logged() -> bool:
            return any("frame 10 64 48 bgr8" in str(m.get("value")) for m in kernel.models.values())

        wait_for(logged, 10, "the viewer's log on its panel")
        pngs = [
            out["data"]["image/png"]
            for model in kernel.models.values()
            for out in model.get("outputs", ())
            if "image/png" in out.get("data", {})
        ]
        assert len(pngs) == 1 and base64.b64decode(pngs[0]).startswith(b"\x89PNG")
        # The package is the ordinary one outside the node, with dora-rs's Node.
        elsewhere = kernel.execute(
            "import dora, sys, opencv_video_capture.main as m\n"
            "private = sys.modules['dora_notebook.hub.camera.opencv_video_capture.main']\n"
            "print(m.Node is dora.Node, private.Node.__module__, dora.__name__)"
        )
        assert elsewhere.text.split() == ["True", "dora_notebook.api.node", "dora"]
    finally:
        kernel.shutdown()


SINK_NODE = """\
  - id: sink
    operator:
      python: sink.py
      inputs:
        image: camera/image
"""

SINK = """
from dora import DoraStatus

class Operator:
    frames = 0

    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            self.frames += 1
            meta = event["metadata"]
            print("frame", self.frames, meta["width"], meta["height"], meta["encoding"],
                  len(event["value"]))
            if self.frames == 10:
                return DoraStatus.STOP_ALL
        return DoraStatus.CONTINUE
"""


def test_opencv_video_capture_runs_under_dora_notebook_run(tmp_path: Path) -> None:
    opencv_video_capture()
    write_video(tmp_path / "clip.avi")
    (tmp_path / "sink.py").write_text(SINK)
    # A relative CAPTURE_PATH: the CLI runs in the descriptor's folder, as dora does.
    (tmp_path / "dataflow.yml").write_text(CAMERA.format(video="clip.avi") + SINK_NODE)
    code = "import sys; from dora_notebook.cli import main; sys.exit(main())"
    done = run_in_session(
        [sys.executable, "-c", code, "run", "dataflow.yml", "--stop-after", "30"],
        tmp_path,
        {**os.environ, "NO_COLOR": "1"},
        60,
    )
    assert done.returncode == 0, done.console
    assert "camera: Opened camera at index clip.avi" in done.console
    frames = [line for line in done.console.splitlines() if "stdout sink: frame" in line]
    assert [line.split("stdout sink: ")[1] for line in frames] == [
        f"frame {i} 64 48 bgr8 {64 * 48 * 3}" for i in range(1, 11)
    ]


COUNTER = """
class Operator:
    def __init__(self):
        self.frames = 0

    def on_event(self, dora_event, context):
        if dora_event["type"] == "INPUT":
            self.frames += 1
            meta = dora_event["metadata"]
            print("frame", self.frames, meta["width"], meta["height"], meta["encoding"])
"""


@pytest.mark.dora
def test_opencv_video_capture_runs_on_the_dora_engine_from_its_command(tmp_path: Path) -> None:
    """``--engine dora`` exports ``path: opencv-video-capture`` as it is; dora finds it on PATH."""
    opencv_video_capture()
    # dora queues the ticks while the nodes start, and the camera reads one
    # frame per tick: a longer clip, so that the first frames are the clip's. The
    # camera (no shim) does not wait for the kernel's bridge as the counter does: 20 s
    # of clip at 50 frames a second (CI23: 200 frames were over before the counter's
    # first, which was a blank one).
    write_video(tmp_path / "clip.avi", frames=1000)
    # CI=true: at the clip's end the node sends blank frames instead of failing.
    camera = CAMERA.format(video=tmp_path / "clip.avi") + "      CI: 'true'\n"
    (tmp_path / "dataflow.yml").write_text(camera)
    flow = Dataflow(echo=False)
    flow.load_yaml(tmp_path / "dataflow.yml")
    flow.add_operator("counter", COUNTER, inputs={"image": "camera/image"})
    flow.start(engine="dora")
    try:
        wait_for(lambda: len(flow.node("counter").log_text()) >= 5, 60, "5 frames")
    finally:
        flow.stop()
    # dora-rs drops a message now and then on a busy machine: the count may skip.
    lines = flow.node("counter").log_text()[:5]
    assert all(re.fullmatch(r"frame \d+ 64 48 bgr8", line) for line in lines), lines
    assert flow.node("camera").error is None, flow.node("camera").error
    assert live_descendants() == []
