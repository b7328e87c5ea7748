"""Cold start: how long importing each handler module (functions/*/app.py) takes in a fresh interpreter.

    python -m benchmarks.coldstart [--runs 20]
    make bench-coldstart

Each run is a new `python` process that puts the layer on sys.path (as /opt/python on Lambda), then times
loading app.py; the runs of all handlers are interleaved so that machine noise spreads evenly. The median of
the runs is compared with the target (250 ms). One more run per handler under `python -X importtime` names
the biggest contributors (top-level packages by cumulative import time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report

TARGET_MS = 250.0
LAYER_DIR = report.PROJECT_ROOT / "layers" / "common"
FUNCTIONS_DIR = report.PROJECT_ROOT / "functions"

_IMPORT_HANDLER = """
import sys, time, importlib.util
layer, app = sys.argv[1], sys.argv[2]
sys.path.insert(0, layer)
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", app)
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
print(f"{(time.perf_counter() - started) * 1000:.2f}")
"""


def handler_files() -> list[Path]:
    return sorted(FUNCTIONS_DIR.glob("*/app.py"))


def _environment() -> dict[str, str]:
    """What the template and Lambda set; no endpoint, no credentials needed to import."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": "TicketlineTable",
        "IDEMPOTENCY_TABLE_NAME": "IdempotencyTable",
        "POWERTOOLS_SERVICE_NAME": "ticketline",
        "POWERTOOLS_METRICS_NAMESPACE": "Ticketline",
        "POWERTOOLS_TRACE_DISABLED": "true",  # as locally: the X-Ray SDK import is skipped then (see the doc)
        "PYTHONDONTWRITEBYTECODE": "",
    }


def import_ms(app: Path, *, importtime: bool = False) -> tuple[float, str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", _IMPORT_HANDLER]
    done = subprocess.run(
        [*command, str(LAYER_DIR), str(app)],
        cwd=app.parent,
        env=_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1]), done.stderr


def interpreter_start_ms(runs: int) -> float:
    import time

    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=_environment())
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


def biggest_imports(importtime_log: str, top: int = 6) -> list[dict[str, Any]]:
    """Import time by top-level package: the `self` times of all its modules (sub-imports of other packages
    are counted where they belong), biggest first; site imports before the handler are left out."""
    by_package: dict[str, int] = {}
    started = False
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        started = started or name in ("importlib.util", "app")
        if started and name not in ("app", "importlib.util"):
            root = name.split(".")[0]
            by_package[root] = by_package.get(root, 0) + int(self_us)
    return [
        {"package": name, "self_ms": round(micros / 1000, 1)}
        for name, micros in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    apps = handler_files()
    samples: dict[str, list[float]] = {app.parent.name: [] for app in apps}
    for _ in range(args.runs):
        for app in apps:
            samples[app.parent.name].append(import_ms(app)[0])
    handlers = []
    for app in apps:
        name = app.parent.name
        _, log = import_ms(app, importtime=True)
        median = statistics.median(samples[name])
        handlers.append(
            {
                "function": name,
                "median_ms": round(median, 1),
                "p90_ms": round(statistics.quantiles(samples[name], n=10)[-1], 1) if len(samples[name]) > 1 else median,
                "min_ms": round(min(samples[name]), 1),
                "met": median < TARGET_MS,
                "biggest_imports": biggest_imports(log),
            }
        )
    result = {
        "runs": args.runs,
        "target_ms": TARGET_MS,
        "interpreter_start_ms": interpreter_start_ms(min(args.runs, 10)),
        "handlers": handlers,
    }
    report.save("coldstart", f"make bench-coldstart  (python -m benchmarks.coldstart --runs {args.runs})", result)
    print(
        report.table(
            ["function", "median ms", "p90 ms", "target", "biggest imports (ms, own modules)"],
            [
                (
                    h["function"],
                    h["median_ms"],
                    h["p90_ms"],
                    "PASS" if h["met"] else "FAIL",
                    ", ".join(f"{b['package']} {b['self_ms']}" for b in h["biggest_imports"][:4]),
                )
                for h in handlers
            ],
        )
    )
    return 0 if all(h["met"] for h in handlers) else 1


if __name__ == "__main__":
    sys.exit(main())
