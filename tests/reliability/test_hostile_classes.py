"""Issue 12's classes of hostile input, sent by Hypothesis to every POST route over HTTP on the local server:
media types, bodies that are not objects, duplicate keys, oversized bodies, bad Idempotency-Keys, claims out of
shape or range. Each answer is checked (status and code, in the error shape, never a 5xx), and nothing changes:
the table is read before and after each class (item for item), the audit passes, and the caller's balance,
ledger, reservation and queue token read the same through the API.

Each request starts from a valid one (the route would act on it: hold a free seat, charge, pay a live hold,
create a concert), so a refusal that let one through would show as a change. Examples per class: SCALE."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from devserver.template import load_template
from tests.conftest import ROOT
from tests.reliability.conftest import LONG, create_concert, ddb_client, record_figures
from tests.support.audit import audit, scan_table
from tests.support.client import judge
from tests.support.streams import settle_hint
from ticketline.api import is_json_media_type

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]
TIMEOUT = 60
EXAMPLES = 150 if LONG else 12
OVERSIZED_EXAMPLES = 20 if LONG else 3  # each one uploads over 1 MiB
MIB = 1024 * 1024
USER = f"hostile-{uuid.uuid4().hex[:8]}"


@dataclass
class Route:
    path: str
    body: dict[str, Any] | None  # a valid body, None for a route that takes none
    idempotent: bool  # takes Idempotency-Key
    admin: bool = False
    # A route that takes no body answers as without one, whatever body it is sent: (status, a word of the answer).
    plain_answer: tuple[int, str] = (200, '"ACTIVE"')

    @property
    def takes_body(self) -> bool:
        return self.body is not None


@dataclass
class Target:
    server: Any
    routes: list[Route]
    headers: dict[str, str]  # the caller's JWT and ACTIVE queue token
    admin_headers: dict[str, str]
    reservation_id: str
    concert_id: str
    counts: dict[str, int] = field(default_factory=dict)

    def send(
        self, route: Route, *, body: bytes | None, content_type: str | None, key: str | None = None, jwt_: str = ""
    ) -> requests.Response:
        headers = dict(self.admin_headers if route.admin else self.headers)
        if jwt_:
            headers["Authorization"] = f"Bearer {jwt_}"
        if route.idempotent:
            headers["Idempotency-Key"] = key if key is not None else uuid.uuid4().hex
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = requests.post(f"{self.server.url}{route.path}", data=body, headers=headers, timeout=TIMEOUT)
        assert response.status_code < 500, (route.path, response.status_code, response.text[:300])
        assert judge(response) is None, judge(response)
        return response


def post_routes_of_the_template() -> set[str]:
    return {route.path for route in load_template(ROOT / "template.yaml").routes if route.method == "POST"}


@pytest.fixture(scope="module")
def target(reliable_server: Any) -> Target:
    server = reliable_server
    concert = create_concert(server, seats=10, capacity=100)
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    caller = {"Authorization": f"Bearer {server.token(USER)}"}
    joined = requests.post(f"{server.url}/concerts/{concert_id}/queue/tokens", headers=caller, timeout=TIMEOUT)
    headers = caller | {"X-Queue-Token": joined.json()["token"]}
    held = requests.post(
        f"{server.url}/reservations", json={"scheduleId": schedule_id, "seatNumber": 1}, headers=headers, timeout=60
    )
    assert held.status_code == 201, held.text
    # The hold's recount is in before any test takes its "before" (a slow stream consumer would change it later).
    assert settle_hint(ddb_client(server), server.tables["TicketlineTable"], schedule_id) == 0
    charged = requests.post(
        f"{server.url}/wallet/charges",
        json={"amount": 50_000},
        headers=caller | {"Idempotency-Key": "seed"},
        timeout=60,
    )
    assert charged.status_code == 200, charged.text
    reservation_id = held.json()["reservationId"]
    starts = "2031-06-01T19:00:00Z"
    routes = {
        f"/concerts/{concert_id}/queue/tokens": Route(f"/concerts/{concert_id}/queue/tokens", None, False),
        "/reservations": Route("/reservations", {"scheduleId": schedule_id, "seatNumber": 2}, False),
        "/wallet/charges": Route("/wallet/charges", {"amount": 1_000}, True),
        "/payments": Route("/payments", {"reservationId": reservation_id}, True),
        "/reservations/{reservationId}/cancellation": Route(
            f"/reservations/{reservation_id}/cancellation",
            None,
            True,
            plain_answer=(409, "RESERVATION_NOT_RELEASABLE"),
        ),
        "/admin/concerts": Route(
            "/admin/concerts",
            {"title": "Hostile", "schedules": [{"startsAt": starts, "seats": [{"number": 1, "price": 100}]}]},
            True,
            admin=True,
        ),
    }
    served = {path.replace(concert_id, "{concertId}") for path in routes}
    missing = post_routes_of_the_template() - served
    assert not missing, f"give these POST routes a valid request in this test: {sorted(missing)}"
    admin_headers = {"Authorization": f"Bearer {server.token('hostile-ops', admin=True)}"}
    return Target(server, list(routes.values()), headers, admin_headers, reservation_id, concert_id)


# ---------- what must not change ----------
def state(target: Target) -> dict[str, Any]:
    """The template's tables item for item, and what the caller reads through the API."""
    server = target.server
    client = ddb_client(server)
    tables = {
        name: sorted(
            json.dumps(_without_count_time(item), sort_keys=True, default=str) for item in scan_table(client, table)
        )
        for name, table in server.tables.items()
    }
    reads = {
        path: requests.get(f"{server.url}{path}", headers=target.headers, timeout=TIMEOUT).json()
        for path in ("/wallet", "/wallet/history", f"/reservations/{target.reservation_id}")
    }
    position = requests.get(
        f"{server.url}/concerts/{target.concert_id}/queue/position", headers=target.headers, timeout=TIMEOUT
    ).json()
    reads["position"] = {key: position.get(key) for key in ("status", "position")}
    return {"tables": tables, "reads": reads}


_COUNT_TIMES = frozenset({"availableCountedAt", "sellableCountedAt"})


def _without_count_time(item: dict[str, Any]) -> dict[str, Any]:
    # When the stream consumer last recounted a date's figures and its concert's sold-out figure: it recounts on its
    # own schedule (another test's writes, a retried batch), so the times move without any request; the counts
    # themselves are compared.
    return {name: value for name, value in item.items() if name not in _COUNT_TIMES}


def settled_state(target: Target) -> dict[str, Any]:
    """The state once the stream consumer has caught up with earlier writes (its availableSeats recount)."""
    previous = state(target)
    for _ in range(40):
        time.sleep(0.5)
        current = state(target)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the table did not settle")


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    differences = [f"API read {name}" for name in before["reads"] if before["reads"][name] != after["reads"][name]]
    for name, items in before["tables"].items():
        gone, new = set(items) - set(after["tables"][name]), set(after["tables"][name]) - set(items)
        differences += [f"{name}: removed {item[:200]}" for item in gone] + [
            f"{name}: added {item[:200]}" for item in new
        ]
    return differences


def run_class(target: Target, name: str, examples: int, strategy: st.SearchStrategy[Any], check: Callable) -> None:
    before = settled_state(target)
    sent = 0

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal sent
        check(target, *case)
        sent += 1

    run()
    time.sleep(1)  # a stream record of an unwanted write would reach the consumer by now
    after = state(target)
    differences = changed(before, after)
    report = audit(ddb_client(target.server), target.server.table_name("TicketlineTable"))
    record_figures(f"hostile_{name}", requests=sent, server_errors=0, changes=len(differences), audit=report.ok)
    assert not differences, differences[:10]
    assert report.ok, report.summary()


def expect(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    error = response.json().get("error", {})
    assert (response.status_code, error.get("code")) == (status, code), (response.request.path_url, response.text)
    return dict(error)


def routes(target: Target, *, body: bool | None = None, idempotent: bool | None = None) -> st.SearchStrategy[Route]:
    return st.sampled_from(
        [
            route
            for route in target.routes
            if (body is None or route.takes_body == body) and (idempotent is None or route.idempotent == idempotent)
        ]
    )


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def unchanged_answer(target: Target, route: Route, response: requests.Response) -> None:
    """A route that takes no body answers as without one (the join: the caller's ACTIVE token, which they already
    hold; the cancellation of a HELD reservation: 409 RESERVATION_NOT_RELEASABLE, nothing cancelled)."""
    status, word = route.plain_answer
    assert response.status_code == status and word in response.text, response.text


# ---------- the classes ----------
_TOKEN_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+.^_`|~-")
_TOKENS = st.text(_TOKEN_CHARS, min_size=1, max_size=12)
NOT_JSON_TYPES = st.one_of(
    st.sampled_from(
        [
            "text/json",
            "text/plain",
            "*/*",
            "application/octet-stream",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "application/+json",
            "json",
            "",
        ]
    ),
    st.builds(lambda kind, subtype: f"{kind}/{subtype}", _TOKENS, _TOKENS).filter(
        lambda media: not is_json_media_type(media)
    ),
)


def test_media_types_other_than_json_are_415(target: Target) -> None:
    def check(target: Target, route: Route, content_type: str) -> None:
        body = encoded(route.body) if route.takes_body else b'{"a": 1}'
        response = target.send(route, body=body, content_type=content_type)
        if route.takes_body:
            expect(response, 415, "UNSUPPORTED_MEDIA_TYPE")
        else:
            unchanged_answer(target, route, response)

    run_class(target, "media_types", EXAMPLES, st.tuples(routes(target), NOT_JSON_TYPES), check)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


def test_bodies_that_are_not_objects_are_400(target: Target) -> None:
    def check(target: Target, route: Route, value: Any, wrap: bool) -> None:
        body = [route.body, value] if wrap and route.takes_body else value  # [{valid}, junk]: was charged once
        response = target.send(route, body=encoded(body), content_type="application/json")
        if route.takes_body:
            assert expect(response, 400, "VALIDATION_ERROR")["details"][0]["field"] == "body"
        else:
            unchanged_answer(target, route, response)

    not_objects = JSON_VALUES.filter(lambda value: not isinstance(value, dict))
    run_class(target, "not_objects", EXAMPLES, st.tuples(routes(target), not_objects, st.booleans()), check)


def with_duplicate(body: dict[str, Any], first: Any, nested: bool) -> bytes:
    """The body's JSON with one key written twice: a junk value first, the valid one last (json.loads keeps it)."""
    text = json.dumps(body)
    key = next(iter(body))
    if nested and "schedules" in body:  # deep inside the admin body: a seat's price
        return text.replace('"price": 100', f'"price": {json.dumps(first)}, "price": 100').encode()
    return ("{" + f"{json.dumps(key)}: {json.dumps(first)}, " + text[1:]).encode()


def test_duplicate_keys_are_400(target: Target) -> None:
    def check(target: Target, route: Route, first: Any, nested: bool) -> None:
        response = target.send(
            route, body=with_duplicate(route.body or {}, first, nested), content_type="application/json"
        )
        assert "more than once" in expect(response, 400, "VALIDATION_ERROR")["details"][0]["message"]

    strategy = st.tuples(routes(target, body=True), JSON_VALUES, st.booleans())
    run_class(target, "duplicate_keys", EXAMPLES, strategy, check)


def test_bodies_over_1_mib_are_413(target: Target) -> None:
    def check(target: Target, route: Route, extra: int) -> None:
        text = encoded(route.body)
        body = text[:-1] + b" " * (MIB + extra - len(text)) + b"}"
        response = target.send(route, body=body, content_type="application/json")
        # Answered by the local gateway's own cap while it is 1 MiB, by the handlers once it is API Gateway's 10 MB
        expect(response, 413, "PAYLOAD_TOO_LARGE")

    strategy = st.tuples(routes(target, body=True), st.integers(min_value=1, max_value=64 * 1024))
    run_class(target, "oversized", OVERSIZED_EXAMPLES, strategy, check)


BAD_KEYS = st.one_of(
    st.just(""),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=65, max_size=200),
    # a character outside printable ASCII (controls, DEL, Latin-1) among printable ones
    st.tuples(
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20),
        st.characters(codec="latin-1").filter(lambda c: not 0x20 <= ord(c) <= 0x7E and c not in "\r\n"),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20),
    ).map("".join),
)


def test_bad_idempotency_keys_are_400_naming_the_header(target: Target) -> None:
    def check(target: Target, route: Route, key: str) -> None:
        response = target.send(route, body=encoded(route.body), content_type="application/json", key=key)
        fields = [detail["field"] for detail in expect(response, 400, "VALIDATION_ERROR")["details"]]
        assert fields == ["Idempotency-Key"], (repr(key), response.text)

    run_class(target, "idempotency_keys", EXAMPLES, st.tuples(routes(target, idempotent=True), BAD_KEYS), check)


BAD_CLAIMS = st.one_of(
    st.fixed_dictionaries({"exp": st.just(10**400)}),  # found by this test: a date too large for a float
    st.fixed_dictionaries({"sub": st.text(st.sampled_from("abc123-_."), min_size=129, max_size=2_000)}),
    st.fixed_dictionaries(
        {
            "sub": st.text(min_size=1, max_size=20).filter(
                lambda s: any(not (c.isascii() and (c.isalnum() or c in "._@:+-")) for c in s)
            )
        }
    ),
    st.fixed_dictionaries({"exp": st.one_of(st.integers(min_value=253_402_300_800), st.floats(min_value=1e12))}),
    st.fixed_dictionaries({"iat": st.integers(min_value=253_402_300_800) | st.integers(max_value=-1)}),
    st.fixed_dictionaries({"nbf": st.text(max_size=10) | st.booleans() | st.lists(st.integers(), max_size=2)}),
)


def test_claims_out_of_shape_or_range_are_401(target: Target) -> None:
    def check(target: Target, route: Route, claims: dict[str, Any]) -> None:
        now = int(time.time())
        token = jwt.encode(
            {"sub": USER, "iat": now, "exp": now + 600, "cognito:groups": ["admin"] if route.admin else []} | claims,
            "local-dev-secret",
            algorithm="HS256",
        )
        body = encoded(route.body) if route.takes_body else None
        response = target.send(route, body=body, content_type="application/json", jwt_=token)
        expect(response, 401, "UNAUTHENTICATED")

    run_class(target, "claims", EXAMPLES, st.tuples(routes(target), BAD_CLAIMS), check)


# ---------- what is accepted ----------
def test_a_key_and_the_same_key_with_whitespace_are_one_charge(target: Target) -> None:
    server = target.server
    caller = {"Authorization": target.headers["Authorization"]}
    before = requests.get(f"{server.url}/wallet", headers=caller, timeout=TIMEOUT).json()["balance"]
    key = f"ws-{uuid.uuid4().hex[:8]}"
    answers = [
        requests.post(
            f"{server.url}/wallet/charges",
            json={"amount": 700},
            headers=caller | {"Idempotency-Key": sent},
            timeout=TIMEOUT,
        )
        for sent in (key, f"{key} ", f"{key}\t", key)
    ]
    assert [answer.status_code for answer in answers] == [200] * 4
    assert len({answer.text for answer in answers}) == 1  # the first answer, replayed
    assert requests.get(f"{server.url}/wallet", headers=caller, timeout=TIMEOUT).json()["balance"] == before + 700


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.api+json", "Application/Problem+JSON"],
)
def test_every_json_spelling_charges(target: Target, content_type: str) -> None:
    server = target.server
    caller = {"Authorization": target.headers["Authorization"]}
    before = requests.get(f"{server.url}/wallet", headers=caller, timeout=TIMEOUT).json()["balance"]
    response = requests.post(
        f"{server.url}/wallet/charges",
        data=b'{"amount": 300}',
        headers=caller | {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": content_type},
        timeout=TIMEOUT,
    )
    assert (response.status_code, response.json()["balance"]) == (200, before + 300), response.text
