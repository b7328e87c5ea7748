"""Discovery (GET /concerts, GET /concerts/{id}), the sale's opening, and sold out from the stream-fed figures
(issue 13), with the stream consumer's partial batch responses and the periodic recount (issue 11). On moto,
single-threaded; the races are in tests/integration/test_discovery_sold_out.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import ROOT, lambda_context, load_event, load_handler
from tests.support.streams import deliver_stream_records
from ticketline import clock as ticketline_clock
from ticketline.db import dynamodb, from_raw, to_raw
from ticketline.errors import QueueTokenExpired, SaleNotOpen, SoldOut
from ticketline.models.catalog import ConcertIn, ConcertOut
from ticketline.models.queue import TokenStatus
from ticketline.repositories.catalog import concert_key, concert_schedule_key, seat_key
from ticketline.repositories.queue import state_key
from ticketline.services.catalog import CatalogService
from ticketline.services.queue import QueueService

pytestmark = pytest.mark.usefixtures("aws")

DAY = 86_400
TABLE = "TicketlineTable"


# ---- helpers ----
def create(
    title: str = "Night", schedules: int = 1, seats: int = 2, starts_in: int = DAY, capacity: int = 1, **fields: Any
) -> ConcertOut:
    now = ticketline_clock.now()
    body = {
        "title": title,
        "queueCapacity": capacity,
        "schedules": [
            {
                "startsAt": ticketline_clock.to_iso(now + starts_in * (i + 1)),
                "seats": [{"number": n, "price": 10_000} for n in range(1, seats + 1)],
            }
            for i in range(schedules)
        ],
        **fields,
    }
    return CatalogService().create_concert(ConcertIn.model_validate(body))


def handler(function: str) -> Any:
    return load_handler(function, f"test_discovery_{function}")


def get(path_event: str, query: dict[str, str] | None = None, concert_id: str | None = None) -> dict[str, Any]:
    """A public discovery call through the seats function, as API Gateway sends it (no authorizer, no claims)."""
    changes: dict[str, Any] = {
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
    }
    if concert_id is not None:
        changes |= {"pathParameters": {"concertId": concert_id}, "path": f"/concerts/{concert_id}"}
    response = dict(handler("seats").lambda_handler(load_event(path_event, **changes), lambda_context("seats")))
    response["json"] = json.loads(response["body"])
    return response


def listing(**query: str) -> dict[str, Any]:
    return get("list_concerts.json", query or None)


def set_seat(schedule_id: str, number: int, status: str) -> None:
    """A seat's status as a hold, a payment or a cancellation leaves it (their transactions are tested elsewhere);
    the table stream carries the change to the consumer like any other."""
    dynamodb().update_item(
        TableName=TABLE,
        Key=to_raw(seat_key(schedule_id, number)),
        UpdateExpression="SET #s = :status",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=to_raw({":status": status}),
    )


def sell_everything(concert: ConcertOut, seats: int, schedules: list[int] | None = None) -> None:
    for index in schedules if schedules is not None else range(len(concert.schedules)):
        for number in range(1, seats + 1):
            set_seat(concert.schedules[index].schedule_id, number, "HELD")
            set_seat(concert.schedules[index].schedule_id, number, "SOLD")
    deliver_stream_records()


def item(key: dict[str, str]) -> dict[str, Any]:
    raw = dynamodb().get_item(TableName=TABLE, Key=to_raw(key), ConsistentRead=True)
    return from_raw(raw["Item"]) if "Item" in raw else {}


# ---- GET /concerts ----
def test_the_listing_is_public_cacheable_and_soonest_first(clock):
    later = create("Later", starts_in=3 * DAY)
    sooner = create("Sooner", starts_in=DAY)
    tour = create("Tour", schedules=3, starts_in=DAY // 2)  # dates in 12, 24 and 36 hours: listed by the last
    response = listing()
    assert response["statusCode"] == 200
    assert response["multiValueHeaders"]["Cache-Control"] == ["public, max-age=5"]
    items = response["json"]["items"]
    assert [i["concertId"] for i in items] == [sooner.concert_id, tour.concert_id, later.concert_id]
    first = next(i for i in items if i["concertId"] == tour.concert_id)
    assert first == {
        "concertId": tour.concert_id,
        "title": "Tour",
        "salesOpenAt": ticketline_clock.to_iso(clock()),
        "firstStartsAt": tour.schedules[0].starts_at,
        "lastStartsAt": tour.schedules[2].starts_at,
        "soldOut": False,
    }
    assert response["json"]["nextCursor"] is None


def test_pages_follow_their_cursor_to_the_end(clock):
    made = [create(f"C{i}", starts_in=DAY + i * 60).concert_id for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = listing(limit="2", **({"cursor": cursor} if cursor else {}))["json"]
        seen += [i["concertId"] for i in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == made and pages == 3  # 2 + 2 + 1, and no empty last page


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"12:../x").decode().rstrip("=")}, "cursor"),
    ],
)
def test_a_bad_limit_or_cursor_is_400_naming_it(clock, query, field):
    response = listing(**query)
    assert response["statusCode"] == 400
    assert field in [d["field"] for d in response["json"]["error"]["details"]]


def test_a_concert_leaves_the_listing_when_its_last_date_starts(clock):
    concert = create(schedules=2)
    clock.advance(DAY + 1)  # the first date has started: still listed, its last has not
    assert [i["concertId"] for i in listing()["json"]["items"]] == [concert.concert_id]
    clock.advance(DAY)
    assert listing()["json"]["items"] == []


def test_the_listing_is_one_query(clock):
    create()
    from tests.unit.test_catalog_holds import count_requests

    counts = count_requests()
    CatalogService().concerts(20, None)
    assert counts == {"Query": 1}


# ---- GET /concerts/{id} ----
def test_a_concert_shows_its_dates_that_have_not_started(clock):
    concert = create(schedules=2)
    response = get("get_concert.json", concert_id=concert.concert_id)
    assert response["statusCode"] == 200 and response["multiValueHeaders"]["Cache-Control"] == ["public, max-age=5"]
    assert response["json"] == {
        "concertId": concert.concert_id,
        "title": "Night",
        "salesOpenAt": ticketline_clock.to_iso(clock()),
        "soldOut": False,
        "schedules": [{"scheduleId": s.schedule_id, "startsAt": s.starts_at} for s in concert.schedules],
    }
    clock.advance(DAY)  # the first date starts now: no longer offered
    schedules = get("get_concert.json", concert_id=concert.concert_id)["json"]["schedules"]
    assert [s["scheduleId"] for s in schedules] == [concert.schedules[1].schedule_id]


def test_an_unknown_concert_is_404(clock):
    response = get("get_concert.json", concert_id="nope")
    assert (response["statusCode"], response["json"]["error"]["code"]) == (404, "NOT_FOUND")


# ---- salesOpenAt ----
def test_joining_before_the_lobby_opens_is_409_with_retry_after(clock):
    lobby = QueueService().settings.pre_queue_minutes * 60
    opens = ticketline_clock.to_iso(clock() + lobby + 600)
    concert = create(salesOpenAt=opens)
    assert concert.sales_open_at == opens
    with pytest.raises(SaleNotOpen) as refused:
        QueueService().issue(concert.concert_id, "alice")
    assert refused.value.headers() == {"Retry-After": "600"}  # until the lobby opens, PreQueueMinutes before
    assert get("get_concert.json", concert_id=concert.concert_id)["json"]["salesOpenAt"] == opens
    clock.advance(600)
    token, created = QueueService().issue(concert.concert_id, "alice")
    assert created and token.status is TokenStatus.WAIT and token.position is None  # the lobby


def test_a_sale_opening_after_the_last_date_is_400_naming_it(clock):
    body = {
        "title": "Late",
        "salesOpenAt": ticketline_clock.to_iso(clock() + 2 * DAY),
        "schedules": [{"startsAt": ticketline_clock.to_iso(clock() + DAY), "seats": [{"number": 1, "price": 1}]}],
    }
    event = load_event("admin_create_concert.json", body=json.dumps(body))
    event["requestContext"]["authorizer"]["claims"]["cognito:groups"] = "admin"
    response = handler("admin").lambda_handler(event, lambda_context("admin"))
    assert response["statusCode"] == 400
    assert [d["field"] for d in json.loads(response["body"])["error"]["details"]] == ["salesOpenAt"]


def test_the_join_answers_409_sale_not_open_through_its_handler(clock):
    concert = create(salesOpenAt=ticketline_clock.to_iso(clock() + QueueService().settings.pre_queue_minutes * 60 + 90))
    event = load_event("issue_token.json", pathParameters={"concertId": concert.concert_id})
    event["path"] = f"/concerts/{concert.concert_id}/queue/tokens"
    response = handler("issue_token").lambda_handler(event, lambda_context("issue_token"))
    assert response["statusCode"] == 409 and response["multiValueHeaders"]["Retry-After"] == ["90"]
    assert json.loads(response["body"])["error"]["code"] == "SALE_NOT_OPEN"


# ---- sold out ----
def test_sold_out_stops_joins_polls_and_admission_and_seats_coming_back_move_the_line(clock):
    concert = create(seats=2, capacity=1)
    queue = QueueService()
    assert queue.issue(concert.concert_id, "first")[0].status is TokenStatus.ACTIVE  # capacity 1
    waiter, _ = queue.issue(concert.concert_id, "waiter")
    assert waiter.status is TokenStatus.WAIT and waiter.position == 1
    sell_everything(concert, seats=2)

    with pytest.raises(SoldOut):
        queue.issue(concert.concert_id, "latecomer")  # no token
    assert not item({"PK": f"QTOKEN#{concert.concert_id}#latecomer", "SK": "QTOKEN"})
    with pytest.raises(SoldOut):
        queue.position(concert.concert_id, "waiter", waiter.token)
    clock.advance(queue.settings.active_token_ttl_seconds)  # the first buyer's turn is over: a slot frees...
    queue.expire_due()
    assert queue.admit().admitted == 0  # ...but nobody enters a sold-out concert
    assert listing()["json"]["items"][0]["soldOut"] is True
    assert get("get_concert.json", concert_id=concert.concert_id)["json"]["soldOut"] is True

    set_seat(concert.schedules[0].schedule_id, 2, "FREE")  # a cancelled ticket: the seat is on sale again
    deliver_stream_records()
    polled = queue.position(concert.concert_id, "waiter", waiter.token)  # the same token, its place kept
    assert polled.status is TokenStatus.WAIT and polled.position == 1
    assert queue.admit().admitted == 1
    assert queue.position(concert.concert_id, "waiter", waiter.token).status is TokenStatus.ACTIVE
    assert listing()["json"]["items"][0]["soldOut"] is False


def test_held_seats_keep_the_line_going(clock):
    concert = create(seats=2)
    set_seat(concert.schedules[0].schedule_id, 1, "HELD")
    set_seat(concert.schedules[0].schedule_id, 1, "SOLD")
    set_seat(concert.schedules[0].schedule_id, 2, "HELD")  # may lapse
    deliver_stream_records()
    entry = item(
        concert_schedule_key(concert.concert_id, concert.schedules[0].starts_at, concert.schedules[0].schedule_id)
    )
    assert (entry["availableSeats"], entry["heldSeats"], entry["soldSeats"]) == (0, 1, 1)
    assert QueueService().issue(concert.concert_id, "alice")[1]  # a new token: not sold out


def test_a_date_that_starts_leaves_the_sale_and_can_make_the_concert_sold_out(clock):
    concert = create(schedules=2, seats=1)
    sell_everything(concert, seats=1, schedules=[1])  # the later date is sold out, the first is not
    assert not get("get_concert.json", concert_id=concert.concert_id)["json"]["soldOut"]
    QueueService().issue(concert.concert_id, "early")
    clock.advance(DAY)  # the first date starts: what is left on sale is sold, without anything being written
    detail = get("get_concert.json", concert_id=concert.concert_id)["json"]
    assert detail["soldOut"] is True and [s["scheduleId"] for s in detail["schedules"]] == [
        concert.schedules[1].schedule_id
    ]
    assert listing()["json"]["items"][0]["soldOut"] is True
    with pytest.raises(SoldOut):
        QueueService().issue(concert.concert_id, "late")


def test_an_expired_token_is_told_so_before_sold_out(clock):
    concert = create(seats=1)
    token, _ = QueueService().issue(concert.concert_id, "alice")
    sell_everything(concert, seats=1)
    clock.advance(QueueService().settings.active_token_ttl_seconds)
    with pytest.raises(QueueTokenExpired):  # its place is lost: joining again is the answer, not waiting
        QueueService().position(concert.concert_id, "alice", token.token)


# ---- the stream consumer: partial batch responses ----
def seat_change(schedule_id: str, number: int, sequence: str, old: str = "FREE", new: str = "HELD") -> dict[str, Any]:
    return {
        "eventID": sequence,
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/TicketlineTable/stream/x",
        "dynamodb": {
            "Keys": {"PK": {"S": f"SCHEDULE#{schedule_id}"}, "SK": {"S": f"SEAT#{number:05d}"}},
            "OldImage": {"status": {"S": old}},
            "NewImage": {"status": {"S": new}},
            "SequenceNumber": sequence,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def test_a_date_whose_update_fails_fails_only_its_records(clock, monkeypatch):
    good, bad = create(seats=2), create(seats=2)
    good_id, bad_id = good.schedules[0].schedule_id, bad.schedules[0].schedule_id
    set_seat(good_id, 1, "HELD")
    module = handler("seat_availability")
    add_figures = module.catalog.repository.add_figures

    def failing(schedule: Any, *args: Any) -> Any:
        if schedule.schedule_id == bad_id:
            raise RuntimeError("injected")
        return add_figures(schedule, *args)

    monkeypatch.setattr(module.catalog.repository, "add_figures", failing)
    records = [seat_change(good_id, 1, "100"), seat_change(bad_id, 1, "200"), seat_change(bad_id, 2, "300")]
    result = module.lambda_handler({"Records": records}, lambda_context("seat_availability"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "200"}, {"itemIdentifier": "300"}]}
    entry = item(concert_schedule_key(good.concert_id, good.schedules[0].starts_at, good_id))
    assert entry["availableSeats"] == 1  # the good date was stored all the same


# ---- the periodic recount ----
def test_the_periodic_recount_heals_a_figure_a_lost_batch_left_wrong(clock):
    concert = create(seats=2)
    schedule = concert.schedules[0]
    set_seat(schedule.schedule_id, 1, "HELD")
    set_seat(schedule.schedule_id, 1, "SOLD")
    set_seat(schedule.schedule_id, 2, "HELD")
    set_seat(schedule.schedule_id, 2, "SOLD")  # sold out, but the stream batch is lost: nothing delivered
    assert not get("get_concert.json", concert_id=concert.concert_id)["json"]["soldOut"]
    clock.advance(300)
    summary = handler("scheduler").lambda_handler(
        json.loads((ROOT / "events/scheduler_recount.json").read_text()), lambda_context("scheduler")
    )
    assert summary == {"task": "recount", "concerts": 1, "dates": 1, "listed": 0}
    entry = item(concert_schedule_key(concert.concert_id, schedule.starts_at, schedule.schedule_id))
    assert (entry["availableSeats"], entry["soldSeats"]) == (0, 2)
    assert get("get_concert.json", concert_id=concert.concert_id)["json"]["soldOut"] is True
    with pytest.raises(SoldOut):
        QueueService().issue(concert.concert_id, "bob")


def test_the_periodic_recount_leaves_dates_the_stream_counted_lately(clock):
    concert = create(seats=2)
    set_seat(concert.schedules[0].schedule_id, 1, "HELD")
    deliver_stream_records()  # counted just now
    assert CatalogService().recount_live().dates == 0


def test_a_concert_from_before_discovery_works_and_is_listed_by_the_recount_once(clock):
    """Items as the code before this change wrote them: no salesOpenAt, listing keys or figures."""
    concert = create(seats=1)
    for key, attributes in [
        (concert_key(concert.concert_id), "salesOpenAt, firstStartsAt, lastStartsAt, GSI2PK, GSI2SK, sellableUntil"),
        (state_key(concert.concert_id), "salesOpenAt, sellableUntil"),
        ({"PK": "QUEUES", "SK": concert.concert_id}, "listed"),
        (
            concert_schedule_key(concert.concert_id, concert.schedules[0].starts_at, concert.schedules[0].schedule_id),
            "heldSeats, soldSeats",
        ),
    ]:
        dynamodb().update_item(TableName=TABLE, Key=to_raw(key), UpdateExpression=f"REMOVE {attributes}")
    detail = get("get_concert.json", concert_id=concert.concert_id)["json"]
    assert detail["salesOpenAt"] == ticketline_clock.to_iso(clock()) and detail["soldOut"] is False
    QueueService().issue(concert.concert_id, "alice")  # the queue works as before
    assert listing()["json"]["items"] == []

    assert CatalogService().recount_live().listed == 1
    assert [i["concertId"] for i in listing()["json"]["items"]] == [concert.concert_id]
    assert CatalogService().recount_live().listed == 0  # idempotent: each concert once
    assert item(state_key(concert.concert_id))["sellableUntil"] == int(
        ticketline_clock.from_iso(concert.schedules[0].starts_at)
    )
