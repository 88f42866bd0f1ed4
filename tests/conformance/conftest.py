"""The dataflow folders hold node scripts, not tests: keep pytest out of them.

With ``--doctest-modules`` pytest would import every ``.py`` file, and a node
script creates its ``Node()`` (and imports ``recorder``, which only sits next
to it in a run folder) at import time.
"""

from __future__ import annotations

collect_ignore_glob = ["*/*.py", "dora_examples/*/*.py", "dora_examples/*/*/*.py"]
