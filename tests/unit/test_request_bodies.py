"""API.md "Requests", in process as API Gateway invokes the handlers (moto): one rule for what a body is on every
route that takes one (ticketline.api.json_object_body), the Idempotency-Key's shape and trimming, and the
claims' shape and range. Every refusal is checked to leave every table as it was."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from tests.conftest import load_event as load_sample

VALID_PAYMENT = '{"reservationId": "01JD4YB3C5D7E9F1G3H5J7K9M1"}'  # the sample's is a placeholder


def load_event(name: str, **changes: Any) -> dict[str, Any]:
    return load_sample(name, **({"body": VALID_PAYMENT} if name == "pay.json" else {}) | changes)


# Every POST route that takes a body: (function, sample event). tests/unit/test_events.py runs each as is.
BODY_ROUTES = [
    ("reserve", "hold_seat.json"),
    ("wallet", "wallet_charge.json"),
    ("pay", "pay.json"),
    ("admin", "admin_create_concert.json"),
]
JSON_SPELLINGS = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "Application/Json ; Charset=UTF-8",
    "application/vnd.api+json",
    "application/problem+json; charset=utf-8",
]
NOT_JSON = [
    "text/json",
    "text/plain",
    "*/*",
    "application/octet-stream",
    "multipart/form-data",
    "multipart/form-data; boundary=xyz",
    "application/x-www-form-urlencoded",
    "application/jsonx",
    "application/+json",
    "application/json/x",
    "json",
    "",
]


def with_headers(event: dict[str, Any], **values: str | list[str] | None) -> dict[str, Any]:
    """The event with headers set (a list: sent several times) or removed (None), in both header maps."""
    for name, value in values.items():
        header = name.replace("_", "-")
        for headers in (event["headers"], event["multiValueHeaders"]):
            for existing in [key for key in headers if key.lower() == header.lower()]:
                del headers[existing]
        if value is not None:
            sent = value if isinstance(value, list) else [value]
            event["headers"][header] = sent[-1]
            event["multiValueHeaders"][header] = sent
    return event


def snapshot() -> dict[str, list[Any]]:
    client = boto3.client("dynamodb")
    return {
        table: sorted(json.dumps(item, sort_keys=True) for item in client.scan(TableName=table)["Items"])
        for table in client.list_tables()["TableNames"]
    }


def answer(invoke: Any, function: str, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = invoke(function, event)
    return response["statusCode"], json.loads(response["body"] or "null")


def refused(invoke: Any, function: str, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The answer to a request that must change nothing."""
    before = snapshot()
    status, body = answer(invoke, function, event)
    assert snapshot() == before, (function, status, body)
    return status, body["error"]


# ---------- media types ----------
@pytest.mark.parametrize(("function", "event_file"), BODY_ROUTES)
def test_every_json_spelling_is_read_as_the_plain_one(invoke: Any, clock: Any, function: str, event_file: str) -> None:
    for n, spelling in enumerate(JSON_SPELLINGS):
        # a key of its own each time, so that a charge or payment is not a replay of the first
        plain = with_headers(load_event(event_file), Idempotency_Key=f"plain-{n}")
        spelled = with_headers(load_event(event_file), Content_Type=spelling, Idempotency_Key=f"spelled-{n}")
        expected_status, expected = answer(invoke, function, plain)
        status, body = answer(invoke, function, spelled)
        assert status == expected_status != 415, (spelling, body)
        assert body.get("error") == expected.get("error"), (spelling, body)  # the same answer, if any, as plain


def test_a_charge_under_any_json_spelling_charges(invoke: Any, clock: Any) -> None:
    for n, spelling in enumerate(JSON_SPELLINGS, start=1):
        event = with_headers(load_event("wallet_charge.json"), Content_Type=spelling, Idempotency_Key=f"k{n}")
        status, body = answer(invoke, "wallet", event)
        assert (status, body["balance"]) == (200, 50_000 * n), (spelling, body)


@pytest.mark.parametrize(
    ("function", "event_file", "content_type"),
    [("wallet", "wallet_charge.json", content_type) for content_type in NOT_JSON]
    + [(function, event_file, "text/plain") for function, event_file in BODY_ROUTES if function != "wallet"],
)
def test_any_other_media_type_is_415(
    invoke: Any, clock: Any, function: str, event_file: str, content_type: str
) -> None:
    status, error = refused(invoke, function, with_headers(load_event(event_file), Content_Type=content_type))
    assert (status, error["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["details"][0]["field"] == "Content-Type"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (None, '{"amount": 100}'),  # a body without a Content-Type: the client did not say it is JSON
        (["application/json", "text/plain"], '{"amount": 100}'),  # two that disagree
        ("application/x-www-form-urlencoded", "amount=100"),  # Powertools alone would parse this form
        ("multipart/form-data; boundary=b", '--b\r\nContent-Disposition: form-data; name="amount"\r\n\r\n100\r\n--b--'),
    ],
    ids=["missing", "two", "form", "multipart"],
)
def test_bodies_that_do_not_say_they_are_json_are_415(
    invoke: Any, clock: Any, content_type: str | list[str] | None, body: str
) -> None:
    event = with_headers(load_event("wallet_charge.json", body=body), Content_Type=content_type)
    status, error = refused(invoke, "wallet", event)
    assert (status, error["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_no_body_and_no_content_type_is_400_body_required(invoke: Any, clock: Any) -> None:
    event = with_headers(load_event("wallet_charge.json", body=None), Content_Type=None)
    status, error = refused(invoke, "wallet", event)
    assert (status, error["code"], error["details"][0]["field"]) == (400, "VALIDATION_ERROR", "body")


def test_a_route_without_a_body_ignores_content_type_and_body(invoke: Any, clock: Any) -> None:
    admin = with_headers(load_event("admin_create_concert.json"))
    status, concert = answer(invoke, "admin", admin)
    assert status == 201
    joined = []
    for content_type, body in [(None, None), ("text/plain", "junk"), ("*/*", "[1, 2]"), ("application/json", "{")]:
        event = load_event("issue_token.json", body=body, pathParameters={"concertId": concert["concertId"]})
        event["path"] = f"/concerts/{concert['concertId']}/queue/tokens"
        status, token = answer(invoke, "issue_token", with_headers(event, Content_Type=content_type))
        assert status in (200, 201), token
        joined.append(token["token"])
    assert len(set(joined)) == 1  # the same token every time: the body was not looked at


def test_a_base64_encoded_json_body_is_read(invoke: Any, clock: Any) -> None:
    body = base64.b64encode(b'{"amount": 700}').decode()
    status, charged = answer(invoke, "wallet", load_event("wallet_charge.json", body=body, isBase64Encoded=True))
    assert (status, charged["balance"]) == (200, 700)


@pytest.mark.parametrize(
    ("function", "event_file", "content_type"),
    [
        ("wallet", "wallet_charge.json", "APPLICATION/JSON"),  # read
        ("wallet", "wallet_charge.json", "text/plain"),  # refused
        ("issue_token", "issue_token.json", "text/plain"),  # a route without a body
        ("wallet", "wallet_balance.json", None),
    ],
)
def test_the_caller_gets_its_event_back_as_sent(
    invoke: Any, clock: Any, function: str, event_file: str, content_type: str | None
) -> None:
    # Powertools reads the body through a rewritten event (ticketline.api._read_bodies_by_our_rule): the event a
    # caller passed, and may send again, is left as it was, whatever the answer.
    body = base64.b64encode(b'{"amount": 5}').decode()
    event = with_headers(load_event(event_file, body=body, isBase64Encoded=True), Content_Type=content_type)
    sent = json.loads(json.dumps(event))
    assert invoke(function, event)["statusCode"] < 500
    assert event == sent


# ---------- what is not an object ----------
@pytest.mark.parametrize(
    ("function", "event_file", "body"),
    [
        ("wallet", "wallet_charge.json", body)
        for body in ["[]", '"amount"', "100", "1.5", "true", "null", "NaN", '{"amount": Infinity}', " "]
    ]
    + [(function, event_file, "[{}, 1]") for function, event_file in BODY_ROUTES]
    + [("wallet", "wallet_charge.json", '[{"amount": 100}, "junk"]')],
)
def test_a_body_that_is_not_a_json_object_is_400(
    invoke: Any, clock: Any, function: str, event_file: str, body: str
) -> None:
    status, error = refused(invoke, function, load_event(event_file, body=body))
    assert (status, error["code"], error["details"][0]["field"]) == (400, "VALIDATION_ERROR", "body"), error


@pytest.mark.parametrize(
    ("function", "event_file", "body"),
    [
        ("wallet", "wallet_charge.json", '{"amount": -5, "amount": 100}'),
        ("wallet", "wallet_charge.json", '{"amount": 100, "amount": 100}'),
        ("reserve", "hold_seat.json", '{"scheduleId": "a", "seatNumber": 1, "scheduleId": "b"}'),
        ("pay", "pay.json", '{"reservationId": "01JD4YB3C5D7E9F1G3H5J7K9M1", "reservationId": "x"}'),
        (
            "admin",
            "admin_create_concert.json",
            '{"title": "t", "schedules": [{"startsAt": "2030-12-24T19:00:00Z", '
            '"seats": [{"number": 1, "price": 1, "price": 50000}]}]}',
        ),
    ],
    ids=["amount", "same-value", "top-level", "payment", "nested"],
)
def test_duplicate_keys_at_any_depth_are_400(
    invoke: Any, clock: Any, function: str, event_file: str, body: str
) -> None:
    status, error = refused(invoke, function, load_event(event_file, body=body))
    assert (status, error["code"]) == (400, "VALIDATION_ERROR")
    assert "more than once" in error["details"][0]["message"]


# ---------- size ----------
def padded(body: str, size: int) -> str:
    return body[:-1] + " " * (size - len(body)) + "}"


@pytest.mark.parametrize(("function", "event_file"), BODY_ROUTES)
def test_a_body_over_1_mib_is_413(invoke: Any, clock: Any, function: str, event_file: str) -> None:
    from ticketline.api import MAX_BODY_BYTES

    event = load_event(event_file)
    status, error = refused(invoke, function, load_event(event_file, body=padded(event["body"], MAX_BODY_BYTES + 1)))
    assert (status, error["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_a_body_of_exactly_1_mib_is_read(invoke: Any, clock: Any) -> None:
    body = padded('{"amount": 100}', 1024 * 1024)
    status, charged = answer(invoke, "wallet", load_event("wallet_charge.json", body=body))
    assert (status, charged["balance"]) == (200, 100)


# ---------- Idempotency-Key ----------
@pytest.mark.parametrize("retry_key", ["abc ", " abc", "\tabc\t", "abc"])
def test_surrounding_whitespace_is_not_part_of_the_key(invoke: Any, clock: Any, retry_key: str) -> None:
    status, first = answer(invoke, "wallet", with_headers(load_event("wallet_charge.json"), Idempotency_Key="abc"))
    assert status == 200
    status, again = answer(invoke, "wallet", with_headers(load_event("wallet_charge.json"), Idempotency_Key=retry_key))
    assert (status, again) == (200, first)  # the first answer, replayed: charged once
    assert answer(invoke, "wallet", load_event("wallet_balance.json")) == (200, {"balance": 50_000})


@pytest.mark.parametrize(
    ("function", "event_file", "key"),
    [
        ("wallet", "wallet_charge.json", key)
        for key in [None, "", "   ", "\t", "k" * 65, "a\x01b", "a\tb", "\x1fabc", "abc\x7f", "caf\xe9", "\u00a0abc"]
    ]
    + [("pay", "pay.json", key) for key in [None, "k" * 65, "ключ"]],
)
def test_a_key_other_than_1_to_64_printable_ascii_is_400_naming_the_header(
    invoke: Any, clock: Any, function: str, event_file: str, key: str | None
) -> None:
    status, error = refused(invoke, function, with_headers(load_event(event_file), Idempotency_Key=key))
    assert (status, error["code"]) == (400, "VALIDATION_ERROR")
    assert [detail["field"] for detail in error["details"]] == ["Idempotency-Key"], error


def test_64_printable_characters_with_inner_spaces_are_a_key(invoke: Any, clock: Any) -> None:
    key = "~ !" + "x" * 60 + "}"
    status, _ = answer(invoke, "wallet", with_headers(load_event("wallet_charge.json"), Idempotency_Key=f" {key} "))
    assert status == 200


# ---------- claims ----------
def claimed(event_file: str, **claims: Any) -> dict[str, Any]:
    event = load_event(event_file)
    event["requestContext"]["authorizer"]["claims"] |= claims
    return event


GOOD_DATE = "Tue Apr 14 17:39:50 UTC 2020"  # how API Gateway REST renders Cognito's exp and iat


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "u" * 129},
        {"sub": ""},
        {"sub": "alice#WALLET"},
        {"sub": "alice smith"},
        {"sub": "alic\xe9"},
        {"sub": "a\x00"},
        {"sub": 42},
        {"exp": "Sat Jan 01 00:00:00 UTC 10000"},
        {"exp": "99999999999999999999"},
        {"exp": 10**20},
        {"exp": 10**400},
        {"exp": float("inf")},
        {"exp": "soon"},
        {"exp": True},
        {"iat": -1},
        {"nbf": "1e400"},
        {"nbf": [1]},
    ],
    ids=repr,
)
@pytest.mark.parametrize(("function", "event_file"), [("wallet", "wallet_balance.json"), ("reserve", "hold_seat.json")])
def test_claims_out_of_shape_or_range_are_401(
    invoke: Any, clock: Any, function: str, event_file: str, claims: dict[str, Any]
) -> None:
    status, error = refused(invoke, function, claimed(event_file, **claims))
    assert (status, error["code"]) == (401, "UNAUTHENTICATED"), error


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "u" * 128},
        {"sub": "3f1c9a52-7b1e-4c2d-9e8f-0a1b2c3d4e5f"},
        {"sub": "ops@example.com"},
        {"exp": GOOD_DATE, "iat": GOOD_DATE},
        {"exp": 1_800_000_000, "iat": "1799996400", "nbf": 1_799_996_400.5},
    ],
    ids=repr,
)
def test_claims_in_shape_are_the_caller(invoke: Any, clock: Any, claims: dict[str, Any]) -> None:
    assert answer(invoke, "wallet", claimed("wallet_balance.json", **claims)) == (200, {"balance": 0})
