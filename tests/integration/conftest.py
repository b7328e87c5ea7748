"""Integration tests drive `python -m devserver` over real HTTP on loopback, backed by DynamoDB Local."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devserver.testing import running_server

pytestmark = pytest.mark.integration

# Fresh queue state on every poll, so a test sees the scheduler's work at once.
BASE_OVERRIDES = {"QueueStateCacheSeconds": "0"}


@pytest.fixture(scope="session")
def server() -> Iterator[Any]:
    """One server for the whole session (default TTLs); tests isolate themselves with fresh concert ids."""
    with running_server(parameter_overrides=BASE_OVERRIDES, workers=4, scheduler=False) as running:
        yield running


@pytest.fixture(scope="module")
def short_ttl_server() -> Iterator[Any]:
    """A server whose tokens and holds lapse after 2 s, for expiry and lapse tests."""
    overrides = BASE_OVERRIDES | {"ActiveTokenTtlSeconds": "2", "SeatHoldTtlSeconds": "2"}
    with running_server(parameter_overrides=overrides, workers=4, scheduler=False) as running:
        yield running
