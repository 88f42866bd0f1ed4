"""The printed table and the check of the issue's targets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common import MEASUREMENTS, Result, size_label

__all__ = ["Target", "table", "targets", "targets_text", "warmup_losses"]

NB, RS, SZ = "dora-notebook", "dora-rs", "streamz"

_TITLES = {
    "node_hop": "node -> node hop",
    "chain_hop": "chain, per hop",
    "op_hop": "op -> op hop",
    "throughput": "chain throughput",
}

_HEADER = ("measurement", "payload", NB, RS, SZ, "dora-rs/nb", "nb/streamz", "lost nb/rs/sz")


class Cells:
    """Results indexed by (engine, measurement, size)."""

    def __init__(self, results: Iterable[Result]) -> None:
        self._by_key = {(r.engine, r.measurement, r.size): r for r in results}

    def get(self, engine: str, measurement: str, size: int) -> Result | None:
        result = self._by_key.get((engine, measurement, size))
        return result if result is not None and result.ok else None

    def any(self, engine: str, measurement: str, size: int) -> Result | None:
        """The result even when it failed."""
        return self._by_key.get((engine, measurement, size))

    def rows(self) -> list[tuple[str, int]]:
        """(measurement, size) pairs present, in table order."""
        keys = {(m, s) for _, m, s in self._by_key}
        return sorted(keys, key=lambda k: (MEASUREMENTS.index(k[0]), k[1]))


def fmt_time(us: float) -> str:
    if us >= 1000:
        return f"{us / 1000:.1f} ms"
    return f"{us:.2f} us" if us < 10 else f"{us:.1f} us"


def fmt_rate(rate: float) -> str:
    return f"{rate / 1000:.1f}k msg/s" if rate >= 1000 else f"{rate:.0f} msg/s"


def _cell(result: Result | None) -> str:
    if result is None:
        return "-"
    if not result.ok:
        return "FAILED"
    if result.rate is not None:
        return f"{fmt_rate(result.rate)} ({result.measured_received}/{result.measured_sent})"
    assert result.median_us is not None and result.p95_us is not None
    return f"{fmt_time(result.median_us)} (p95 {fmt_time(result.p95_us)})"


def speedup(ours: Result | None, theirs: Result | None) -> float | None:
    """How many times faster dora-notebook is: their latency / ours, or our rate / theirs."""
    if ours is None or theirs is None:
        return None
    if ours.rate is not None and theirs.rate is not None:
        return ours.rate / theirs.rate
    if ours.median_us and theirs.median_us is not None:
        return theirs.median_us / ours.median_us
    return None


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


def _lost(cells: Cells, measurement: str, size: int) -> str:
    parts = []
    for engine in (NB, RS, SZ):
        result = cells.any(engine, measurement, size)
        parts.append("-" if result is None or not result.ok else str(result.lost))
    return "/".join(parts)


def warmup_losses(results: Iterable[Result]) -> str:
    """One line per cell whose engine lost warm-up messages (not in the table)."""
    return "\n".join(
        f"{r.engine} lost {r.warmup_lost} of {r.sent - r.measured_sent} warm-up messages "
        f"({_TITLES[r.measurement]}, {size_label(r.size)})"
        for r in results
        if r.ok and r.warmup_lost and r.measurement != "op_hop"
    )


def table(results: Iterable[Result]) -> str:
    """The results as an aligned text table, one row per measurement and payload."""
    cells = Cells(results)
    rows = [_HEADER]
    for measurement, size in cells.rows():
        nb = cells.get(NB, measurement, size)
        rows.append(
            (
                _TITLES[measurement],
                size_label(size),
                _cell(cells.any(NB, measurement, size)),
                _cell(cells.any(RS, measurement, size)),
                _cell(cells.any(SZ, measurement, size)),
                _ratio(speedup(nb, cells.get(RS, measurement, size))),
                _ratio(speedup(nb, cells.get(SZ, measurement, size))),
                _lost(cells, measurement, size),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@dataclass
class Target:
    """One of the issue's targets: ``met`` is None when it could not be measured."""

    name: str
    met: bool | None
    detail: str

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "n/a"}[self.met]


def _op_hop_target(cells: Cells, sizes: list[int], factor: float) -> Target:
    """Absolute times move 2x between days on a shared VM: the hop is held to streamz's step."""
    name = f"operator -> operator hop <= {factor:g}x streamz's step, median, at every size"
    ratios = {}
    for size in sizes:
        ours, theirs = cells.get(NB, "op_hop", size), cells.get(SZ, "op_hop", size)
        if ours is not None and theirs is not None and ours.median_us and theirs.median_us:
            ratios[size] = (ours.median_us, theirs.median_us)
    if not ratios:
        return Target(name, None, "not measured")
    detail = ", ".join(
        f"{size_label(s)}: {fmt_time(nb)} / {fmt_time(sz)} = {nb / sz:.2f}x"
        for s, (nb, sz) in ratios.items()
    )
    met = all(nb <= factor * sz for nb, sz in ratios.values())
    return Target(name, met if len(ratios) == len(sizes) or not met else None, detail)


def _speedup_target(cells: Cells, size: int, factor: float) -> Target:
    name = f"node hop >= {factor:g}x faster than dora-rs at {size_label(size)}"
    value = speedup(cells.get(NB, "node_hop", size), cells.get(RS, "node_hop", size))
    if value is None:
        return Target(name, None, "not measured")
    return Target(name, value >= factor, f"{value:.1f}x")


def _throughput_target(cells: Cells, factor: float) -> Target:
    name = f"chain throughput >= {factor:g}x streamz"
    value = speedup(cells.get(NB, "throughput", 8), cells.get(SZ, "throughput", 8))
    if value is None:
        return Target(name, None, "not measured")
    return Target(name, value >= factor, f"{value:.2f}x")


def _no_loss_target(results: list[Result]) -> Target:
    name = "dora-notebook loses no message"
    ours = [r for r in results if r.engine == NB]
    if not ours:
        return Target(name, None, "not measured")
    bad = [
        f"{r.measurement} {size_label(r.size)}: " + (r.error or f"{r.received}/{r.sent} received")
        for r in ours
        if not r.ok or r.received != r.sent
    ]
    return Target(name, not bad, "; ".join(bad) or "every message delivered")


def targets(results: Iterable[Result]) -> list[Target]:
    """The issue's targets, checked against ``results``."""
    results = list(results)
    cells = Cells(results)
    sizes = sorted({r.size for r in results if r.measurement == "op_hop"})
    return [
        _op_hop_target(cells, sizes, 1.5),
        _speedup_target(cells, 8, 5),
        _speedup_target(cells, 40 * 1024 * 1024, 50),
        _throughput_target(cells, 1.0),
        _no_loss_target(results),
    ]


def targets_text(checked: list[Target]) -> str:
    width = max(len(t.name) for t in checked)
    return "\n".join(f"{t.verdict:<6}  {t.name.ljust(width)}  {t.detail}" for t in checked)
