"""Ticketline benchmarks: cost per call, a sale, hot keys, cold start and dollars per million tickets.

Each benchmark is a module run as `python -m benchmarks.<name>` (or `make bench-<name>`); it writes
docs/benchmarks/<name>.json and re-renders docs/BENCHMARKS.md from every JSON present.
"""

import sys
from pathlib import Path

# The layer's package, importable as under /opt/python on Lambda (pytest does the same via pythonpath).
_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "common")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
