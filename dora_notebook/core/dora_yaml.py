"""A flat descriptor written the way ``dora expand`` prints it.

dora-rs 1.1 prints its parsed descriptor back (serde_yaml): every node with
its fields in dora's order, defaults it always writes (``name: null``,
``restart_policy: never``, ``deploy: null``...), outputs and maps sorted,
timers in their coarsest exact unit, env values read as booleans and numbers
where Rust reads them so, floats as Rust prints them (``10.0``, ``3e-7``).

>>> print(dump({"nodes": [{"id": "a", "path": "a.py", "inputs": {"t": "dora/timer/hz/0.5"}}]}))
nodes:
- id: a
  name: null
  description: null
  path: a.py
  env: null
  outputs: []
  inputs:
    t: dora/timer/secs/2
  restart_policy: never
  max_restarts: 0
  deploy: null
deploy: null
debug:
  enable_debug_inspection: false
health_check_interval: null
<BLANKLINE>
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from .graph import Timer
from .modules import ParamText
from .yaml12 import Yaml12Loader

__all__ = ["dump"]

# Node fields in dora's order: (name, how to write it, written when unset).
_ALWAYS, _SET = True, False
_NODE_FIELDS = [
    ("id", "str", _ALWAYS),
    ("name", "str", _ALWAYS),
    ("description", "str", _ALWAYS),
    ("path", "str", _SET),
    ("path_sha256", "str", _SET),
    ("args", "str", _SET),
    ("env", "env", _ALWAYS),
    ("operators", "operators", _SET),
    ("operator", "operator", _SET),
    ("ros2", "ros2", _SET),
    ("outputs", "outputs", _ALWAYS),
    ("output_types", "map", _SET),
    ("output_framing", "map", _SET),
    ("inputs", "inputs", _ALWAYS),
    ("input_types", "map", _SET),
    ("output_metadata", "map", _SET),
    ("pattern", "str", _SET),
    ("send_stdout_as", "str", _SET),
    ("send_logs_as", "str", _SET),
    ("min_log_level", "str", _SET),
    ("max_log_size", "str", _SET),
    ("max_rotated_files", "any", _SET),
    ("build", "str", _SET),
    ("git", "str", _SET),
    ("hub", "str", _SET),
    ("branch", "str", _SET),
    ("tag", "str", _SET),
    ("rev", "str", _SET),
    ("restart_policy", "policy", _ALWAYS),
    ("shared_memory_pool_size", "any", _SET),
    ("max_restarts", "count", _ALWAYS),
    ("restart_delay", "float", _SET),
    ("max_restart_delay", "float", _SET),
    ("restart_window", "float", _SET),
    ("health_check_timeout", "float", _SET),
    ("finish_grace_secs", "float", _SET),
    ("module", "str", _SET),
    ("params", "map", _SET),
    ("cpu_affinity", "any", _SET),
    ("deploy", "deploy", _ALWAYS),
    ("startup_timeout", "float", _SET),
]
_OPERATOR_FIELDS = [
    ("id", "str", _ALWAYS),
    ("name", "str", _ALWAYS),
    ("description", "str", _ALWAYS),
    ("inputs", "inputs", _ALWAYS),
    ("outputs", "outputs", _ALWAYS),
    ("output_types", "map", _SET),
    ("output_framing", "map", _SET),
    ("input_types", "map", _SET),
    ("output_metadata", "map", _SET),
    ("pattern", "str", _SET),
    ("python", "any", _SET),
    ("shared-library", "str", _SET),
    ("wasm", "str", _SET),
    ("build", "str", _SET),
    ("send_stdout_as", "str", _SET),
    ("send_logs_as", "str", _SET),
    ("min_log_level", "str", _SET),
    ("max_log_size", "str", _SET),
    ("max_rotated_files", "any", _SET),
]
# dora's declarative ROS 2 bridge (``ros2:``), defaults filled in as dora prints them.
_ROS2_FIELDS = [
    ("transport", "transport", _ALWAYS),
    ("topic", "str", _SET),
    ("message_type", "str", _SET),
    ("direction", "direction", _ALWAYS),
    ("topics", "topics", _SET),
    ("service", "str", _SET),
    ("service_type", "str", _SET),
    ("action", "str", _SET),
    ("action_type", "str", _SET),
    ("role", "str", _SET),
    ("qos", "qos", _ALWAYS),
    ("namespace", "namespace", _ALWAYS),
    ("node_name", "str", _SET),
]
_ROS2_TOPIC_FIELDS = [
    ("topic", "str", _ALWAYS),
    ("message_type", "str", _ALWAYS),
    ("direction", "direction", _ALWAYS),
    ("output", "str", _SET),
    ("input", "str", _SET),
    ("qos", "qos", _SET),
]
_QOS_FIELDS = [
    ("reliable", "flag", _ALWAYS),
    ("durability", "str", _SET),
    ("liveliness", "str", _SET),
    ("lease_duration", "float", _SET),
    ("max_blocking_time", "float", _SET),
    ("keep_last", "any", _SET),
    ("keep_all", "flag", _ALWAYS),
]
_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(
    r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$", re.I
)


class _Float(float):
    """A float written as Rust writes an f64."""


def _env_value(value: object) -> object:
    """An env value as dora holds it: text Rust reads as a bool or number becomes one."""
    if not isinstance(value, str):
        return _Float(value) if isinstance(value, float) else value
    if isinstance(value, ParamText):
        return str(value)
    if value in ("true", "false"):
        return value == "true"
    if _INT.match(value) and -(2**63) <= int(value) < 2**63:
        return int(value)
    if _FLOAT.match(value):
        return _Float(float(value))
    return value


def _input(value: object) -> object:
    source = value.get("source") if isinstance(value, Mapping) else value
    if isinstance(source, str) and source.startswith("dora/timer/"):
        source = Timer.parse(source).spec
    if not isinstance(value, Mapping):
        return source
    out: dict[str, Any] = {"source": source}
    for key in ("queue_size", "input_timeout", "queue_policy"):
        if value.get(key) is not None:
            out[key] = _Float(value[key]) if key == "input_timeout" else value[key]
    return out if len(out) > 1 else source


def _value(kind: str, value: Any) -> Any:
    if kind == "env":
        return None if value is None else {str(k): _env_value(v) for k, v in sorted(value.items())}
    if kind == "outputs":
        return sorted(map(str, value or []))
    if kind == "inputs":
        return {str(k): _input(v) for k, v in sorted((value or {}).items())}
    if kind == "map":
        return {str(k): v for k, v in sorted(value.items())}
    if kind == "policy":
        return value or "never"
    if kind == "count":
        return value or 0
    if kind == "float":
        return _Float(value)
    if kind == "deploy":
        if value is None:
            return None
        out = {"machine": value.get("machine"), "working_dir": value.get("working_dir")}
        if value.get("labels"):
            out["labels"] = dict(sorted(value["labels"].items()))
        out["distribute"] = value.get("distribute") or "local"
        return out
    if kind == "operator":
        return _fields(value, _OPERATOR_FIELDS)
    if kind == "ros2":
        return _fields(value, _ROS2_FIELDS) if isinstance(value, Mapping) else value
    if kind == "transport":
        if not isinstance(value, Mapping):
            return {"kind": "dds"}
        order = ("kind", "compatibility", "config_uri")
        return {k: value[k] for k in order if value.get(k) is not None}
    if kind == "direction":
        return value or "subscribe"
    if kind == "namespace":
        return "/" if value is None else value
    if kind == "flag":
        return bool(value)
    if kind == "qos":
        return _fields(value if isinstance(value, Mapping) else {}, _QOS_FIELDS)
    if kind == "topics":
        return [_fields(t, _ROS2_TOPIC_FIELDS) if isinstance(t, Mapping) else t for t in value]
    if kind == "operators":
        return [_fields(op, _OPERATOR_FIELDS) if isinstance(op, Mapping) else op for op in value]
    return value


def _fields(raw: Mapping[str, Any], fields: list[tuple[str, str, bool]]) -> dict[str, Any]:
    out = {}
    for name, kind, always in fields:
        value = raw.get(name)
        if value is None or (kind == "map" and not value):
            if always:
                out[name] = _value(kind, value)
            continue
        out[name] = _value(kind, value)
    return out


def dump(descriptor: Mapping[str, Any]) -> str:
    """The text ``dora expand`` prints for a flat (expanded) descriptor mapping."""
    top: dict[str, Any] = {
        "nodes": [_fields(node, _NODE_FIELDS) for node in descriptor.get("nodes") or []],
        "deploy": _value("deploy", descriptor.get("deploy")),
        "debug": {
            "enable_debug_inspection": bool(
                (descriptor.get("debug") or {}).get("enable_debug_inspection", False)
            )
        },
        "health_check_interval": None,
    }
    if descriptor.get("health_check_interval") is not None:
        top["health_check_interval"] = _Float(descriptor["health_check_interval"])
    for key in ("strict_types", "exit_when_nodes_finish"):
        if descriptor.get(key) is not None:
            top[key] = descriptor[key]
    if descriptor.get("type_rules"):
        top["type_rules"] = [{"from": r["from"], "to": r["to"]} for r in descriptor["type_rules"]]
    if descriptor.get("env") is not None:
        top["env"] = _value("env", descriptor["env"])
    return yaml.dump(
        top,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=float("inf"),  # serde_yaml never folds a long line
    )


class _Dumper(yaml.SafeDumper):
    """serde_yaml's choices: empty maps and lists inline, ambiguous text quoted.

    Plain scalars resolve by YAML 1.2's core schema, as serde_yaml reads
    them: ``yes`` stays plain text, ``1e20`` is a plain float.
    """


_Dumper.yaml_implicit_resolvers = Yaml12Loader.yaml_implicit_resolvers


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    as_12 = Yaml12Loader.resolve(Yaml12Loader, yaml.ScalarNode, data, (True, False))
    style = "'" if as_12 != "tag:yaml.org,2002:str" or data in ("", "~") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _rust_float(dumper: yaml.SafeDumper, data: float) -> yaml.ScalarNode:
    if math.isnan(data):
        text = ".nan"
    elif math.isinf(data):
        text = ".inf" if data > 0 else "-.inf"
    else:
        text = repr(float(data))
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


def _empty_inline(dumper: yaml.SafeDumper, data: Any) -> yaml.Node:
    if isinstance(data, dict):
        return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=not data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=not data)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(_Float, _rust_float)
_Dumper.add_representer(float, _rust_float)
_Dumper.add_representer(dict, _empty_inline)
_Dumper.add_representer(list, _empty_inline)
