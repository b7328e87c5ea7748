"""A stadium-size concert published in the background, on moto (DynamoDB and an SQS FIFO queue): 202 PUBLISHING,
the ranges written by functions/publish_seats under its IAM role, the sale opening only when every range is
written, a half-way failure finished by the redelivery without duplicates, and no HELD seat ever overwritten."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from tests.unit.test_catalog_holds import Buyer, item
from ticketline import clock as ticketline_clock
from ticketline.config import Settings, get_settings
from ticketline.db import dynamodb
from ticketline.errors import IdempotencyKeyReused, NotFound
from ticketline.models.catalog import ConcertIn, ConcertOut, SaleStatus
from ticketline.repositories.catalog import CatalogRepository, concert_key, seat_key
from ticketline.repositories.publishing import progress_key, sqs
from ticketline.services import catalog as catalog_service
from ticketline.services.catalog import CatalogService
from ticketline.services.operator import OperatorService
from ticketline.services.queue import QueueService

pytestmark = pytest.mark.usefixtures("aws")

DAY = 86_400
RANGE = 4  # seats per message here (1,000 in production), so a small concert has many ranges


@pytest.fixture
def queue_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """A FIFO queue on moto, and a threshold low enough that a 30-seat concert is published in the background."""
    sqs.cache_clear()
    url = boto3.client("sqs").create_queue(QueueName="PublishSeatsQueue.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    monkeypatch.setattr(catalog_service, "SYNC_SEAT_LIMIT", 10)
    monkeypatch.setattr(catalog_service, "RANGE_SEATS", RANGE)
    yield url
    sqs.cache_clear()


def service(url: str) -> CatalogService:
    return CatalogService(settings=get_settings().model_copy(update={"publish_seats_queue_url": url}))


def stadium_body(price: int = 100) -> dict[str, Any]:
    now = ticketline_clock.now()
    return {
        "title": "Stadium",
        "queueCapacity": 5,
        "schedules": [
            {
                "startsAt": ticketline_clock.to_iso(now + DAY),
                "seatBlocks": [
                    {"section": "A", "from": 1, "to": 10, "price": price},
                    {"section": "B", "from": 99_998, "to": 100_005, "price": 50},
                ],
            },
            {"startsAt": ticketline_clock.to_iso(now + 2 * DAY), "seatBlocks": [{"from": 1, "to": 12, "price": 70}]},
        ],
    }


def create(url: str, body: dict[str, Any] | None = None) -> ConcertOut:
    return service(url).create_concert(ConcertIn.model_validate(body or stadium_body()), "ops", "stadium-1")


def receive(url: str) -> list[dict[str, Any]]:
    """Every message now visible, as the SQS records Lambda would hand over (FIFO: 10 at most per receive)."""
    records: list[dict[str, Any]] = []
    while True:
        messages = (
            sqs()
            .receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0)
            .get("Messages", [])
        )
        if not messages:
            return records
        for message in messages:
            records.append(
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:PublishSeatsQueue.fifo",
                    "awsRegion": "us-east-1",
                }
            )
            sqs().delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def deliver(invoke: Callable[..., dict[str, Any]], records: list[dict[str, Any]]) -> list[str]:
    """The records in batches of 10 (the template's BatchSize) to the publisher; returns the failed message ids."""
    failed: list[str] = []
    for start in range(0, len(records), 10):
        answer = invoke("publish_seats", {"Records": records[start : start + 10]})
        failed += [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]
    return failed


def seats_of(schedule_id: str) -> list[dict[str, Any]]:
    pages = (
        dynamodb()
        .get_paginator("query")
        .paginate(
            TableName="TicketlineTable",
            KeyConditionExpression="PK = :pk AND begins_with(SK, :seat)",
            ExpressionAttributeValues={":pk": {"S": f"SCHEDULE#{schedule_id}"}, ":seat": {"S": "SEAT#"}},
        )
    )
    return [raw for page in pages for raw in page["Items"]]


def status(concert: ConcertOut) -> str:
    return str(item(concert_key(concert.concert_id))["status"])


def test_a_stadium_is_202_publishing_then_on_sale_once_every_range_is_written(clock, queue_url, invoke):
    concert = create(queue_url)
    assert concert.status is SaleStatus.PUBLISHING and [s.seat_count for s in concert.schedules] == [18, 12]
    records = receive(queue_url)
    assert len(records) == 3 + 2 + 3  # ranges of 4: A 1-10, B 99,998-100,005, and 1-12
    assert max(len(r["body"]) for r in records) < 400  # a range, never a seat list
    with pytest.raises(NotFound):  # no queue yet: nobody can join, list or hold
        QueueService().issue(concert.concert_id, "alice")
    assert "GSI2PK" not in item(concert_key(concert.concert_id))  # nor is it listed

    assert deliver(invoke, records[:-1]) == []
    assert status(concert) == "PUBLISHING"  # one range still to write
    watched = OperatorService().concert_sale(concert.concert_id)  # the operator sees it publishing, no line yet
    assert watched.status is SaleStatus.PUBLISHING and watched.sales.seats == 30
    assert (watched.queue.waiting, watched.queue.admitted, watched.queue.paused) == (0, 0, False)
    assert deliver(invoke, records[-1:]) == []
    assert status(concert) == "ON_SALE" and item(concert_key(concert.concert_id))["GSI2PK"] == "CONCERTS"
    assert OperatorService().concert_sale(concert.concert_id).status is SaleStatus.ON_SALE
    assert item(progress_key(concert.concert_id))["rangesPending"] == 0
    buyer = Buyer(concert, "alice")
    assert buyer.seats() == [*range(1, 11), *range(99_998, 100_006)]
    assert len(seats_of(concert.schedules[1].schedule_id)) == 12


def test_a_half_way_failure_finishes_on_redelivery_without_duplicates(clock, queue_url, invoke, monkeypatch):
    concert = create(queue_url)
    records = receive(queue_url)
    original = CatalogRepository.batch_put
    calls: list[int] = []

    def fail_on_the_third(self: CatalogRepository, items: Any) -> int:
        calls.append(1)
        if len(calls) == 3:
            written = list(items)[:2]  # half the range reaches the table, then the function dies
            original(self, written)
            raise RuntimeError("the function died half-way")
        return original(self, items)

    monkeypatch.setattr(CatalogRepository, "batch_put", fail_on_the_third)
    failed = deliver(invoke, records)
    # FIFO: the failed message and the rest of its batch come back; the others of the batch were written.
    assert records[2]["messageId"] in failed and status(concert) == "PUBLISHING"
    assert deliver(invoke, [r for r in records if r["messageId"] in failed]) == []
    assert status(concert) == "ON_SALE"
    assert item(progress_key(concert.concert_id))["rangesPending"] == 0  # counted once per range
    numbers = [int(raw["number"]["N"]) for raw in seats_of(concert.schedules[0].schedule_id)]
    assert sorted(numbers) == [*range(1, 11), *range(99_998, 100_006)]


def test_a_redelivery_after_the_opening_never_touches_a_held_seat(clock, queue_url, invoke):
    concert = create(queue_url)
    records = receive(queue_url)
    assert deliver(invoke, records) == []
    buyer = Buyer(concert, "alice")
    buyer.hold(1)
    assert deliver(invoke, records) == []  # every message again (SQS delivers at least once)
    seat = item(seat_key(concert.schedules[0].schedule_id, 1))
    assert seat["status"] == "HELD" and status(concert) == "ON_SALE"
    assert item(progress_key(concert.concert_id))["rangesPending"] == 0


def test_a_retry_while_publishing_is_the_same_concert_and_sends_nothing_twice(clock, queue_url, invoke):
    first = create(queue_url)
    again = create(queue_url)
    assert again == first
    records = receive(queue_url)
    assert len(records) == 8  # the copies were deduplicated by range (within SQS's 5 minutes)
    with pytest.raises(IdempotencyKeyReused):
        create(queue_url, stadium_body(price=101))
    assert deliver(invoke, records) == []
    done = create(queue_url)
    assert done.status is SaleStatus.ON_SALE and done.concert_id == first.concert_id
    assert receive(queue_url) == []  # nothing sent for a concert on sale


def test_a_message_it_cannot_read_fails_with_the_rest_of_its_fifo_batch(clock, queue_url, invoke):
    create(queue_url)
    records = receive(queue_url)
    broken = dict(records[0], body=json.dumps({"concertId": "x"}))
    assert deliver(invoke, [records[1], broken, records[2]]) == [broken["messageId"], records[2]["messageId"]]


def test_without_the_queue_a_stadium_is_a_503_and_writes_nothing(clock, queue_url):
    settings: Settings = get_settings().model_copy(update={"publish_seats_queue_url": None})
    with pytest.raises(Exception) as refused:
        CatalogService(settings=settings).create_concert(ConcertIn.model_validate(stadium_body()), "ops", "k")
    assert getattr(refused.value, "status", None) == 503
