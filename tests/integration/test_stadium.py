"""Issue 15 over HTTP on DynamoDB Local: concert creation with an Idempotency-Key and a retry (one concert, however
many concurrent retries), seatBlocks with sections, a large date's seats paged by cursor, and a stadium-size date
published in the background through the local SQS queue (moto's server) by PublishSeatsFunction."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests

from tests.integration.api import TIMEOUT, bearer, buyer, error_code, starts_at, table

LARGEST_IN_REQUEST = 10_000  # services/catalog.py SYNC_SEAT_LIMIT: more is published in the background


def post(server: Any, body: dict[str, Any], key: str) -> requests.Response:
    """As an operator's client: a 503 (with Retry-After) is sent again with the same key."""
    headers = {**bearer(server, "ops", admin=True), "Idempotency-Key": key}
    for _ in range(5):
        response = requests.post(f"{server.url}/admin/concerts", json=body, headers=headers, timeout=120)
        if response.status_code != 503:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))
    return response


def blocks(*ranges: tuple[str | None, int, int, int]) -> dict[str, Any]:
    return {
        "title": "Arena",
        "queueCapacity": 10,
        "schedules": [
            {
                "startsAt": starts_at(),
                "seatBlocks": [
                    {"from": first, "to": last, "price": price, **({"section": section} if section else {})}
                    for section, first, last, price in ranges
                ],
            }
        ],
    }


def test_concurrent_retries_with_one_key_make_one_concert(server):
    body = blocks(("A", 1, 300, 9_000), (None, 1_000, 1_099, 4_000))
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: post(server, body, "arena-retry"), range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.json()["concertId"] for a in answers}) == 1
    assert len({a.json()["schedules"][0]["scheduleId"] for a in answers}) == 1
    concert_id = answers[0].json()["concertId"]
    listed = table(server).query(
        IndexName="GSI2",
        KeyConditionExpression="GSI2PK = :p",
        FilterExpression="title = :t",
        ExpressionAttributeValues={":p": "CONCERTS", ":t": "Arena"},
    )["Items"]
    assert [item["concertId"] for item in listed] == [concert_id]

    other = post(server, blocks(("A", 1, 300, 9_001)), "arena-retry")
    assert (other.status_code, error_code(other)) == (409, "IDEMPOTENCY_KEY_REUSED")
    missing = requests.post(
        f"{server.url}/admin/concerts", json=body, headers=bearer(server, "ops", admin=True), timeout=TIMEOUT
    )
    assert missing.status_code == 400
    assert [d["field"] for d in missing.json()["error"]["details"]] == ["Idempotency-Key"]


def test_overlapping_blocks_are_400_naming_the_field(server):
    response = post(server, blocks(("A", 1, 10, 1), ("B", 10, 20, 1)), "arena-overlap")
    assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR")
    assert "schedules.0.seatBlocks" in [d["field"] for d in response.json()["error"]["details"]]


def test_the_largest_date_written_in_the_request_pages_by_cursor_and_section(server):
    body = blocks(("FLOOR", 1, 2_000, 150_000), ("STAND", 99_001, 99_000 + LARGEST_IN_REQUEST - 2_000, 80_000))
    created = post(server, body, "arena-large")
    assert created.status_code == 201, created.text
    concert_id, schedule_id = created.json()["concertId"], created.json()["schedules"][0]["scheduleId"]
    headers = buyer(server, concert_id, "pager")
    url = f"{server.url}/concerts/{concert_id}/schedules/{schedule_id}/seats"

    def pages(**query: Any) -> list[list[dict[str, Any]]]:
        seen, cursor = [], None
        while True:
            params = {**query, **({"cursor": cursor} if cursor else {})}
            page = requests.get(url, headers=headers, params=params, timeout=60)
            assert page.status_code == 200, page.text
            seen.append(page.json()["seats"])
            cursor = page.json()["nextCursor"]
            if cursor is None:
                return seen

    every = pages()
    assert [len(p) for p in every] == [5_000, 5_000]  # the default page
    numbers = [seat["number"] for page in every for seat in page]
    assert numbers == [*range(1, 2_001), *range(99_001, 107_001)]  # by number, six digits after five
    stand = pages(section="STAND", limit=3_000)
    assert [len(p) for p in stand] == [3_000, 3_000, 2_000]
    assert {seat["section"] for page in stand for seat in page} == {"STAND"}
    bad = requests.get(url, headers=headers, params={"limit": 5_001}, timeout=TIMEOUT)
    assert (bad.status_code, error_code(bad)) == (400, "VALIDATION_ERROR")


def published_through_the_queue(server: Any, seats: int, key: str, publish_seconds: float) -> None:
    """One POST of a `seats`-seat date answers 202 PUBLISHING, a retry the same concert; the queue poller's
    publisher opens it ON_SALE within `publish_seconds`, and its seat pages hold every seat once."""
    half = seats // 2
    body = blocks(("FLOOR", 1, half, 150_000), ("STAND", half + 1, seats, 80_000))
    created = post(server, body, key)
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "PUBLISHING"
    retried = post(server, body, key)
    assert retried.status_code in (201, 202), retried.text
    assert retried.json()["concertId"] == created.json()["concertId"]
    assert retried.json()["schedules"] == created.json()["schedules"]
    concert_id, schedule_id = created.json()["concertId"], created.json()["schedules"][0]["scheduleId"]

    operator = bearer(server, "ops", admin=True)
    deadline = time.monotonic() + publish_seconds
    seen = []  # the operator watches it publish, then open
    while (not seen or seen[-1] == "PUBLISHING") and time.monotonic() < deadline:
        sale = requests.get(f"{server.url}/admin/concerts/{concert_id}", headers=operator, timeout=TIMEOUT)
        assert sale.status_code == 200, sale.text
        seen.append(sale.json()["status"])
        time.sleep(1)
    assert seen[0] == "PUBLISHING" and seen[-1] == "ON_SALE", f"{seen} after {publish_seconds} s"

    headers = buyer(server, concert_id, "stadium-fan")
    url = f"{server.url}/concerts/{concert_id}/schedules/{schedule_id}/seats"
    numbers: list[int] = []
    cursor = None
    while True:
        page = requests.get(url, headers=headers, params={"cursor": cursor} if cursor else {}, timeout=60)
        assert page.status_code == 200, page.text
        numbers += [seat["number"] for seat in page.json()["seats"]]
        cursor = page.json()["nextCursor"]
        if cursor is None:
            break
    assert numbers == list(range(1, seats + 1))


def test_a_stadium_date_is_published_through_the_local_queue(server):
    # ~470 seats/s locally on a loaded machine: 20,000 seats in about 45 s, with a wide margin.
    published_through_the_queue(server, 20_000, "stadium-20k", publish_seconds=240)
    info = requests.get(f"{server.url}/_local/info", timeout=TIMEOUT).json()
    sqs = boto3.client("sqs", endpoint_url=info["sqsEndpoint"], region_name="us-east-1")
    for queue in ("PublishSeatsQueue", "PublishSeatsDeadLetterQueue"):  # every range written once, none given up
        attributes = sqs.get_queue_attributes(QueueUrl=info["queues"][queue], AttributeNames=["All"])["Attributes"]
        assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
            "0",
            "0",
        )


@pytest.mark.slow
def test_a_100000_seat_date_is_published_through_the_local_queue(server):
    published_through_the_queue(server, 100_000, "stadium-100k", publish_seconds=900)
