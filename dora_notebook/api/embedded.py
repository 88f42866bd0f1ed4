"""The node API as the embedded engine hands it to node code.

The engine (:mod:`dora_notebook.core`) cannot import this layer; the
:class:`~dora_notebook.Dataflow` passes :data:`NODE_API` to it instead.

>>> NODE_API.dora.__name__
'dora_notebook.api.dora'
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING

from . import dora
from .context import Context

if TYPE_CHECKING:
    from ..core.runner import Runner

__all__ = ["NODE_API", "EmbeddedApi"]


class EmbeddedApi:
    """What node code on the embedded engine is given (a ``core.runner.NodeApi``)."""

    #: What ``import dora`` gives node code.
    dora: types.ModuleType = dora

    def context(self, runner: Runner) -> Context:
        """The oocana-style context of ``runner``'s node."""
        return Context(runner)


NODE_API = EmbeddedApi()
