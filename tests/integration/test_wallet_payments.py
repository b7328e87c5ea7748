"""Wallet and payments over HTTP on DynamoDB Local: charge then pay, refusals that change nothing, concurrent
payments of one hold and concurrent charges of one wallet, and the DynamoDB requests and capacity per call."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from boto3.dynamodb.conditions import Key

from tests.conftest import lambda_context, load_event, load_handler, role_of
from tests.integration.api import TIMEOUT, bearer, buyer, create_concert, error_code, hold, table

pytestmark = pytest.mark.integration


# ---- helpers ----
def user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def charge(server: Any, who: str, amount: int, key: str | None = None) -> requests.Response:
    return requests.post(
        f"{server.url}/wallet/charges",
        json={"amount": amount},
        headers=bearer(server, who) | {"Idempotency-Key": key or uuid.uuid4().hex},
        timeout=TIMEOUT,
    )


def pay(server: Any, headers: dict[str, str], reservation_id: str, key: str | None = None) -> requests.Response:
    return requests.post(
        f"{server.url}/payments",
        json={"reservationId": reservation_id},
        headers=headers | {"Idempotency-Key": key or uuid.uuid4().hex},
        timeout=TIMEOUT,
    )


def balance(server: Any, who: str) -> int:
    response = requests.get(f"{server.url}/wallet", headers=bearer(server, who), timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return int(response.json()["balance"])


def ledger(server: Any, who: str) -> list[dict[str, Any]]:
    """The whole ledger through the API, newest first, following the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
        response = requests.get(
            f"{server.url}/wallet/history", params=params, headers=bearer(server, who), timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["nextCursor"]
        if cursor is None:
            return items


def assert_balance_is_its_ledger(server: Any, who: str) -> int:
    entries = ledger(server, who)
    total = sum(e["amount"] if e["type"] == "CHARGE" else -e["amount"] for e in entries)
    assert balance(server, who) == total >= 0
    running = 0
    for entry in reversed(entries):
        running += entry["amount"] if entry["type"] == "CHARGE" else -entry["amount"]
        assert entry["balanceAfter"] == running
    items = table(server).query(KeyConditionExpression=Key("PK").eq(f"WALLET#{who}"), ConsistentRead=True)["Items"]
    stored = next((i for i in items if i["SK"] == "BALANCE"), {"balance": 0})
    assert int(stored["balance"]) == total
    return total


def held_seat(server: Any, who: str, seats: int = 5, seat: int = 3) -> tuple[dict[str, Any], dict[str, str], dict]:
    concert = create_concert(server, seats=seats)
    headers = buyer(server, concert["concertId"], who)
    schedule_id = concert["schedules"][0]["scheduleId"]
    response = hold(server, headers, schedule_id, seat)
    assert response.status_code == 201, response.text
    return concert, headers, response.json()


def free_seats(server: Any, concert: dict[str, Any], headers: dict[str, str]) -> list[int]:
    cid, sid = concert["concertId"], concert["schedules"][0]["scheduleId"]
    response = requests.get(f"{server.url}/concerts/{cid}/schedules/{sid}/seats", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return [seat["number"] for seat in response.json()["seats"]]


def item(server: Any, pk: str, sk: str) -> dict[str, Any]:
    return dict(table(server).get_item(Key={"PK": pk, "SK": sk}, ConsistentRead=True)["Item"])


# ---- the flows ----
def test_charge_then_pay_sells_the_seat_and_expires_the_token(server):
    alice = user("alice")
    concert, headers, reservation = held_seat(server, alice, seat=3)
    price = reservation["price"]
    assert charge(server, alice, price + 500).json()["balance"] == price + 500
    look = buyer(server, concert["concertId"], user("looker"))
    assert 3 not in free_seats(server, concert, look)

    paid = pay(server, headers, reservation["reservationId"])
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert (body["reservationId"], body["amount"], body["balance"]) == (reservation["reservationId"], price, 500)
    assert 3 not in free_seats(server, concert, look)
    seat = item(server, f"SCHEDULE#{reservation['scheduleId']}", "SEAT#00003")
    assert seat["status"] == "SOLD"
    mine = requests.get(f"{server.url}/reservations/{reservation['reservationId']}", headers=headers, timeout=TIMEOUT)
    assert mine.json()["status"] == "PAID"
    position = requests.get(
        f"{server.url}/concerts/{concert['concertId']}/queue/position", headers=headers, timeout=TIMEOUT
    )
    assert (position.status_code, error_code(position)) == (410, "QUEUE_TOKEN_EXPIRED")
    history = ledger(server, alice)
    assert [(e["type"], e.get("reservationId")) for e in history] == [
        ("PAYMENT", reservation["reservationId"]),
        ("CHARGE", None),
    ]
    assert assert_balance_is_its_ledger(server, alice) == 500


def test_a_short_balance_is_402_and_nothing_changes(server):
    bob = user("bob")
    concert, headers, reservation = held_seat(server, bob)
    charge(server, bob, reservation["price"] - 1)
    before = (
        balance(server, bob),
        item(server, f"RESERVATION#{reservation['reservationId']}", "RESERVATION")["status"],
        item(server, f"SCHEDULE#{reservation['scheduleId']}", "SEAT#00003")["status"],
        item(server, f"QTOKEN#{concert['concertId']}#{bob}", "QTOKEN")["status"],
        len(ledger(server, bob)),
    )
    response = pay(server, headers, reservation["reservationId"])
    assert (response.status_code, error_code(response)) == (402, "INSUFFICIENT_BALANCE")
    after = (
        balance(server, bob),
        item(server, f"RESERVATION#{reservation['reservationId']}", "RESERVATION")["status"],
        item(server, f"SCHEDULE#{reservation['scheduleId']}", "SEAT#00003")["status"],
        item(server, f"QTOKEN#{concert['concertId']}#{bob}", "QTOKEN")["status"],
        len(ledger(server, bob)),
    )
    assert after == before == (reservation["price"] - 1, "HELD", "HELD", "ACTIVE", 1)


def test_paying_a_lapsed_hold_is_410_and_takes_nothing(short_hold_server):
    import time

    server = short_hold_server
    carol = user("carol")
    _, headers, reservation = held_seat(server, carol)
    charge(server, carol, 100_000)
    time.sleep(2.2)
    response = pay(server, headers, reservation["reservationId"])
    assert (response.status_code, error_code(response)) == (410, "RESERVATION_EXPIRED")
    assert balance(server, carol) == 100_000
    server.run_schedule("Expire")
    again = pay(server, headers, reservation["reservationId"])
    assert (again.status_code, error_code(again)) == (410, "RESERVATION_EXPIRED")


def test_twenty_concurrent_payments_of_one_hold_take_the_money_once(server):
    dave = user("dave")
    _, headers, reservation = held_seat(server, dave)
    charge(server, dave, 3 * reservation["price"])
    keys = ["same-key"] * 10 + [f"key-{n}" for n in range(10)]
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda key: pay(server, headers, reservation["reservationId"], key), keys))
    outcomes = Counter(
        (key == "same-key", r.status_code, r.json().get("error", {}).get("code"))
        for key, r in zip(keys, responses, strict=True)
    )
    print(f"\n20 concurrent payments of one hold: {dict(outcomes)}")
    created = [r.json() for r in responses if r.status_code == 201]
    assert created and len({body["paymentId"] for body in created}) == 1
    assert all(r.status_code in (201, 409, 410) for r in responses), outcomes
    assert balance(server, dave) == 2 * reservation["price"]
    payments = [e for e in ledger(server, dave) if e["type"] == "PAYMENT"]
    assert len(payments) == 1 and payments[0]["reservationId"] == reservation["reservationId"]
    winner = created[0]["paymentId"]
    assert all(r.json()["paymentId"] == winner for key, r in zip(keys, responses, strict=True) if r.status_code == 201)
    # A retry with "same-key" repeats that key's first answer: the 201 if it won, else the 409 it lost with.
    same_key_won = any(r.status_code == 201 for key, r in zip(keys, responses, strict=True) if key == "same-key")
    retry = pay(server, headers, reservation["reservationId"], "same-key")
    if same_key_won:
        assert (retry.status_code, retry.json()["paymentId"]) == (201, winner)
    else:
        assert (retry.status_code, error_code(retry)) == (409, "RESERVATION_NOT_PAYABLE")
    assert_balance_is_its_ledger(server, dave)


def test_a_hundred_concurrent_charges_add_up_exactly(server):
    erin = user("erin")
    amounts = [1000 + n for n in range(100)]
    keys = [uuid.uuid4().hex for _ in amounts]
    retried = Counter[int]()

    def charge_until_answered(n: int) -> requests.Response:
        for _ in range(10):  # a 429/503 says "retry with the same key": a client does so
            response = charge(server, erin, amounts[n], keys[n])
            if response.status_code not in (429, 503):
                return response
            retried[response.status_code] += 1
        return response

    with ThreadPoolExecutor(100) as pool:
        responses = list(pool.map(charge_until_answered, range(100)))
    print(f"\n100 concurrent charges of one wallet: {Counter(r.status_code for r in responses)}, retried {retried}")
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    assert len({r.json()["chargeId"] for r in responses}) == 100
    assert assert_balance_is_its_ledger(server, erin) == sum(amounts)
    assert len(ledger(server, erin)) == 100
    with ThreadPoolExecutor(20) as pool:  # the same 20 keys again: nothing moves
        again = list(pool.map(lambda n: charge(server, erin, amounts[n], keys[n]), range(20)))
    assert [r.json() for r in again] == [responses[n].json() for n in range(20)]
    assert balance(server, erin) == sum(amounts)


def test_concurrent_duplicates_of_one_charge_charge_once_and_all_get_the_first_answer(server):
    """No in-flight state: every duplicate either finds the record, or is cancelled on it (or by a conflict, and
    retries inside the call) and answers from it."""
    ivan = user("ivan")
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: charge(server, ivan, 4000, "one-key"), range(12)))
    print(f"\n12 concurrent sends of one charge: {Counter(r.status_code for r in responses)}")
    answered = [r.json() for r in responses if r.status_code == 200]
    assert all(r.status_code in (200, 429) for r in responses), [r.text for r in responses]
    assert answered and all(body == answered[0] for body in answered)
    assert charge(server, ivan, 4000, "one-key").json() == answered[0]  # long after: the record answers
    reused = charge(server, ivan, 4001, "one-key")
    assert (reused.status_code, error_code(reused)) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert assert_balance_is_its_ledger(server, ivan) == 4000 and len(ledger(server, ivan)) == 1


def test_concurrent_duplicates_of_one_payment_pay_once_and_all_get_the_first_answer(server):
    judy = user("judy")
    concert, headers, reservation = held_seat(server, judy)
    other = hold(server, headers, concert["schedules"][0]["scheduleId"], 4)
    assert other.status_code == 201, other.text
    charge(server, judy, 3 * reservation["price"])
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: pay(server, headers, reservation["reservationId"], "pay-once"), range(10)))
    print(f"\n10 concurrent sends of one payment: {Counter(r.status_code for r in responses)}")
    assert all(r.status_code in (201, 429) for r in responses), [r.text for r in responses]
    created = [r.json() for r in responses if r.status_code == 201]
    assert created and all(body == created[0] for body in created)
    again = pay(server, headers, reservation["reservationId"], "pay-once")
    assert (again.status_code, again.json()) == (201, created[0])
    reused = pay(server, headers, other.json()["reservationId"], "pay-once")
    assert (reused.status_code, error_code(reused)) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert item(server, f"RESERVATION#{other.json()['reservationId']}", "RESERVATION")["status"] == "HELD"
    assert [e["type"] for e in ledger(server, judy)].count("PAYMENT") == 1
    assert assert_balance_is_its_ledger(server, judy) == 2 * reservation["price"]


def test_a_reused_key_and_a_foreign_wallet(server):
    frank, grace = user("frank"), user("grace")
    assert charge(server, frank, 5000, "k").status_code == 200
    reused = charge(server, frank, 6000, "k")
    assert (reused.status_code, error_code(reused)) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert charge(server, grace, 7000, "k").json()["balance"] == 7000  # keys are per user
    assert (balance(server, frank), balance(server, grace)) == (5000, 7000)
    tampered = requests.get(
        f"{server.url}/wallet/history",
        params={"cursor": "eyJQSyI6IldBTExFVCJ9"},
        headers=bearer(server, frank),
        timeout=TIMEOUT,
    )
    assert (tampered.status_code, error_code(tampered)) == (400, "VALIDATION_ERROR")


# ---- what each call costs in DynamoDB ----
_CAPACITY_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchGetItem", "TransactWriteItems"}
)


@pytest.fixture
def measured(server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[int, Any, list]]]:
    """Runs a handler in this process against the server's engine and tables, counting each DynamoDB request
    and its consumed capacity (ReturnConsumedCapacity=TOTAL added to every request by a botocore hook)."""
    from devserver import iam
    from ticketline.config import get_settings
    from ticketline.db import dynamodb

    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", server.dynamodb_endpoint)
    monkeypatch.setenv("TABLE_NAME", server.table_name("TicketlineTable"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    get_settings.cache_clear()
    dynamodb.cache_clear()
    calls: list[tuple[str, float]] = []

    def ask_for_capacity(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in _CAPACITY_OPERATIONS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def record(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity") or []
        consumed = consumed if isinstance(consumed, list) else [consumed]
        calls.append((model.name, sum(float(c.get("CapacityUnits", 0)) for c in consumed)))

    iam.enforcer()  # the handlers run under their roles here too, before their client exists
    client = dynamodb()
    client.meta.events.register("provide-client-params.dynamodb", ask_for_capacity)
    client.meta.events.register("after-call.dynamodb", record)
    modules: dict[str, Any] = {}

    def measure(function: str, event: dict[str, Any], who: str, **headers: str) -> tuple[int, Any, list]:
        if function not in modules:
            modules[function] = load_handler(function, f"measured_{function}")
        event["requestContext"]["authorizer"]["claims"]["sub"] = who
        for name, value in headers.items():
            event["headers"][name] = value
            event["multiValueHeaders"][name] = [value]
        calls.clear()
        with iam.enforcer().acting_as(role_of(function)):
            response = modules[function].lambda_handler(event, lambda_context(function))
        return response["statusCode"], json.loads(response["body"]), list(calls)

    yield measure
    get_settings.cache_clear()
    dynamodb.cache_clear()


def test_dynamodb_requests_and_capacity_per_call(server, measured):
    henry = user("henry")
    _, headers, reservation = held_seat(server, henry)
    figures = {}
    status, _, calls = measured("wallet", load_event("wallet_balance.json"), henry)
    figures["GET /wallet"] = calls
    status, body, calls = measured(
        "wallet", load_event("wallet_charge.json", body=json.dumps({"amount": 100_000})), henry
    )
    assert status == 200, body
    figures["POST /wallet/charges"] = calls
    status, _, calls = measured("wallet", load_event("wallet_charge.json", body=json.dumps({"amount": 100_000})), henry)
    figures["POST /wallet/charges (replay)"] = calls
    for n in range(20):
        charge(server, henry, 1 + n)
    status, body, calls = measured("wallet", load_event("wallet_history.json"), henry)
    assert status == 200 and len(body["items"]) == 20, body
    figures["GET /wallet/history (20 items)"] = calls
    event = load_event("pay.json", body=json.dumps({"reservationId": reservation["reservationId"]}))
    status, body, calls = measured("pay", event, henry, **{"X-Queue-Token": headers["X-Queue-Token"]})
    assert status == 201, body
    figures["POST /payments"] = calls
    event = load_event("pay.json", body=json.dumps({"reservationId": reservation["reservationId"]}))
    status, body, calls = measured("pay", event, henry, **{"X-Queue-Token": headers["X-Queue-Token"]})
    assert status == 201, body
    figures["POST /payments (replay)"] = calls
    print("\nDynamoDB requests and capacity units per call (DynamoDB Local):")
    for name, made in figures.items():
        total = sum(units for _, units in made)
        print(f"  {name:32} {len(made)} requests, {total:g} CU: {', '.join(f'{op} {u:g}' for op, u in made)}")
    assert [op for op, _ in figures["GET /wallet"]] == ["GetItem"]
    assert [op for op, _ in figures["GET /wallet/history (20 items)"]] == ["Query"]
    # Issue 14: the idempotency record is written inside the transaction, read with what the call reads anyway.
    assert [op for op, _ in figures["POST /wallet/charges"]] == ["BatchGetItem", "TransactWriteItems"]
    assert [op for op, _ in figures["POST /payments"]] == ["BatchGetItem", "TransactWriteItems"]
    assert [op for op, _ in figures["POST /payments (replay)"]] == ["BatchGetItem"]
    assert [op for op, _ in figures["POST /wallet/charges (replay)"]] == ["BatchGetItem"]
