"""A load-test client of the local server: one requests.Session per simulated user, every answer judged.

"Meaningful answer": a 2xx; a 4xx in API.md's error shape; or a 429/503 in that shape with Retry-After.
Anything else (a 500, a body that is not the error shape, a 503 without Retry-After, a stack trace, a
connection error) is recorded as a bad answer, which the tests assert never happens.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

TIMEOUT_SECONDS = 30
RETRYABLE = frozenset({429, 503})


@dataclass
class Tally:
    """Every answer the clients got, by route and status, and the bad ones in full."""

    statuses: Counter[str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, route: str, response: requests.Response | None, problem: str | None) -> None:
        with self.lock:
            self.statuses[f"{route} {response.status_code if response is not None else 'ERR'}"] += 1
            if problem:
                self.bad.append(f"{route}: {problem}")

    def count(self, suffix: str) -> int:
        return sum(n for key, n in self.statuses.items() if key.endswith(suffix))

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


def judge(response: requests.Response) -> str | None:  # noqa: PLR0911
    """None when the answer is meaningful, else what is wrong with it."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{status} with a non-JSON body {response.text[:200]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if (
        not isinstance(error, dict)
        or not isinstance(error.get("code"), str)
        or not isinstance(error.get("message"), str)
    ):
        return f"{status} not in the error shape: {response.text[:200]!r}"
    if "Traceback" in response.text or 'File "' in response.text:
        return f"{status} leaks a stack trace: {response.text[:200]!r}"
    if status in RETRYABLE:
        retry_after = response.headers.get("Retry-After", "")
        return None if retry_after.isdigit() else f"{status} without a Retry-After header"
    if 400 <= status < 500:
        return None
    return f"{status} {error.get('code')}: {error.get('message')}"


class UserClient:
    """One simulated user: their JWT, their queue token, their own HTTP connection."""

    def __init__(self, server: Any, user: str, tally: Tally, *, retry_budget_seconds: float = 20.0) -> None:
        self.server = server
        self.user = user
        self.tally = tally
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {server.token(user)}"
        self.queue_token: str | None = None
        self.retry_budget_seconds = retry_budget_seconds

    def close(self) -> None:
        self.session.close()

    def call(
        self,
        method: str,
        path: str,
        route: str,
        *,
        retry: bool = True,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> requests.Response | None:
        """One API call; 429/503 are retried after Retry-After (capped at 0.5 s to keep runs short)."""
        all_headers = dict(headers or {})
        if self.queue_token:
            all_headers.setdefault("X-Queue-Token", self.queue_token)
        deadline = time.monotonic() + self.retry_budget_seconds
        while True:
            try:
                response = self.session.request(
                    method, f"{self.server.url}{path}", headers=all_headers, timeout=TIMEOUT_SECONDS, **kw
                )
            except requests.RequestException as error:
                self.tally.record(route, None, f"connection error {error!r}")
                return None
            self.tally.record(route, response, judge(response))
            if not retry or response.status_code not in RETRYABLE or time.monotonic() > deadline:
                return response
            time.sleep(min(0.5, float(response.headers.get("Retry-After", "1") or 1)))

    # ---- the API ----
    def join(self, concert_id: str) -> dict[str, Any] | None:
        response = self.call("POST", f"/concerts/{concert_id}/queue/tokens", "join")
        if response is None or response.status_code not in (200, 201):
            return None
        body: dict[str, Any] = response.json()
        self.queue_token = body["token"]
        return body

    def position(self, concert_id: str) -> requests.Response | None:
        return self.call("GET", f"/concerts/{concert_id}/queue/position", "position")

    def seats(self, concert_id: str, schedule_id: str) -> list[int]:
        response = self.call("GET", f"/concerts/{concert_id}/schedules/{schedule_id}/seats", "seats")
        if response is None or response.status_code != 200:
            return []
        return [seat["number"] for seat in response.json()["seats"]]

    def hold(self, schedule_id: str, seat: int) -> requests.Response | None:
        return self.call("POST", "/reservations", "hold", json={"scheduleId": schedule_id, "seatNumber": seat})

    def charge(self, amount: int, key: str | None = None) -> requests.Response | None:
        return self.call(
            "POST", "/wallet/charges", "charge", json={"amount": amount}, headers={"Idempotency-Key": key or new_key()}
        )

    def pay(self, reservation_id: str, key: str) -> requests.Response | None:
        return self.call(
            "POST", "/payments", "pay", json={"reservationId": reservation_id}, headers={"Idempotency-Key": key}
        )

    def release(self, reservation_id: str) -> requests.Response | None:
        return self.call("DELETE", f"/reservations/{reservation_id}", "release")

    def cancel(self, reservation_id: str, key: str) -> requests.Response | None:
        return self.call(
            "POST", f"/reservations/{reservation_id}/cancellation", "cancel", headers={"Idempotency-Key": key}
        )

    def wallet(self) -> requests.Response | None:
        return self.call("GET", "/wallet", "wallet")


def new_key() -> str:
    return uuid.uuid4().hex
