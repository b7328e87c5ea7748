"""Bodies that json.loads refuses with something other than JSONDecodeError are the client's fault (400), in
process on moto: deep nesting (RecursionError), a number of 100,000 digits (ValueError), bytes that are not
UTF-8 (UnicodeDecodeError). A ValueError raised by our own code on a good body is still a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import load_event


@pytest.mark.parametrize(
    ("body", "encoded"),
    [
        ("[" * 100_000 + "]" * 100_000, False),
        ('{"scheduleId": "s", "seatNumber": 1' + "0" * 100_000 + "}", False),
        (base64.b64encode(b"\xff\xfe\x00garbage").decode(), True),
    ],
    ids=["deep-nesting", "100k-digits", "not-utf8"],
)
def test_unparsable_bodies_are_400(invoke: Any, body: str, encoded: bool) -> None:
    response = invoke("reserve", load_event("hold_seat.json", body=body, isBase64Encoded=encoded))
    assert response["statusCode"] == 400, response["body"][:300]
    error = json.loads(response["body"])["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["details"][0]["field"] == "body"


def test_a_value_error_of_our_own_on_a_good_body_is_still_a_500(invoke: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ticketline.services.reservations import ReservationService

    def broken(*_: Any, **__: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(ReservationService, "hold", broken)
    body = json.dumps({"scheduleId": "abc", "seatNumber": 1})
    response = invoke("reserve", load_event("hold_seat.json", body=body))
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"]["code"] == "INTERNAL_ERROR"
