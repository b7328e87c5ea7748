"""CI smoke version of `make bench-sale`: 40 locust buyers (benchmarks/locustfile.py) against the local server on
DynamoDB Local, a queue of 10 places so that most of them wait and poll. Fails when a buyer does not get its ticket,
an answer is ≥ 500 or the table's audit finds a violation (the full run: docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# In a child interpreter: locust patches the standard library for gevent as it is imported, which this one must not be.
SALE = """
import argparse, json
from benchmarks import sale
args = argparse.Namespace(users=40, seats=40, capacity=10, shards=1, workers=2, clients=8, join_seconds=2.0,
                          admit_every=1.0, deadline=240.0)
print(json.dumps(sale.run(args)[0]))
"""


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", SALE], cwd=ROOT, capture_output=True, text=True, timeout=420, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_every_buyer_gets_a_ticket_and_the_table_stays_consistent(result: dict[str, Any]) -> None:
    assert result["outcomes"] == {"bought": 40}
    assert result["server_errors"] == 0
    assert result["audit"]["ok"], result["audit"]["violations"]
    assert result["audit"]["figures"]["sold_seats"] == 40


def test_waiters_poll_at_the_servers_pace_and_every_step_is_measured(result: dict[str, Any]) -> None:
    requests_by_endpoint = {endpoint["endpoint"]: endpoint["requests"] for endpoint in result["endpoints"]}

    assert requests_by_endpoint["POST queue/tokens"] == 40
    assert requests_by_endpoint["POST /payments"] == 40
    assert requests_by_endpoint["GET queue/position"] >= 30  # 30 of the 40 wait for one of 10 places
    assert 1 <= result["polls_per_waiting_buyer"] <= 15
    assert result["all"]["p50_ms"] > 0
