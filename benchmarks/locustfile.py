"""A buyer's journey for locust: join the concert's queue, poll at the server's retryAfterSeconds until ACTIVE, list
the dates and the free seats, hold one (up to 3 tries), charge the wallet and pay. Each user buys once and stops.

`make bench-sale` runs it against the local server (benchmarks/sale.py). Against a deployed stack, before a sale
(README, "Load-test a deployed stack"):

    locust -f benchmarks/locustfile.py --headless --host https://API_ID.execute-api.REGION.amazonaws.com/Prod \
        --concert-id CONCERT --schedule-id SCHEDULE --tokens-file buyers.txt \
        --users 2000 --spawn-rate 400 --run-time 15m

--tokens-file: one Cognito ID token per line, a buyer each (users past the last line reuse them in turn). Without
it, buyers carry the local server's dev JWTs (TICKETLINE_DEV_JWT_SECRET), which only the local server accepts.
"""

import itertools
import random
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import gevent
from gevent.lock import BoundedSemaphore
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.exception import StopUser

MAX_HOLD_ATTEMPTS = 3
FIRST_POLL_SECONDS = 2.0  # a join answers WAIT without retryAfterSeconds: poll after the shortest interval
# What the buyers came to: read by benchmarks/sale.py, logged at the end of a run.
OUTCOMES: Counter[str] = Counter()  # "bought", "sold out", "gave up", "expired", "error"
POLLS_PER_WAITER: list[int] = []


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--concert-id", env_var="TICKETLINE_CONCERT_ID", default="", help="the concert on sale")
    parser.add_argument("--schedule-id", env_var="TICKETLINE_SCHEDULE_ID", default="", help="the date to buy for")
    parser.add_argument("--tokens-file", env_var="TICKETLINE_TOKENS_FILE", default="", help="one ID token per line")
    parser.add_argument("--price", type=int, env_var="TICKETLINE_PRICE", default=10_000, help="charged, then paid")
    parser.add_argument(
        "--max-in-flight", type=int, env_var="TICKETLINE_MAX_IN_FLIGHT", default=0, help="0: no bound on requests"
    )


@events.test_start.add_listener
def _prepare(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:  # locust's command line sets them, and benchmarks/sale.py passes its own
        raise RuntimeError("the buyers need locust's parsed options (--concert-id, --schedule-id, ...)")
    tokens = Path(options.tokens_file).read_text().split() if options.tokens_file else []
    Buyer.tokens = itertools.cycle(tokens) if tokens else None
    Buyer.in_flight = BoundedSemaphore(options.max_in_flight) if options.max_in_flight > 0 else None
    OUTCOMES.clear()
    POLLS_PER_WAITER.clear()


@events.test_stop.add_listener
def _report(**_: Any) -> None:
    waiters = len(POLLS_PER_WAITER)
    print(f"buyers: {dict(OUTCOMES)}; polls per waiter: {sum(POLLS_PER_WAITER) / waiters if waiters else 0:.1f}")


class Buyer(FastHttpUser):
    numbers = itertools.count()
    tokens: "itertools.cycle[str] | None" = None
    in_flight: BoundedSemaphore | None = None  # the benchmark's bound on concurrent requests (its "clients")

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.concert_id: str = options.concert_id
        self.schedule_id: str = options.schedule_id
        self.price: int = options.price
        self.name = f"buyer-{self.concert_id[:6]}-{next(self.numbers)}"
        self.headers = {"Authorization": f"Bearer {next(self.tokens) if self.tokens else _dev_token(self.name)}"}

    @task
    def buy(self) -> None:
        OUTCOMES[self._journey()] += 1
        raise StopUser

    def _journey(self) -> str:
        concert = f"/concerts/{self.concert_id}"
        joined = self._call("POST", f"{concert}/queue/tokens", "POST queue/tokens")
        if joined.status_code not in (200, 201):
            return "error"
        self.headers["X-Queue-Token"] = joined.json()["token"]
        if joined.json()["status"] != "ACTIVE":
            polls, wait = 0, FIRST_POLL_SECONDS
            while True:
                gevent.sleep(wait)
                position = self._call("GET", f"{concert}/queue/position", "GET queue/position")
                polls += 1
                if position.status_code != 200:
                    POLLS_PER_WAITER.append(polls)
                    return "expired" if position.status_code == 410 else "error"
                if position.json()["status"] == "ACTIVE":
                    POLLS_PER_WAITER.append(polls)
                    break
                wait = float(position.json()["retryAfterSeconds"])
        self._call("GET", f"{concert}/schedules", "GET schedules")
        for _ in range(MAX_HOLD_ATTEMPTS):
            seats = self._call("GET", f"{concert}/schedules/{self.schedule_id}/seats", "GET seats")
            free = [seat["number"] for seat in seats.json()["seats"]] if seats.status_code == 200 else []
            if not free:
                return "sold out"
            hold = self._call(
                "POST",
                "/reservations",
                "POST /reservations",
                json={"scheduleId": self.schedule_id, "seatNumber": random.choice(free)},
            )
            if hold.status_code == 201:
                break
        else:
            return "gave up"
        charged = self._call(
            "POST", "/wallet/charges", "POST /wallet/charges", json={"amount": self.price}, key=f"charge-{self.name}"
        )
        if charged.status_code != 200:
            return "error"
        paid = self._call(
            "POST",
            "/payments",
            "POST /payments",
            json={"reservationId": hold.json()["reservationId"]},
            key=f"pay-{self.name}",
        )
        return "bought" if paid.status_code == 201 else "error"

    def _call(self, method: str, path: str, name: str, json: Any = None, key: str | None = None) -> Any:
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        # catch_response: a refusal (a 409 on a seat taken, a 410) is an answer of the journey, not a locust failure.
        with (
            self.in_flight or nullcontext(),
            self.client.request(method, path, name=name, headers=headers, json=json, catch_response=True) as response,
        ):
            if response.status_code and response.status_code < 500:
                response.success()
        # gevent's semaphore lets a releaser take it again at once: yield, so buyers waiting for a slot go first
        # (a buyer's next step queues behind the joins already waiting, as on a real opening).
        gevent.sleep(0)
        return response


def _dev_token(user: str) -> str:
    from devserver.auth import mint_token

    return mint_token(user)
