"""Benchmark dora-notebook's embedded engine against real dora-rs and streamz.

    python bench/run.py                 # full run, a few minutes
    python bench/run.py --quick         # smoke run, a few seconds per engine
    python bench/run.py --out raw.json  # also save every number as JSON

See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import engine_dora
from common import ENGINES, Result, Settings, size_label
from report import Target, table, targets, targets_text, warmup_losses
from suite import measure

__all__ = ["main"]

_UNITS = {"B": 1, "KB": 1024, "MB": 1024 * 1024}


def parse_size(text: str) -> int:
    """``8``, ``8B``, ``4KB``, ``40MB`` (binary multiples) as bytes."""
    text = text.strip().upper().replace(" ", "")
    for unit in ("KB", "MB", "B"):
        if text.endswith(unit):
            return int(text[: -len(unit)]) * _UNITS[unit]
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Per-hop latency and chain throughput of dora-notebook, dora-rs and streamz.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="few messages, 8-byte payloads only: a smoke run"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE.json",
        help="write the settings, machine and every raw number as JSON",
    )
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated subset of {','.join(ENGINES)}",
    )
    parser.add_argument(
        "--sizes", default=None, help="comma-separated payload sizes, e.g. 8,4KB,4MB,40MB"
    )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        raise SystemExit(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    sizes = tuple(parse_size(s) for s in args.sizes.split(",")) if args.sizes else None
    return Settings.create(quick=args.quick, engines=engines, sizes=sizes)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": _versions(),
        "load_before": os.getloadavg(),
    }


def _load(load: Sequence[float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("dora-notebook", "dora-rs", "dora-rs-cli", "streamz", "pyarrow", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def save(
    path: Path,
    settings: Settings,
    info: dict[str, Any],
    results: list[Result],
    checked: list[Target],
    elapsed_s: float,
) -> None:
    data = {
        "settings": asdict(settings),
        "machine": {**info, "load_after": os.getloadavg()},
        "elapsed_s": elapsed_s,
        "results": [r.to_json() for r in results],
        "targets": [{"name": t.name, "met": t.met, "detail": t.detail} for t in checked],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 1 if a measurement failed or a dora process was left, else 0."""
    args = _parser().parse_args(argv)
    settings = settings_from(args)
    info = machine()
    print(
        f"machine: {info['cores']} cores, {info['cpu'] or 'unknown CPU'}, "
        f"Python {info['python']}; sizes: {', '.join(map(size_label, settings.sizes))}"
        f"{' (quick)' if settings.quick else ''}",
        flush=True,
    )
    start = time.monotonic()
    results = measure(settings)
    elapsed = time.monotonic() - start
    checked = targets(results)
    print()
    print(table(results))
    losses = warmup_losses(results)
    if losses:
        print(losses)
    print(f"load average before/after: {_load(info['load_before'])} / {_load(os.getloadavg())}")
    print()
    print(targets_text(checked))
    for result in results:
        if result.error:
            print(
                f"\n{result.engine} {result.measurement} {size_label(result.size)} failed:"
                f"\n  {result.error}"
            )
    left = engine_dora.leftovers()
    if left:
        print(f"\nWARNING: dora processes still running: {left}")
    print(f"\ntotal time: {elapsed:.0f} s")
    if args.out:
        save(args.out, settings, info, results, checked, elapsed)
        print(f"raw numbers: {args.out}")
    return 1 if left or any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
