"""Hostile input: schemathesis fuzzing of the app's own OpenAPI document, forged and foreign credentials,
fields a client must not set, oversized bodies and huge numbers. Over HTTP on the local server."""

from __future__ import annotations

import base64
import glob
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from tests.conftest import ROOT
from tests.reliability.conftest import SCALE, create_concert, record_figures
from tests.support.client import judge, new_key

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]
TIMEOUT = 30
# Both fuzzers: reproducible (derandomized, no example database), no deadline on a loaded machine.
FUZZ_SETTINGS = settings(
    max_examples=SCALE.hostile_examples,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


# ---- the OpenAPI document ----
def openapi_document(server: Any) -> dict[str, Any]:
    """The server's GET /openapi.json when it serves one, else merged from the functions' resolvers."""
    try:
        response = requests.get(f"{server.url}/openapi.json", timeout=TIMEOUT)
        if response.status_code == 200:
            return dict(response.json())
    except (requests.RequestException, ValueError):
        pass
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    merge = OpenAPIMerge(title="Ticketline", version="1.0")
    for path in sorted(glob.glob(str(ROOT / "functions" / "*" / "app.py"))):
        if "/scheduler/" not in path:
            merge.add_file(path, resolver_name="app")
    return dict(json.loads(merge.get_openapi_json_schema()))


@pytest.fixture(scope="module")
def fuzz_target(reliable_server: Any) -> dict[str, Any]:
    """A concert, a buyer with an ACTIVE token and a live hold: so that fuzzed calls can reach the services."""
    concert = create_concert(reliable_server, seats=20, capacity=1000)
    headers = {"Authorization": f"Bearer {reliable_server.token('fuzzer')}"}
    token = requests.post(
        f"{reliable_server.url}/concerts/{concert['concertId']}/queue/tokens", headers=headers, timeout=TIMEOUT
    ).json()["token"]
    return {"concert": concert, "headers": headers | {"X-Queue-Token": token}}


def test_fuzzed_requests_never_get_a_5xx_nor_break_the_schema(
    reliable_server: Any, fuzz_target: dict[str, Any]
) -> None:
    """Every operation of the OpenAPI document, SCALE.hostile_examples generated requests each (schemathesis
    strategies driven by Hypothesis directly: its pytest plugin does not support this pytest yet)."""
    from hypothesis import given

    api = schemathesis.openapi.from_dict(openapi_document(reliable_server))
    stats = {"operations": 0, "calls": 0, "server_errors": 0}
    failures: list[str] = []
    for result in api.get_all_operations():
        operation = result.ok()
        stats["operations"] += 1

        @given(case=operation.as_strategy())
        @FUZZ_SETTINGS
        def fuzz(case: Any) -> None:
            headers = dict(fuzz_target["headers"])
            headers.update(case.headers or {})
            response = case.call(base_url=reliable_server.url, headers=headers, timeout=TIMEOUT)
            stats["calls"] += 1
            stats["server_errors"] += response.status_code >= 500
            case.validate_response(
                response,
                checks=[schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance],
            )
            problem = judge(response) if response.status_code >= 400 else None  # errors in API.md's shape
            assert problem is None, problem

        try:
            fuzz()
        except Exception as error:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(error)[:1500]}")
    record_figures("schemathesis", **stats, failures=len(failures))
    assert stats["operations"] >= 7
    assert not failures, "\n\n".join(failures)


MUTATED_CONTENT_TYPES = [
    "application/json",
    "APPLICATION/JSON",
    "application/json; charset=utf-8",
    "application/vnd.api+json",
    "text/json",
    "text/plain",
    "*/*",
    "application/octet-stream",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
    None,  # no Content-Type at all
]


def test_fuzzed_requests_with_mutated_content_types_and_headers_never_get_a_5xx(
    reliable_server: Any, fuzz_target: dict[str, Any]
) -> None:
    """Schemathesis cases (valid and, in its negative mode, invalid ones) of every operation that takes a body or
    an Idempotency-Key, sent under each Content-Type and with the key mutated (Latin-1 text of any length): never a
    5xx, always the error shape, 415 exactly when a body route gets a type other than JSON."""
    api = schemathesis.openapi.from_dict(openapi_document(reliable_server))
    stats = {"operations": 0, "calls": 0, "server_errors": 0, "unsupported_media_type": 0}
    failures: list[str] = []
    for result in api.get_all_operations():
        operation = result.ok()
        spec = operation.definition.raw
        takes_body = "requestBody" in spec
        takes_key = any(p.get("name") == "Idempotency-Key" for p in spec.get("parameters", []))
        if not (takes_body or takes_key):
            continue
        stats["operations"] += 1
        try:
            _mutation_fuzzer(reliable_server, fuzz_target, operation, takes_body, stats)()
        except Exception as error:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(error)[:1500]}")
    record_figures("schemathesis_mutated", **stats, failures=len(failures))
    assert stats["operations"] >= 4
    assert not failures, "\n\n".join(failures)


def _mutation_fuzzer(
    server: Any, fuzz_target: dict[str, Any], operation: Any, takes_body: bool, stats: dict[str, int]
) -> Any:
    from hypothesis import given
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    from ticketline.api import is_json_media_type

    cases = operation.as_strategy() | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    path_parameters = {p["name"] for p in operation.definition.raw.get("parameters", []) if p.get("in") == "path"}

    def refused_before_the_body(response: requests.Response) -> bool:
        """403: the admin routes refuse a non-admin before reading the body; 400 naming only path parameters or the
        Idempotency-Key: a malformed URL, or a header with characters HTTP does not allow (refused by the HTTP server,
        as CloudFront does on AWS), is refused before its body is read (a fuzzed negative case)."""
        if response.status_code == 403:
            return True
        details = response.json()["error"]["details"] if response.status_code == 400 else []
        return bool(details) and all(detail["field"] in path_parameters | {"Idempotency-Key"} for detail in details)

    keys = st.none() | st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=80)

    @given(case=cases, content_type=st.sampled_from(MUTATED_CONTENT_TYPES), key=keys)
    @FUZZ_SETTINGS
    def fuzz(case: Any, content_type: str | None, key: str | None) -> None:
        request = case.as_transport_kwargs(base_url=server.url)
        headers = {
            name: value for name, value in (request.get("headers") or {}).items() if name.lower() != "content-type"
        }
        headers |= fuzz_target["headers"]
        if content_type is not None:
            headers["Content-Type"] = content_type
        if key is not None and not key[:1].isspace():  # requests refuses a value starting with whitespace
            headers["Idempotency-Key"] = key
        if "json" in request:
            request["data"] = json.dumps(request.pop("json")).encode()
        request["headers"] = headers
        response = requests.request(**request, timeout=TIMEOUT)
        stats["calls"] += 1
        stats["server_errors"] += response.status_code >= 500
        assert response.status_code < 500, (response.status_code, response.text[:300])
        problem = judge(response) if response.status_code >= 400 else None
        assert problem is None, problem
        json_type = is_json_media_type(content_type or "")
        if takes_body and not json_type and not refused_before_the_body(response):
            assert response.status_code == 415, (content_type, response.text[:300])
        if response.status_code == 415:
            stats["unsupported_media_type"] += 1
            assert takes_body and not json_type, (content_type, response.text[:300])

    return fuzz


# ---- forged and foreign credentials ----
def _jwt_parts(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forgeries(server: Any) -> dict[str, str]:
    good = server.token("mallory")
    header, payload, signature = _jwt_parts(good)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    now = int(time.time())
    return {
        "tampered payload (sub changed, old signature)": f"{header}.{_b64(claims | {'sub': 'victim'})}.{signature}",
        "tampered payload (made admin)": f"{header}.{_b64(claims | {'cognito:groups': ['admin']})}.{signature}",
        "wrong secret": jwt.encode(claims | {"sub": "victim"}, "not-the-secret-at-all-0123456789", algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims | {'sub': 'victim'})}.",
        "expired": jwt.encode(claims | {"iat": now - 7200, "exp": now - 3600}, "local-dev-secret", algorithm="HS256"),
        "no exp": jwt.encode({"sub": "victim", "iat": now}, "local-dev-secret", algorithm="HS256"),
        "HS512 instead of HS256": jwt.encode(claims, "local-dev-secret", algorithm="HS512"),
        "garbage": "not.a.jwt",
        "empty": "",
    }


@pytest.fixture(scope="module")
def victim(reliable_server: Any) -> Iterator[dict[str, Any]]:
    """Alice: an ACTIVE token on one concert, a live hold on it; and a second concert."""
    server = reliable_server
    concert = create_concert(server, seats=5, capacity=100)
    other = create_concert(server, seats=5, capacity=100)
    alice = {"Authorization": f"Bearer {server.token('alice-v')}"}
    token = requests.post(
        f"{server.url}/concerts/{concert['concertId']}/queue/tokens", headers=alice, timeout=TIMEOUT
    ).json()["token"]
    schedule_id = concert["schedules"][0]["scheduleId"]
    held = requests.post(
        f"{server.url}/reservations",
        json={"scheduleId": schedule_id, "seatNumber": 1},
        headers=alice | {"X-Queue-Token": token},
        timeout=TIMEOUT,
    )
    assert held.status_code == 201, held.text
    yield {
        "concert": concert,
        "other": other,
        "schedule_id": schedule_id,
        "headers": alice | {"X-Queue-Token": token},
        "token": token,
        "reservation_id": held.json()["reservationId"],
    }


def _routes(victim: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    cid, sid, rid = victim["concert"]["concertId"], victim["schedule_id"], victim["reservation_id"]
    return [
        ("POST", f"/concerts/{cid}/queue/tokens", None),
        ("GET", f"/concerts/{cid}/queue/position", None),
        ("GET", f"/concerts/{cid}/schedules", None),
        ("GET", f"/concerts/{cid}/schedules/{sid}/seats", None),
        ("POST", "/reservations", {"scheduleId": sid, "seatNumber": 2}),
        ("GET", f"/reservations/{rid}", None),
        ("POST", "/admin/concerts", {"title": "x", "schedules": []}),
        ("GET", "/wallet", None),
        ("POST", "/wallet/charges", {"amount": 1000}),
        ("GET", "/wallet/history", None),
        ("POST", "/payments", {"reservationId": rid}),
        ("POST", "/payments", {"reservationIds": [rid]}),
        ("GET", "/reservations", None),
        ("DELETE", f"/reservations/{rid}", None),
        ("POST", f"/reservations/{rid}/cancellation", None),
    ]


def test_forged_tampered_and_expired_jwts_are_refused_everywhere(reliable_server: Any, victim: dict[str, Any]) -> None:
    refused = 0
    for name, forged in _forgeries(reliable_server).items():
        for method, path, body in _routes(victim):
            response = requests.request(
                method,
                f"{reliable_server.url}{path}",
                json=body,
                headers={"Authorization": f"Bearer {forged}", "X-Queue-Token": victim["token"], "Idempotency-Key": "k"},
                timeout=TIMEOUT,
            )
            if response.status_code == 404 and path.startswith(("/wallet", "/payments")):
                continue  # route not there yet
            assert response.status_code == 401, (name, method, path, response.status_code, response.text)
            assert judge(response) is None
            refused += 1
    for method, path, body in _routes(victim):  # no Authorization header at all
        response = requests.request(method, f"{reliable_server.url}{path}", json=body, timeout=TIMEOUT)
        assert response.status_code in (401, 404), (method, path, response.text)
    record_figures("forged_jwts", refused=refused)


def test_another_users_reservation_and_queue_token_are_refused(reliable_server: Any, victim: dict[str, Any]) -> None:
    """BOLA: Mallory, with her own valid JWT (and her own ACTIVE token), tries Alice's objects."""
    server = reliable_server
    cid, sid, rid = victim["concert"]["concertId"], victim["schedule_id"], victim["reservation_id"]
    mallory = {"Authorization": f"Bearer {server.token('mallory-b')}"}
    own = requests.post(f"{server.url}/concerts/{cid}/queue/tokens", headers=mallory, timeout=TIMEOUT).json()
    assert own["status"] == "ACTIVE"
    # Alice's reservation, with Mallory's own token
    read = requests.get(
        f"{server.url}/reservations/{rid}", headers=mallory | {"X-Queue-Token": own["token"]}, timeout=TIMEOUT
    )
    assert read.status_code == 403 and read.json()["error"]["code"] == "FORBIDDEN", read.text
    assert rid not in read.text and "alice" not in read.text
    # Alice's queue token, presented with Mallory's JWT, on every route that takes one
    with_alices_token = mallory | {"X-Queue-Token": victim["token"]}
    for method, path, body in [
        ("GET", f"/concerts/{cid}/queue/position", None),
        ("GET", f"/concerts/{cid}/schedules", None),
        ("GET", f"/concerts/{cid}/schedules/{sid}/seats", None),
        ("POST", "/reservations", {"scheduleId": sid, "seatNumber": 3}),
    ]:
        response = requests.request(
            method, f"{server.url}{path}", json=body, headers=with_alices_token, timeout=TIMEOUT
        )
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "QUEUE_TOKEN_INVALID"
    # Alice's own token on another concert
    other = victim["other"]
    for method, path, body in [
        ("GET", f"/concerts/{other['concertId']}/queue/position", None),
        ("GET", f"/concerts/{other['concertId']}/schedules", None),
        ("POST", "/reservations", {"scheduleId": other["schedules"][0]["scheduleId"], "seatNumber": 1}),
    ]:
        response = requests.request(
            method, f"{server.url}{path}", json=body, headers=victim["headers"], timeout=TIMEOUT
        )
        assert response.status_code == 401, (method, path, response.text)
    # Alice's reservation cannot be given back or cancelled by Mallory, nor listed among hers
    released = requests.delete(f"{server.url}/reservations/{rid}", headers=mallory, timeout=TIMEOUT)
    assert released.status_code == 403 and released.json()["error"]["code"] == "FORBIDDEN", released.text
    cancelled = requests.post(
        f"{server.url}/reservations/{rid}/cancellation", headers=mallory | {"Idempotency-Key": "m"}, timeout=TIMEOUT
    )
    assert cancelled.status_code == 403 and cancelled.json()["error"]["code"] == "FORBIDDEN", cancelled.text
    listed = requests.get(f"{server.url}/reservations", headers=mallory, timeout=TIMEOUT)
    assert listed.status_code == 200 and rid not in listed.text
    # Alice's reservation is untouched
    mine = requests.get(f"{server.url}/reservations/{rid}", headers=victim["headers"], timeout=TIMEOUT)
    assert mine.status_code == 200 and mine.json()["status"] == "HELD"


# ---- fields a client must not set, oversized bodies, huge numbers ----
@pytest.mark.parametrize(
    "extra",
    [{"price": 1}, {"status": "PAID"}, {"userId": "victim"}, {"reservationId": "mine"}, {"holdExpiresAt": "2099"}],
)
def test_a_client_cannot_set_price_status_or_owner_of_a_hold(
    reliable_server: Any, victim: dict[str, Any], extra: dict[str, Any]
) -> None:
    body = {"scheduleId": victim["schedule_id"], "seatNumber": 4} | extra
    response = requests.post(
        f"{reliable_server.url}/reservations", json=body, headers=victim["headers"], timeout=TIMEOUT
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "body",
    [
        {"scheduleId": "s", "seatNumber": 10**30},
        {"scheduleId": "s", "seatNumber": -1},
        {"scheduleId": "s", "seatNumber": 1e308},
        {"scheduleId": "s", "seatNumber": "1"},
        {"scheduleId": "x" * 10_000, "seatNumber": 1},
        {"scheduleId": "s", "seatNumber": True},
        [1, 2, 3],
        "just a string",
    ],
    ids=["huge", "negative", "float", "string", "long-id", "bool", "array", "string-body"],
)
def test_huge_numbers_and_wrong_types_are_400(reliable_server: Any, victim: dict[str, Any], body: Any) -> None:
    response = requests.post(
        f"{reliable_server.url}/reservations", json=body, headers=victim["headers"], timeout=TIMEOUT
    )
    assert response.status_code == 400, response.text
    assert judge(response) is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"scheduleId": "s", "seatNumber": 1' + b" " * 2_000_000 + b"}",  # 2 MB
        b"[" * 100_000 + b"]" * 100_000,  # deep nesting
        b'{"scheduleId": "s", "seatNumber": 1' + b"0" * 100_000 + b"}",  # a 100,000-digit number
        b'{"scheduleId": "s", "seatNumber": 1e999999}',
        b"\xff\xfe\x00garbage",
        b'{"scheduleId": "s", "seatNumber": 1, "scheduleId": "t"}',
    ],
    ids=["2MB", "deep-nesting", "100k-digits", "huge-exponent", "not-utf8", "duplicate-key"],
)
def test_oversized_and_malformed_bodies_are_refused_with_4xx(
    reliable_server: Any, victim: dict[str, Any], raw: bytes
) -> None:
    headers = victim["headers"] | {"Content-Type": "application/json"}
    response = requests.post(f"{reliable_server.url}/reservations", data=raw, headers=headers, timeout=TIMEOUT)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert judge(response) is None


def test_a_non_admin_cannot_create_a_concert_even_with_a_valid_body(reliable_server: Any) -> None:
    body = {"title": "mine", "schedules": [{"startsAt": "2099-01-01T00:00:00Z", "seats": [{"number": 1, "price": 1}]}]}
    response = requests.post(
        f"{reliable_server.url}/admin/concerts",
        json=body,
        headers={"Authorization": f"Bearer {reliable_server.token('mallory-admin')}", "Idempotency-Key": "k1"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "FORBIDDEN"


# ---- wallet and payments (issue 4): skipped until their routes are served ----
def _wallet_routes_or_skip(server: Any) -> None:
    from tests.reliability.sale import payments_available

    if not payments_available(server):
        pytest.skip("POST /payments is not served yet")


def test_another_users_wallet_and_reservation_cannot_be_paid_or_read(
    reliable_server: Any, victim: dict[str, Any]
) -> None:
    server = reliable_server
    _wallet_routes_or_skip(server)
    cid, rid = victim["concert"]["concertId"], victim["reservation_id"]
    alice = {"Authorization": victim["headers"]["Authorization"]}
    charged = requests.post(
        f"{server.url}/wallet/charges",
        json={"amount": 70_000},
        headers=alice | {"Idempotency-Key": f"alice-{rid}"},
        timeout=TIMEOUT,
    )
    assert charged.status_code in (200, 201), charged.text
    mallory = {"Authorization": f"Bearer {server.token('mallory-w')}"}
    own = requests.post(f"{server.url}/concerts/{cid}/queue/tokens", headers=mallory, timeout=TIMEOUT).json()
    mallory_active = mallory | {"X-Queue-Token": own["token"]}
    requests.post(
        f"{server.url}/wallet/charges",
        json={"amount": 90_000},
        headers=mallory | {"Idempotency-Key": "mallory-charge"},
        timeout=TIMEOUT,
    )
    # Mallory pays Alice's hold (from her own wallet, with her own ACTIVE token): refused, nothing moves
    paid = requests.post(
        f"{server.url}/payments",
        json={"reservationId": rid},
        headers=mallory_active | {"Idempotency-Key": "mallory-pays-alice"},
        timeout=TIMEOUT,
    )
    assert paid.status_code in (403, 404), paid.text
    # Mallory pays with Alice's queue token: refused
    paid = requests.post(
        f"{server.url}/payments",
        json={"reservationId": rid},
        headers=mallory | {"X-Queue-Token": victim["token"], "Idempotency-Key": "mallory-token"},
        timeout=TIMEOUT,
    )
    assert paid.status_code in (401, 403, 404), paid.text
    # Each wallet shows its owner's money only
    assert requests.get(f"{server.url}/wallet", headers=mallory, timeout=TIMEOUT).json()["balance"] == 90_000
    history = requests.get(f"{server.url}/wallet/history", headers=mallory, timeout=TIMEOUT).json()
    assert [item["amount"] for item in history["items"]] == [90_000]
    assert requests.get(f"{server.url}/wallet", headers=alice, timeout=TIMEOUT).json()["balance"] >= 70_000
    mine = requests.get(f"{server.url}/reservations/{rid}", headers=victim["headers"], timeout=TIMEOUT)
    assert mine.json()["status"] == "HELD"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/wallet/charges", {"amount": 1000, "userId": "victim"}),
        ("/wallet/charges", {"amount": 1000, "balance": 10**9}),
        ("/wallet/charges", {"amount": 0}),
        ("/wallet/charges", {"amount": -1000}),
        ("/wallet/charges", {"amount": 10**30}),
        ("/wallet/charges", {"amount": 10_000_001}),
        ("/wallet/charges", {"amount": 1000.5}),
        ("/wallet/charges", {"amount": "1000"}),
        ("/payments", {"reservationId": "r", "amount": 1}),
        ("/payments", {"reservationId": "r", "price": 1}),
        ("/payments", {"reservationId": "r", "userId": "victim"}),
        ("/payments", {"reservationId": "r", "status": "PAID"}),
    ],
)
def test_a_client_cannot_set_amounts_balances_or_owners_of_money(
    reliable_server: Any, victim: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    _wallet_routes_or_skip(reliable_server)
    headers = victim["headers"] | {"Idempotency-Key": new_key()}
    response = requests.post(f"{reliable_server.url}{path}", json=body, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
