"""Cold start: how long importing each handler module (functions/*/app.py) takes in a fresh interpreter.

    python -m benchmarks.coldstart [--runs 20]
    make bench-coldstart

Each run is a new `python` process that puts the layer on sys.path (as /opt/python on Lambda), then times
loading app.py (Lambda's init phase) and, after it, making the DynamoDB client (`ticketline.db.dynamodb()`:
boto3, botocore and the X-Ray patch, deferred to the first DynamoDB call). The environment is Lambda's with
`Tracing: Active` (LAMBDA_TASK_ROOT set, so Powertools and the X-Ray SDK behave as deployed); every handler is
also run with POWERTOOLS_TRACE_DISABLED=true (as `make run` and `sam local`). The runs of all handlers and
both modes are interleaved so that machine noise spreads evenly. The median import time with tracing on is
compared with the target (250 ms). One more run per handler under `python -X importtime` names the biggest
contributors to the import (top-level packages by their modules' own import time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report

TARGET_MS = 250.0
LAYER_DIR = report.PROJECT_ROOT / "layers" / "common"
FUNCTIONS_DIR = report.PROJECT_ROOT / "functions"

_LOADED = "-- handler loaded --"
_IMPORT_HANDLER = f"""
import sys, time, importlib.util
layer, app = sys.argv[1], sys.argv[2]
sys.path.insert(0, layer)
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", app)
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
loaded = time.perf_counter()
print("{_LOADED}", file=sys.stderr, flush=True)
from ticketline.db import dynamodb
dynamodb()
print(f"{{(loaded - started) * 1000:.2f}} {{(time.perf_counter() - loaded) * 1000:.2f}}")
"""


def _environment(app: Path, *, tracing: bool) -> dict[str, str]:
    """What the template and Lambda set (no endpoint, no credentials: nothing here calls AWS). LAMBDA_TASK_ROOT
    matters: without it Powertools turns tracing off and the X-Ray SDK loads its daemon sampler (a botocore
    client) instead of Lambda's, so the figures would describe neither Lambda nor the local server."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "LAMBDA_TASK_ROOT": str(app.parent),
        "AWS_LAMBDA_FUNCTION_NAME": app.parent.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_HANDLER": "app.lambda_handler",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": "TicketlineTable",
        "POWERTOOLS_SERVICE_NAME": "ticketline",
        "POWERTOOLS_METRICS_NAMESPACE": "Ticketline",
    }
    if not tracing:
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    return environment


def import_ms(app: Path, *, tracing: bool = True, importtime: bool = False) -> tuple[float, float, str]:
    """(ms to load app.py, ms to make the DynamoDB client after it, stderr)."""
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", _IMPORT_HANDLER]
    done = subprocess.run(
        [*command, str(LAYER_DIR), str(app)],
        cwd=app.parent,
        env=_environment(app, tracing=tracing),
        capture_output=True,
        text=True,
        check=True,
    )
    loaded, client = done.stdout.strip().splitlines()[-1].split()
    return float(loaded), float(client), done.stderr


def interpreter_start_ms(runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env={"PATH": os.environ.get("PATH", "")})
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


def biggest_imports(importtime_log: str, top: int = 6) -> list[dict[str, Any]]:
    """Import time by top-level package: the `self` times of all its modules (sub-imports of other packages
    are counted where they belong), biggest first; site imports before the handler and the DynamoDB client's
    imports after it are left out."""
    by_package: dict[str, int] = {}
    started = False
    for line in importtime_log.splitlines():
        if line == _LOADED:
            break
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
    load_at_start = round(os.getloadavg()[0], 1)  # the machine line's load is taken when the run ends
    apps = sorted(FUNCTIONS_DIR.glob("*/app.py"))
    modes = {"on": True, "off": False}
    loads: dict[tuple[str, str], list[float]] = {(app.parent.name, mode): [] for app in apps for mode in modes}
    clients: dict[tuple[str, str], list[float]] = {key: [] for key in loads}
    for _ in range(args.runs):
        for app in apps:
            for mode, tracing in modes.items():
                loaded, client, _ = import_ms(app, tracing=tracing)
                loads[(app.parent.name, mode)].append(loaded)
                clients[(app.parent.name, mode)].append(client)
    handlers = []
    for app in apps:
        name = app.parent.name
        _, _, log = import_ms(app, importtime=True)
        samples = loads[(name, "on")]
        median = statistics.median(samples)
        handlers.append(
            {
                "function": name,
                "median_ms": round(median, 1),
                "p90_ms": round(statistics.quantiles(samples, n=10)[-1], 1) if len(samples) > 1 else median,
                "min_ms": round(min(samples), 1),
                "met": median < TARGET_MS,
                "client_median_ms": round(statistics.median(clients[(name, "on")]), 1),
                "tracing_off_median_ms": round(statistics.median(loads[(name, "off")]), 1),
                "tracing_off_client_median_ms": round(statistics.median(clients[(name, "off")]), 1),
                "biggest_imports": biggest_imports(log),
            }
        )
    result = {
        "runs": args.runs,
        "load_average_1min_at_start": load_at_start,
        "target_ms": TARGET_MS,
        "interpreter_start_ms": interpreter_start_ms(min(args.runs, 10)),
        "handlers": handlers,
    }
    print(
        report.save("coldstart", f"make bench-coldstart  (python -m benchmarks.coldstart --runs {args.runs})", result)
    )
    return 0 if all(h["met"] for h in handlers) else 1


if __name__ == "__main__":
    sys.exit(main())
