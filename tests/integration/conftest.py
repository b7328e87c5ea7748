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
def short_token_server() -> Iterator[Any]:
    """A server whose ACTIVE tokens expire after 2 s, for queue expiry tests."""
    overrides = BASE_OVERRIDES | {"ActiveTokenTtlSeconds": "2"}
    with running_server(parameter_overrides=overrides, workers=4, scheduler=False) as running:
        yield running


@pytest.fixture(scope="module")
def short_hold_server() -> Iterator[Any]:
    """Holds lapse after 2 s while queue tokens last 10 min: lapse tests never meet a dead token."""
    overrides = BASE_OVERRIDES | {"SeatHoldTtlSeconds": "2", "ActiveTokenTtlSeconds": "600"}
    with running_server(parameter_overrides=overrides, workers=4, scheduler=False) as running:
        yield running
