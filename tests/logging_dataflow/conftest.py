"""The node scripts here create a ``Node()`` at import: keep pytest's doctest collection out."""

from __future__ import annotations

collect_ignore_glob = ["*.py"]
