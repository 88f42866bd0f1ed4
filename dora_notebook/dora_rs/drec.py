"""A ``.drec`` file of ``dora record``, played into the notebook through dora-rs itself.

``dora record`` writes each message as dora-rs serialises it between its
daemons (an internal encoding, not a public format), so only dora-rs reads
it back: ``dora replay FILE`` runs the recorded dataflow with each recorded
node replaced by a ``dora-replay-node`` process that sends, from the file,
what the node sent. :func:`replay_descriptor` asks ``dora replay
--output-yaml`` for that dataflow and keeps only the replay nodes;
:meth:`Dataflow.from_drec <dora_notebook.Dataflow.from_drec>` loads it. On the
dora engine the notebook's bridge subscribes to every output of every node,
so a recording (:meth:`Dataflow.record <dora_notebook.Dataflow.record>`)
receives every replayed message, with its metadata:

.. code-block:: python

    flow = Dataflow.from_drec("run.drec", speed=0)   # 0: as fast as it goes
    recording = flow.record()
    flow.start(engine="dora"); flow.wait(60)
    recording.save("run.arrow")

``dora record`` and ``dora replay`` each need a program the ``dora-rs-cli``
wheel does not ship (``dora-record-node``, ``dora-replay-node``): dora-rs
looks for it next to ``dora``, on ``PATH`` and in ``target/``, and otherwise
builds it with cargo from crates.io. :func:`replay_program` looks where
dora-rs looks and, rather than letting a notebook start a cargo build, says
what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ..errors import DataflowError
from .procs import child_env, dora_cli, error_text

__all__ = [
    "RECORD_PROGRAM",
    "REPLAY_NODE_ENV",
    "REPLAY_PROGRAM",
    "only_replay_nodes",
    "program",
    "replay_descriptor",
]

#: The programs ``dora record`` and ``dora replay`` run as nodes (crates of the same name).
RECORD_PROGRAM = "dora-record-node"
REPLAY_PROGRAM = "dora-replay-node"
#: What ``dora replay`` sets in a replay node's ``env``: the node it stands in for.
REPLAY_NODE_ENV = "DORA_REPLAY_NODE"


def program(name: str, dora: str | None = None) -> str:
    """The path of the program ``name`` (:data:`RECORD_PROGRAM`, :data:`REPLAY_PROGRAM`).

    Looked for where dora-rs looks: beside the ``dora`` command, on ``PATH``,
    in ``target/debug`` and ``target/release`` (``CARGO_TARGET_DIR``). Raises
    :class:`~dora_notebook.errors.DataflowError` saying how to install it.
    """
    dora = dora or dora_cli()
    target = Path(os.environ.get("CARGO_TARGET_DIR") or "target")
    on_path = shutil.which(name)
    candidates = [
        Path(dora).parent / name,
        *([Path(on_path)] if on_path else []),
        target / "debug" / name,
        target / "release" / name,
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate.resolve())
    command = "dora record" if name == RECORD_PROGRAM else "dora replay"
    raise DataflowError(
        f"{command} needs dora-rs's {name} program, which the dora-rs-cli wheel does not "
        f"ship (dora-rs would build it with cargo from crates.io): install it with "
        f"`cargo install {name} --version {_dora_version()}` and put it on PATH or "
        f"next to {dora}"
    )


def _dora_version() -> str:
    """The version of the installed dora CLI, which the program must match."""
    try:
        return metadata.version("dora-rs-cli")
    except metadata.PackageNotFoundError:
        return "<the version of `dora --version`>"


def replay_descriptor(
    drec: str | Path, folder: str | Path, speed: float = 0.0, nodes: Iterable[str] = ()
) -> Path:
    """Write ``folder/replay.yml``: the replay nodes ``dora replay`` makes of ``drec``; its path.

    ``speed``: the pace, as ``dora replay --speed`` (1 the recorded one, 0 as
    fast as it goes). ``nodes``: the recorded nodes to play (``--replace``),
    every one by default. The recorded dataflow's other nodes are left out:
    what they would do with the messages is not the recording's.
    """
    source = Path(drec).expanduser().resolve()
    if not source.is_file():
        raise DataflowError(f"no dora recording at {str(source)!r}")
    if speed < 0:
        raise DataflowError(f"the replay speed must be 0 or more, not {speed}")
    dora = dora_cli()
    replay_node = program(REPLAY_PROGRAM, dora)
    target = Path(folder).expanduser().resolve()
    target.mkdir(parents=True, exist_ok=True)
    written = target / "replay.yml"
    command = [dora, "replay", str(source), "--speed", repr(float(speed))]
    command += ["--output-yaml", str(written)]
    chosen = list(nodes)
    if chosen:
        command += ["--replace", ",".join(chosen)]
    env = child_env(target)
    # dora replay looks for its node on PATH (among other places): the one found here.
    env["PATH"] = os.pathsep.join([str(Path(replay_node).parent), env["PATH"]])
    try:
        done = subprocess.run(
            command, cwd=target, env=env, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        raise DataflowError(f"dora replay {source.name} did not answer within 60 s") from None
    if done.returncode != 0 or not written.is_file():
        raise DataflowError(f"dora replay {source.name}: {error_text(done.stderr + done.stdout)}")
    descriptor = only_replay_nodes(yaml.safe_load(written.read_text(encoding="utf-8")))
    if not descriptor["nodes"]:
        raise DataflowError(f"dora replay {source.name} replaced no node")
    written.write_text(yaml.safe_dump(descriptor, sort_keys=False), encoding="utf-8")
    return written


def only_replay_nodes(descriptor: dict[str, Any]) -> dict[str, Any]:
    """``descriptor`` (as ``dora replay --output-yaml`` writes it) with its replay nodes only.

    >>> only_replay_nodes({"nodes": [
    ...     {"id": "cam", "path": "/x/dora-replay-node", "env": {"DORA_REPLAY_NODE": "cam"}},
    ...     {"id": "viewer", "path": "viewer.py", "inputs": {"image": "cam/image"}},
    ... ]})["nodes"]
    [{'id': 'cam', 'path': '/x/dora-replay-node', 'env': {'DORA_REPLAY_NODE': 'cam'}}]
    """
    nodes = [
        node
        for node in descriptor.get("nodes") or []
        if isinstance(node, dict) and REPLAY_NODE_ENV in (node.get("env") or {})
    ]
    return {**descriptor, "nodes": nodes}
