"""What ``import dora`` means inside node code run by the embedded engine.

Node code gets this module for ``dora`` (see :mod:`dora_notebook.core.loader`);
everywhere else ``import dora`` still finds dora-rs, if installed.
"""

from __future__ import annotations

from .._version import __version__
from ..core.events import DoraStatus
from .node import Node

__all__ = ["DoraStatus", "Node", "__version__"]
