"""What a test needs beyond the package: skipped when missing, failed under CI.

A developer without the dora CLI or Chromium still gets a green run of what
can run; CI (``CI=true``, as GitHub Actions and most services set it) must
run everything, so there a missing tool fails the test with one line saying
what to install.

>>> under_ci({"CI": "true"}), under_ci({"CI": "false"}), under_ci({})
(True, False, False)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

import pytest

from dora_notebook.dora_rs.procs import dora_cli
from dora_notebook.errors import DataflowError

__all__ = ["missing", "needs_dora", "under_ci"]


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this run is CI's: ``CI`` set to anything but empty, ``0`` or ``false``."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false")


def missing(message: str) -> NoReturn:
    """Skip the test for ``message`` (what to install); under CI, fail it instead."""
    if under_ci():
        pytest.fail(
            f"{message} (CI is set: a missing tool fails instead of skipping)", pytrace=False
        )
    pytest.skip(message)


def needs_dora() -> str:
    """The dora CLI, found as the package finds it (next to this Python first).

    Every test marked ``@pytest.mark.dora`` calls it before it runs (see
    ``conftest.py``), so such a test is skipped, or fails under CI, without it.
    """
    try:
        return dora_cli()
    except DataflowError as exc:
        missing(str(exc))
