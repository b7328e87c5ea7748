"""Scheduler safety: overlapping Admit runs never admit beyond capacity nor lose a waiter, and a run that
crashed half-way is repaired by the next one (docs/QUEUE.md: the moving admitBound)."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.reliability.conftest import BASE_OVERRIDES, SCALE, ddb_client, record_figures
from tests.support.audit import admissions, audit
from tests.support.client import Tally, UserClient

ACTIVE_TTL_SECONDS = 2
OVERLAPPING_RUNS = 4  # Admit runs started at once in each round


# ---- a crash half-way through a run (moto, in-process) ----
@pytest.mark.usefixtures("aws")
def test_a_run_that_crashed_after_moving_the_bound_is_repaired_by_the_next(
    clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ticketline.repositories.queue import QueueRepository
    from ticketline.services.queue import QueueService

    queue = QueueService()
    queue.repository.create_queue("crash", capacity=3, shards=1, now=int(clock()))
    for n in range(8):
        queue.issue("crash", f"user{n}")
    clock.advance(queue.settings.active_token_ttl_seconds + 1)  # the first 3 are no longer live

    moved = threading.Event()
    real_raise, real_activate = QueueRepository.save_admission, QueueRepository.activate

    def raise_and_remember(self: Any, *args: Any) -> bool:
        result = real_raise(self, *args)
        moved.set()
        return result

    activated_after_move = []

    def crash_half_way(self: Any, token: Any, active_until: int) -> bool:
        if moved.is_set() and activated_after_move:
            raise RuntimeError("Lambda timed out half-way through the run")
        if moved.is_set():
            activated_after_move.append(token.user_id)
        return real_activate(self, token, active_until)

    monkeypatch.setattr(QueueRepository, "save_admission", raise_and_remember)
    monkeypatch.setattr(QueueRepository, "activate", crash_half_way)
    with pytest.raises(RuntimeError):
        queue.admit()
    state = queue.repository.get_state("crash", consistent=True)
    assert state is not None and state.admit_bound == 6  # the bound moved by 3 ...
    import boto3

    half = admissions(boto3.client("dynamodb"), "TicketlineTable", now=clock())["crash"]
    assert half.live_active == 1 and half.entitled_waiting == 2  # ... but only one of the three got in

    monkeypatch.undo()
    summary = QueueService().admit()  # the next scheduled run
    repaired = admissions(boto3.client("dynamodb"), "TicketlineTable", now=clock())["crash"]
    assert repaired.entitled_waiting == 0 and repaired.live_active == 3 == repaired.capacity
    assert repaired.admit_bound == 6  # nothing admitted twice: the repair filled the slots, the bound stayed
    assert summary.admitted == 2
    report = audit(boto3.client("dynamodb"), "TicketlineTable", now=clock())
    assert report.ok, report.summary()


# ---- overlapping runs over the real engine ----
@pytest.fixture(scope="module")
def short_token_server() -> Iterator[Any]:
    from devserver.testing import running_server

    overrides = BASE_OVERRIDES | {"ActiveTokenTtlSeconds": str(ACTIVE_TTL_SECONDS)}
    with running_server(parameter_overrides=overrides, workers=4, scheduler=False) as running:
        yield running


@pytest.fixture
def in_process_queue(short_token_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A QueueService in this process on the server's DynamoDB Local: runs not serialized by the dev server,
    as two overlapping Lambda invocations of the scheduler on AWS are not."""
    from ticketline.config import get_settings
    from ticketline.db import dynamodb
    from ticketline.services.queue import QueueService

    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", short_token_server.dynamodb_endpoint)
    monkeypatch.setenv("TABLE_NAME", short_token_server.table_name("TicketlineTable"))
    monkeypatch.setenv("ACTIVE_TOKEN_TTL_SECONDS", str(ACTIVE_TTL_SECONDS))
    get_settings.cache_clear()
    dynamodb.cache_clear()
    yield QueueService
    get_settings.cache_clear()
    dynamodb.cache_clear()


@pytest.mark.integration
@pytest.mark.reliability
def test_overlapping_admit_runs_never_exceed_capacity_nor_lose_a_waiter(
    short_token_server: Any, in_process_queue: Any
) -> None:
    from tests.reliability.conftest import create_concert

    server = short_token_server
    capacity, users_count = SCALE.queue_capacity, SCALE.queue_users
    concert_id = create_concert(server, seats=1, capacity=capacity)["concertId"]
    client, table = ddb_client(server), server.table_name("TicketlineTable")
    tally = Tally()
    users = [UserClient(server, f"q{n}", tally) for n in range(users_count)]
    with ThreadPoolExecutor(SCALE.threads) as pool:
        joined = list(pool.map(lambda user: user.join(concert_id), users))
    assert all(joined) and sum(token["status"] == "ACTIVE" for token in joined) == capacity

    runs = checks = max_live = 0
    rounds = math.ceil(users_count / capacity) + 3
    rng = random.Random(7)
    for _ in range(rounds):
        time.sleep(ACTIVE_TTL_SECONDS + 0.2)  # this round's ACTIVE tokens run out
        before = admissions(client, table)[concert_id]
        if before.ever_admitted == users_count:
            break
        waiting = rng.sample(users, min(users_count, 4 * capacity))  # pollers racing the runs (bounded)

        def admit(n: int) -> None:
            if n == 0:
                server.run_schedule("Admit")  # the dev server's own (serialized) path
            else:
                in_process_queue().admit()

        with ThreadPoolExecutor(OVERLAPPING_RUNS + SCALE.threads) as pool:
            admitting = [pool.submit(admit, n) for n in range(OVERLAPPING_RUNS)]
            polling = [pool.submit(user.position, concert_id) for user in waiting]
            for future in admitting + polling:
                future.result()
        runs += OVERLAPPING_RUNS
        state = admissions(client, table)[concert_id]
        checks += 1
        max_live = max(max_live, state.live_active)
        assert state.live_active <= capacity, state
        assert state.entitled_waiting == 0, state  # nobody the bound passed is left waiting
        assert state.tokens == users_count, state  # no token lost
        assert state.admitted_in_order, state  # one shard: admitted in arrival order
        assert state.ever_admitted > before.ever_admitted, state  # the line moves every round
    final = admissions(client, table)[concert_id]
    assert final.ever_admitted == users_count, final  # everyone got in, in the end
    assert not tally.bad, tally.bad[:5]
    report = audit(client, table)
    assert report.ok, report.summary()
    record_figures(
        "overlapping_admit_runs",
        users=users_count,
        capacity=capacity,
        admit_runs=runs,
        capacity_checks=checks,
        max_live_active=max_live,
        polls=tally.count("") - users_count,
        bad_answers=len(tally.bad),
        violations=len(report.violations),
    )
