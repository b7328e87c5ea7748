"""A sale: N buyers join within seconds, poll at the server's retryAfterSeconds, are admitted, list the
dates and seats, hold, charge their wallet and pay, against the local server (several workers) on DynamoDB
Local. Prints the throughput and p50/p95/p99 latency per endpoint, draws requests/s and latency over time,
and audits the table at the end (tests/support/audit.py: no seat sold twice, sold seats = PAID reservations =
payment ledger entries, balances = their ledger, no negative balance, no token ACTIVE after payment).

    python -m benchmarks.sale [--users 2000] [--workers 4] [--clients 48]
    make bench-sale ARGS="--users 2000"

The load generator is closed-loop: `--clients` threads, each with its own keep-alive connection, run the
buyers' next steps when they fall due (a waiting buyer costs nothing between polls). Bounded by --deadline.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from benchmarks import report

PRICE = 10_000
MAX_HOLD_ATTEMPTS = 3
FIRST_POLL_SECONDS = 2.0  # a join answers WAIT without retryAfterSeconds: poll after the shortest interval


@dataclass
class Sample:
    endpoint: str
    started: float  # seconds since the sale began
    seconds: float
    status: int


@dataclass(order=True)
class Due:
    at: float
    buyer: int = field(compare=False)


@dataclass
class Buyer:
    user: str
    bearer: str
    step: str = "join"
    queue_token: str | None = None
    hold_attempts: int = 0
    reservation_id: str | None = None
    outcome: str | None = None  # "bought", "sold out", "gave up", "expired", "error"


class Sale:
    def __init__(self, server: Any, concert_id: str, schedule_id: str, users: int, clients: int) -> None:
        self.server = server
        self.concert_id = concert_id
        self.schedule_id = schedule_id
        names = [f"buyer-{concert_id[:6]}-{n}" for n in range(users)]
        self.buyers = [Buyer(name, server.token(name)) for name in names]
        self.clients = clients
        self.samples: list[Sample] = []
        self.polls_per_buyer: Counter[int] = Counter()
        self._due: list[Due] = []
        self._lock = threading.Condition()
        self._done = 0
        self.started = 0.0
        self.rng = random.Random(11)

    # ---- scheduling ----
    def run(self, join_seconds: float, deadline_seconds: float, progress: Any) -> None:
        self.started = time.monotonic()
        for n in range(len(self.buyers)):
            self._due.append(Due(self.started + self.rng.uniform(0, join_seconds), n))
        heapq.heapify(self._due)
        self._deadline = self.started + deadline_seconds
        self._progress = progress
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _client(self) -> None:
        session = requests.Session()
        try:
            while True:
                with self._lock:
                    while True:
                        if self._done == len(self.buyers) or time.monotonic() > self._deadline:
                            self._lock.notify_all()
                            return
                        if self._due and self._due[0].at <= time.monotonic():
                            due = heapq.heappop(self._due)
                            break
                        wait = (self._due[0].at - time.monotonic()) if self._due else 0.5
                        self._lock.wait(timeout=max(0.001, min(wait, 0.5)))
                delay = self._step(session, self.buyers[due.buyer], due.buyer)
                with self._lock:
                    if delay is None:
                        self._done += 1
                        self._progress.update(1)
                    else:
                        heapq.heappush(self._due, Due(time.monotonic() + delay, due.buyer))
                    self._lock.notify()
        finally:
            session.close()

    # ---- one buyer's steps ----
    def _call(self, session: requests.Session, buyer: Buyer, method: str, path: str, endpoint: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {buyer.bearer}", **kw.pop("headers", {})}
        if buyer.queue_token:
            headers["X-Queue-Token"] = buyer.queue_token
        started = time.monotonic()
        try:
            response = session.request(method, f"{self.server.url}{path}", headers=headers, timeout=60, **kw)
            status = response.status_code
        except requests.RequestException:
            response, status = None, 599
        self.samples.append(Sample(endpoint, started - self.started, time.monotonic() - started, status))
        return response

    def _step(self, session: requests.Session, buyer: Buyer, n: int) -> float | None:  # noqa: PLR0911
        cid = self.concert_id
        if buyer.step == "join":
            response = self._call(session, buyer, "POST", f"/concerts/{cid}/queue/tokens", "POST queue/tokens")
            if response is None or response.status_code not in (200, 201):
                return self._finish(buyer, "error")
            body = response.json()
            buyer.queue_token = body["token"]
            buyer.step = "schedules" if body["status"] == "ACTIVE" else "poll"
            return 0.0 if buyer.step == "schedules" else FIRST_POLL_SECONDS
        if buyer.step == "poll":
            response = self._call(session, buyer, "GET", f"/concerts/{cid}/queue/position", "GET queue/position")
            self.polls_per_buyer[n] += 1
            if response is None or response.status_code != 200:
                return self._finish(
                    buyer, "expired" if response is not None and response.status_code == 410 else "error"
                )
            body = response.json()
            if body["status"] == "ACTIVE":
                buyer.step = "schedules"
                return 0.0
            return float(body["retryAfterSeconds"])
        if buyer.step == "schedules":
            self._call(session, buyer, "GET", f"/concerts/{cid}/schedules", "GET schedules")
            buyer.step = "seats"
            return 0.0
        if buyer.step == "seats":
            response = self._call(
                session, buyer, "GET", f"/concerts/{cid}/schedules/{self.schedule_id}/seats", "GET seats"
            )
            free = [seat["number"] for seat in response.json()["seats"]] if response is not None and response.ok else []
            if not free:
                return self._finish(buyer, "sold out")
            buyer.hold_attempts += 1
            hold = self._call(
                session,
                buyer,
                "POST",
                "/reservations",
                "POST /reservations",
                json={"scheduleId": self.schedule_id, "seatNumber": self.rng.choice(free)},
            )
            if hold is not None and hold.status_code == 201:
                buyer.reservation_id = hold.json()["reservationId"]
                buyer.step = "charge"
                return 0.0
            return 0.0 if buyer.hold_attempts < MAX_HOLD_ATTEMPTS else self._finish(buyer, "gave up")
        if buyer.step == "charge":
            response = self._call(
                session,
                buyer,
                "POST",
                "/wallet/charges",
                "POST /wallet/charges",
                json={"amount": PRICE},
                headers={"Idempotency-Key": f"charge-{buyer.user}"},
            )
            if response is None or response.status_code != 200:
                return self._finish(buyer, "error")
            buyer.step = "pay"
            return 0.0
        response = self._call(
            session,
            buyer,
            "POST",
            "/payments",
            "POST /payments",
            json={"reservationId": buyer.reservation_id},
            headers={"Idempotency-Key": f"pay-{buyer.user}"},
        )
        return self._finish(buyer, "bought" if response is not None and response.status_code == 201 else "error")

    @staticmethod
    def _finish(buyer: Buyer, outcome: str) -> None:
        buyer.outcome = outcome


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if len(values) < 2:
        only = values[0] * 1000 if values else 0.0
        return {"p50_ms": round(only, 1), "p95_ms": round(only, 1), "p99_ms": round(only, 1)}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
    }


def summarize(sale: Sale, seconds: float) -> dict[str, Any]:
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    for sample in sale.samples:
        by_endpoint[sample.endpoint].append(sample)
    endpoints = []
    for endpoint, samples in by_endpoint.items():
        endpoints.append(
            {
                "endpoint": endpoint,
                "requests": len(samples),
                "per_second": round(len(samples) / seconds, 1),
                "statuses": dict(sorted(Counter(str(s.status) for s in samples).items())),
                **percentiles([s.seconds for s in samples]),
            }
        )
    outcomes = Counter(buyer.outcome or "unfinished" for buyer in sale.buyers)
    polls = list(sale.polls_per_buyer.values())
    return {
        "seconds": round(seconds, 1),
        "requests": len(sale.samples),
        "requests_per_second": round(len(sale.samples) / seconds, 1),
        "tickets_per_second": round(outcomes["bought"] / seconds, 1),
        "all": percentiles([s.seconds for s in sale.samples]),
        "endpoints": endpoints,
        "outcomes": dict(outcomes),
        "server_errors": sum(s.status >= 500 for s in sale.samples),
        "polls_per_waiting_buyer": round(statistics.fmean(polls), 1) if polls else 0.0,
    }


def plot(sale: Sale, path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = int(max((s.started + s.seconds for s in sale.samples), default=1)) + 1
    per_second: dict[str, list[int]] = defaultdict(lambda: [0] * end)
    latency: list[list[float]] = [[] for _ in range(end)]
    for sample in sale.samples:
        second = int(sample.started + sample.seconds)
        per_second[sample.endpoint][second] += 1
        latency[second].append(sample.seconds * 1000)
    figure, (rates, latencies) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    seconds = list(range(end))
    bottom = [0] * end
    for endpoint, counts in sorted(per_second.items()):
        rates.bar(seconds, counts, bottom=bottom, width=1.0, label=endpoint, align="edge")
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    rates.set_ylabel("requests / s")
    rates.legend(fontsize=7, ncols=2, loc="upper right")
    rates.set_title(f"Sale: {len(sale.buyers)} buyers on the local server (DynamoDB Local)")
    for q, style in ((50, "-"), (95, "--"), (99, ":")):
        series = [statistics.quantiles(v, n=100, method="inclusive")[q - 1] if len(v) > 1 else None for v in latency]
        latencies.plot(seconds, series, style, label=f"p{q}")
    latencies.set_ylabel("latency ms (all endpoints)")
    latencies.set_xlabel("seconds since the first join")
    latencies.set_yscale("log")
    latencies.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import boto3
    from tqdm import tqdm

    from devserver.dynamodb_local import use_local_credentials
    from devserver.testing import running_server
    from tests.support.audit import audit
    from tests.support.streams import settle_hint

    use_local_credentials()  # dummy keys and region: nothing here may reach AWS

    seats = args.seats or min(args.users, 5000)
    overrides = {"ActiveTokenTtlSeconds": "300", "SeatHoldTtlSeconds": "300", "QueueStateCacheSeconds": "1"}
    with running_server(parameter_overrides=overrides, workers=args.workers, scheduler=False) as server:
        ops = requests.post(
            f"{server.url}/admin/concerts",
            headers={"Authorization": f"Bearer {server.token('ops', admin=True)}", "Idempotency-Key": "benchmark-sale"},
            json={
                "title": "Benchmark sale",
                "queueCapacity": args.capacity,
                "queueShards": args.shards,
                "schedules": [
                    {
                        "startsAt": "2031-12-24T19:00:00Z",
                        "seats": [{"number": n, "price": PRICE} for n in range(1, seats + 1)],
                    }
                ],
            },
            timeout=120,
        )
        ops.raise_for_status()
        concert = ops.json()
        sale = Sale(server, concert["concertId"], concert["schedules"][0]["scheduleId"], args.users, args.clients)
        stop = threading.Event()
        admit_runs: list[float] = []

        def admit() -> None:
            while not stop.wait(args.admit_every):
                started = time.monotonic()
                try:
                    server.run_schedule("Admit")
                except requests.RequestException:
                    continue
                admit_runs.append(time.monotonic() - started)

        admitter = threading.Thread(target=admit, daemon=True)
        admitter.start()
        with tqdm(total=args.users, desc="buyers done", unit="buyer", mininterval=1.0) as progress:
            began = time.monotonic()
            sale.run(args.join_seconds, args.deadline, progress)
            seconds = time.monotonic() - began
        stop.set()
        admitter.join(timeout=60)
        client = boto3.client("dynamodb", endpoint_url=server.dynamodb_endpoint)
        table = server.table_name("TicketlineTable")
        settle_hint(client, table, sale.schedule_id)  # the stream consumer is a second or two behind the last hold
        audit_started = time.monotonic()
        findings = audit(client, table, max_holds=int(server.parameters["MaxHoldsPerSchedule"]))
        audit_seconds = time.monotonic() - audit_started
    plot(sale, report.RESULTS_DIR / "sale.png")
    result = summarize(sale, seconds)
    result |= {
        "users": args.users,
        "seats": seats,
        "capacity": args.capacity,
        "queue_shards": args.shards,
        "server_workers": args.workers,
        "client_threads": args.clients,
        "join_seconds": args.join_seconds,
        "admit_every_seconds": args.admit_every,
        "admit_runs": len(admit_runs),
        "admit_run_ms_median": round(statistics.median(admit_runs) * 1000, 1) if admit_runs else None,
        "audit": {
            "ok": findings.ok,
            "violations": findings.violations[:20],
            "figures": dict(findings.figures),
            "seconds": round(audit_seconds, 1),
        },
        "plot": "benchmarks/sale.png",
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--seats", type=int, default=0, help="default: one per user (at most 5,000)")
    parser.add_argument("--capacity", type=int, default=200, help="the concert's queueCapacity (ACTIVE at once)")
    parser.add_argument("--shards", type=int, default=1, help="the concert's queueShards")
    parser.add_argument("--workers", type=int, default=4, help="local server worker processes")
    parser.add_argument("--clients", type=int, default=16, help="load-generator threads (connections)")
    parser.add_argument("--join-seconds", type=float, default=5.0, help="buyers join evenly within this time")
    parser.add_argument("--admit-every", type=float, default=1.0, help="seconds between scheduler Admit runs")
    parser.add_argument("--deadline", type=float, default=270.0, help="stop the buyers after this many seconds")
    args = parser.parse_args(argv)
    result = run(args)
    report.save(
        "sale", f"make bench-sale  (python -m benchmarks.sale {' '.join(sys.argv[1:]) or '--users 2000'})", result
    )
    print(
        report.table(
            ["endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "statuses"],
            [
                (e["endpoint"], e["requests"], e["per_second"], e["p50_ms"], e["p95_ms"], e["p99_ms"], e["statuses"])
                for e in result["endpoints"]
            ],
        )
    )
    print(
        f"{result['requests']} requests in {result['seconds']} s = {result['requests_per_second']} req/s; "
        f"outcomes {result['outcomes']}; audit {'OK' if result['audit']['ok'] else 'FAILED'}"
    )
    for violation in result["audit"]["violations"]:
        print("  ", violation)
    return 0 if result["audit"]["ok"] and result["server_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
