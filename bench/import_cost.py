"""What an exported node pays to import dora-notebook, beyond pyarrow.

Every file ``%dora_export`` writes starts with ``import dora_notebook.dora_rs.shim``,
and dora starts every node in a process of its own, so each node pays this
import at each start. The budget: at most 0.1 s more than ``import pyarrow``,
which a node needs anyway.

Each run is a fresh interpreter that times ``import pyarrow``, then the shim's
import on top of it, and lists what the shim loaded; the script prints the
medians and the heavy modules the shim loaded (there should be none).

    python bench/import_cost.py [--runs 15] [--json]

``PYTHONPATH=/path/to/other/checkout python bench/import_cost.py`` measures
another version of the package (the first line says which one was imported).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from typing import Any

#: Seconds the shim may add to ``import pyarrow``.
BUDGET_S = 0.1

#: What an exported node must not load: the notebook stack, pandas, and the embedded engine.
HEAVY = (
    "pandas",
    "matplotlib",
    "IPython",
    "ipywidgets",
    "ipykernel",
    "traitlets",
    "dora_notebook.dataflow",
    "dora_notebook.core.engine",
    "dora_notebook.preview.normalize",
)

_CHILD = """
import json, sys, time
start = time.perf_counter()
import pyarrow
middle = time.perf_counter()
import dora_notebook.dora_rs.shim
end = time.perf_counter()
print(json.dumps({"pyarrow_s": middle - start, "shim_s": end - middle,
                  "package": dora_notebook.__file__, "modules": sorted(sys.modules)}))
"""


def one_run() -> dict[str, Any]:
    """Time the two imports in a fresh interpreter, started outside any checkout."""
    with tempfile.TemporaryDirectory() as folder:  # so `import dora_notebook` is the installed one
        result = subprocess.run(
            [sys.executable, "-c", _CHILD],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return json.loads(result.stdout)


def measure(runs: int) -> dict[str, Any]:
    """Medians over *runs* fresh interpreters (after one untimed run that writes .pyc files).

    The heavy modules are the same in every run, so they are read from the last one.
    """
    one_run()
    samples = [one_run() for _ in range(runs)]
    last = samples[-1]
    return {
        "runs": runs,
        "package": last["package"],
        "pyarrow_s": statistics.median(s["pyarrow_s"] for s in samples),
        "shim_s": statistics.median(s["shim_s"] for s in samples),
        "budget_s": BUDGET_S,
        "heavy_loaded": [m for m in HEAVY if m in last["modules"]],
    }


def report(figures: dict[str, Any]) -> str:
    verdict = "within" if figures["shim_s"] <= figures["budget_s"] else "OVER"
    heavy = ", ".join(figures["heavy_loaded"]) or "none"
    return "\n".join(
        [
            f"dora_notebook imported from {figures['package']}",
            f"import pyarrow                         median {figures['pyarrow_s']:.3f} s",
            f"+ import dora_notebook.dora_rs.shim    median {figures['shim_s']:.3f} s "
            f"({verdict} the {figures['budget_s']:.1f} s budget; {figures['runs']} runs)",
            f"heavy modules the shim loaded: {heavy}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters (default 15)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.runs)
    print(json.dumps(figures) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
