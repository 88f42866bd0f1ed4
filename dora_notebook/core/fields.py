"""The descriptor fields the embedded engine cannot honour, refused before start.

dora-rs 1.1 accepts every field below; the dora engine passes them on to
dora. The embedded engine runs every node in this one process, so a field
that only means something for a process of its own (restarting it, pinning
it to CPUs, killing it when its health check fails) or for sources dora
fetches is refused with one line naming the field and the node, as is a
``path:`` command that is not a pure-Python package's console script
(:mod:`.hub`). The global ``env:`` is honoured: every node gets it, under its
own ``env``.

Accepted because one process honours them as they are: ``name`` and
``description``; ``output_framing`` (the wire format between processes:
here a message is passed by reference), ``shared_memory_pool_size`` (no
shared memory is used), ``max_log_size`` and ``max_rotated_files`` (no log
files are written), ``finish_grace_secs`` (the embedded engine never
force-stops a node, so any grace is kept), ``output_metadata`` and
``pattern`` (checked by ``dora validate``, as by dora at build time), the
``max_restarts`` kin of ``restart_policy: never``. ``path_sha256`` is
checked against the node's file before start.

>>> from .graph import NodeSpec
>>> g = Graph()
>>> g.add(NodeSpec("cam", "node", source="pass", extra={"restart_policy": "always"}))
>>> for_embedded(g, {})  # doctest: +ELLIPSIS
Traceback (most recent call last):
dora_notebook.errors.GraphError: node 'cam': restart_policy: always restarts ...
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import GraphError
from .graph import Graph, NodeSpec, _env_from_yaml
from .hub import check as check_script
from .logs import parse_level

__all__ = ["for_embedded"]

_ENGINE = "use %dora_start --engine dora"
# Field -> why the embedded engine cannot honour it (when set to anything).
_REFUSED = {
    "git": "a source dora build fetches with git",
    "hub": "a node dora build fetches from its hub",
    "branch": "a source dora build fetches with git",
    "tag": "a source dora build fetches with git",
    "rev": "a source dora build fetches with git",
    "cpu_affinity": "pins a node's process to CPUs; embedded nodes share one process",
    "health_check_timeout": "kills a node's process when it hangs; embedded nodes are threads",
    "send_stdout_as": "sends a process's stdout as an output; not on the embedded engine yet",
    "startup_timeout": "kills a node's process that has not connected in time; embedded "
    "nodes are threads",
}
_REFUSED_TOP = {
    "exit_when_nodes_finish": "ends a run on timers; not on the embedded engine yet",
}


def for_embedded(graph: Graph, top: Mapping[str, Any]) -> Graph:
    """A copy of ``graph`` for the embedded engine: global ``env`` applied, or a refusal."""
    for key, why in _REFUSED_TOP.items():
        if top.get(key):
            raise GraphError(f"descriptor: {key}: {why} ({_ENGINE})")
    global_env = _env_from_yaml(top.get("env"), "descriptor")
    out = graph.copy()
    for spec in out:
        fields = dict(spec.extra)
        if isinstance(fields.get("operator"), Mapping):
            fields.update(fields.pop("operator"))
        for key, why in _REFUSED.items():
            if fields.get(key) is not None:
                raise GraphError(f"node {spec.id!r}: {key}: {why} ({_ENGINE})")
        level = fields.get("min_log_level")
        if level is not None:
            try:
                parse_level(level)
            except ValueError as exc:
                raise GraphError(f"node {spec.id!r}: min_log_level: {exc}") from None
        policy = fields.get("restart_policy")
        if policy not in (None, "never"):
            raise GraphError(
                f"node {spec.id!r}: restart_policy: {policy} restarts a node's process, and "
                f"embedded nodes are threads of the kernel ({_ENGINE})"
            )
        if fields.get("path_sha256") is not None:
            _check_sha256(spec, str(fields["path_sha256"]))
        for inp in spec.inputs.values():
            _check_input(spec.id, inp.input_id, inp.options)
        if global_env:
            spec.env = {**global_env, **spec.env}
        if spec.script is not None:
            check_script(spec)
    return out


def _check_input(node_id: str, input_id: str, options: Mapping[str, Any]) -> None:
    """An input's ``input_timeout`` and ``queue_policy``: the embedded engine drops the
    oldest message of a full queue (dora's default) and times no input out."""
    where = f"node {node_id!r}: inputs.{input_id}"
    if options.get("input_timeout") is not None:
        raise GraphError(
            f"{where}: input_timeout: the embedded engine does not time inputs out ({_ENGINE})"
        )
    if options.get("queue_policy") == "backpressure":
        raise GraphError(
            f"{where}: queue_policy: backpressure: the embedded engine drops the oldest "
            f"message of a full queue ({_ENGINE})"
        )


def _check_sha256(spec: NodeSpec, expected: str) -> None:
    """``path_sha256``: the node's file must have that SHA-256, as dora checks a download."""
    file = spec.path if spec.path is not None else spec.script
    where = f"node {spec.id!r}: path_sha256"
    if file is None or not Path(file).is_file():
        raise GraphError(f"{where}: the node has no file to check ({_ENGINE})")
    actual = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    if actual != expected.strip().lower():
        raise GraphError(f"{where}: {file} has SHA-256 {actual}, not {expected}")
