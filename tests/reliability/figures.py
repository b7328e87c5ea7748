"""Prints the last run's figures (.reliability/figures.jsonl) as the Markdown table of docs/RELIABILITY.md.

.venv/bin/python -m tests.reliability.figures [--scale long|ci]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / ".reliability" / "figures.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", choices=["ci", "long"], default=None)
    parser.add_argument("--file", default=os.environ.get("RELIABILITY_FIGURES", str(DEFAULT)))
    args = parser.parse_args()
    last: dict[str, dict[str, object]] = {}
    for line in Path(args.file).read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if args.scale is None or entry.get("scale") == args.scale:
            last[str(entry["test"])] = entry
    print("| run | scale | figures |")
    print("|---|---|---|")
    for test, entry in last.items():
        figures = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("test", "scale", "at"))
        print(f"| `{test}` | {entry['scale']} ({str(entry['at'])[:16]}) | {figures} |")


if __name__ == "__main__":
    main()
