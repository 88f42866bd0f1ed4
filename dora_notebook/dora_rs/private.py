"""The descriptor a dora engine run starts: the export plus the kernel's bridge.

:func:`private_descriptor` turns what ``%dora_export`` writes into what
:class:`~dora_notebook.dora_rs.engine.DoraEngine` hands to ``dora start``:
node files named by absolute path, each cell node's extra reports output
(:data:`REPORTS_OUTPUT`) and the engine's variables in its ``env``, and one
dynamic node, :data:`~dora_notebook.dora_rs.bridge.BRIDGE_ID`, taking every
reports output and every output on the kernel's machine (for taps and
counts), and, for a run recorded from its start, every timer the graph uses.
The engine and a hot swap (:mod:`.swap`) both build from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..core.graph import Graph
from .bridge import BRIDGE_ID, TAP_PREFIX, TIMER_PREFIX
from .export import has_context
from .shim import INPUTS_ENV, READY_ENV, REPORTS_ENV, STATS_ENV, TOKEN_ENV

__all__ = ["IDLE_OUTPUT", "REPORTS_OUTPUT", "TAP_QUEUE", "private_descriptor"]

#: The extra output every cell node sends its reports on.
REPORTS_OUTPUT = "dora_notebook_reports"
#: An output of the bridge that never sends: a hot swap that changes every data input
#: of a node keeps it open through the rewiring (see .swap).
IDLE_OUTPUT = "dora_notebook_idle"
#: The queue of each of the bridge's inputs from the nodes' outputs: large, since
#: it counts what it gets (it drains them at once; see bridge.Relay).
TAP_QUEUE = 10000
# The bridge's inputs from the nodes' outputs keep dora's default queue policy, as
# every consumer the user wrote has it: the bridge observes the graph, and must not
# change how dora-rs carries its messages. Its inputs of reports (an output of our
# own, which only the bridge takes) have ``queue_policy: backpressure``: under the
# default, dora-rs lost reports in a burst, however large the queue, and a node's
# final status or error could go with them (a node printing 3000 lines just before
# it ended, under load: the kernel got 2692 to 2973 lines in 4 runs of 4; with
# backpressure, 3000 in 21 of 21 runs). (dora-rs 1.1.0 also loses a few messages early
# in a run under the default policy, without a warning, however large the queue: under plain
# ``dora run``, one producer at 50 Hz and three consumers with ``queue_size:
# 10000``, 12 of 30 consumers missed 1 to 9 of 40 messages; with ``queue_policy:
# backpressure``, 0 of 30. But that policy changes how dora-rs carries the
# producers' messages, measured with the bridge's inputs so declared: a sink's
# last inputs came after dora's STOP (3 of 3 runs of the payloads conformance
# case, never under ``dora run``), and ``dora node connect`` delivered to a
# running node, which it does not otherwise.)


def private_descriptor(
    text: str,
    graph: Graph,
    ready: Path,
    folder: Path,
    machine: str | None = None,
    placed: bool = True,
    token: str = "",
    timers: Iterable[str] = (),
) -> dict[str, Any]:
    """The exported descriptor plus the bridge node and the reports outputs.

    Relative node files become absolute under ``folder``. With ``placed``
    false (one local daemon) every ``deploy`` is dropped; otherwise nodes
    placed nowhere, and the bridge, go to ``machine`` when it is given. Each
    cell node's ``env`` gets the engine's own variables, ``token`` (the
    run's secret) among them, on top of what the graph declares. Each of
    ``timers`` (``dora/timer/...``) becomes an input of the bridge too: a
    recording's, which dora-rs 1.1 can give only from the start (see
    :func:`_tap_inputs`), and which costs the bridge a wake-up per tick.
    """
    descriptor = yaml.safe_load(text)
    sources = {}
    for node in descriptor["nodes"]:
        _absolute_files(node, folder)
        if not placed:
            node.pop("deploy", None)
        elif machine is not None and "deploy" not in node:
            node["deploy"] = {"machine": machine}
        spec = graph[node["id"]]
        if not has_context(spec):
            continue  # a plain dora file has no context shim: it reports nothing
        target = node.get("operator", node)
        target["outputs"] = [*(target.get("outputs") or []), REPORTS_OUTPUT]
        env = dict(node.get("env") or {})
        env.update(
            {
                REPORTS_ENV: REPORTS_OUTPUT,
                READY_ENV: str(ready),
                INPUTS_ENV: ",".join(spec.inputs),
                TOKEN_ENV: token,
                STATS_ENV: str(ready.parent / "stats"),
            }
        )
        node["env"] = env
        sources[spec.id] = {
            "source": f"{spec.id}/{REPORTS_OUTPUT}",
            "queue_size": 100000,
            "queue_policy": "backpressure",
        }
    sources.update(_tap_inputs(descriptor["nodes"], graph, placed, machine))
    for number, timer in enumerate(sorted(set(timers))):
        sources[f"{TIMER_PREFIX}{number}"] = {
            "source": timer,
            "queue_size": TAP_QUEUE,
        }
    if sources:
        bridge: dict[str, Any] = {
            "id": BRIDGE_ID,
            "path": "dynamic",
            "inputs": sources,
            "outputs": [IDLE_OUTPUT],  # never sent: what a hot swap's rewiring holds on to
        }
        if placed and machine is not None:
            bridge["deploy"] = {"machine": machine}
        descriptor["nodes"].append(bridge)
    return descriptor


def _tap_inputs(
    nodes: list[dict[str, Any]], graph: Graph, placed: bool, machine: str | None
) -> dict[str, dict[str, Any]]:
    """The bridge's input from every output of every node on the kernel's machine.

    dora-rs 1.1 cannot add an input to a running node (``dora node connect``
    adds the mapping, but nothing reaches the new input: measured), so the
    bridge subscribes to every output from the start; it passes values on
    only for tapped outputs, and counts the others. On a cluster, outputs of
    nodes placed on another machine (``machine`` names the kernel's) are left
    out: subscribing would ship every message of theirs to this machine.
    """
    inputs = {}
    for node in nodes:
        if placed and (node.get("deploy") or {}).get("machine") != machine:
            continue
        outputs = graph[node["id"]].outputs if node["id"] in graph else ()
        for output in outputs:
            inputs[f"{TAP_PREFIX}{len(inputs)}"] = {
                "source": f"{node['id']}/{output}",
                "queue_size": TAP_QUEUE,
            }
    return inputs


def _absolute_files(node: dict[str, Any], folder: Path) -> None:
    """Name the node's files (``path``, operators' ``python``...) by absolute path.

    Only names of files that exist under ``folder`` change: ``path`` may also
    be a command on PATH (``dora-echo``) or ``dynamic``.
    """
    operators = [node.get("operator"), *(node.get("operators") or [])]
    keys = ("python", "shared-library")
    owners = [(node, "path")]
    owners += [(op, key) for op in operators if isinstance(op, dict) for key in keys]
    for owner, key in owners:
        value = owner.get(key)
        if isinstance(value, str) and (folder / value).is_file():
            owner[key] = str((folder / value).resolve())
