"""``module:`` composition: a descriptor's module nodes expanded into flat nodes.

A module file holds a ``module:`` header (``name``, ``inputs``,
``inputs_optional``, ``outputs``), an optional ``build:`` and ``nodes:``.
A node ``{id: nav, module: nav.yml, inputs: {goal: loc/goal}}`` becomes the
module's nodes with ids ``nav.<inner id>``: ``_mod/goal`` inputs take the
parent's wiring, references between inner nodes get the prefix, paths are
made relative to the dataflow's folder, and ``nav/OUTPUT`` elsewhere names
the inner node that produces ``OUTPUT``. This is what ``dora expand`` does
(dora-rs 1.1), rule for rule, on the raw descriptor mapping, before any node
is read; errors are one line naming the module node.

>>> expand({"nodes": [{"id": "a", "path": "a.py"}]}, Path("."))["nodes"][0]["id"]
'a'
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import GraphError
from .yaml12 import load as load_yaml12

__all__ = ["MAX_DEPTH", "MAX_MODULE_BYTES", "ParamText", "expand"]

#: dora's limits: nesting depth and the size of one module file.
MAX_DEPTH = 8
MAX_MODULE_BYTES = 1_048_576

_HEADER_KEYS = {"name", "inputs", "inputs_optional", "outputs"}
_FILE_KEYS = {"module", "nodes", "build"}
# What a module node may carry besides ``module``: the rest belongs to a
# node with code of its own, and dora refuses it rather than dropping it.
_MODULE_NODE_KEYS = {
    *("id", "name", "description", "env", "deploy"),
    *("module", "inputs", "params", "build"),
}
_PARAM_KEY = re.compile(r"^[A-Za-z0-9_]+$")
# Both spellings of a parameter in args, matched in one pass so that a
# substituted value is never expanded again.
_PARAM_REF = re.compile(r"\$\{_param\.(?P<braced>[^}]*)\}|\$PARAM_(?P<upper>[A-Za-z0-9_]*)")


class ParamText(str):
    """A parameter's value in a node's env: text, never read as a number (as in dora)."""


# A module's output, seen from outside: the inner node and output that produce it.
OutputMap = dict[str, tuple[str, str]]


def expand(descriptor: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """``descriptor`` with every module node replaced by its nodes (a new mapping)."""
    nodes = descriptor.get("nodes")
    flat = dict(descriptor)
    if not isinstance(nodes, list) or not any(_is_module(n) for n in nodes):
        return flat
    base = base_dir.resolve()
    out: list[Any] = []
    maps: dict[str, OutputMap] = {}
    for node in nodes:
        if _is_module(node):
            inner, maps[str(node["id"])] = _expand_node(node, base, base, 0, set())
            out.extend(inner)
        else:
            out.append(copy.deepcopy(node))
    _rewrite_external(out, maps)
    seen: set[str] = set()
    for node in out:
        node_id = str(node.get("id")) if isinstance(node, Mapping) else ""
        if node_id in seen:
            raise GraphError(
                f"duplicate node id {node_id!r} after module expansion: rename the module "
                "node or the node it collides with"
            )
        seen.add(node_id)
    flat["nodes"] = out
    return flat


def _is_module(node: object) -> bool:
    return isinstance(node, Mapping) and node.get("module") is not None


def _expand_node(
    node: Mapping[str, Any], module_base: Path, root: Path, depth: int, seen: set[Path]
) -> tuple[list[dict[str, Any]], OutputMap]:
    module_id = str(node.get("id"))
    where = f"module node {module_id!r}"
    if depth >= MAX_DEPTH:
        raise GraphError(f"{where}: modules nest deeper than {MAX_DEPTH} levels")
    extra = sorted(set(map(str, node)) - _MODULE_NODE_KEYS)
    if extra:
        raise GraphError(
            f"{where}: {', '.join(extra)} cannot go with 'module' (a module node only names "
            "a sub-dataflow; configure its nodes with params, env, build or deploy)"
        )
    name = node["module"]
    if not isinstance(name, str) or os.path.isabs(name) or name.startswith("\\"):
        raise GraphError(f"{where}: module: {name!r} must be a relative path to a module file")
    path = (module_base / name).resolve()
    if not path.is_relative_to(root):
        raise GraphError(f"{where}: module: {name!r} is outside the dataflow's folder")
    if not path.is_file():
        raise GraphError(f"{where}: module: file {name!r} does not exist (looked in {module_base})")
    if path in seen:
        raise GraphError(f"{where}: module {name!r} includes itself (a cycle of modules)")
    header, build, inner_nodes = _read_module(path, where)
    module_name = header["name"]
    inputs = node.get("inputs") or {}
    if not isinstance(inputs, Mapping):
        raise GraphError(f"{where}: inputs must be a mapping of module input to source")
    for port in header["inputs"]:
        if port not in inputs:
            raise GraphError(
                f"{where}: module {module_name!r} needs input {port!r}: add "
                f"'{port}: <node>/<output>' to its inputs"
            )
    declared = header["inputs"] + header["inputs_optional"]
    for port in inputs:
        if port not in declared:
            raise GraphError(
                f"{where}: module {module_name!r} has no input {port!r} "
                f"(declared: {', '.join(declared) or 'none'})"
            )
    params = _params(node.get("params"), where)
    inner_ids = {str(n.get("id")) for n in inner_nodes}
    optional = set(header["inputs_optional"])
    prefixed: list[dict[str, Any]] = []
    for inner in inner_nodes:
        inner = copy.deepcopy(dict(inner))
        inner["id"] = f"{module_id}.{inner.get('id')}"
        for holder in _input_holders(inner):
            holder["inputs"] = _rewrite_module_inputs(
                holder["inputs"], module_id, inputs, inner_ids, optional, where
            )
        _resolve_paths(inner, path.parent, root)
        if inner.get("deploy") is None and node.get("deploy") is not None:
            inner["deploy"] = copy.deepcopy(node["deploy"])
        if node.get("env"):
            env = inner.get("env") or {}
            inner["env"] = {**copy.deepcopy(node["env"]), **env}
        if params:
            _substitute(inner, params)
        if build is not None:
            _prepend_build(inner, build)
        prefixed.append(inner)
    producers: dict[str, list[tuple[str, tuple[str, str]]]] = {}
    nested_maps: dict[str, OutputMap] = {}
    final: list[dict[str, Any]] = []
    for inner in prefixed:
        if _is_module(inner):
            nested, nested_map = _expand_node(inner, path.parent, root, depth + 1, seen | {path})
            if inner.get("build") is not None:
                for n in nested:
                    _prepend_build(n, inner["build"])
            for output, target in nested_map.items():
                producers.setdefault(output, []).append((f"{inner['id']}/{output}", target))
            nested_maps[inner["id"]] = nested_map
            final.extend(nested)
        else:
            for output in _outputs_of(inner):
                producers.setdefault(output, []).append(
                    (f"{inner['id']}/{output}", (inner["id"], output))
                )
            final.append(inner)
    _rewrite_external(final, nested_maps)
    output_map: OutputMap = {}
    for output in header["outputs"]:
        found = producers.get(output, [])
        if not found:
            raise GraphError(
                f"{where}: module {module_name!r} declares output {output!r} but no inner "
                "node produces it"
            )
        if len(found) > 1:
            names = ", ".join(p for p, _ in found)
            raise GraphError(
                f"{where}: module {module_name!r} declares output {output!r} but several "
                f"inner nodes produce it: {names}"
            )
        output_map[output] = found[0][1]
    return final, output_map


def _read_module(path: Path, where: str) -> tuple[dict[str, list[str]], str | None, list[Any]]:
    if path.stat().st_size > MAX_MODULE_BYTES:
        raise GraphError(f"{where}: module file {path.name!r} is over {MAX_MODULE_BYTES:,} bytes")
    import yaml

    try:
        data = load_yaml12(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GraphError(f"{where}: module file {path.name!r} is not valid YAML: {first}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("module"), Mapping):
        raise GraphError(f"{where}: {path.name!r} is not a module file (no 'module:' header)")
    unknown = sorted(set(map(str, data)) - _FILE_KEYS)
    if unknown:
        raise GraphError(f"{where}: module file {path.name!r}: unknown key(s) {unknown}")
    raw = data["module"]
    bad = sorted(set(map(str, raw)) - _HEADER_KEYS)
    if bad:
        raise GraphError(f"{where}: module header of {path.name!r}: unknown field(s) {bad}")
    if not isinstance(raw.get("name"), str):
        raise GraphError(f"{where}: module header of {path.name!r} needs a 'name'")
    header: dict[str, Any] = {"name": raw["name"]}
    for key in ("inputs", "inputs_optional", "outputs"):
        ports = raw.get(key) or []
        if not isinstance(ports, list) or not all(isinstance(p, str) for p in ports):
            raise GraphError(f"{where}: module header {key} must be a list of port names")
        dup = next((p for i, p in enumerate(ports) if p in ports[:i]), None)
        if dup is not None:
            raise GraphError(f"{where}: module {raw['name']!r} lists {key} {dup!r} twice")
        header[key] = list(ports)
    both = set(header["inputs"]) & set(header["inputs_optional"])
    if both:
        raise GraphError(
            f"{where}: module {raw['name']!r} input {sorted(both)[0]!r} is both required "
            "and optional"
        )
    build = data.get("build")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not all(isinstance(n, Mapping) for n in nodes):
        raise GraphError(f"{where}: module file {path.name!r} needs a 'nodes' list of nodes")
    return header, build if isinstance(build, str) else None, nodes


def _params(raw: object, where: str) -> dict[str, str]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise GraphError(f"{where}: params must be a mapping of names to values")
    params: dict[str, str] = {}
    upper: dict[str, str] = {}
    for key, value in raw.items():
        key = str(key)
        if not _PARAM_KEY.match(key):
            raise GraphError(f"{where}: params: invalid key {key!r} (use letters, digits and _)")
        if key.upper() in upper:
            raise GraphError(
                f"{where}: params {upper[key.upper()]!r} and {key!r} both become "
                f"PARAM_{key.upper()}"
            )
        upper[key.upper()] = key
        params[key] = value if isinstance(value, str) else _scalar_text(value)
    return params


def _scalar_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _input_holders(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The mappings holding ``inputs`` in a node: the node, its operator(s)."""
    holders = [node] if isinstance(node.get("inputs"), Mapping) else []
    operator = node.get("operator")
    if isinstance(operator, Mapping) and isinstance(operator.get("inputs"), Mapping):
        holders.append(operator)  # type: ignore[arg-type] - a dict from YAML
    for op in node.get("operators") or []:
        if isinstance(op, dict) and isinstance(op.get("inputs"), Mapping):
            holders.append(op)
    return holders


def _split(value: object) -> tuple[str, dict[str, Any]]:
    """An input's source and its options (``queue_size``...)."""
    if isinstance(value, Mapping):
        return str(value.get("source")), {k: v for k, v in value.items() if k != "source"}
    return str(value), {}


def _join(source: str, options: Mapping[str, Any]) -> object:
    return {"source": source, **options} if options else source


def _rewrite_module_inputs(
    inputs: Mapping[str, Any],
    module_id: str,
    bound: Mapping[str, Any],
    inner_ids: set[str],
    optional: set[str],
    where: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for input_id, value in inputs.items():
        source, options = _split(value)
        node, _, output = source.partition("/")
        if node == "_mod":
            if output not in bound:
                if output in optional:
                    continue  # an optional input left unwired is dropped
                raise GraphError(f"{where}: inputs.{input_id}: '_mod/{output}' is not wired")
            outer_source, outer_options = _split(bound[output])
            out[input_id] = _join(outer_source, {**outer_options, **options})
        elif node in inner_ids:
            out[input_id] = _join(f"{module_id}.{source}", options)
        else:
            out[input_id] = copy.deepcopy(value)
    return out


def _rewrite_external(nodes: list[Any], maps: Mapping[str, OutputMap]) -> None:
    """Point ``module/output`` references at the inner node that produces the output."""
    if not maps:
        return
    for node in nodes:
        if not isinstance(node, dict):
            continue
        for holder in _input_holders(node):
            new = {}
            for input_id, value in holder["inputs"].items():
                source, options = _split(value)
                module, _, output = source.partition("/")
                if module in maps:
                    if output not in maps[module]:
                        raise GraphError(
                            f"node {str(node.get('id'))!r}: inputs.{input_id}: module "
                            f"{module!r} has no output {output!r} (declared: "
                            f"{', '.join(maps[module]) or 'none'})"
                        )
                    value = _join("/".join(maps[module][output]), options)
                new[input_id] = value
            holder["inputs"] = new


def _outputs_of(node: Mapping[str, Any]) -> list[str]:
    outputs = list(node.get("outputs") or [])
    operator = node.get("operator")
    if isinstance(operator, Mapping):
        outputs += list(operator.get("outputs") or [])
    return [str(o) for o in outputs]


def _resolve_paths(node: dict[str, Any], module_dir: Path, root: Path) -> None:
    """Make the node's file paths relative to the dataflow's folder, as dora does."""

    def rebase(name: object) -> object:
        if not isinstance(name, str) or name in ("dynamic", "shell") or "://" in name:
            return name
        if os.path.isabs(name):
            return name
        full = Path(os.path.normpath(module_dir / name))
        if not full.is_relative_to(root):
            raise GraphError(
                f"node {str(node.get('id'))!r}: path {name!r} is outside the dataflow's folder"
            )
        return str(full.relative_to(root))

    if "path" in node:
        node["path"] = rebase(node["path"])
    operator = node.get("operator")
    if isinstance(operator, dict):
        python = operator.get("python")
        if isinstance(python, dict):
            python["source"] = rebase(python.get("source"))
        elif python is not None:
            operator["python"] = rebase(python)


def _substitute(node: dict[str, Any], params: Mapping[str, str]) -> None:
    """``$PARAM_KEY`` and ``${_param.key}`` in args, and ``PARAM_KEY`` in env."""
    if isinstance(node.get("args"), str):
        by_upper = {k.upper(): v for k, v in params.items()}

        def value(m: re.Match[str]) -> str:
            if m["braced"] is not None:
                return params.get(m["braced"], m[0])
            return by_upper.get(m["upper"], m[0])

        node["args"] = _PARAM_REF.sub(value, node["args"])
    env = node.get("env") or {}
    node["env"] = {**env, **{f"PARAM_{k.upper()}": ParamText(v) for k, v in params.items()}}


def _prepend_build(node: dict[str, Any], build: str) -> None:
    """A module's ``build:`` runs before each inner node's own."""

    def joined(own: object) -> str:
        return build if own is None else f"{build}\n{own}"

    if "path" in node or node.get("module") is not None:
        node["build"] = joined(node.get("build"))
    operator = node.get("operator")
    if isinstance(operator, dict):
        operator["build"] = joined(operator.get("build"))
