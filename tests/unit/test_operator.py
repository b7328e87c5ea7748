"""Operator controls on moto: pause stops every admission path, capacity changes, the audit trail, the routes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.conftest import load_event
from ticketline import clock as ticketline_clock
from ticketline.errors import NotFound
from ticketline.models.catalog import SeatChange
from ticketline.models.queue import QueueControlIn, TokenStatus
from ticketline.repositories.operator import OperatorRepository
from ticketline.repositories.queue import QueueRepository
from ticketline.services.catalog import RECOUNT_MIN_AGE_SECONDS, CatalogService
from ticketline.services.operator import OperatorService
from ticketline.services.queue import QueueService

pytestmark = pytest.mark.usefixtures("aws")


def open_queue(capacity: int = 2) -> QueueService:
    QueueRepository().create_queue("c1", capacity, 1, now=0)
    return QueueService()


def change(operator: str = "ops-1", **fields: Any) -> Any:
    return OperatorService().change_queue("c1", QueueControlIn.model_validate(fields), operator)


def live_active(queue: QueueService, now: float) -> int:
    return sum((t.active_until or 0) > now for t in queue.repository.active_tokens("c1"))


def test_pause_stops_the_admission_run_and_the_walk_in_and_resume_lets_them_in(clock):
    queue = open_queue(capacity=2)
    waiters = {f"u{i}": queue.issue("c1", f"u{i}")[0] for i in range(5)}
    clock.advance(queue.settings.active_token_ttl_seconds + 1)  # the first two have left
    assert change(paused=True).paused is True
    assert queue.admit().admitted == 0
    state = queue.repository.get_state("c1", consistent=True)
    assert state is not None and state.admit_bound == 2  # the run wrote nothing
    # A waiter the bound already passed (a run raised it, nobody polled yet) does not walk in while paused.
    assert queue.repository.save_admission(state, 3, (), ()) is False  # paused: even a raise is refused
    clock.advance(queue.settings.queue_state_cache_seconds)
    assert queue.position("c1", "u2", waiters["u2"].token).status is TokenStatus.WAIT
    change(paused=False)
    assert queue.admit().admitted == 2
    clock.advance(queue.settings.queue_state_cache_seconds)
    assert [queue.position("c1", u, waiters[u].token).status for u in ("u2", "u3", "u4")] == [
        "ACTIVE",
        "ACTIVE",
        "WAIT",
    ]


def test_a_waiter_under_the_bound_does_not_walk_in_once_the_pause_is_seen(clock):
    queue = open_queue(capacity=1)
    queue.issue("c1", "a")
    waiter, _ = queue.issue("c1", "b")
    clock.advance(queue.settings.active_token_ttl_seconds + 1)
    read = QueueRepository().get_state("c1", consistent=True)
    assert read is not None
    assert QueueRepository().save_admission(read, 2, (), ())  # a run raised the bound past b, then b polls ...
    change(paused=True)
    clock.advance(queue.settings.queue_state_cache_seconds)  # ... after its container's cache has aged
    assert queue.position("c1", "b", waiter.token).status is TokenStatus.WAIT
    assert queue.admit().admitted == 0  # the run's repair does not let b in either
    change(paused=False)
    clock.advance(queue.settings.queue_state_cache_seconds)
    assert queue.position("c1", "b", waiter.token).status is TokenStatus.ACTIVE


def test_a_join_while_paused_waits_even_under_the_bound(clock):
    queue = open_queue(capacity=2)
    change(paused=True)
    token, _ = queue.issue("c1", "first")
    assert (token.status, token.position) == (TokenStatus.WAIT, 1)


def test_a_run_that_read_the_state_before_the_pause_admits_nobody(clock):
    queue = open_queue(capacity=1)
    queue.issue("c1", "a")
    queue.issue("c1", "b")
    clock.advance(queue.settings.active_token_ttl_seconds + 1)
    stale = queue.repository.get_state("c1", consistent=True)
    assert stale is not None
    change(paused=True)
    assert not queue.repository.save_admission(stale, 2, (), ())


def test_lowered_capacity_admits_nobody_until_the_live_active_tokens_are_under_it(clock):
    queue = open_queue(capacity=4)
    for i in range(10):
        queue.issue("c1", f"u{i}")
    assert live_active(queue, clock()) == 4
    assert change(capacity=2).capacity == 2
    assert queue.admit().admitted == 0  # 4 live, capacity 2: nobody, and nobody's turn cut short
    assert live_active(queue, clock()) == 4
    clock.advance(queue.settings.active_token_ttl_seconds + 1)
    queue.expire_due()
    assert queue.admit().admitted == 2  # all four left: two enter, the new capacity
    assert live_active(queue, clock()) == 2


def test_a_run_counted_with_the_old_capacity_cannot_write(clock):
    queue = open_queue(capacity=3)
    stale = queue.repository.get_state("c1", consistent=True)
    assert stale is not None
    change(capacity=1)
    assert not queue.repository.save_admission(stale, 6, (), ())


def test_raised_capacity_admits_more_at_the_next_run(clock):
    queue = open_queue(capacity=1)
    for i in range(4):
        queue.issue("c1", f"u{i}")
    change(capacity=3)
    assert queue.admit().admitted == 2
    assert live_active(queue, clock()) == 3


def test_an_unknown_concert_is_404_and_writes_no_audit_item(clock):
    open_queue()
    with pytest.raises(NotFound):
        OperatorService().change_queue("nope", QueueControlIn(paused=True), "ops-1")
    with pytest.raises(NotFound):
        OperatorService().concert_sale("nope")
    assert OperatorRepository().concert_sale("nope") is None


def test_the_figures_read_the_queue_state(clock):
    queue = open_queue(capacity=2)
    for i in range(5):
        queue.issue("c1", f"u{i}")
    queue.admit()
    figures = change(capacity=3)
    assert (figures.capacity, figures.paused, figures.admitted, figures.waiting) == (3, False, 2, 3)


# ---- the routes, through the handler under its IAM role (a concert created through POST /admin/concerts) ----
def call(invoke, event_file: str, concert: str, body: Any = None, *, admin: bool = True, user: str = "ops-9") -> dict:
    event = load_event(event_file)
    sample = event["pathParameters"]["concertId"] if event.get("pathParameters") else None
    if sample is not None:
        event["pathParameters"] = {"concertId": concert}
        event["path"] = event["path"].replace(sample, concert)
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    event["requestContext"]["authorizer"]["claims"] |= {"sub": user, "cognito:groups": "admin" if admin else ""}
    response = invoke("admin", event)
    response["json"] = json.loads(response["body"])
    return response


def create_concert(invoke) -> str:
    starts = [ticketline_clock.to_iso(ticketline_clock.now() + days * 86_400) for days in (1, 2)]
    body = {
        "title": "Night",
        "queueCapacity": 2,
        "schedules": [{"startsAt": s, "seats": [{"number": n, "price": 100} for n in (1, 2, 3)]} for s in starts],
    }
    response = call(invoke, "admin_create_concert.json", "", body, user=f"ops-{uuid.uuid4().hex[:8]}")
    assert response["statusCode"] == 201
    return str(response["json"]["concertId"])


def test_the_sale_shows_the_figures_and_every_change_with_the_operator_and_time(invoke, clock):
    concert = create_concert(invoke)
    sale = call(invoke, "admin_concert_sale.json", concert)
    assert sale["statusCode"] == 200
    body = sale["json"]
    assert (body["concertId"], body["title"], body["status"]) == (concert, "Night", "ON_SALE")
    assert body["sales"] == {"seats": 6, "free": 6, "held": 0, "sold": 0, "cancelled": 0, "revenue": 0}
    assert [(d["free"], d["held"], d["sold"]) for d in body["schedules"]] == [(3, 0, 0), (3, 0, 0)]
    assert body["queue"] == {
        "capacity": 2,
        "paused": False,
        "waiting": 0,
        "active": None,
        "admitted": 2,
        "estimatedWaitSeconds": None,
    }
    assert body["figuresAsOf"] == {"seats": None, "queue": None} and body["queueChanges"] == []
    paused = call(invoke, "admin_change_queue.json", concert, {"paused": True}, user="ops-1")
    assert (paused["statusCode"], paused["json"]["paused"]) == (200, True)
    clock.advance(60)
    resized = call(invoke, "admin_change_queue.json", concert, {"paused": False, "capacity": 5}, user="ops-2")
    assert (resized["json"]["paused"], resized["json"]["capacity"]) == (False, 5)
    changes = call(invoke, "admin_concert_sale.json", concert)["json"]["queueChanges"]
    assert [(c["operator"], c["paused"], c["capacity"]) for c in changes] == [
        ("ops-1", True, None),
        ("ops-2", False, 5),
    ]
    assert ticketline_clock.from_iso(changes[1]["at"]) - ticketline_clock.from_iso(changes[0]["at"]) == 60
    clock.advance(3 * 86_400)
    assert call(invoke, "admin_concert_sale.json", concert)["json"]["status"] == "ENDED"


@pytest.mark.parametrize(
    "body",
    [{}, {"capacity": 0}, {"capacity": "5"}, {"paused": "yes"}, {"paused": True, "extra": 1}, "not json"],
)
def test_bad_bodies_are_400_and_change_nothing(invoke, clock, body):
    concert = create_concert(invoke)
    response = call(invoke, "admin_change_queue.json", concert, body)
    assert (response["statusCode"], response["json"]["error"]["code"]) == (400, "VALIDATION_ERROR")
    sale = call(invoke, "admin_concert_sale.json", concert)["json"]
    assert (sale["queue"]["paused"], sale["queue"]["capacity"], sale["queueChanges"]) == (False, 2, [])


def test_non_admins_are_refused_before_the_body_and_unknown_concerts_are_404(invoke, clock):
    concert = create_concert(invoke)
    for body in ({"paused": True}, "x"):
        response = call(invoke, "admin_change_queue.json", concert, body, admin=False)
        assert (response["statusCode"], response["json"]["error"]["code"]) == (403, "FORBIDDEN")
    assert call(invoke, "admin_concert_sale.json", concert, admin=False)["statusCode"] == 403
    assert call(invoke, "admin_change_queue.json", "nope", {"paused": True})["statusCode"] == 404
    assert call(invoke, "admin_concert_sale.json", "nope")["statusCode"] == 404
    assert call(invoke, "admin_concert_sale.json", concert)["json"]["queue"]["paused"] is False


# ---- the sales figures: O(changes) per stream batch, a retried batch adds nothing twice, the recount heals ----
def sales_of(concert: str) -> dict[str, Any]:
    return OperatorService().concert_sale(concert).sales.model_dump()


def set_seat(schedule_id: str, number: int, **attributes: Any) -> None:
    from ticketline.db import dynamodb, to_raw, values
    from ticketline.repositories.catalog import seat_key

    dynamodb().update_item(
        TableName=OperatorService().settings.table_name,
        Key=to_raw(seat_key(schedule_id, number)),
        UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in attributes),
        ExpressionAttributeNames={f"#{name}": name for name in attributes},
        ExpressionAttributeValues=values(**attributes),
    )


def add_changes(schedule_id: str, *changes: SeatChange) -> None:
    CatalogService().add_changes(schedule_id, list(changes))


def test_a_batch_adds_sales_and_cancellations_and_its_retry_adds_only_what_is_new(invoke, clock):
    concert = create_concert(invoke)
    schedule_id = OperatorService().concert_sale(concert).schedules[0].schedule_id
    sold = [SeatChange.of(str(n), "FREE", "SOLD", 100) for n in (11, 12)]
    untouched = SeatChange.of("13", "FREE", "HELD", 100)
    cancelled = SeatChange.of("14", "SOLD", "FREE", 100)
    assert (untouched.figures.revenue, untouched.figures.cancelled) == (0, 0)
    add_changes(schedule_id, *sold, untouched)
    assert (sales_of(concert)["revenue"], sales_of(concert)["cancelled"]) == (200, 0)
    add_changes(schedule_id, *sold)  # the batch delivered again: nothing added
    add_changes(schedule_id, *sold[1:], untouched, cancelled)  # a retry from its middle, with one new record
    assert (sales_of(concert)["revenue"], sales_of(concert)["cancelled"]) == (100, 1)
    assert (sales_of(concert)["sold"], sales_of(concert)["held"]) == (1, 1)  # the seat counts, in the same update


def test_the_recount_heals_the_sales_figures_of_a_quiet_date_from_its_seats(invoke, clock):
    concert = create_concert(invoke)
    schedule_id = OperatorService().concert_sale(concert).schedules[0].schedule_id
    set_seat(schedule_id, 1, status="SOLD")
    set_seat(schedule_id, 2, status="SOLD", cancellations=2)  # sold, cancelled twice before
    set_seat(schedule_id, 3, cancellations=1)
    add_changes(schedule_id, SeatChange.of("7", "FREE", "SOLD", 100))  # the stream saw only one
    assert CatalogService().recount_live().dates == 1  # the other date; this one changed a moment ago
    assert (sales_of(concert)["revenue"], sales_of(concert)["cancelled"]) == (100, 0)
    clock.advance(RECOUNT_MIN_AGE_SECONDS + 1)
    assert CatalogService().recount_live().dates == 2  # both dates, quiet since
    assert (sales_of(concert)["revenue"], sales_of(concert)["cancelled"]) == (200, 3)
    add_changes(schedule_id, SeatChange.of("8", "SOLD", "FREE", 100))  # after the heal: added to it
    assert (sales_of(concert)["revenue"], sales_of(concert)["cancelled"]) == (100, 4)
    assert CatalogService().recount_live().dates == 0  # counted lately


def test_the_queue_figures_count_live_active_tokens_and_a_paused_run_records_the_growing_line(clock):
    queue = open_queue(capacity=2)
    for i in range(3):
        queue.issue("c1", f"u{i}")
    queue.admit()
    figures = OperatorService().queue_figures(queue.repository.get_state("c1", consistent=True))  # type: ignore[arg-type]
    assert (figures.active, figures.waiting, figures.admitted) == (2, 1, 2)
    change(paused=True)
    clock.advance(queue.settings.active_token_ttl_seconds + 1)  # both ACTIVE tokens run out while paused
    queue.issue("c1", "late")
    assert queue.admit().admitted == 0
    state = queue.repository.get_state("c1", consistent=True)
    assert state is not None and state.runs[-1].at >= clock()
    figures = OperatorService().queue_figures(state)
    assert (figures.active, figures.waiting, figures.admitted, figures.paused) == (0, 2, 2, True)
