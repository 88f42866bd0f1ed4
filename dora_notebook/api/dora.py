"""What ``import dora`` means inside node code run by the embedded engine.

Node code gets this module for ``dora`` (see :mod:`dora_notebook.core.loader`);
everywhere else ``import dora`` still finds dora-rs, if installed. Every name
dora-rs 1.1's module has is here: ``Node`` and ``DoraStatus`` work; the
ROS 2 bridge (``Ros2Context``, ``Ros2QosPolicies``...) and the functions that
run dora itself raise an error naming the engine or command that has them.

>>> from dora_notebook.api import dora
>>> dora.Ros2Context()  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
dora_notebook.errors.UnsupportedError: dora.Ros2Context needs dora-rs's ROS 2 bridge, ...
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from .._version import __version__
from ..core.events import DoraStatus
from ..errors import UnsupportedError
from .node import Node, dora_engine_only

__all__ = [
    "DoraStatus",
    "Node",
    "Ros2ActionClient",
    "Ros2ActionServer",
    "Ros2Context",
    "Ros2Durability",
    "Ros2Liveliness",
    "Ros2Node",
    "Ros2NodeOptions",
    "Ros2Publisher",
    "Ros2QosPolicies",
    "Ros2ServiceClient",
    "Ros2ServiceServer",
    "Ros2Subscription",
    "Ros2Topic",
    "Ros2Transport",
    "__version__",
    "build",
    "run",
    "start_runtime",
]

__author__ = "Dora-rs Authors"

#: This module, under dora-rs's name for its native extension (``dora.dora``).
dora = sys.modules[__name__]


class _Ros2Meta(type):
    """Makes a stand-in for a ROS 2 class: using it in any way raises the one error."""

    def __call__(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise dora_engine_only(f"dora.{cls.__name__}", "dora-rs's ROS 2 bridge")

    def __getattr__(cls, name: str) -> NoReturn:  # Ros2Durability.Volatile, ...
        if name.startswith("__"):
            raise AttributeError(name)
        raise dora_engine_only(f"dora.{cls.__name__}.{name}", "dora-rs's ROS 2 bridge")


class Ros2Context(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 context: only on the dora engine."""


class Ros2Node(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 node: only on the dora engine."""


class Ros2NodeOptions(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 node options: only on the dora engine."""


class Ros2Topic(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 topic: only on the dora engine."""


class Ros2Publisher(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 publisher: only on the dora engine."""


class Ros2Subscription(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 subscription: only on the dora engine."""


class Ros2ServiceClient(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 service client: only on the dora engine."""


class Ros2ServiceServer(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 service server: only on the dora engine."""


class Ros2ActionClient(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 action client: only on the dora engine."""


class Ros2ActionServer(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 action server: only on the dora engine."""


class Ros2QosPolicies(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 QoS policies: only on the dora engine."""


class Ros2Durability(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 durability policy: only on the dora engine."""


class Ros2Liveliness(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 liveliness policy: only on the dora engine."""


class Ros2Transport(metaclass=_Ros2Meta):
    """dora-rs's ROS 2 transport: only on the dora engine."""


def start_runtime() -> NoReturn:
    """Raises: the embedded engine runs operators itself (dora's runtime process does there)."""
    raise UnsupportedError(
        "dora.start_runtime starts dora-rs's operator runtime process; on the embedded "
        "engine operators run in the kernel: declare them with %%dora_operator or a descriptor"
    )


def run(dataflow_path: str, uv: bool | None = None, stop_after: float | None = None) -> NoReturn:
    """Raises: node code cannot run a dataflow of its own."""
    raise UnsupportedError(
        f"dora.run({dataflow_path!r}) from node code: a node cannot run a dataflow; run it "
        "from the notebook (%dora_start, Dataflow.start) or a shell "
        "(`dora-notebook run`, `dora run`)"
    )


def build(dataflow_path: str, *args: Any, **kwargs: Any) -> NoReturn:
    """Raises: node code cannot build a dataflow."""
    raise UnsupportedError(
        f"dora.build({dataflow_path!r}) from node code: build from the notebook "
        "(%dora_build) or a shell (`dora-notebook run --build`, `dora build`)"
    )
