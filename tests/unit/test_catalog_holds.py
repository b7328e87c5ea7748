"""Catalog and holds on moto: creation, listing, one winner per seat, lapse and takeover, the per-user limit,
the scheduler's tidy-up, transaction-cancel mapping and the DynamoDB requests each endpoint costs."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from tests.support.streams import deliver_stream_records
from tests.support.transactions import cancellation
from ticketline import clock as ticketline_clock
from ticketline.db import dynamodb, from_raw, to_raw
from ticketline.errors import (
    Forbidden,
    HoldLimitReached,
    NotFound,
    QueueTokenExpired,
    QueueTokenInvalid,
    QueueTokenNotActive,
    SeatUnavailable,
    ServiceUnavailable,
    Throttled,
)
from ticketline.models.catalog import ConcertIn, ConcertOut, DateFigures, FiguresChange, SeatChange
from ticketline.models.reservations import HoldIn, ReservationStatus
from ticketline.repositories.catalog import CatalogRepository, concert_key, concert_schedule_key, seat_key
from ticketline.repositories.queue import QueueRepository
from ticketline.repositories.reservations import (
    ReservationRepository,
    holds_key,
    reservation_key,
)
from ticketline.services.catalog import CatalogService, concert_id_for, planned_schedules
from ticketline.services.queue import QueueService
from ticketline.services.reservations import MAX_HOLD_ATTEMPTS, ReservationService

pytestmark = pytest.mark.usefixtures("aws")

DAY = 86_400


# ---- helpers ----
def concert_body(
    schedules: int = 1, seats: int = 5, starts_in: int = DAY, price: int | None = None, **fields: Any
) -> dict[str, Any]:
    now = ticketline_clock.now()
    return {
        "title": "Night",
        "schedules": [
            {
                "startsAt": ticketline_clock.to_iso(now + starts_in * (i + 1)),
                "seats": [{"number": n, "price": price or 1000 * n} for n in range(1, seats + 1)],
            }
            for i in range(schedules)
        ],
        **fields,
    }


def create(**kwargs: Any) -> ConcertOut:
    return CatalogService().create_concert(ConcertIn.model_validate(concert_body(**kwargs)))


def token(concert_id: str, user: str) -> str:
    issued, _ = QueueService().issue(concert_id, user)
    assert issued.status == "ACTIVE"
    return issued.token


def item(key: dict[str, str]) -> dict[str, Any]:
    raw = dynamodb().get_item(TableName="TicketlineTable", Key=to_raw(key), ConsistentRead=True)
    return from_raw(raw["Item"]) if "Item" in raw else {}


def available(concert: ConcertOut, index: int = 0) -> int:
    """The date's availableSeats hint once the stream consumer has seen every change so far."""
    deliver_stream_records()
    schedule = concert.schedules[index]
    return int(
        item(concert_schedule_key(concert.concert_id, schedule.starts_at, schedule.schedule_id))["availableSeats"]
    )


class Buyer:
    """A user with an ACTIVE token for one concert."""

    def __init__(self, concert: ConcertOut, user: str) -> None:
        self.concert, self.user = concert, user
        self.token = token(concert.concert_id, user)

    def hold(self, seat: int, schedule: int = 0, service: ReservationService | None = None) -> Any:
        request = HoldIn(schedule_id=self.concert.schedules[schedule].schedule_id, seat_number=seat)
        return (service or ReservationService(sleep=lambda _: None)).hold(request, self.user, self.token)

    def seats(self, schedule: int = 0) -> list[int]:
        out = CatalogService().seats(
            self.concert.concert_id, self.concert.schedules[schedule].schedule_id, self.user, self.token
        )
        return [seat.number for seat in out.seats]


def sell(concert: ConcertOut, number: int) -> None:
    """A held seat SOLD, as a payment leaves it (its stream record: HELD -> SOLD at its price)."""
    dynamodb().update_item(
        TableName="TicketlineTable",
        Key=to_raw(seat_key(concert.schedules[0].schedule_id, number)),
        UpdateExpression="SET #s = :sold",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=to_raw({":sold": "SOLD"}),
    )


# ---- validation ----
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("title"), "title"),
        (lambda b: b.update(title=" "), "title"),
        (lambda b: b.update(title="x" * 201), "title"),
        (lambda b: b.update(queueCapacity=0), "queueCapacity"),
        (lambda b: b.update(queueCapacity=100_001), "queueCapacity"),
        (lambda b: b.update(queueCapacity="5"), "queueCapacity"),
        (lambda b: b.update(queueShards=65), "queueShards"),
        (lambda b: b.update(schedules=[]), "schedules"),
        (lambda b: b.update(schedules=b["schedules"] * 51), "schedules"),
        (lambda b: b["schedules"][0].update(startsAt="2020-01-01T00:00:00Z"), "schedules.0.startsAt"),
        (lambda b: b["schedules"][0].update(startsAt="2099-01-01T00:00:00"), "schedules.0.startsAt"),  # no zone
        (lambda b: b["schedules"][0].update(seats=[]), "schedules.0.seats"),
        (lambda b: b["schedules"][0].update(seats=[{"number": 1, "price": 5}] * 2), "schedules.0.seats"),
        (lambda b: b["schedules"][0].update(seats=[{"number": 1, "price": 5}] * 5001), "schedules.0.seats"),
        (lambda b: b["schedules"][0]["seats"][0].update(price=0), "schedules.0.seats.0.price"),
        (lambda b: b["schedules"][0]["seats"][0].update(price=10_000_001), "schedules.0.seats.0.price"),
        (lambda b: b["schedules"][0]["seats"][0].update(price=1.5), "schedules.0.seats.0.price"),
        (lambda b: b["schedules"][0]["seats"][0].update(number=0), "schedules.0.seats.0.number"),
        (lambda b: b["schedules"][0]["seats"][0].update(number=1_000_000), "schedules.0.seats.0.number"),
        (lambda b: b.update(extra=1), "extra"),
    ],
)
def test_invalid_concerts_are_refused_with_the_field(clock, change, field):
    body = concert_body(seats=3)
    change(body)
    with pytest.raises(ValidationError) as refused:
        ConcertIn.model_validate(body)
    assert field in {".".join(str(p) for p in e["loc"]) for e in refused.value.errors()}


def test_the_biggest_concert_is_valid(clock):
    ConcertIn.model_validate(concert_body(schedules=50, seats=5000, price=10_000_000))


# ---- creation ----
def test_creation_writes_the_catalog_and_opens_the_queue(clock):
    concert = create(schedules=2, seats=30, queueCapacity=7, queueShards=2)
    assert len({concert.concert_id, *(s.schedule_id for s in concert.schedules)}) == 3
    assert [s.seat_count for s in concert.schedules] == [30, 30]
    meta = item(concert_key(concert.concert_id))
    assert meta["title"] == "Night" and meta["queueCapacity"] == 7 and meta["queueShards"] == 2
    state = QueueRepository().get_state(concert.concert_id)
    assert state is not None and (state.capacity, state.shards, state.admit_bound) == (7, 2, 7)
    schedule = concert.schedules[1]
    assert item(seat_key(schedule.schedule_id, 30)) | {} == {
        **seat_key(schedule.schedule_id, 30),
        "number": 30,
        "price": 30_000,
        "status": "FREE",
        "startsAt": schedule.starts_at,
    }
    assert available(concert, 1) == 30


def test_defaults_come_from_the_settings(clock):
    concert = create()
    settings = CatalogService().settings
    assert (concert.queue_capacity, concert.queue_shards) == (
        settings.default_queue_capacity,
        settings.queue_counter_shards,
    )


def test_batches_of_25_and_unprocessed_items_are_sent_again(clock, monkeypatch):
    client = dynamodb()
    real = client.batch_write_item
    calls: list[int] = []

    def flaky(**request: Any) -> Any:
        ((table, writes),) = request["RequestItems"].items()
        calls.append(len(writes))
        assert len(writes) <= 25
        if len(calls) == 1:  # DynamoDB throttled half of the first batch
            real(RequestItems={table: writes[:10]})
            return {"UnprocessedItems": {table: writes[10:]}}
        return real(**request)

    monkeypatch.setattr(client, "batch_write_item", flaky)
    concert = create(seats=60)  # 1 META + 60 seats = 61 items: 25 + 25 + 11, plus one resend
    assert sorted(calls) == sorted([25, 25, 11, 15])
    buyer = Buyer(concert, "alice")
    assert buyer.seats() == list(range(1, 61))


def test_items_still_unprocessed_after_the_retries_fail_the_creation(clock, monkeypatch):
    client = dynamodb()
    monkeypatch.setattr(
        client,
        "batch_write_item",
        lambda **request: {"UnprocessedItems": request["RequestItems"]},
    )
    sleeps: list[float] = []
    repository = CatalogRepository(sleep=sleeps.append)
    with pytest.raises(ServiceUnavailable):
        CatalogService(repository=repository).create_concert(ConcertIn.model_validate(concert_body()))
    assert len(sleeps) == 8 and max(sleeps) <= 2.0


def test_a_concert_whose_publication_failed_is_not_bookable(clock, monkeypatch):
    def fail(self: CatalogRepository, items: list[Any]) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError"}}, "TransactWriteItems")

    monkeypatch.setattr(CatalogRepository, "publish", fail)
    request = ConcertIn.model_validate(concert_body())
    with pytest.raises(ClientError):
        CatalogService().create_concert(request, "ops", "key-1")
    concert_id = concert_id_for("ops", "key-1")
    schedule_id = planned_schedules(request, concert_id)[0].schedule_id
    assert item(seat_key(schedule_id, 1))  # the seats were written...
    assert not item(concert_key(concert_id))  # ...but nothing makes them reachable
    with pytest.raises(NotFound):
        QueueService().issue(concert_id, "alice")


# ---- listing ----
def test_schedules_lists_future_dates_with_free_seats(clock):
    concert = create(schedules=3, seats=2)
    alice = Buyer(concert, "alice")
    listed = CatalogService().schedules(concert.concert_id, "alice", alice.token)
    assert [s.schedule_id for s in listed.schedules] == [s.schedule_id for s in concert.schedules]
    assert [s.available_seats for s in listed.schedules] == [2, 2, 2]
    # sell out the second date; let the first one start
    bob = Buyer(concert, "bob")
    bob.hold(1, schedule=1)
    bob.hold(2, schedule=1)
    deliver_stream_records()
    clock.advance(DAY)
    carol = Buyer(concert, "carol")
    listed = CatalogService().schedules(concert.concert_id, "carol", carol.token)
    assert [(s.schedule_id, s.available_seats) for s in listed.schedules] == [(concert.schedules[2].schedule_id, 2)]


def test_seats_lists_free_and_lapsed_seats_only(clock):
    concert = create(seats=5)
    alice = Buyer(concert, "alice")
    alice.hold(2)
    alice.hold(4)
    assert alice.seats() == [1, 3, 5]
    clock.advance(ReservationService().settings.seat_hold_ttl_seconds)
    bob = Buyer(concert, "bob")
    assert bob.seats() == [1, 2, 3, 4, 5]  # lapsed holds are free at once


@pytest.mark.slow  # 5,000 seats written on moto
def test_seats_pages_through_a_big_schedule(clock):
    concert = create(seats=5000)
    assert len(Buyer(concert, "alice").seats()) == 5000


def test_unknown_schedule_or_one_of_another_concert_is_404(clock):
    first, second = create(), create()
    alice = Buyer(first, "alice")
    for schedule_id in ["nope", second.schedules[0].schedule_id]:
        with pytest.raises(NotFound):
            CatalogService().seats(first.concert_id, schedule_id, "alice", alice.token)
    with pytest.raises(NotFound):
        ReservationService().hold(HoldIn(schedule_id="nope", seat_number=1), "alice", alice.token)
    with pytest.raises(NotFound):
        alice.hold(99)


# ---- queue token guard ----
def test_every_endpoint_wants_an_active_token_of_that_concert(clock):
    concert = create(queueCapacity=1)
    other = create()
    concert_id, schedule_id = concert.concert_id, concert.schedules[0].schedule_id
    active = token(concert_id, "alice")
    waiting, _ = QueueService().issue(concert_id, "bob")
    foreign = token(other.concert_id, "alice")

    def calls(user: str, presented: str | None) -> list[Any]:
        return [
            lambda: CatalogService().schedules(concert_id, user, presented),
            lambda: CatalogService().seats(concert_id, schedule_id, user, presented),
            lambda: ReservationService().hold(HoldIn(schedule_id=schedule_id, seat_number=1), user, presented),
        ]

    for user, presented, error in [
        ("alice", None, QueueTokenInvalid),
        ("alice", "forged", QueueTokenInvalid),
        ("alice", foreign, QueueTokenInvalid),  # alice's token of another concert
        ("carol", active, QueueTokenInvalid),  # alice's token shown by carol
        ("bob", waiting.token, QueueTokenNotActive),
    ]:
        for call in calls(user, presented):
            with pytest.raises(error):
                call()
    clock.advance(QueueService().settings.active_token_ttl_seconds)
    for call in calls("alice", active):
        with pytest.raises(QueueTokenExpired):
            call()
    assert item(seat_key(schedule_id, 1))["status"] == "FREE"


# ---- holds ----
def test_a_hold_writes_seat_reservation_and_the_stream_moves_the_hint(clock):
    concert = create(seats=3)
    held = Buyer(concert, "alice").hold(2)
    ttl = ReservationService().settings.seat_hold_ttl_seconds
    assert held.status is ReservationStatus.HELD and held.price == 2000 and held.seat_number == 2
    assert held.hold_expires_at == ticketline_clock.to_iso(int(clock()) + ttl)
    seat = item(seat_key(concert.schedules[0].schedule_id, 2))
    assert (seat["status"], seat["reservationId"], seat["holdExpiresAt"]) == (
        "HELD",
        held.reservation_id,
        clock() + ttl,
    )
    stored = item(reservation_key(held.reservation_id))
    assert stored["userId"] == "alice" and stored["concertId"] == concert.concert_id
    assert stored["GSI2PK"].startswith("HELD#") and stored["GSI2SK"] == clock() + ttl
    assert available(concert) == 2


def test_a_held_seat_is_refused_to_everyone_else_without_side_effects(clock):
    concert = create(seats=3)
    Buyer(concert, "alice").hold(1)
    bob = Buyer(concert, "bob")
    with pytest.raises(SeatUnavailable):
        bob.hold(1)
    assert not item(holds_key(concert.schedules[0].schedule_id, "bob"))
    assert available(concert) == 2


def test_a_lapsed_hold_is_taken_over_at_once_and_the_hint_stays(clock):
    concert = create(seats=3)
    alice = Buyer(concert, "alice")
    first = alice.hold(1)
    clock.advance(ReservationService().settings.seat_hold_ttl_seconds)
    second = Buyer(concert, "bob").hold(1)
    assert item(seat_key(concert.schedules[0].schedule_id, 1))["reservationId"] == second.reservation_id
    assert available(concert) == 2  # still one seat taken
    assert ReservationService().get(first.reservation_id, "alice").status is ReservationStatus.EXPIRED
    assert ReservationService().get(second.reservation_id, "bob").status is ReservationStatus.HELD


def test_a_hold_lapses_exactly_at_hold_expires_at(clock):
    concert = create(seats=1)
    Buyer(concert, "alice").hold(1)
    clock.advance(ReservationService().settings.seat_hold_ttl_seconds - 1)
    bob = Buyer(concert, "bob")
    with pytest.raises(SeatUnavailable):
        bob.hold(1)
    clock.advance(1)
    bob.hold(1)


def test_a_sold_seat_stays_sold(clock):
    concert = create(seats=1, starts_in=2 * DAY)
    Buyer(concert, "alice").hold(1)
    sell(concert, 1)
    clock.advance(DAY - 60)  # long past any hold, and the date has not started (after it nothing is on sale)
    with pytest.raises(SeatUnavailable):
        Buyer(concert, "bob").hold(1)


def test_the_per_user_limit_counts_live_holds_per_date(clock):
    concert = create(schedules=2, seats=10)
    alice = Buyer(concert, "alice")
    limit = ReservationService().settings.max_holds_per_schedule
    for seat in range(1, limit + 1):
        alice.hold(seat)
    with pytest.raises(HoldLimitReached):
        alice.hold(limit + 1)
    alice.hold(1, schedule=1)  # another date has its own limit
    Buyer(concert, "bob").hold(limit + 1)  # and another user
    clock.advance(ReservationService().settings.seat_hold_ttl_seconds)
    alice = Buyer(concert, "alice")  # her queue token lapsed too: a new one
    alice.hold(limit + 2)  # lapsed holds no longer count...
    holds = item(holds_key(concert.schedules[0].schedule_id, "alice"))["holds"]
    assert len(holds) == 1  # ...and were pruned from the item


def test_a_concurrent_hold_of_the_same_user_is_seen_before_the_limit_is_passed(clock, monkeypatch):
    """Two holds of one user read the holds item at once: the second one's transaction fails on it, re-reads."""
    concert = create(seats=10)
    alice = Buyer(concert, "alice")
    limit = ReservationService().settings.max_holds_per_schedule
    for seat in range(1, limit):
        alice.hold(seat)
    repository = ReservationRepository()
    stale = repository.hold_context(concert.schedules[0].schedule_id, limit + 1, "alice")
    alice.hold(limit)  # the concurrent request wins first
    monkeypatch.setattr(ReservationRepository, "hold_context", lambda self, *args: stale)
    with pytest.raises(HoldLimitReached):
        alice.hold(limit + 1)
    assert item(seat_key(concert.schedules[0].schedule_id, limit + 1))["status"] == "FREE"


def test_a_stale_free_read_of_a_taken_seat_is_409_not_retried(clock, monkeypatch):
    concert = create(seats=2)
    bob = Buyer(concert, "bob")
    stale = ReservationRepository().hold_context(concert.schedules[0].schedule_id, 1, "bob")
    Buyer(concert, "alice").hold(1)
    transactions = count_requests()
    monkeypatch.setattr(ReservationRepository, "hold_context", lambda self, *args: stale)
    with pytest.raises(SeatUnavailable):
        bob.hold(1)
    assert transactions["TransactWriteItems"] == 1


def test_a_stale_lapsed_read_of_a_seat_freed_meanwhile_is_retried_and_counted(clock, monkeypatch):
    concert = create(seats=2)
    Buyer(concert, "alice").hold(1)
    clock.advance(ReservationService().settings.seat_hold_ttl_seconds)
    bob = Buyer(concert, "bob")
    stale = ReservationRepository().hold_context(concert.schedules[0].schedule_id, 1, "bob")
    assert ReservationService().lapse_due().released == 1  # the scheduler frees it between read and write
    assert available(concert) == 2
    monkeypatch.setattr(ReservationRepository, "hold_context", lambda self, *args: stale)
    held = bob.hold(1)
    assert item(seat_key(concert.schedules[0].schedule_id, 1))["reservationId"] == held.reservation_id
    assert available(concert) == 1  # took a FREE seat: the hint went down


# ---- transaction cancellation (the decoding itself: tests/unit/test_transactions_pure.py) ----
def test_transaction_conflicts_are_retried_with_bounded_backoff(clock, monkeypatch):
    concert = create(seats=2)
    client = dynamodb()
    real = client.transact_write_items
    failures = iter([cancellation("TransactionConflict", "None", "None", "None")] * 3)

    def conflicting(**request: Any) -> Any:
        error = next(failures, None)
        if error is not None:
            raise error
        return real(**request)

    monkeypatch.setattr(client, "transact_write_items", conflicting)
    sleeps: list[float] = []
    held = Buyer(concert, "alice").hold(1, service=ReservationService(sleep=sleeps.append))
    assert held.status is ReservationStatus.HELD
    assert len(sleeps) == 3 and all(0 <= s <= 0.5 for s in sleeps)


def test_endless_conflicts_give_up_with_429_and_leave_no_trace(clock, monkeypatch):
    concert = create(seats=2)
    alice = Buyer(concert, "alice")
    client = dynamodb()

    def conflicting(**request: Any) -> Any:
        raise cancellation("None", "None", "TransactionConflict", "None")

    monkeypatch.setattr(client, "transact_write_items", conflicting)
    sleeps: list[float] = []
    with pytest.raises(Throttled):
        alice.hold(1, service=ReservationService(sleep=sleeps.append))
    assert len(sleeps) == MAX_HOLD_ATTEMPTS
    assert item(seat_key(concert.schedules[0].schedule_id, 1))["status"] == "FREE"


def test_a_resent_transaction_that_had_committed_is_a_success(clock, monkeypatch):
    """The first send committed but its answer was lost; botocore's resend is refused by the seat we now hold."""
    concert = create(seats=2)
    alice = Buyer(concert, "alice")
    client = dynamodb()
    real = client.transact_write_items

    def lost_answer(**request: Any) -> Any:
        real(**request)
        return real(**request)

    monkeypatch.setattr(client, "transact_write_items", lost_answer)
    held = alice.hold(1)
    assert item(seat_key(concert.schedules[0].schedule_id, 1))["reservationId"] == held.reservation_id
    assert available(concert) == 1


def test_other_transaction_failures_are_not_swallowed(clock, monkeypatch):
    concert = create(seats=2)
    alice = Buyer(concert, "alice")

    def throttled(**request: Any) -> Any:
        raise cancellation("ThrottlingError", "None", "None", "None")

    monkeypatch.setattr(dynamodb(), "transact_write_items", throttled)
    with pytest.raises(ClientError):
        alice.hold(1)


# ---- reservations ----
def test_only_the_owner_reads_a_reservation(clock):
    concert = create()
    held = Buyer(concert, "alice").hold(1)
    service = ReservationService()
    assert service.get(held.reservation_id, "alice") == held
    with pytest.raises(Forbidden):
        service.get(held.reservation_id, "bob")
    with pytest.raises(NotFound):
        service.get("unknown", "alice")


# ---- scheduler ----
def test_the_scheduler_lapses_due_holds_and_frees_their_seats(clock):
    concert = create(seats=12)
    buyers = [Buyer(concert, f"u{i}") for i in range(3)]
    held = [buyer.hold(seat) for i, buyer in enumerate(buyers) for seat in range(4 * i + 1, 4 * i + 5)]
    assert available(concert) == 0
    service = ReservationService()
    assert service.lapse_due().lapsed == 0  # nothing due yet
    clock.advance(service.settings.seat_hold_ttl_seconds)
    summary = service.lapse_due()
    assert (summary.lapsed, summary.released) == (12, 12)
    for reservation in held:
        stored = item(reservation_key(reservation.reservation_id))
        assert stored["status"] == "EXPIRED" and "GSI2PK" not in stored
    seat = item(seat_key(concert.schedules[0].schedule_id, 1))
    assert seat["status"] == "FREE" and "reservationId" not in seat
    assert available(concert) == 12
    assert service.lapse_due().lapsed == 0  # idempotent


def test_the_scheduler_counts_each_lapse_once(clock):
    concert = create(seats=3)
    for seat in (1, 2, 3):
        Buyer(concert, f"u{seat}").hold(seat)
    service = ReservationService()
    clock.advance(service.settings.seat_hold_ttl_seconds)
    first = service.lapse_due()
    assert (first.lapsed, first.released) == (3, 3)
    assert available(concert) == 3


def test_the_scheduler_leaves_a_taken_over_seat_alone(clock):
    concert = create(seats=2)
    first = Buyer(concert, "alice").hold(1)
    service = ReservationService()
    clock.advance(service.settings.seat_hold_ttl_seconds)
    second = Buyer(concert, "bob").hold(1)
    summary = service.lapse_due()
    assert (summary.lapsed, summary.released) == (1, 0)
    assert item(reservation_key(first.reservation_id))["status"] == "EXPIRED"
    seat = item(seat_key(concert.schedules[0].schedule_id, 1))
    assert (seat["status"], seat["reservationId"]) == ("HELD", second.reservation_id)
    assert available(concert) == 1


def test_the_scheduler_skips_a_paid_reservation_and_drops_it_from_the_index(clock):
    concert = create(seats=2)
    held = Buyer(concert, "alice").hold(1)
    key = reservation_key(held.reservation_id)
    dynamodb().update_item(  # a payment that forgot to remove the GSI2 keys
        TableName="TicketlineTable",
        Key=to_raw(key),
        UpdateExpression="SET #s = :paid",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=to_raw({":paid": "PAID"}),
    )
    service = ReservationService()
    clock.advance(service.settings.seat_hold_ttl_seconds)
    assert service.lapse_due().lapsed == 0
    stored = item(key)
    assert stored["status"] == "PAID" and "GSI2PK" not in stored
    assert item(seat_key(concert.schedules[0].schedule_id, 1))["status"] == "HELD"


@pytest.mark.slow
def test_the_scheduler_works_in_bounded_batches(clock, monkeypatch):
    monkeypatch.setattr("ticketline.services.reservations.LAPSE_MAX_PER_BUCKET", 2)
    monkeypatch.setattr("ticketline.services.reservations.LAPSE_BATCH", 1)
    concert = create(seats=40)
    for i in range(10):
        buyer = Buyer(concert, f"u{i}")
        for seat in range(4 * i + 1, 4 * i + 5):
            buyer.hold(seat)
    service = ReservationService()
    clock.advance(service.settings.seat_hold_ttl_seconds)
    runs = []
    while (summary := service.lapse_due()).lapsed:
        assert summary.lapsed <= 2 * 4  # at most 2 per bucket per run
        runs.append(summary.lapsed)
    assert sum(runs) == 40 and len(runs) >= 5
    assert available(concert) == 40


# ---- cost ----
def count_requests() -> Counter[str]:
    """DynamoDB requests made from now on, by operation (botocore's before-call event)."""
    counts: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    dynamodb().meta.events.register("before-call.dynamodb", count)
    return counts


def test_dynamodb_requests_per_endpoint_call(clock):
    concert = create(seats=30)
    alice = Buyer(concert, "alice")
    schedule_id = concert.schedules[0].schedule_id

    counts = count_requests()

    def cost(call: Any) -> dict[str, int]:
        counts.clear()
        call()
        return dict(counts)

    catalog, reservations = CatalogService(), ReservationService()
    assert cost(lambda: catalog.schedules(concert.concert_id, "alice", alice.token)) == {"GetItem": 1, "Query": 1}
    assert cost(lambda: catalog.seats(concert.concert_id, schedule_id, "alice", alice.token)) == {
        "GetItem": 1,
        "Query": 1,
    }
    hold = HoldIn(schedule_id=schedule_id, seat_number=1)
    held: list[Any] = []
    assert cost(lambda: held.append(reservations.hold(hold, "alice", alice.token))) == {
        "BatchGetItem": 1,
        "GetItem": 1,
        "TransactWriteItems": 1,
    }
    assert cost(lambda: reservations.get(held[0].reservation_id, "alice")) == {"GetItem": 1}


# ---- the availableSeats hint (the table stream's consumer) ----
def seat_record(old: str | None, new: str, sort_key: str = "SEAT#00001") -> dict[str, Any]:
    """A stream record as Lambda's filter sees it: a seat's status from `old` (None: inserted) to `new`."""
    images: dict[str, Any] = {"NewImage": {"status": {"S": new}}}
    if old is not None:
        images["OldImage"] = {"status": {"S": old}}
    return {
        "eventName": "MODIFY" if old is not None else "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"Keys": {"PK": {"S": "SCHEDULE#s1"}, "SK": {"S": sort_key}}, **images},
    }


@pytest.mark.parametrize(
    ("record", "delivered"),
    [
        (seat_record("FREE", "HELD"), True),  # a hold
        (seat_record("HELD", "FREE"), True),  # a lapse tidied by the scheduler
        (seat_record("HELD", "HELD"), False),  # a lapsed hold taken over: still one seat taken
        (seat_record("HELD", "SOLD"), True),  # a sale of a held seat (the sold-out figure)
        (seat_record("SOLD", "FREE"), True),  # a cancelled ticket: the seat is on sale again
        (seat_record(None, "FREE"), False),  # a concert being created (its entries carry the count)
        (seat_record("HELD", "FREE", sort_key="RESERVATION"), False),  # not a seat
    ],
)
def test_the_stream_filter_delivers_only_seats_changing_status(record: dict[str, Any], delivered: bool):
    from devserver.event_filter import matches
    from devserver.template import load_template
    from tests.conftest import ROOT

    (stream,) = load_template(ROOT / "template.yaml").streams
    assert any(matches(pattern, record) for pattern in stream.filters) is delivered


def test_the_hint_follows_holds_takeovers_and_lapses_through_the_stream(clock):
    concert = create(seats=3, schedules=2)
    alice = Buyer(concert, "alice")
    alice.hold(1)
    alice.hold(2)
    assert (available(concert, 0), available(concert, 1)) == (1, 3)
    clock.advance(ReservationService().settings.seat_hold_ttl_seconds)
    Buyer(concert, "bob").hold(1)  # takes alice's lapsed hold over: still two seats taken
    assert available(concert) == 1
    assert ReservationService().lapse_due().released == 1  # seat 2 is FREE again
    assert available(concert) == 2


def figures(concert: ConcertOut) -> tuple[int, ...]:
    schedule = concert.schedules[0]
    entry = item(concert_schedule_key(concert.concert_id, schedule.starts_at, schedule.schedule_id))
    return tuple(int(entry.get(name, 0)) for name in ("availableSeats", "heldSeats", "soldSeats", "revenue"))


def test_a_batch_delivered_again_adds_nothing_twice_in_four_requests(clock):
    concert = create(seats=4)
    Buyer(concert, "alice").hold(3)
    Buyer(concert, "bob").hold(2)
    sell(concert, 2)
    counts = count_requests()
    deliver_stream_records()
    # per date and batch: the schedule's META and one conditional ADD of its changes, seat counts and sales together
    # (never a read of its seats); then per concert: one query of its partition and the sold-out figure's
    # transaction (META and queue state)
    assert counts == Counter({"GetItem": 1, "Query": 1, "UpdateItem": 1, "TransactWriteItems": 1})
    assert figures(concert) == (2, 1, 1, 2000)  # seat 2 costs 2000
    counts.clear()
    deliver_stream_records()  # a retried batch: Lambda delivers at least once; its refused ADD names what it has
    assert counts == Counter({"GetItem": 1, "Query": 1, "UpdateItem": 1, "TransactWriteItems": 1})
    assert figures(concert) == (2, 1, 1, 2000)  # seat 2 costs 2000


def test_an_older_recount_never_overwrites_a_newer_one_nor_a_change_added_since_its_read(clock):
    concert = create(seats=4)
    repository = CatalogRepository()
    schedule = repository.schedule(concert.schedules[0].schedule_id)
    assert schedule is not None
    assert repository.set_figures(schedule, DateFigures(free=2, held=1, sold=1, revenue=100), None, 2_000)
    assert not repository.set_figures(schedule, DateFigures(free=4), None, 1_000)  # started earlier
    assert figures(concert) == (2, 1, 1, 100)
    change = SeatChange.of("7", "FREE", "HELD", 100)
    repository.add_figures(schedule, FiguresChange(change.figures, change.sequence, change.sequence), 3_000)
    assert not repository.set_figures(schedule, DateFigures(free=4), None, 4_000)  # read before that change
    assert repository.set_figures(schedule, DateFigures(free=3, held=1), change.sequence, 4_000)
    assert figures(concert) == (3, 1, 0, 0)
    unpublished = dataclasses.replace(schedule, concert_id="other")
    assert not repository.set_figures(unpublished, DateFigures(free=4), None, 5_000)
