"""Port types: ``input_types`` / ``output_types`` checked as ``dora validate`` checks them.

A type is a URN such as ``std/core/v1/Float32``, optionally with parameters
(``std/media/v1/Image[encoding=jpeg]``). dora-rs 1.1 knows the ``std/``
types below; an edge is compatible when both ends name the same type (an
unparameterised end matches any parameters), when the producer's type
widens to the consumer's (``UInt8 -> UInt32 -> UInt64``, ``Int32 -> Int64``,
``Float32 -> Float64`` and the descriptor's ``type_rules``, at most three
steps), or when the consumer takes ``std/core/v1/Bytes``. Timers send
``std/core/v1/UInt64``.

:func:`check` works on a flat descriptor mapping (modules expanded) and
returns dora's warnings in dora's order and wording; a *mismatch* between
two ends is what the embedded engine refuses before start.

>>> report = check({"nodes": [
...     {"id": "a", "outputs": ["x"], "output_types": {"x": "std/core/v1/Int64"}},
...     {"id": "b", "inputs": {"x": "a/x"}, "input_types": {"x": "std/core/v1/Int32"}}]})
>>> print(report.mismatches[0][:59])
node "b": type mismatch on input "x": upstream a/x declares
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["STD_TYPES", "TypeReport", "check", "compatible", "load_user_types"]

_STD = {
    "core": "Float32 Float64 Int32 Int64 UInt8 UInt32 UInt64 String Bytes Bool Int8 Int16 UInt16",
    "math": "Vector3 Quaternion Pose Transform",
    "control": "Twist JointState Odometry",
    "media": "Image CompressedImage PointCloud AudioFrame",
    "vision": "BoundingBox Detection Segmentation",
}
#: The type URNs dora-rs 1.1 knows without a ``types/`` folder.
STD_TYPES = frozenset(
    f"std/{pkg}/v1/{name}" for pkg, names in _STD.items() for name in names.split()
)

_BYTES = "std/core/v1/Bytes"
_TIMER_TYPE = "std/core/v1/UInt64"
_WIDENING = [
    ("std/core/v1/UInt8", "std/core/v1/UInt32"),
    ("std/core/v1/UInt32", "std/core/v1/UInt64"),
    ("std/core/v1/Int32", "std/core/v1/Int64"),
    ("std/core/v1/Float32", "std/core/v1/Float64"),
]
_PATTERNS = {"service-server", "service-client", "action-server", "action-client"}


@dataclass
class TypeReport:
    """What checking a descriptor's port types found, as ``dora validate`` lists it."""

    warnings: list[str] = field(default_factory=list)  # all, in dora's order
    mismatches: list[str] = field(default_factory=list)  # those between two ends
    inferences: list[str] = field(default_factory=list)

    def mismatch(self, text: str) -> None:
        self.warnings.append(text)
        self.mismatches.append(text)


def _parse(urn: str) -> tuple[str, dict[str, str]] | None:
    """``(base, params)`` of a URN, or None when its ``[...]`` is malformed."""
    if not urn:
        return None
    if "[" not in urn:
        return urn, {}
    start = urn.index("[")
    if not urn.endswith("]") or start + 2 > len(urn) - 1:
        return None
    params = {}
    for part in urn[start + 1 : -1].split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key.strip() or not value.strip():
            return None
        params[key.strip()] = value.strip()
    return urn[:start], params


def load_user_types(folder: Path) -> frozenset[str]:
    """The URNs a dataflow's ``types/`` folder defines, as ``dora validate`` reads them.

    Each ``*.yml`` file under ``folder`` is a package: its path without the
    suffix is the URN prefix and its ``types`` mapping names the types, each
    with an ``arrow`` data type (``types/acme/sensors/v1.yml`` defining
    ``Reading`` gives ``acme/sensors/v1/Reading``). The ``std/`` prefix is
    dora's own. A missing folder defines nothing; a bad file is a ValueError
    naming it.

    >>> load_user_types(Path("/nonexistent/types"))
    frozenset()
    """
    if not folder.is_dir():
        return frozenset()
    urns = set()
    for path in sorted(folder.rglob("*.yml")):
        if not path.is_file():
            continue
        prefix = path.relative_to(folder).parent.as_posix()
        prefix = "" if prefix == "." else prefix
        if prefix == "std" or prefix.startswith("std/"):
            raise ValueError(f'user types cannot use the "std/" prefix: {path}')
        try:
            package = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: {' '.join(str(exc).split())}") from None
        types = package.get("types") if isinstance(package, Mapping) else None
        if not isinstance(types, Mapping):
            raise ValueError(f"{path}: needs a `types` mapping of type names to definitions")
        stem = path.stem if not prefix else f"{prefix}/{path.stem}"
        for name, definition in types.items():
            if not isinstance(definition, Mapping) or not isinstance(definition.get("arrow"), str):
                raise ValueError(f"{path}: types.{name}: missing field `arrow`")
            urns.add(f"{stem}/{name}")
    return frozenset(urns)


def _resolves(urn: str, known: frozenset[str] = STD_TYPES) -> bool:
    parsed = _parse(urn)
    return urn in known or (parsed is not None and parsed[0] in known)


def _agree(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    return not a or not b or all(b.get(k, v) == v for k, v in a.items())


def compatible(source: str, target: str, rules: Iterable[tuple[str, str]] = ()) -> bool:
    """Whether a ``source``-typed output may feed a ``target``-typed input.

    >>> compatible("std/core/v1/UInt8", "std/core/v1/UInt64")
    True
    >>> compatible("std/media/v1/Image[encoding=jpeg]", "std/media/v1/Image[encoding=png]")
    False
    """
    if target == _BYTES:
        return True
    ps, pt = _parse(source), _parse(target)
    base_s = ps[0] if ps else source
    base_t = pt[0] if pt else target
    if base_s == base_t:
        return _agree(ps[1], pt[1]) if ps and pt else True
    edges: dict[str, list[str]] = {}
    for a, b in [*_WIDENING, *rules]:
        edges.setdefault(a, []).append(b)
    queue, seen = deque([(base_s, 0)]), {base_s}
    while queue:
        current, depth = queue.popleft()
        if depth >= 3:
            continue
        for nxt in edges.get(current, []):
            if nxt == base_t:
                return True
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, depth + 1))
    return False


def _suggest(urn: str, known: frozenset[str] = STD_TYPES) -> str | None:
    """The known URN closest to a typo, preferring the same package."""
    name = urn.split("[")[0].rsplit("/", 1)[-1].lower()
    prefix = urn.split("[")[0].rpartition("/")[0]
    best: tuple[int, str] | None = None
    for candidate in sorted(known):
        distance = _edit_distance(name, candidate.rsplit("/", 1)[-1].lower())
        if distance <= 2:
            score = distance + (0 if candidate.rpartition("/")[0] == prefix else 100)
            if best is None or score < best[0]:
                best = (score, candidate)
    return None if best is None else best[1]


def _edit_distance(a: str, b: str) -> int:
    if len(a) > 256 or len(b) > 256:
        return 1 << 30
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _mapping(raw: object) -> dict[str, Any]:
    return {str(k): v for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def _source(value: object) -> str:
    return str(value.get("source")) if isinstance(value, Mapping) else str(value)


def _port_warnings(
    label: str, holder: Mapping[str, Any], known: frozenset[str], report: TypeReport
) -> None:
    """Types naming ports that do not exist, unknown types, bad metadata keys."""
    outputs = {str(o) for o in holder.get("outputs") or []}
    inputs = _mapping(holder.get("inputs"))
    for kind, ports in (("output", outputs), ("input", inputs)):
        for port, urn in sorted(_mapping(holder.get(f"{kind}_types")).items()):
            if port not in ports:
                report.warnings.append(
                    f'node "{label}": {kind}_types key "{port}" not found in {kind}s list'
                )
            if not _resolves(str(urn), known):
                hint = _suggest(str(urn), known)
                hint_text = f' (did you mean "{hint}"?)' if hint else ""
                report.warnings.append(
                    f'node "{label}": unknown type "{urn}" on {kind} "{port}"{hint_text}'
                )
    for port in sorted(_mapping(holder.get("output_metadata"))):
        if port not in outputs:
            report.warnings.append(
                f'node "{label}": output_metadata key "{port}" not found in outputs list'
            )
    pattern = holder.get("pattern")
    if pattern is not None and pattern not in _PATTERNS:
        report.warnings.append(
            f'node "{label}": unknown pattern "{pattern}", expected one of: '
            "service-server, service-client, action-server, action-client"
        )


def _edge_warnings(
    label: str,
    holder: Mapping[str, Any],
    produced: Mapping[tuple[str, str], str],
    annotated: set[tuple[str, str]],
    rules: list[tuple[str, str]],
    strict: bool,
    report: TypeReport,
) -> None:
    expected = _mapping(holder.get("input_types"))
    for input_id, value in sorted(_mapping(holder.get("inputs")).items()):
        source = _source(value)
        want = expected.get(input_id)
        if source.startswith("dora/timer/"):
            if want is not None and not compatible(_TIMER_TYPE, str(want), rules):
                report.mismatch(
                    f'node "{label}": type mismatch on input "{input_id}": timer provides '
                    f'"{_TIMER_TYPE}", but expected "{want}"'
                )
            continue
        if source.startswith("dora/"):
            continue  # dora/logs carries JSON text: dora checks no type there
        node, _, output = source.partition("/")
        have = produced.get((node, output))
        if have is not None and want is not None and not compatible(have, str(want), rules):
            report.mismatch(
                f'node "{label}": type mismatch on input "{input_id}": upstream {source} '
                f'declares "{have}", but expected "{want}"'
            )
        elif have is not None and want is None:
            report.inferences.append(f"inferred {have} on {label}/{input_id} (from {source})")
        elif have is None and want is not None and strict and (node, output) not in annotated:
            report.warnings.append(
                f'node "{label}": input "{input_id}" expects type "{want}" but upstream '
                f"{source} has no type annotation"
            )


def check(
    descriptor: Mapping[str, Any],
    strict: bool | None = None,
    user_types: Iterable[str] = (),
) -> TypeReport:
    """Check the port types of a flat descriptor; ``strict`` defaults to its ``strict_types``.

    ``user_types`` are the URNs of the dataflow's ``types/`` folder
    (:func:`load_user_types`); they resolve like dora's ``std/`` ones.
    """
    known = STD_TYPES | frozenset(user_types)
    if strict is None:
        strict = bool(descriptor.get("strict_types"))
    rules = [
        (str(r.get("from")), str(r.get("to")))
        for r in descriptor.get("type_rules") or []
        if isinstance(r, Mapping)
    ]
    nodes = [n for n in descriptor.get("nodes") or [] if isinstance(n, Mapping)]
    report = TypeReport()
    produced: dict[tuple[str, str], str] = {}
    annotated: set[tuple[str, str]] = set()
    holders: list[tuple[str, Mapping[str, Any]]] = []
    for node in nodes:
        node_id = str(node.get("id"))
        holders.append((node_id, node))
        _port_warnings(node_id, node, known, report)
        for port, urn in _mapping(node.get("output_types")).items():
            annotated.add((node_id, port))
            if _resolves(str(urn), known):
                produced[node_id, port] = str(urn)
        operator = node.get("operator")
        if isinstance(operator, Mapping):
            holders.append((node_id, operator))
            _port_warnings(node_id, operator, known, report)
            op_id = str(operator.get("id") or "op")
            for port, urn in _mapping(operator.get("output_types")).items():
                # Consumers name a single operator's output short (node/output) or long.
                for ref in (port, f"{op_id}/{port}"):
                    annotated.add((node_id, ref))
                    if _resolves(str(urn), known):
                        produced[node_id, ref] = str(urn)
    for label, holder in holders:
        _edge_warnings(label, holder, produced, annotated, rules, strict, report)
    return report
