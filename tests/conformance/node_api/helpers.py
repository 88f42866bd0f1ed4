"""A plain module next to the node files, importing dora as node code does."""

from __future__ import annotations

from dora import DoraStatus, Node

__all__ = ["DoraStatus", "Node"]
