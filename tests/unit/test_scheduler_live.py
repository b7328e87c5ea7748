"""The scheduler's runs walk the concerts on sale, not every concert ever created (issue 14, item 7), and still
expire a just-ended concert's tokens and holds. On moto, single-threaded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.test_catalog_holds import Buyer
from tests.unit.test_discovery import DAY, create
from ticketline.db import dynamodb
from ticketline.models.queue import TokenStatus
from ticketline.repositories.queue import QueueRepository
from ticketline.services.catalog import CatalogService
from ticketline.services.queue import QueueService
from ticketline.services.reservations import ReservationService

pytestmark = pytest.mark.usefixtures("aws")


def record_requests() -> list[str]:
    """Every DynamoDB request from now on, as its operation and parameters (to see which concerts it names)."""
    requests: list[str] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        requests.append(f"{model.name} {json.dumps(params.get('body', params), default=str)}")

    dynamodb().meta.events.register("before-call.dynamodb", record)
    return requests


def test_a_run_touches_only_live_concerts_and_still_expires_a_just_ended_one(clock):
    past = [create(title=f"past {i}", starts_in=3600).concert_id for i in range(30)]
    ending = create(title="ending", starts_in=2 * 3600, seats=2)
    buyer = Buyer(ending, "alice")  # capacity 1: ACTIVE at once
    buyer.hold(1)
    clock.advance(2 * 3600 - 60)  # a minute before the ending concert's only date
    live = [create(title=f"live {i}", starts_in=DAY).concert_id for i in range(3)]
    clock.advance(120)  # the past ones started an hour ago, the ending one a minute ago
    queue, reservations = QueueService(), ReservationService(sleep=lambda _: None)

    requests = record_requests()
    assert queue.admit().concerts == 3  # only the ones on sale
    assert not any(concert_id in request for request in requests for concert_id in [*past, ending.concert_id])
    assert sum(any(c in request for request in requests) for c in live) == 3

    clock.advance(300)  # the ending concert's token and hold have run out
    requests.clear()
    assert queue.expire_due().expired == 1
    assert reservations.lapse_due().lapsed == 1
    assert not any(concert_id in request for request in requests for concert_id in past)
    token = QueueRepository().get_token(ending.concert_id, "alice", consistent=True)
    assert token is not None and token.status is TokenStatus.EXPIRED


def test_the_expiry_leaves_a_concert_once_its_grace_has_passed(clock):
    ended = create(starts_in=3600).concert_id
    clock.advance(3600 + 300 + 3600 + 1)  # past its last date, its token lifetime and the margin
    requests = record_requests()
    assert QueueService().expire_due().concerts == 0
    assert not any(ended in request for request in requests)


def test_a_concert_from_before_the_listing_is_scheduled_until_the_backfill_lists_it(clock):
    """A registry entry without `listed` (as older versions wrote it) is walked until a recount lists it; once a
    recount pass finds none left, the registry is not read again."""
    old = create(seats=1).concert_id
    dynamodb().update_item(
        TableName="TicketlineTable", Key={"PK": {"S": "QUEUES"}, "SK": {"S": old}}, UpdateExpression="REMOVE listed"
    )
    dynamodb().update_item(
        TableName="TicketlineTable",
        Key={"PK": {"S": f"CONCERT#{old}"}, "SK": {"S": "META"}},
        UpdateExpression="REMOVE GSI2PK, GSI2SK",
    )
    assert QueueService().admit().concerts == 1  # from the registry: not listed yet
    catalog = CatalogService()
    assert catalog.recount_live().listed == 1
    assert catalog.recount_live().listed == 0  # the pass that finds none left marks the backfill done
    requests = record_requests()
    assert QueueService().admit().concerts == 1  # from the listing now
    assert catalog.recount_live().concerts == 1
    assert not any('"QUEUES"' in request for request in requests)
