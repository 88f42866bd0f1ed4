"""Read descriptors with YAML 1.2's core schema, as dora-rs (serde_yaml) does.

PyYAML follows YAML 1.1, where ``yes`` is a boolean, ``012`` is octal,
``1:30`` is a number of minutes and ``2024-01-02`` is a date. dora reads
them as the text ``yes``, the number 12, the text ``1:30`` and the text
``2024-01-02``; a descriptor must mean the same under both engines.

>>> load("a: yes\\nb: 012\\nc: 0o17\\nd: 1e3\\ne: 2024-01-02\\nf: 1_000")
{'a': 'yes', 'b': 12, 'c': 15, 'd': 1000.0, 'e': '2024-01-02', 'f': '1_000'}

:func:`dump` writes YAML that reads back the same under both rules: a string
either schema would take for something else is quoted.

>>> print(dump({"a": "0o17", "b": "1e3", "c": "yes", "d": "plain"}), end="")
a: '0o17'
b: '1e3'
c: 'yes'
d: plain
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["Yaml12Dumper", "Yaml12Loader", "dump", "load"]


class Yaml12Loader(yaml.SafeLoader):
    """A safe loader whose plain scalars resolve by the YAML 1.2 core schema."""


# Start from no implicit resolvers at all, then add the core schema's.
Yaml12Loader.yaml_implicit_resolvers = {}

_CORE = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
]
for _tag, _pattern, _first in _CORE:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # a leading zero is decimal in YAML 1.2


def _float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node).lower()
    if text.endswith("inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text.endswith("nan"):
        return float("nan")
    return float(text)


def _bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return loader.construct_scalar(node).lower() == "true"


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _float)
Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _bool)


def load(text: str) -> Any:
    """Parse YAML text with the 1.2 core schema."""
    return yaml.load(text, Loader=Yaml12Loader)


class Yaml12Dumper(yaml.SafeDumper):
    """A safe dumper that quotes strings YAML 1.2 would read as something else.

    PyYAML already quotes what YAML 1.1 would misread (``yes``, ``1_000``);
    this adds what only 1.2 misreads (``0o17``, ``1e3``).
    """


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    as_12 = Yaml12Loader.resolve(Yaml12Loader, yaml.ScalarNode, data, (True, False))
    style = "'" if as_12 != "tag:yaml.org,2002:str" else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


Yaml12Dumper.add_representer(str, _str)


def dump(data: Any) -> str:
    """YAML text for ``data``, keys in their order, readable by YAML 1.1 and 1.2 alike."""
    return yaml.dump(
        data, Dumper=Yaml12Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
