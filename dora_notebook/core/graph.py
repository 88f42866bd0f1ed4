"""The dataflow model: nodes, their inputs and outputs, timers, validation,
and dora-rs YAML descriptors in and out.

Nothing here runs code; it only describes a graph and refuses invalid ones
with one :class:`~dora_notebook.errors.GraphError` naming the node and field.

>>> g = Graph()
>>> g.add(NodeSpec("tick", "node", source="pass", outputs=["out"]))
>>> g.add(NodeSpec("sink", "operator", source="class Operator: pass",
...                inputs={"x": InputSpec("x", "tick/out")}))
>>> g.validate()
>>> g["sink"].inputs["x"].source_node
'tick'
"""

from __future__ import annotations

import copy
import math
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import GraphError
from .logs import LogFilter
from .modules import expand as expand_modules
from .types import check as check_types
from .types import load_user_types
from .yaml12 import load as load_yaml12

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "DESCRIPTOR_KEYS",
    "MAX_DESCRIPTOR_BYTES",
    "MAX_ID_LENGTH",
    "MAX_NODES",
    "MAX_QUEUE_SIZE",
    "REPLAY_PREFIX",
    "Graph",
    "InputSpec",
    "NodeSpec",
    "ReplaySource",
    "Timer",
    "check_data_id",
    "check_for_dora",
    "check_node_id",
    "check_wiring",
    "descriptor_path",
    "parse_input",
]

#: dora-rs's default input queue length.
DEFAULT_QUEUE_SIZE = 10

#: The longest node id accepted, in bytes: an id becomes a file name of an
#: export (``<id>_operator.py``, ``<file>_<id>.py``), and file names end at
#: 255 bytes on common file systems.
MAX_ID_LENGTH = 128

#: The largest descriptor read, in bytes, and the most nodes one process runs:
#: far beyond any real dataflow, and well under what would exhaust memory or
#: take minutes to start (120,000 nodes took 1.1 GB before it was refused).
MAX_DESCRIPTOR_BYTES = 4 * 1024 * 1024
MAX_NODES = 1_000

#: The longest input queue accepted. dora-rs takes any ``usize``; a queue
#: this long already holds more than memory allows for anything but ticks,
#: and the bound keeps an export within 64 bits.
MAX_QUEUE_SIZE = 1_000_000

NodeKind = Literal["operator", "node"]

# Like dora's ids, but stricter about dots so that an id can never name a
# parent folder when it becomes a file name on export.
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
# Nanoseconds per whole-number timer unit, and the units a timer is named in.
_TIMER_UNITS = {"secs": 1_000_000_000, "millis": 1_000_000, "micros": 1_000, "nanos": 1}
_TIMER_SPEC_UNITS = list(_TIMER_UNITS.items())
#: How a recording played as a source begins (see :class:`ReplaySource`).
REPLAY_PREFIX = "dora/replay/"
# A number as Rust's f64 parser reads it (no '_', no spaces), for hz.
_RUST_FLOAT = re.compile(
    r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$", re.I
)
# dora's intervals are Rust Durations: at most 2**64 seconds (hz) or u64 units.
_MAX_TIMER_NANOS = 2**64 * 1_000_000_000

# Keys of a dora-rs 1.1 node that the embedded engine accepts. Those it does
# not use itself are kept so that a loaded descriptor writes back unchanged.
_NODE_KEYS = {
    "id",
    "name",
    "description",
    "path",
    "path_sha256",
    "args",
    "env",
    "operators",
    "operator",
    "ros2",
    "outputs",
    "output_types",
    "output_framing",
    "inputs",
    "input_types",
    "output_metadata",
    "pattern",
    "send_stdout_as",
    "send_logs_as",
    "min_log_level",
    "max_log_size",
    "max_rotated_files",
    "build",
    "git",
    "hub",
    "branch",
    "tag",
    "rev",
    "restart_policy",
    "shared_memory_pool_size",
    "max_restarts",
    "restart_delay",
    "max_restart_delay",
    "restart_window",
    "health_check_timeout",
    "finish_grace_secs",
    "module",
    "params",
    "cpu_affinity",
    "deploy",
    "startup_timeout",
}
_OPERATOR_KEYS = {
    "id",
    "name",
    "description",
    "python",
    "inputs",
    "outputs",
    "build",
    "send_stdout_as",
}
#: The top-level keys of a dora-rs 1.1 descriptor.
DESCRIPTOR_KEYS = {
    "nodes",
    "deploy",
    "debug",
    "health_check_interval",
    "strict_types",
    "exit_when_nodes_finish",
    "type_rules",
    "env",
}
# Keys of an input's long form in dora-rs 1.1.
_INPUT_KEYS = {"source", "queue_size", "input_timeout", "queue_policy"}
# How an operator names native code; only the dora engine runs it.
_NATIVE_OPERATOR = {"shared-library", "wasm"}
# Operator keys NodeSpec holds itself; the others travel in extra["operator"].
_OPERATOR_CODE_KEYS = {"python", "inputs", "outputs"}
# Node keys the engine interprets; the rest travel in NodeSpec.extra.
_INTERPRETED = {"id", "path", "args", "env", "inputs", "outputs", "operator"}


@dataclass(frozen=True)
class Timer:
    """A dora timer source such as ``dora/timer/millis/100`` or ``dora/timer/hz/0.5``.

    As in dora-rs 1.1: ``secs``, ``millis``, ``micros`` and ``nanos`` take a
    whole number, ``hz`` any positive number; the interval is whole
    nanoseconds, and :attr:`spec` names it in the coarsest exact unit, as
    ``dora expand`` prints it (two spellings of one interval are one timer).

    >>> Timer.parse("dora/timer/hz/50").interval
    0.02
    >>> Timer.parse("dora/timer/hz/0.5").spec
    'dora/timer/secs/2'
    """

    nanos: int

    @property
    def interval(self) -> float:
        """Seconds between two ticks."""
        return self.nanos / 1e9

    @property
    def spec(self) -> str:
        for unit, scale in _TIMER_SPEC_UNITS:
            if self.nanos % scale == 0:
                return f"dora/timer/{unit}/{self.nanos // scale}"
        raise AssertionError("nanos divide every interval")

    @classmethod
    def parse(cls, text: str) -> Timer:
        """Parse a timer spec; raise ``ValueError`` with the reason if it is bad."""
        parts = text.split("/")
        if len(parts) != 4 or parts[:2] != ["dora", "timer"]:
            raise ValueError(f"{text!r} is not a timer (use dora/timer/millis|secs|hz/N)")
        unit, amount = parts[2], parts[3]
        if unit == "hz":
            if not _RUST_FLOAT.match(amount) or not 0 < float(amount) < math.inf:
                raise ValueError(f"timer {text!r}: hz must be a positive number, not {amount!r}")
            # Whole nanoseconds, rounded as Rust's Duration::try_from_secs_f64 rounds.
            nanos = round(Fraction(1.0 / float(amount)) * 1_000_000_000)
            if nanos >= _MAX_TIMER_NANOS:
                raise ValueError(f"timer {text!r}: hz {amount} is too slow for a timer")
        elif unit in _TIMER_UNITS:
            if not amount.isascii() or not amount.lstrip("+").isdigit() or amount.count("+") > 1:
                raise ValueError(f"timer {text!r}: {unit} must be a whole number, not {amount!r}")
            if int(amount) >= 2**64:
                raise ValueError(f"timer {text!r}: {amount} {unit} is too long for a timer")
            nanos = int(amount) * _TIMER_UNITS[unit]
        else:
            raise ValueError(
                f"unknown timer unit {unit!r} in {text!r} "
                "(use dora/timer/secs|millis|micros|nanos/N or dora/timer/hz/N)"
            )
        if nanos == 0:
            raise ValueError(f"timer {text!r} has a zero interval: give a positive one")
        return cls(nanos)


@dataclass(frozen=True)
class ReplaySource:
    """A recording as a source: ``dora/replay/PATH/NODE/OUTPUT`` plays the recorded
    messages of ``NODE/OUTPUT`` from the recording at ``PATH``.

    ``PATH`` may hold ``/`` (the last two parts are the node and the output); a
    relative one is resolved against the working directory when the graph
    starts. Only the embedded engine plays recordings: dora-rs has no such input.

    >>> ReplaySource.parse("dora/replay/runs/day1.arrow/cam/image")
    ReplaySource(path='runs/day1.arrow', node='cam', output='image')
    """

    path: str
    node: str
    output: str

    @property
    def spec(self) -> str:
        return f"{REPLAY_PREFIX}{self.path}/{self.node}/{self.output}"

    @classmethod
    def parse(cls, text: str) -> ReplaySource:
        """Parse a replay source; raise ``ValueError`` with the reason if it is bad."""
        path, _, edge = text.removeprefix(REPLAY_PREFIX).rpartition("/")
        path, _, node = path.rpartition("/")
        if not text.startswith(REPLAY_PREFIX) or not path or not node or not edge:
            raise ValueError(
                f"{text!r} is not a recording source: use dora/replay/PATH/NODE/OUTPUT "
                "(PATH: a recording saved by %dora_record save)"
            )
        for part in (node, edge):
            if not _ID_RE.match(part):
                raise ValueError(f"{text!r}: {part!r} is not a node or output id")
        return cls(path, node, edge)


@dataclass
class InputSpec:
    """One input of a node: where it comes from and how long its queue is."""

    input_id: str
    source: str
    queue_size: int | None = None
    #: dora-rs 1.1's other input fields, kept for dora (``input_timeout``,
    #: ``queue_policy``); :mod:`.fields` says which the embedded engine honours.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_timer(self) -> bool:
        return self.source.startswith("dora/") and not self.is_logs and not self.is_replay

    @property
    def is_replay(self) -> bool:
        """A ``dora/replay/PATH/NODE/OUTPUT`` input: a recording played as a source."""
        return self.source.startswith(REPLAY_PREFIX)

    @property
    def replay(self) -> ReplaySource:
        return ReplaySource.parse(self.source)

    @property
    def is_logs(self) -> bool:
        """A ``dora/logs[/LEVEL[/NODE]]`` input: the nodes' log records (see core.logs)."""
        return self.source == "dora/logs" or self.source.startswith("dora/logs/")

    @property
    def timer(self) -> Timer:
        return Timer.parse(self.source)

    @property
    def source_node(self) -> str:
        return self.source.split("/", 1)[0]

    @property
    def source_output(self) -> str:
        return self.source.split("/", 1)[1] if "/" in self.source else ""

    @property
    def capacity(self) -> int:
        return DEFAULT_QUEUE_SIZE if self.queue_size is None else self.queue_size

    def to_yaml(self) -> str | dict[str, Any]:
        if self.queue_size is None and not self.options:
            return self.source
        out: dict[str, Any] = {"source": self.source}
        if self.queue_size is not None:
            out["queue_size"] = self.queue_size
        return {**out, **self.options}


@dataclass
class NodeSpec:
    """A node of the graph.

    ``kind`` is ``"operator"`` (a module defining ``class Operator``, run on the
    runtime thread) or ``"node"`` (a custom-node script, run in its own thread).
    Its code comes from exactly one of ``source`` (Python text), ``path`` (a
    file), ``obj`` (an ``Operator`` class, or a callable run as the node) or
    ``script`` (the console script of an installed node-hub package, such as
    ``opencv-video-capture``; see :mod:`.hub`).
    """

    id: str
    kind: NodeKind
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    source: str | None = None
    path: Path | None = None
    obj: Any = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    machine: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The folder of the descriptor that declared the node: its ``build:`` runs there.
    build_dir: Path | None = None
    script: str | None = None

    def code_name(self) -> str:
        """Where the code comes from, for messages and tracebacks."""
        if self.path is not None:
            return str(self.path)
        if self.script is not None:
            return self.script
        return f"<dora {self.kind} {self.id}>"


def check_node_id(node_id: object, where: str = "node id") -> str:
    """Return ``node_id`` if it is a valid id, else raise :class:`GraphError`.

    >>> check_node_id("../etc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dora_notebook.errors.GraphError: invalid node id '../etc': use letters, digits, ...
    """
    if isinstance(node_id, str) and len(node_id.encode()) > MAX_ID_LENGTH:
        raise GraphError(
            f"invalid {where} {node_id[:20]!r}...: {len(node_id)} characters, at most "
            f"{MAX_ID_LENGTH} (ids become file names of an export and of dora's logs)"
        )
    if not isinstance(node_id, str) or not _ID_RE.match(node_id):
        raise GraphError(
            f"invalid {where} {node_id!r}: use letters, digits, '_', '-' and single dots "
            "(no '/', '\\' or '..')"
        )
    if node_id == "dora":
        raise GraphError("invalid node id 'dora': it is reserved for dora's timers")
    return node_id


def check_data_id(data_id: object, node_id: str, field_name: str) -> str:
    """Validate an input or output id of ``node_id``."""
    if not isinstance(data_id, str) or not _ID_RE.match(data_id):
        raise GraphError(
            f"node {node_id!r}: {field_name}: invalid id {data_id!r} "
            "(use letters, digits, '_', '-' and single dots)"
        )
    return data_id


def parse_input(
    node_id: str, input_id: str, value: object, *, any_engine: bool = False
) -> InputSpec:
    """Build an :class:`InputSpec` from the short or long YAML form.

    With ``any_engine`` a source may also name an output of a runtime
    node's operator, ``node/operator/output``, as ``dora validate`` accepts.
    """
    where = f"node {node_id!r}: inputs.{input_id}"
    check_data_id(input_id, node_id, "inputs")
    queue_size: int | None = None
    options: dict[str, Any] = {}
    if isinstance(value, Mapping):
        unknown = set(value) - _INPUT_KEYS
        if unknown:
            keys = ", ".join(sorted(_INPUT_KEYS))
            raise GraphError(f"{where}: unknown key(s) {sorted(unknown)} (use {keys})")
        _check_input_options(value, where)
        options = {k: value[k] for k in ("input_timeout", "queue_policy") if k in value}
        if "source" not in value:
            raise GraphError(f"{where}: the long form needs a 'source'")
        raw_size = value.get("queue_size")
        if raw_size is not None:
            if isinstance(raw_size, bool) or not isinstance(raw_size, int) or raw_size < 1:
                raise GraphError(
                    f"{where}: queue_size must be a whole number >= 1, not {raw_size!r}"
                )
            if raw_size > MAX_QUEUE_SIZE:
                raise GraphError(
                    f"{where}: queue_size must be at most {MAX_QUEUE_SIZE:,}, not {raw_size}"
                )
            queue_size = raw_size
        value = value["source"]
    if not isinstance(value, str) or not value:
        raise GraphError(f"{where}: a source is 'node/output' or a dora timer, not {value!r}")
    spec = InputSpec(input_id, value, queue_size, options)
    if spec.is_logs:
        try:
            LogFilter.parse(value)
        except ValueError as exc:
            raise GraphError(f"{where}: {exc}") from None
    elif spec.is_replay:
        if any_engine:
            raise GraphError(
                f"{where}: {value!r}: a recording plays as a source on the embedded engine "
                "only (dora-rs has no dora/replay input)"
            )
        try:
            spec.replay  # noqa: B018 - parsing is the check
        except ValueError as exc:
            raise GraphError(f"{where}: {exc}") from None
    elif spec.is_timer:
        try:
            spec.timer  # noqa: B018 - parsing is the check
        except ValueError as exc:
            raise GraphError(f"{where}: {exc}") from None
    elif value.count("/") not in ((1, 2) if any_engine else (1,)) or not all(value.split("/")):
        raise GraphError(f"{where}: source {value!r} must be 'node/output' or a dora timer")
    return spec


class Graph:
    """An ordered set of :class:`NodeSpec`, keyed by node id."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeSpec] = {}

    def __iter__(self) -> Iterator[NodeSpec]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __getitem__(self, node_id: str) -> NodeSpec:
        return self._nodes[node_id]

    def add(self, spec: NodeSpec, replace: bool = False) -> None:
        """Add ``spec``; a second node with the same id is refused unless ``replace``."""
        check_node_id(spec.id)
        if spec.id in self._nodes and not replace:
            raise GraphError(f"duplicate node id {spec.id!r}")
        self._check_node(spec)
        self._nodes[spec.id] = spec

    def remove(self, node_id: str) -> None:
        del self._nodes[node_id]

    def clear(self) -> None:
        self._nodes.clear()

    def copy(self) -> Graph:
        """A copy whose specs can change without touching this graph."""
        other = Graph()
        other._nodes = {k: copy.copy(v) for k, v in self._nodes.items()}
        return other

    @staticmethod
    def _check_node(spec: NodeSpec) -> None:
        if spec.kind not in ("operator", "node"):
            raise GraphError(f"node {spec.id!r}: kind must be 'operator' or 'node'")
        given = [x is not None for x in (spec.source, spec.path, spec.obj, spec.script)]
        if sum(given) != 1:
            raise GraphError(f"node {spec.id!r}: give exactly one of source, path, obj or script")
        seen: set[str] = set()
        for output in spec.outputs:
            check_data_id(output, spec.id, "outputs")
            if output in seen:
                raise GraphError(f"node {spec.id!r}: outputs: {output!r} is listed twice")
            seen.add(output)
        for input_id, inp in spec.inputs.items():
            if input_id != inp.input_id:
                raise GraphError(f"node {spec.id!r}: inputs.{input_id}: id mismatch")
            parse_input(spec.id, input_id, inp.to_yaml())
        if spec.path is not None and not Path(spec.path).is_file():
            field_name = "operator.python" if spec.kind == "operator" else "path"
            raise GraphError(
                f"node {spec.id!r}: {field_name}: file {str(spec.path)!r} does not exist"
            )

    def validate(self) -> None:
        """Check that every input names an existing node and output.

        Raises :class:`GraphError` with the first problem found.
        """
        for spec in self:
            self._check_node(spec)
            for inp in spec.inputs.values():
                if inp.source.startswith("dora/"):  # timers, logs and recordings
                    continue
                where = f"node {spec.id!r}: inputs.{inp.input_id}"
                source = self._nodes.get(inp.source_node)
                if source is None:
                    raise GraphError(f"{where}: unknown source node {inp.source_node!r}")
                if inp.source_output not in source.outputs:
                    declared = ", ".join(source.outputs) or "none"
                    raise GraphError(
                        f"{where}: node {inp.source_node!r} has no output "
                        f"{inp.source_output!r} (declared: {declared})"
                    )

    # -- dora YAML ---------------------------------------------------------

    def to_descriptor(self, file_for: Callable[[NodeSpec], str] | None = None) -> dict[str, Any]:
        """The graph as a dora-rs descriptor mapping.

        ``file_for(spec)`` names the file of a node defined from source or an
        object; by default ``<id>.py``.
        """
        nodes = []
        for spec in self:
            if spec.script is not None:
                filename = spec.script  # dora finds the command on PATH
            elif spec.path is not None and file_for is None:
                filename = str(spec.path)
            else:
                filename = file_for(spec) if file_for else f"{spec.id}.py"
            entry: dict[str, Any] = {"id": spec.id}
            body: dict[str, Any] = {}
            if spec.inputs:
                body["inputs"] = {k: v.to_yaml() for k, v in spec.inputs.items()}
            if spec.outputs:
                body["outputs"] = list(spec.outputs)
            if spec.kind == "operator":
                # The operator's own keys other than code and ports (build, types...).
                entry["operator"] = {"python": filename, **body, **spec.extra.get("operator", {})}
            else:
                entry["path"] = filename
                if spec.args:
                    # dora splits args like a shell: quote what needs it.
                    entry["args"] = shlex.join(spec.args)
                entry.update(body)
            if spec.env:
                entry["env"] = dict(spec.env)
            if spec.machine is not None:
                entry["deploy"] = {"machine": spec.machine}
            for key, value in spec.extra.items():
                entry.setdefault(key, value)
            nodes.append(entry)
        return {"nodes": nodes}


def descriptor_path(source: str) -> Path | None:
    """The descriptor file ``source`` names, or None when it is YAML text itself.

    One line ending in ``.yml``/``.yaml`` is a path (``~`` expanded).

    >>> descriptor_path("  flows/dataflow.yml ")
    PosixPath('flows/dataflow.yml')
    >>> descriptor_path("nodes: []") is None
    True
    """
    text = source.strip()
    if "\n" in text or not text.endswith((".yml", ".yaml")):
        return None
    return Path(text).expanduser()


def load_yaml_text(text: str, where: str = "descriptor") -> object:
    """Parse YAML text, turning parser errors into one-line :class:`GraphError`."""
    if len(text) > MAX_DESCRIPTOR_BYTES:
        raise GraphError(
            f"{where}: {len(text):,} characters is beyond the {MAX_DESCRIPTOR_BYTES:,} a "
            "descriptor may have"
        )
    try:
        return load_yaml12(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise GraphError(f"{where}:{line}: invalid YAML: {problem}") from None


def specs_from_descriptor(
    descriptor: object, base_dir: Path, *, types: bool = True, runnable: bool = True
) -> list[NodeSpec]:
    """Turn a parsed dora descriptor into node specs (not yet cross-validated).

    Module nodes are expanded first (:mod:`.modules`); a port-type mismatch
    (or, with ``strict_types: true``, any type warning) is refused unless
    ``types`` is False (:mod:`.types`); the types of ``base_dir/types/``
    count as known. With ``runnable`` False the fields are checked as
    ``dora validate`` checks them, for any engine: node files need not exist
    yet (a ``build:`` may make them) nor be Python, and runtime nodes of
    several ``operators`` are accepted (their specs carry no ports; see
    :func:`check_wiring`).
    """
    if not isinstance(descriptor, Mapping):
        raise GraphError(
            f"a dora descriptor is a mapping with a 'nodes' list, not {type(descriptor).__name__}"
        )
    unknown = set(descriptor) - DESCRIPTOR_KEYS
    if unknown:
        raise GraphError(f"descriptor: unknown key(s) {sorted(map(str, unknown))}")
    nodes = descriptor.get("nodes")
    if not isinstance(nodes, list):
        raise GraphError("descriptor: 'nodes' must be a list of nodes")
    if len(nodes) > MAX_NODES:
        raise GraphError(
            f"descriptor: {len(nodes):,} nodes is beyond the {MAX_NODES:,} one dataflow may "
            "have on the embedded engine"
        )
    descriptor = expand_modules(descriptor, base_dir)
    nodes = descriptor["nodes"]
    specs = []
    seen: set[str] = set()
    for index, raw in enumerate(nodes):
        spec = _node_from_yaml(raw, index, base_dir, runnable)
        if spec.id in seen:
            raise GraphError(f"descriptor: duplicate node id {spec.id!r}")
        seen.add(spec.id)
        specs.append(spec)
    if types:  # once every node is known to be well formed
        try:
            user_types = load_user_types(base_dir / "types")
        except ValueError as exc:
            raise GraphError(f"failed to load user types: {exc}") from None
        report = check_types(descriptor, user_types=user_types)
        refused = report.warnings if descriptor.get("strict_types") else report.mismatches
        if refused:
            more = f" (and {len(refused) - 1} more: dora-notebook validate lists them)"
            raise GraphError(f"descriptor: {refused[0]}" + (more if len(refused) > 1 else ""))
    return specs


def _node_from_yaml(raw: object, index: int, base_dir: Path, runnable: bool = True) -> NodeSpec:
    if not isinstance(raw, Mapping):
        raise GraphError(f"descriptor: nodes[{index}] must be a mapping, not {type(raw).__name__}")
    if "id" not in raw:
        raise GraphError(f"descriptor: nodes[{index}] has no 'id'")
    node_id = check_node_id(raw["id"])
    where = f"node {node_id!r}"
    unknown = set(raw) - _NODE_KEYS
    if unknown:
        raise GraphError(f"{where}: unknown key(s) {sorted(map(str, unknown))}")
    if "operators" in raw:
        if runnable:
            raise GraphError(
                f"{where}: 'operators' (several operators in one runtime node) is not "
                "supported; give each operator its own node with 'operator:'"
            )
        return _runtime_node(node_id, raw["operators"], base_dir)
    extra = {k: copy.deepcopy(v) for k, v in raw.items() if k not in _INTERPRETED}
    machine = None
    deploy = raw.get("deploy")
    if isinstance(deploy, Mapping) and isinstance(deploy.get("machine"), str):
        machine = deploy["machine"]
        extra.pop("deploy", None)
    env = _env_from_yaml(raw.get("env"), where)
    if "operator" in raw:
        if "path" in raw:
            raise GraphError(f"{where}: give either 'path' or 'operator', not both")
        op = raw["operator"]
        if not isinstance(op, Mapping):
            raise GraphError(f"{where}: operator must be a mapping with 'python'")
        bad = set(op) - (_OPERATOR_KEYS if runnable else _OPERATOR_KEYS | _NATIVE_OPERATOR)
        if bad:
            raise GraphError(f"{where}: operator: unknown key(s) {sorted(map(str, bad))}")
        python = op.get("python")
        if isinstance(python, Mapping):  # dora's long form {source: op.py}
            python = python.get("source")
        if not runnable:
            _check_operator_code(op, where)
            return NodeSpec(
                node_id,
                "node",
                _inputs(node_id, op.get("inputs"), runnable),
                _outputs(node_id, op.get("outputs")),
                script=str(python or next(op[k] for k in _NATIVE_OPERATOR if k in op)),
                env=env,
                machine=machine,
                extra=extra,
                build_dir=base_dir,
            )
        if not isinstance(python, str) or not python:
            raise GraphError(f"{where}: operator.python must name a Python file")
        path = _resolve(python, base_dir, where, "operator.python")
        own = {k: copy.deepcopy(v) for k, v in op.items() if k not in _OPERATOR_CODE_KEYS}
        if own:
            extra["operator"] = own
        return NodeSpec(
            node_id,
            "operator",
            _inputs(node_id, op.get("inputs")),
            _outputs(node_id, op.get("outputs")),
            path=path,
            env=env,
            machine=machine,
            extra=extra,
            build_dir=base_dir,
        )
    raw_path = raw.get("path")
    if "ros2" in raw and raw_path is None:
        if runnable:
            raise GraphError(
                f"{where}: ros2: dora-rs's declarative ROS 2 bridge is not in a notebook's "
                "graph (dora run runs this file)"
            )
        raw_path = "<ros2>"  # dora's declarative bridge: no program of its own
    if not isinstance(raw_path, str) or not raw_path:
        raise GraphError(f"{where}: needs 'path' (a Python script) or 'operator'")
    path: Path | None = None
    script: str | None = raw_path  # with runnable False: any program dora may start, built or not
    if runnable:
        if raw_path == "dynamic":
            raise GraphError(
                f"{where}: path: dynamic nodes need the dora engine; the embedded engine runs "
                "Python scripts and operators"
            )
        script = raw_path if _is_command(raw_path, base_dir) else None
        if script is None and Path(raw_path).suffix == ".py":
            path = _resolve(raw_path, base_dir, where, "path")
        elif script is None:
            # A program (a Rust or C node...): dora runs it, the embedded engine
            # refuses it at start (:mod:`.fields`). Its build: may make it later.
            program = Path(raw_path).expanduser()
            program = program if program.is_absolute() else base_dir / program
            if program.is_dir():
                raise GraphError(f"{where}: path: {raw_path!r} is a folder, not a file")
            if not program.is_file() and raw.get("build") is None:
                raise GraphError(
                    f"{where}: path: file {raw_path!r} does not exist (looked in {base_dir})"
                )
            script = str(program.resolve())
    return NodeSpec(
        node_id,
        "node",
        _inputs(node_id, raw.get("inputs"), runnable),
        _outputs(node_id, raw.get("outputs")),
        path=path,
        script=script,
        args=_args_from_yaml(raw.get("args"), where),
        env=env,
        machine=machine,
        extra=extra,
        build_dir=base_dir,
    )


def _is_command(name: str, base_dir: Path) -> bool:
    """Whether ``path: name`` names a command, as dora resolves it: no file of
    that name in the descriptor's folder, and a bare name without ``.py``.

    Whether it is installed is checked when the graph starts (:mod:`.hub`), so
    that a ``build:`` that installs it can run first.

    >>> _is_command("opencv-video-capture", Path("/nonexistent")), _is_command("a.py", Path("."))
    (True, False)
    """
    bare = Path(name).name == name and name not in (".", "..")
    return bare and not name.endswith(".py") and not (base_dir / name).exists()


def _resolve(name: str, base_dir: Path, where: str, field_name: str) -> Path:
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if path.is_dir():
        raise GraphError(f"{where}: {field_name}: {name!r} is a folder, not a file")
    if not path.is_file():
        raise GraphError(
            f"{where}: {field_name}: file {name!r} does not exist (looked in {base_dir})"
        )
    return path.resolve()


def _inputs(node_id: str, raw: object, runnable: bool = True) -> dict[str, InputSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise GraphError(f"node {node_id!r}: inputs must be a mapping of input id to source")
    return {
        str(k): parse_input(node_id, str(k), v, any_engine=not runnable) for k, v in raw.items()
    }


def _check_input_options(value: Mapping[str, Any], where: str) -> None:
    """dora 1.1's ``input_timeout`` and ``queue_policy`` of an input's long form."""
    timeout = value.get("input_timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise GraphError(f"{where}: input_timeout must be a number of seconds")
        if not math.isfinite(timeout) or timeout < 0:
            raise GraphError(f"{where}: input_timeout must be finite and >= 0, not {timeout}")
    policy = value.get("queue_policy")
    if policy is not None and policy not in ("drop_oldest", "backpressure"):
        raise GraphError(
            f"{where}: queue_policy must be drop_oldest or backpressure, not {policy!r}"
        )


def _check_operator_code(op: Mapping[str, Any], where: str) -> None:
    """Exactly one of ``python``, ``shared-library`` and ``wasm`` names the code."""
    given = [k for k in ("python", *sorted(_NATIVE_OPERATOR)) if op.get(k)]
    if len(given) != 1:
        raise GraphError(
            f"{where}: an operator names its code with exactly one of python, shared-library "
            f"or wasm (found {', '.join(given) or 'none'})"
        )


def _runtime_node(node_id: str, raw: object, base_dir: Path) -> NodeSpec:
    """A runtime node of several operators, checked field by field (validate only).

    Its ports are ``OPERATOR/PORT`` and live in the descriptor, where
    :func:`check_wiring` reads them; the spec only stands for the node.
    """
    where = f"node {node_id!r}"
    if not isinstance(raw, list) or not raw:
        raise GraphError(f"{where}: operators must be a non-empty list of operators")
    seen: set[str] = set()
    for index, op in enumerate(raw):
        if not isinstance(op, Mapping) or "id" not in op:
            raise GraphError(f"{where}: operators[{index}] must be a mapping with an 'id'")
        op_id = check_data_id(op["id"], node_id, "operators")
        if op_id in seen:
            raise GraphError(f"{where}: operators: {op_id!r} is listed twice")
        seen.add(op_id)
        bad = set(op) - _OPERATOR_KEYS - _NATIVE_OPERATOR
        if bad:
            raise GraphError(f"{where}: operators.{op_id}: unknown key(s) {sorted(map(str, bad))}")
        _check_operator_code(op, f"{where}: operators.{op_id}")
        _inputs(node_id, op.get("inputs"), runnable=False)
        _outputs(node_id, op.get("outputs"))
    return NodeSpec(node_id, "node", {}, [], script="<operators>", build_dir=base_dir)


def check_wiring(descriptor: Mapping[str, Any]) -> None:
    """Check that every input names an existing output, as ``dora validate`` does.

    Works on a flat descriptor of any nodes (binaries, dynamic nodes, runtime
    nodes whose outputs are ``NODE/OPERATOR/OUTPUT``) and raises a
    :class:`GraphError` with dora's wording for the first problem, in dora's
    order (nodes and inputs by id).

    >>> check_wiring({"nodes": [{"id": "a", "path": "a", "inputs": {"x": "b/y"}}]})
    Traceback (most recent call last):
    ...
    dora_notebook.errors.GraphError: source node `b` mapped to input `a/x` does not exist
    """
    nodes = {str(n["id"]): n for n in descriptor.get("nodes") or [] if isinstance(n, Mapping)}
    for node_id in sorted(nodes):
        node = nodes[node_id]
        if isinstance(node.get("operators"), list):
            holders = [
                (f"{node_id}/{op.get('id')}", op)
                for op in sorted(node["operators"], key=lambda op: str(op.get("id")))
            ]
        else:
            holders = [(node_id, node.get("operator") or node)]
        for label, holder in holders:
            for input_id, value in sorted((holder.get("inputs") or {}).items()):
                source = str(value.get("source") if isinstance(value, Mapping) else value)
                if source.startswith("dora/"):
                    continue  # timers and logs
                _check_source(source, nodes, f"{label}/{input_id}")


def check_for_dora(descriptor: Mapping[str, Any]) -> None:
    """Refuse, in one line, an input dora-rs has no such thing as: a recording played as
    a source (``dora/replay/...``, the embedded engine's own); for ``expand``.

    >>> node = {"id": "a", "path": "a.py", "inputs": {"x": "dora/replay/r.arrow/b/y"}}
    >>> check_for_dora({"nodes": [node]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dora_notebook.errors.GraphError: node 'a': inputs.x: ...: a recording plays as a source on ...
    """
    for node in descriptor.get("nodes") or []:
        if not isinstance(node, Mapping):
            continue
        operators = node.get("operators")
        holders = operators if isinstance(operators, list) else [node.get("operator") or node]
        for holder in holders:
            inputs = holder.get("inputs") if isinstance(holder, Mapping) else None
            for input_id, value in (inputs or {}).items():
                source = value.get("source") if isinstance(value, Mapping) else value
                if isinstance(source, str) and source.startswith(REPLAY_PREFIX):
                    parse_input(str(node.get("id")), str(input_id), source, any_engine=True)


def _check_source(source: str, nodes: Mapping[str, Mapping[str, Any]], where: str) -> None:
    node_id, _, output = source.partition("/")
    node = nodes.get(node_id)
    if node is None:
        raise GraphError(f"source node `{node_id}` mapped to input `{where}` does not exist")
    operators = node.get("operators")
    if not isinstance(operators, list):
        holder = node.get("operator") or node
        if output not in [str(o) for o in holder.get("outputs") or []]:
            raise GraphError(f"output `{source}` mapped to input `{where}` does not exist")
        return
    op_id, sep, port = output.partition("/")
    if not sep:
        raise GraphError(
            f"input `{where}` references output `{output}` of node `{node_id}`, which is a "
            "runtime node; runtime node outputs must include the operator id (expected "
            f"format: `{node_id}/<operator_id>/<output_id>`)"
        )
    op = next((o for o in operators if str(o.get("id")) == op_id), None)
    if op is None:
        raise GraphError(
            f"source operator `{node_id}/{op_id}` used for input `{where}` does not exist"
        )
    if port not in [str(o) for o in op.get("outputs") or []]:
        raise GraphError(f"output `{source}` mapped to input `{where}` does not exist")


def _outputs(node_id: str, raw: object) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise GraphError(f"node {node_id!r}: outputs must be a list of output ids")
    return [check_data_id(x, node_id, "outputs") for x in raw]


def _env_from_yaml(raw: object, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise GraphError(f"{where}: env must be a mapping of names to values")
    env = {}
    for key, value in raw.items():
        if not isinstance(value, (str, int, float, bool)):
            raise GraphError(f"{where}: env.{key}: values must be text or numbers")
        env[str(key)] = _env_text(value)
    return env


def _env_text(value: str | int | float | bool) -> str:
    """An env value as dora passes it: YAML scalars printed the way Rust prints them."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
    return str(value)


def _args_from_yaml(raw: object, where: str) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        try:
            return shlex.split(raw)
        except ValueError as exc:
            raise GraphError(f"{where}: args: {exc}") from None
    if isinstance(raw, list) and all(isinstance(a, (str, int, float)) for a in raw):
        return [str(a) for a in raw]
    raise GraphError(f"{where}: args must be a string or a list of strings")
