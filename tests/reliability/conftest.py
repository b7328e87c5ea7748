"""Reliability tests: the sale under concurrency, faults and attack, over HTTP on the local server and
DynamoDB Local (never moto here: it is not atomic under threads), plus a few in-process checks on moto.

Sizes come from RELIABILITY_SCALE: "ci" (default, inside `make test`, a few minutes on 2 cores) or
"long" (`make reliability`). Figures of each run are appended to RELIABILITY_FIGURES (a JSON-lines file,
default .reliability/figures.jsonl) so docs/RELIABILITY.md can quote the last run.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.conftest import ROOT

LONG = os.environ.get("RELIABILITY_SCALE", "ci") == "long"
FIGURES_PATH = Path(os.environ.get("RELIABILITY_FIGURES", ROOT / ".reliability" / "figures.jsonl"))
# Fresh queue state on every poll, so a test sees the scheduler's work at once.
BASE_OVERRIDES = {"QueueStateCacheSeconds": "0"}
# In the sale a buyer who got no seat simply stops: their token holds a slot until it runs out. A short TTL
# keeps the line moving (the default 300 s would make the CI sale wait minutes for slots).
SALE_TOKEN_TTL_SECONDS = 20 if LONG else 12
SALE_DEADLINE_SECONDS = 900 if LONG else 180
FAULT_SPEC = os.environ.get(
    "RELIABILITY_FAULTS", "throttle=0.03,conflict=0.03,internal=0.02,timeout_after_commit=0.02,seed=20261224"
)


@dataclass(frozen=True)
class Scale:
    one_seat_attempts: int  # concurrent holds on one seat
    buyers: int  # simulated users in the sale
    seats: int  # seats in the sale
    hold_attempts: int  # hold attempts in all (buyers race for seats)
    threads: int
    queue_users: int  # users joining a small-capacity queue
    queue_capacity: int
    admit_rounds: int
    hostile_examples: int  # schemathesis examples per operation


SCALE = (
    Scale(
        one_seat_attempts=1000,
        buyers=1000,
        seats=200,
        hold_attempts=5000,
        threads=32,
        queue_users=1000,
        queue_capacity=50,
        admit_rounds=12,
        hostile_examples=200,
    )
    if LONG
    else Scale(
        one_seat_attempts=1000,
        buyers=120,
        seats=40,
        hold_attempts=600,
        threads=16,
        queue_users=60,
        queue_capacity=12,
        admit_rounds=5,
        hostile_examples=25,
    )
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: sale invariants under load, faults and attack")


def record_figures(test: str, **figures: Any) -> None:
    """Append one run's figures (the source of docs/RELIABILITY.md's table)."""
    FIGURES_PATH.parent.mkdir(parents=True, exist_ok=True)
    line = {"test": test, "scale": "long" if LONG else "ci", "at": datetime.now(UTC).isoformat(), **figures}
    with FIGURES_PATH.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, default=str) + "\n")


@pytest.fixture(scope="session")
def reliable_server() -> Iterator[Any]:
    """A fault-free server; tests isolate themselves with their own concerts."""
    from devserver.testing import running_server

    with running_server(parameter_overrides=BASE_OVERRIDES, workers=4, scheduler=False) as running:
        yield running


@pytest.fixture(scope="session")
def sale_server() -> Iterator[Any]:
    """A fault-free server whose ACTIVE tokens last SALE_TOKEN_TTL_SECONDS."""
    from devserver.testing import running_server

    overrides = BASE_OVERRIDES | {"ActiveTokenTtlSeconds": str(SALE_TOKEN_TTL_SECONDS)}
    with running_server(parameter_overrides=overrides, workers=4, scheduler=False) as running:
        yield running


@pytest.fixture(scope="module")
def faulty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server whose workers inject DynamoDB faults (devserver/faults.py); `.fault_log` counts them."""
    from devserver.faults import FAULTS_ENV, FAULTS_LOG_ENV
    from devserver.testing import running_server

    log = tmp_path_factory.mktemp("faults") / "faults.log"
    environment = {FAULTS_ENV: FAULT_SPEC, FAULTS_LOG_ENV: str(log)}
    overrides = BASE_OVERRIDES | {"ActiveTokenTtlSeconds": str(2 * SALE_TOKEN_TTL_SECONDS)}
    with running_server(parameter_overrides=overrides, workers=4, scheduler=False, environment=environment) as running:
        object.__setattr__(running, "fault_log", log)
        yield running


def ddb_client(server: Any) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=server.dynamodb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def starts_at(days: int = 1) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_concert(
    server: Any,
    *,
    seats: int,
    capacity: int,
    price: int = 10_000,
    schedules: int = 1,
    retries: int = 30,
    first_in_days: int = 1,
) -> dict[str, Any]:
    body = {
        "title": f"Reliability {uuid.uuid4().hex[:6]}",
        "queueCapacity": capacity,
        "schedules": [
            {
                "startsAt": starts_at(days=i + first_in_days),
                "seats": [{"number": n, "price": price} for n in range(1, seats + 1)],
            }
            for i in range(schedules)
        ],
    }
    # One key for every retry: a retry after a lost answer gets the same concert, never a second one.
    headers = {"Authorization": f"Bearer {server.token('ops', admin=True)}", "Idempotency-Key": uuid.uuid4().hex}
    for _ in range(retries):  # a faulty server may answer 503: an operator retries
        response = requests.post(f"{server.url}/admin/concerts", json=body, headers=headers, timeout=60)
        if response.status_code == 201:
            return dict(response.json())
        assert response.status_code in (429, 503), response.text
        time.sleep(0.2)
    raise AssertionError("could not create a concert")
