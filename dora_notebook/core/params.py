"""Runtime parameters as dora-rs 1.1 has them (``dora param set|get|list|delete``).

A parameter is a key of a node with a JSON value. Setting one gives the node a
``PARAM_UPDATE`` event whose ``id`` is the key and whose ``value`` is the
value decoded from JSON (a Python object, not an Arrow array; no
``metadata``); deleting one gives a ``PARAM_DELETED`` event with the key as
``id`` and no value. Each delivery decodes anew, so what one node does to its
value reaches neither the caller nor another node.

>>> text = check_param("scale", "gain", 2.5)
>>> event = param_event("gain", text)
>>> event["type"], event["id"], event["value"], "data" in event
('PARAM_UPDATE', 'gain', 2.5, False)
>>> param_text({"mode": "fast", "n": [1, 2]})
'{"mode":"fast","n":[1,2]}'
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import DataflowError
from .events import Event

__all__ = [
    "ParamEvent",
    "check_param",
    "param_deleted_event",
    "param_event",
    "param_text",
]


class ParamEvent(Event):
    """A ``PARAM_UPDATE`` or ``PARAM_DELETED`` event: a plain dict, as dora gives it.

    Unlike an input's event it has no ``data``: its value is no Arrow array.
    """

    __slots__ = ()

    def __missing__(self, key: str) -> Any:
        raise KeyError(key)

    __contains__ = dict.__contains__
    get = dict.get


def param_text(value: object) -> str:
    """``value`` as compact JSON, the way ``dora param get`` prints it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def check_param(node_id: str, key: object, value: object) -> str:
    """The JSON text of parameter ``key`` of ``node_id``, or one line saying what is wrong.

    ``dora param set`` takes JSON: numbers (not NaN nor infinity), strings,
    booleans, None, and lists and dicts of those.

    >>> check_param("scale", "gain", {1, 2})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    dora_notebook.errors.DataflowError: node 'scale': parameter 'gain': {1, 2} is not JSON ...
    """
    if not isinstance(key, str) or not key:
        raise DataflowError(f"node {node_id!r}: a parameter key is a non-empty str, not {key!r}")
    try:
        return param_text(value)
    except (TypeError, ValueError, RecursionError):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else f"a {type(value).__name__}"
        raise DataflowError(
            f"node {node_id!r}: parameter {key!r}: {shown} is not JSON (give numbers, "
            "strings, booleans, None, or lists and dicts of them)"
        ) from None


def param_event(key: str, text: str) -> ParamEvent:
    """The ``PARAM_UPDATE`` event of ``key`` set to the JSON ``text``."""
    return ParamEvent(kind="dora", type="PARAM_UPDATE", id=key, value=json.loads(text))


def param_deleted_event(key: str) -> ParamEvent:
    """The ``PARAM_DELETED`` event of ``key``."""
    return ParamEvent(kind="dora", type="PARAM_DELETED", id=key)
