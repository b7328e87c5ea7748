"""The one source of "now", so tests can move time instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], float] = time.time


def now() -> float:
    """Current time in epoch seconds."""
    return _now()


def set_clock(source: Callable[[], float] | None) -> None:
    """Replace the time source (tests); None restores the system clock."""
    global _now  # noqa: PLW0603 - one process-wide time source is the point
    _now = source or time.time


def to_iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
