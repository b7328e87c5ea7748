"""Holds lapse and are taken over while the scheduler's Expire run tidies them at the same moment: the seat's
conditional writes keep one holder per seat, and once everything has lapsed and been tidied every seat is
FREE again and the availableSeats hint is exact (docs/CATALOG.md: one change per transition)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.reliability.conftest import BASE_OVERRIDES, LONG, create_concert, ddb_client, record_figures
from tests.support.audit import audit
from tests.support.client import Tally, UserClient
from tests.support.streams import settle_hint

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

HOLD_TTL_SECONDS = 1
SEATS, USERS, ROUNDS = (60, 120, 8) if LONG else (20, 40, 4)


@pytest.fixture(scope="module")
def short_hold_server() -> Iterator[Any]:
    from devserver.testing import running_server

    overrides = BASE_OVERRIDES | {"SeatHoldTtlSeconds": str(HOLD_TTL_SECONDS)}
    with running_server(parameter_overrides=overrides, workers=4, scheduler=False) as running:
        yield running


def test_lapses_takeovers_and_tidying_race_without_breaking_a_seat(short_hold_server: Any) -> None:
    server = short_hold_server
    concert = create_concert(server, seats=SEATS, capacity=USERS)
    schedule_id = concert["schedules"][0]["scheduleId"]
    client, table = ddb_client(server), server.table_name("TicketlineTable")
    tally = Tally()
    users = [UserClient(server, f"lapse-{schedule_id[:6]}-{n}", tally) for n in range(USERS)]
    rng = random.Random(11)
    won = expire_runs = 0
    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(lambda user: user.join(concert["concertId"]), users))
        for _ in range(ROUNDS):
            seats = [rng.randint(1, SEATS) for _ in users]
            expiring = [pool.submit(server.run_schedule, "Expire") for _ in range(3)]
            holds = list(pool.map(lambda pair: pair[0].hold(schedule_id, pair[1]), zip(users, seats, strict=True)))
            for future in expiring:
                future.result()
            expire_runs += len(expiring)
            won += sum(1 for r in holds if r is not None and r.status_code == 201)
            report = audit(client, table)  # quiescent: no request in flight
            assert report.ok, report.summary()
            time.sleep(HOLD_TTL_SECONDS + 1.05)  # every hold of this round lapses
    time.sleep(HOLD_TTL_SECONDS + 0.1)
    server.run_schedule("Expire")
    expire_runs += 1
    settle_hint(client, table, schedule_id)  # the stream consumer is a second or two behind the last lapse
    report = audit(client, table)
    assert report.ok, report.summary()
    assert not tally.bad, tally.bad[:5]
    assert report.hint_drifts.get(schedule_id, 0) == 0, report.hint_drifts
    record_figures(
        "lapse_takeover_races",
        users=USERS,
        seats=SEATS,
        rounds=ROUNDS,
        holds_won=won,
        expire_runs=expire_runs,
        bad_answers=len(tally.bad),
        violations=len(report.violations),
        available_seats_hint_off_by=report.hint_drifts.get(schedule_id, 0),
    )
    for user in users:
        user.close()
