"""CI smoke version of `make bench-cost`: the buyer journey on moto, in-process, with every DynamoDB request
recorded. Fails when a hot path gains a request, when a Scan or a Select=COUNT appears anywhere, or when a
hold or a payment stops being one transaction. The budgets are today's counts (docs/BENCHMARKS.md): lower
them when a call gets cheaper, never raise them without saying why in the doc."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from benchmarks import cost
from benchmarks.inprocess import Answer, InProcessApi

# Most DynamoDB requests per call (the queue state cache warm unless the label says otherwise).
REQUEST_BUDGET = {
    cost.JOIN_NEW_UNCACHED: 4,
    cost.JOIN_NEW: 3,
    cost.JOIN_AGAIN: 2,
    cost.POSITION_WAIT: 1,
    cost.POSITION_WAIT_UNCACHED: 1,
    cost.POSITION_ACTIVE: 1,
    cost.SCHEDULES: 2,
    cost.SEATS: 2,
    cost.HOLD: 3,
    cost.HOLD_TAKEN: 2,
    cost.RESERVATION: 1,
    cost.BALANCE: 1,
    cost.CHARGE: 2,
    cost.CHARGE_REPLAY: 1,
    cost.HISTORY: 1,
    cost.PAY: 2,
    cost.PAY_REPLAY: 1,
    cost.CONCERTS: 1,
    cost.CONCERT: 1,
    cost.PAY_SEVERAL: 2,
    cost.RELEASE: 2,
    cost.RELEASE_AGAIN: 1,
    cost.MY_TICKETS: 1,
    cost.CANCEL: 2,
    cost.CANCEL_REPLAY: 1,
}


@pytest.fixture(scope="module")
def answers() -> Iterator[list[Answer]]:
    import boto3
    from moto import mock_aws

    from ticketline.config import get_settings
    from ticketline.db import dynamodb

    saved = dict(os.environ)
    try:
        with mock_aws():
            api = InProcessApi(None)
            assert boto3.client("dynamodb").list_tables()["TableNames"]
            yield cost.run_journeys(api, buyers=4, seats=20)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        dynamodb.cache_clear()


def by_label(answers: list[Answer], label: str) -> list[Answer]:
    return [a for a in answers if a.label == label]


def test_no_scan_and_no_count_on_a_request_path(answers: list[Answer]) -> None:
    offending = [
        f"{a.label}: {r.operation}"
        for a in answers
        if cost.on_request_path(a.label)
        for r in a.requests
        if r.operation == "Scan" or r.is_count
    ]
    assert not offending


def test_the_stream_consumer_adds_each_date_once_per_batch(answers: list[Answer]) -> None:
    (batch,) = by_label(answers, cost.STREAM_BATCH)
    assert batch.body["records"] > 1  # the journey's holds and sales, in one batch
    # one date: its META and one update of its seat counts and sales (never a read of its seats), then its
    # concert's sold-out figure
    assert [r.operation for r in batch.requests] == ["GetItem", "UpdateItem", "Query", "TransactWriteItems"]


def test_the_periodic_recount_leaves_a_date_the_stream_just_counted(answers: list[Answer]) -> None:
    (run,) = [a for a in answers if a.label.startswith(cost.RECOUNT_RUN)]
    # The backfill's mark, the registry (this table's first pass: nothing left to list, so the mark is written),
    # then the listing, the concert's partition, and its sold-out figure: no seat read
    assert [r.operation for r in run.requests] == [
        "GetItem",
        "Query",
        "UpdateItem",
        "Query",
        "Query",
        "TransactWriteItems",
    ]


def test_position_poll_is_one_read_request(answers: list[Answer]) -> None:
    polls = [a for label in cost.POSITION_LABELS for a in by_label(answers, label)]
    assert polls
    for poll in polls:
        assert poll.status == 200
        assert [r.operation for r in poll.requests] in (["GetItem"], ["BatchGetItem"]), poll.label


@pytest.mark.parametrize("label", [cost.CHARGE, cost.PAY, cost.PAY_SEVERAL, cost.CANCEL])
def test_money_moves_in_one_read_and_one_transaction_with_its_idempotency_record(
    answers: list[Answer], label: str
) -> None:
    calls = by_label(answers, label)
    assert calls
    for call in calls:
        assert [r.operation for r in call.requests] == ["BatchGetItem", "TransactWriteItems"], label
        (transaction,) = [r for r in call.requests if r.operation == "TransactWriteItems"]
        puts = [i["Put"]["Item"]["PK"]["S"] for i in transaction.params["TransactItems"] if "Put" in i]
        assert sum(pk.startswith("IDEMPOTENCY#") for pk in puts) == 1, puts


@pytest.mark.parametrize("label", [cost.CHARGE_REPLAY, cost.PAY_REPLAY, cost.CANCEL_REPLAY])
def test_a_replay_is_one_read(answers: list[Answer], label: str) -> None:
    calls = by_label(answers, label)
    assert calls and all([r.operation for r in call.requests] == ["BatchGetItem"] for call in calls)


@pytest.mark.parametrize("label", sorted(REQUEST_BUDGET))
def test_request_budget(answers: list[Answer], label: str) -> None:
    calls = by_label(answers, label)
    assert calls, f"the journey made no call {label!r}"
    worst = max(calls, key=lambda a: len(a.requests))
    assert len(worst.requests) <= REQUEST_BUDGET[label], [r.operation for r in worst.requests]
    assert all(a.status < 500 for a in calls)


def test_hold_is_one_transaction_of_its_own(answers: list[Answer]) -> None:
    for hold in by_label(answers, cost.HOLD):
        assert hold.status == 201
        writes = [r.operation for r in hold.requests if r.is_write]
        assert writes == ["TransactWriteItems"]  # the availableSeats hint follows from the table stream


def test_payment_is_one_transaction(answers: list[Answer]) -> None:
    payments = by_label(answers, cost.PAY)
    assert payments
    for payment in payments:
        assert payment.status == 201
        assert [r.operation for r in payment.requests].count("TransactWriteItems") == 1
