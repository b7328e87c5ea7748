"""Stadium-size concerts on moto (issue 15): seatBlocks and sections, seat pages, Idempotency-Key on creation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.test_catalog_holds import Buyer, concert_body
from ticketline import clock as ticketline_clock
from ticketline.db import dynamodb, to_raw
from ticketline.errors import IdempotencyKeyReused, ValidationFailed
from ticketline.models.catalog import ConcertIn, ConcertOut, SaleStatus
from ticketline.repositories.catalog import concert_key, seat_key
from ticketline.services.catalog import CatalogService, concert_id_for

pytestmark = pytest.mark.usefixtures("aws")

DAY = 86_400


def blocks_body(*schedules: list[dict[str, Any]]) -> dict[str, Any]:
    now = ticketline_clock.now()
    return {
        "title": "Stadium",
        "schedules": [
            {"startsAt": ticketline_clock.to_iso(now + DAY * (i + 1)), "seatBlocks": blocks}
            for i, blocks in enumerate(schedules)
        ],
    }


def create(body: dict[str, Any], owner: str = "ops", key: str = "k1") -> ConcertOut:
    return CatalogService().create_concert(ConcertIn.model_validate(body), owner, key)


def refused_fields(body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as refused:
        ConcertIn.model_validate(body)
    return {".".join(str(p) for p in e["loc"]) for e in refused.value.errors()}


# ---- validation ----
@pytest.mark.parametrize(
    ("blocks", "field"),
    [
        ([{"from": 5, "to": 4, "price": 100}], "schedules.0.seatBlocks.0.to"),
        ([{"from": 0, "to": 4, "price": 100}], "schedules.0.seatBlocks.0.from"),
        ([{"from": 1, "to": 4, "price": 0}], "schedules.0.seatBlocks.0.price"),
        ([{"from": 1, "to": 10, "price": 1}, {"from": 10, "to": 20, "price": 1}], "schedules.0.seatBlocks"),
        ([{"from": 50, "to": 60, "price": 1}, {"from": 1, "to": 55, "price": 1}], "schedules.0.seatBlocks"),
        ([{"from": 1, "to": 100_001, "price": 1}], "schedules.0.seatBlocks"),
        (
            [{"from": 1, "to": 60_000, "price": 1}, {"from": 60_001, "to": 100_001, "price": 1}],
            "schedules.0.seatBlocks",
        ),
        ([], "schedules.0.seatBlocks"),
        ([{"from": 1, "to": 2, "price": 1, "section": ""}], "schedules.0.seatBlocks.0.section"),
        ([{"from": 1, "to": 2, "price": 1, "section": "A" * 33}], "schedules.0.seatBlocks.0.section"),
        ([{"from": 1, "to": 2, "price": 1, "section": "A;DROP"}], "schedules.0.seatBlocks.0.section"),
        ([{"from": "1", "to": 2, "price": 1}], "schedules.0.seatBlocks.0.from"),
    ],
)
def test_bad_seat_blocks_are_refused_naming_the_field(clock, blocks, field):
    assert field in refused_fields(blocks_body(blocks))


def test_a_schedule_gives_seats_or_seat_blocks_not_both_nor_neither(clock):
    both = blocks_body([{"from": 1, "to": 2, "price": 1}])
    both["schedules"][0]["seats"] = [{"number": 9, "price": 1}]
    assert "schedules.0.seatBlocks" in refused_fields(both)
    neither = blocks_body([{"from": 1, "to": 2, "price": 1}])
    del neither["schedules"][0]["seatBlocks"]
    assert "schedules.0" in refused_fields(neither)


def test_a_stadium_of_fifty_dates_of_100000_seats_is_a_small_valid_body(clock):
    date = [{"section": "A", "from": 1, "to": 40_000, "price": 80_000}, {"from": 40_001, "to": 100_000, "price": 5}]
    request = ConcertIn.model_validate(blocks_body(*[date] * 50))
    assert [s.seat_count for s in request.schedules] == [100_000] * 50
    assert refused_fields(blocks_body(*[date] * 51)) == {"schedules"}


def test_seat_keys_sort_by_number_past_five_digits():
    numbers = [1, 42, 99_999, 100_000, 100_001, 999_999]
    keys = [seat_key("s", n)["SK"] for n in numbers]
    assert keys == sorted(keys) and keys[2:4] == ["SEAT#99999", "SEAT#:100000"]


# ---- sections and pages ----
def test_sections_are_stored_listed_and_filtered(clock):
    body = blocks_body([{"section": "A", "from": 1, "to": 3, "price": 900}, {"from": 10, "to": 11, "price": 100}])
    concert = create(body)
    alice = Buyer(concert, "alice")
    listed = CatalogService().seats(concert.concert_id, concert.schedules[0].schedule_id, "alice", alice.token)
    assert [(s.number, s.price, s.section) for s in listed.seats] == [
        (1, 900, "A"),
        (2, 900, "A"),
        (3, 900, "A"),
        (10, 100, None),
        (11, 100, None),
    ]
    only_a = CatalogService().seats(
        concert.concert_id, concert.schedules[0].schedule_id, "alice", alice.token, section="A"
    )
    assert [s.number for s in only_a.seats] == [1, 2, 3] and only_a.next_cursor is None


def test_seat_pages_follow_the_cursor_to_the_end_without_gaps_or_repeats(clock):
    body = blocks_body(
        [{"section": "A", "from": 1, "to": 30, "price": 1}, {"section": "B", "from": 99_990, "to": 100_005, "price": 2}]
    )
    concert = create(body)
    alice = Buyer(concert, "alice")
    alice.hold(2)
    schedule_id = concert.schedules[0].schedule_id

    def pages(**query: Any) -> list[list[int]]:
        seen, cursor = [], None
        while True:
            page = CatalogService().seats(concert.concert_id, schedule_id, "alice", alice.token, cursor=cursor, **query)
            seen.append([s.number for s in page.seats])
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    by_seven = pages(limit=7)
    numbers = [n for page in by_seven for n in page]
    assert numbers == [n for n in range(1, 31) if n != 2] + list(range(99_990, 100_006))
    assert [len(p) for p in by_seven] == [7, 7, 7, 7, 7, 7, 3]  # 45 free seats, no empty last page
    assert [n for page in pages(limit=10, section="B") for n in page] == list(range(99_990, 100_006))


def test_a_cursor_the_api_did_not_mint_is_a_400(clock):
    concert = create(blocks_body([{"from": 1, "to": 3, "price": 1}]))
    alice = Buyer(concert, "alice")
    with pytest.raises(ValidationFailed):
        CatalogService().seats(concert.concert_id, concert.schedules[0].schedule_id, "alice", alice.token, cursor="x")


# ---- Idempotency-Key ----
def test_a_retry_with_the_same_key_and_body_is_the_same_concert(clock):
    body = blocks_body([{"section": "A", "from": 1, "to": 40, "price": 100}], [{"from": 1, "to": 5, "price": 7}])
    first = create(body)
    again = create(body)
    assert again == first and first.status is SaleStatus.ON_SALE
    assert first.concert_id == concert_id_for("ops", "k1")
    concerts = dynamodb().query(
        TableName="TicketlineTable",
        IndexName="GSI2",
        KeyConditionExpression="GSI2PK = :p",
        ExpressionAttributeValues={":p": {"S": "CONCERTS"}},
    )["Items"]
    assert len(concerts) == 1


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(clock):
    body = blocks_body([{"from": 1, "to": 4, "price": 100}])
    first = create(body)
    other = blocks_body([{"from": 1, "to": 4, "price": 200}])
    with pytest.raises(IdempotencyKeyReused):
        create(other)
    meta = dynamodb().get_item(TableName="TicketlineTable", Key=to_raw(concert_key(first.concert_id)))["Item"]
    assert meta["requestHash"]["S"] and Buyer(first, "alice").seats() == [1, 2, 3, 4]


def test_keys_are_per_operator(clock):
    body = blocks_body([{"from": 1, "to": 2, "price": 100}])
    assert create(body, owner="ops-1").concert_id != create(body, owner="ops-2").concert_id


def test_a_retry_that_loses_the_race_answers_the_winners_concert(clock, monkeypatch):
    """Both requests saw no concert; the second one's publication finds it published and answers it."""
    body = blocks_body([{"from": 1, "to": 4, "price": 100}])
    first = create(body)
    monkeypatch.setattr("ticketline.repositories.catalog.CatalogRepository.concert_meta", _none_then_stored())
    assert create(body) == first
    monkeypatch.setattr("ticketline.repositories.catalog.CatalogRepository.concert_meta", _none_then_stored())
    with pytest.raises(IdempotencyKeyReused):
        create(blocks_body([{"from": 1, "to": 4, "price": 999}]))


def _none_then_stored() -> Any:
    from ticketline.repositories.catalog import CatalogRepository

    original = CatalogRepository.concert_meta
    calls: list[int] = []

    def concert_meta(self: CatalogRepository, concert_id: str) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else original(self, concert_id)

    return concert_meta


def test_the_seats_list_of_a_concert_body_gives_sections_too(clock):
    body = concert_body(seats=2)
    body["schedules"][0]["seats"][0]["section"] = "VIP"
    concert = CatalogService().create_concert(ConcertIn.model_validate(body))
    alice = Buyer(concert, "alice")
    listed = CatalogService().seats(concert.concert_id, concert.schedules[0].schedule_id, "alice", alice.token)
    assert [(s.number, s.section) for s in listed.seats] == [(1, "VIP"), (2, None)]


# ---- the figures: O(changes) per stream batch ----
@pytest.mark.slow  # a 2,000-seat date written on moto
def test_a_stream_batch_adds_its_changes_and_a_redelivery_adds_only_the_new_records(clock):
    from tests.conftest import lambda_context
    from tests.unit.test_catalog_holds import item
    from tests.unit.test_discovery import handler, seat_change
    from ticketline.repositories.catalog import concert_schedule_key

    concert = create(blocks_body([{"from": 1, "to": 2_000, "price": 1}]))
    schedule = concert.schedules[0]
    module = handler("seat_availability")
    first = [seat_change(schedule.schedule_id, 1, "100"), seat_change(schedule.schedule_id, 2, "200")]
    later = [seat_change(schedule.schedule_id, 1, "300", old="HELD", new="SOLD")]
    assert module.lambda_handler({"Records": first}, lambda_context("seat_availability")) == {"batchItemFailures": []}
    # Lambda delivers again from an earlier checkpoint, with a record the first batch did not have.
    assert module.lambda_handler({"Records": first + later}, lambda_context("seat_availability")) == {
        "batchItemFailures": []
    }
    entry = item(concert_schedule_key(concert.concert_id, schedule.starts_at, schedule.schedule_id))
    assert (entry["availableSeats"], entry["heldSeats"], entry["soldSeats"]) == (1_998, 1, 1)
    assert entry["figuresSequence"] == "300".zfill(40)
