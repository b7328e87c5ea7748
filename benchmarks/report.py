"""Results: docs/benchmarks/<name>.json per benchmark, and docs/BENCHMARKS.md rendered from all of them."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "docs" / "benchmarks"
DOC_PATH = PROJECT_ROOT / "docs" / "BENCHMARKS.md"
ORDER = ("cost", "sale", "hotkeys", "coldstart", "dollars", "scale", "lobby", "scheduler", "stadium")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # no /proc off Linux
        models = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = models[0].split(":", 1)[1].strip() if models else cpu
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "arch": platform.machine(),
        "memory_gib": round(memory_bytes / 1024**3, 1),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "commit": _git_commit(),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def save(name: str, command: str, results: dict[str, Any]) -> str:
    """Writes docs/benchmarks/<name>.json (with the machine and the command), re-renders the doc and returns the
    benchmark's section of it (what the benchmark prints)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "command": command,
        "taken_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        **results,
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    render()
    return section(name)


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(result: dict[str, Any]) -> str:
    m = result["machine"]
    return (
        f"Taken {result['taken_at']} at commit `{m['commit']}` on {m['nproc']} x {m['cpu']} ({m['arch']}), "
        f"{m['memory_gib']} GiB RAM, Python {m['python']}, "
        f"load average {m.get('load_average_1min', '?')} at the start. "
        f"Command: `{result['command']}`."
    )


def render() -> None:
    """Re-renders the generated blocks of docs/BENCHMARKS.md from the results; the text around them stays as written."""
    from benchmarks.render import fill_blocks

    DOC_PATH.write_text(fill_blocks(DOC_PATH.read_text(), {name: load(name) for name in ORDER}))


def section(name: str) -> str:
    """The benchmark's generated blocks of docs/BENCHMARKS.md, one after the other (what the benchmark prints)."""
    from benchmarks.render import SECTIONS

    result = load(name)
    return "\n\n".join(SECTIONS[name](result).values()) if result else f"Not run yet: `make bench-{name}`."
