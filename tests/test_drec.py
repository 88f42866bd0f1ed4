"""A ``.drec`` file of ``dora record`` replayed into the notebook through dora-rs (issue 16).

``dora record`` and ``dora replay`` each run a program the dora-rs-cli wheel does not
ship (``dora-record-node``, ``dora-replay-node``), which only cargo installs, from
crates.io, which neither the developers' machines nor CI reach (no registry they reach
has them). So there is no end-to-end test of playing a ``.drec`` here (a test that can
only skip is not kept: under CI a missing dependency fails): these tests check how the
programs are looked for, what is said when they are missing, and everything up to the
playback itself (a real ``dora record --proxy`` file, ``dora replay --output-yaml``).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from dora_notebook import Dataflow
from dora_notebook.dora_rs import drec
from dora_notebook.dora_rs.drec import RECORD_PROGRAM, REPLAY_PROGRAM, program, replay_descriptor
from dora_notebook.dora_rs.procs import child_env
from dora_notebook.errors import DataflowError

from .dora_processes import engine_of, live_descendants
from .needs import needs_dora

COUNTER = """\
import pyarrow as pa
from dora import Node

node = Node()
sent = 0
for event in node:
    if event["type"] == "INPUT" and event["id"] == "tick":
        node.send_output("n", pa.array([sent, sent * 2]), {"i": sent})
        sent += 1
        if sent == 20:
            break
"""
SINK = """\
from dora import Node

for event in Node():
    pass
"""
DATAFLOW = """\
nodes:
  - id: counter
    path: counter.py
    inputs:
      tick: dora/timer/millis/20
    outputs:
      - n
  - id: sink
    path: sink.py
    inputs:
      n: counter/n
"""


#: What ``dora record --proxy`` needs of a dataflow (dora-rs 1.1 refuses it otherwise:
#: "topic inspection requires `debug.enable_debug_inspection: true`").
INSPECTION = """\
debug:
  enable_debug_inspection: true
"""


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_missing_program_is_named_with_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dora = executable(tmp_path / "bin" / "dora")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path / "target"))
    with pytest.raises(DataflowError) as caught:
        program(REPLAY_PROGRAM, str(dora))
    assert str(caught.value) == (
        "dora replay needs dora-rs's dora-replay-node program, which the dora-rs-cli wheel "
        "does not ship (dora-rs would build it with cargo from crates.io): install it with "
        f"`cargo install dora-replay-node --version 1.1.0` and put it on PATH or next to {dora}"
    )
    with pytest.raises(DataflowError, match=r"^dora record needs dora-rs's dora-record-node"):
        program(RECORD_PROGRAM, str(dora))


def test_the_programs_are_found_where_dora_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dora = executable(tmp_path / "bin" / "dora")
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path / "target"))
    built = executable(tmp_path / "target" / "release" / REPLAY_PROGRAM)
    assert program(REPLAY_PROGRAM, str(dora)) == str(built)
    on_path = executable(tmp_path / "elsewhere" / REPLAY_PROGRAM)
    assert program(REPLAY_PROGRAM, str(dora)) == str(on_path)
    beside = executable(tmp_path / "bin" / REPLAY_PROGRAM)
    assert program(REPLAY_PROGRAM, str(dora)) == str(beside)


def test_what_is_not_a_recording_is_refused_before_dora_runs(tmp_path: Path) -> None:
    with pytest.raises(DataflowError, match=r"^no dora recording at '.*nothing\.drec'$"):
        replay_descriptor(tmp_path / "nothing.drec", tmp_path)
    (tmp_path / "run.drec").write_bytes(b"")
    with pytest.raises(DataflowError, match=r"^the replay speed must be 0 or more, not -1"):
        replay_descriptor(tmp_path / "run.drec", tmp_path, speed=-1)


def test_replay_from_a_drec_says_what_dora_rs_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``%dora_replay NODE --from run.drec`` goes through dora replay, which needs its node."""
    dora = executable(tmp_path / "bin" / "dora")
    monkeypatch.setattr(drec, "dora_cli", lambda: str(dora))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path / "target"))
    (tmp_path / "run.drec").write_bytes(b"DORAREC\x00")
    flow = Dataflow(echo=False)
    flow.add_operator("op", "class Operator:\n    pass\n", inputs={"n": "counter/n"})
    with pytest.raises(DataflowError, match=r"^dora replay needs dora-rs's dora-replay-node"):
        flow.replay("op", tmp_path / "run.drec")


@pytest.mark.dora
def test_dora_replay_of_a_real_drec_gives_the_replay_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What dora-rs 1.1 does without the two programs, on a real recording.

    ``dora record --proxy`` records a running dataflow through the coordinator (no
    ``dora-record-node``; the descriptor must enable dora's debug inspection), and
    ``dora replay --output-yaml`` only has to find ``dora-replay-node``, not run it: a
    stand-in that is never run lets it write the replay dataflow, of which
    ``Dataflow.from_drec`` keeps the replay nodes.
    """
    dora = needs_dora()
    (tmp_path / "counter.py").write_text(COUNTER)
    (tmp_path / "sink.py").write_text(SINK)
    # Slower ticks (2 s in all): the recorder subscribes once the dataflow runs.
    descriptor = DATAFLOW.replace("millis/20", "millis/100") + INSPECTION
    (tmp_path / "dataflow.yml").write_text(descriptor)
    flow = Dataflow.from_yaml(tmp_path / "dataflow.yml", echo=False)
    flow.start(engine="dora")
    engine = engine_of(flow)
    try:
        with open(tmp_path / "record.log", "w") as log:
            # The engine's own coordinator (private attributes: a test may look).
            address = ["--coordinator-addr", engine._host, "--coordinator-port", str(engine._port)]
            recorder = subprocess.run(
                [dora, "record", "dataflow.yml", "--proxy", "-o", "run.drec", *address],
                cwd=tmp_path,
                env=child_env(tmp_path),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=60,
            )  # it ends with the dataflow's data stream
        assert flow.wait(30)
    finally:
        flow.stop()
    log = (tmp_path / "record.log").read_text()
    assert recorder.returncode == 0, log
    # dora-rs's words: "Recording finished: 16 messages, 0.01 MB" (those sent once subscribed).
    assert re.search(r"Recording finished: [1-9][0-9]* messages", log), log
    stand_in = executable(tmp_path / "bin" / REPLAY_PROGRAM)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    written = replay_descriptor(tmp_path / "run.drec", tmp_path / "replay", speed=0)
    assert yaml.safe_load(written.read_text())["nodes"] == [
        {
            "id": "counter",
            "path": str(stand_in),
            "outputs": ["n"],
            "env": {
                "DORA_REPLAY_FILE": str(tmp_path / "run.drec"),
                "DORA_REPLAY_NODE": "counter",
                "DORA_REPLAY_SPEED": "0",
            },
        }
    ]
    replayed = Dataflow.from_drec(tmp_path / "run.drec", echo=False)
    assert [(spec.id, list(spec.outputs)) for spec in replayed.graph] == [("counter", ["n"])]
    assert not live_descendants()


def test_the_embedded_engine_refuses_a_replay_node_and_points_to_dora(tmp_path: Path) -> None:
    """What Dataflow.from_drec gives is for the dora engine: the embedded one says so."""
    descriptor = tmp_path / "replay.yml"
    node = executable(tmp_path / REPLAY_PROGRAM)
    descriptor.write_text(
        textwrap.dedent(
            f"""\
            nodes:
            - id: counter
              path: {node}
              outputs: [n]
              env: {{DORA_REPLAY_NODE: counter, DORA_REPLAY_FILE: {tmp_path / "run.drec"}}}
            """
        )
    )
    flow = Dataflow.from_yaml(descriptor, echo=False)
    with pytest.raises(DataflowError, match="--engine dora"):
        flow.start()
