"""The benchmarks still run end to end (their numbers are read by people, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_engine_benchmark_quick_run_prints_its_table() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for engine in ("dora-notebook", "dora-rs", "streamz"):
        assert engine in result.stdout
    assert "chain throughput" in result.stdout and "op -> op hop" in result.stdout


def test_notebook_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "notebook.py"), "--seconds", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "runtime saturated" in result.stdout and "iopub traffic" in result.stdout


def test_soak_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "soak.py"), "--minutes", "0.1", "--every", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "memory after warm-up" in result.stdout and "iopub peak" in result.stdout
    assert "a: finished" in result.stdout  # the graph really ran and was stopped
