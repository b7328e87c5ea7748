"""A sale: N buyers join within seconds, poll at the server's retryAfterSeconds, are admitted, list the
dates and seats, hold, charge their wallet and pay, against the local server (several workers) on DynamoDB
Local. Prints the throughput and p50/p95/p99 latency per endpoint, draws requests/s and latency over time,
and audits the table at the end (tests/support/audit.py: no seat sold twice, sold seats = PAID reservations =
payment ledger entries, balances = their ledger, no negative balance, no token ACTIVE after payment).

    python -m benchmarks.sale [--users 2000] [--workers 4] [--clients 16]
    make bench-sale ARGS="--users 2000"

The buyers are locust users (benchmarks/locustfile.py, which operators also point at a deployed stack), spawned
evenly over --join-seconds; at most `--clients` requests are in flight at once, as from that many connections (a
waiting buyer costs nothing between polls). Bounded by --deadline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gevent
import numpy
from locust import events  # first: it patches the standard library for gevent before ssl is imported
from locust.env import Environment

from benchmarks import locustfile, report

PRICE = 10_000


@dataclass
class Sample:
    endpoint: str
    started: float  # seconds since the sale began
    seconds: float
    status: int


def run_buyers(url: str, options: argparse.Namespace, users: int, join_seconds: float, deadline: float) -> list[Sample]:
    """Runs `users` locust buyers against `url` until every one is done or `deadline` seconds have passed."""
    from tqdm import tqdm

    samples: list[Sample] = []
    began = time.time()

    def record(name: str, start_time: float, response_time: float, response: Any, **_: Any) -> None:
        status = getattr(response, "status_code", 0) or 599  # 0: no answer (a connection refused or reset)
        samples.append(Sample(name, start_time - began, response_time / 1000, status))

    environment = Environment(user_classes=[locustfile.Buyer], host=url, events=events, parsed_options=options)
    events.request.add_listener(record)
    runner = environment.create_local_runner()
    try:
        runner.start(users, spawn_rate=users / join_seconds)
        with tqdm(total=users, desc="buyers done", unit="buyer", mininterval=1.0) as progress:
            while time.time() - began < deadline and sum(locustfile.OUTCOMES.values()) < users:
                gevent.sleep(0.5)
                progress.update(sum(locustfile.OUTCOMES.values()) - progress.n)
        runner.quit()
    finally:
        events.request.remove_listener(record)
    return samples


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 in ms, interpolated between the nearest samples."""
    cuts = numpy.percentile(seconds, [50, 95, 99]) * 1000 if seconds else [0.0] * 3
    return {f"p{q}_ms": round(float(cut), 1) for q, cut in zip((50, 95, 99), cuts, strict=True)}


def summarize(samples: list[Sample], seconds: float) -> dict[str, Any]:
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_endpoint[sample.endpoint].append(sample)
    endpoints = []
    for endpoint, sampled in by_endpoint.items():
        endpoints.append(
            {
                "endpoint": endpoint,
                "requests": len(sampled),
                "per_second": round(len(sampled) / seconds, 1),
                "statuses": dict(sorted(Counter(str(s.status) for s in sampled).items())),
                **percentiles([s.seconds for s in sampled]),
            }
        )
    outcomes = locustfile.OUTCOMES
    polls = locustfile.POLLS_PER_WAITER
    return {
        "seconds": round(seconds, 1),
        "requests": len(samples),
        "requests_per_second": round(len(samples) / seconds, 1),
        "tickets_per_second": round(outcomes["bought"] / seconds, 1),
        "all": percentiles([s.seconds for s in samples]),
        "endpoints": endpoints,
        "outcomes": dict(outcomes),
        "server_errors": sum(s.status >= 500 for s in samples),
        "polls_per_waiting_buyer": round(statistics.fmean(polls), 1) if polls else 0.0,
    }


def plot(samples: list[Sample], users: int, path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = int(max((s.started + s.seconds for s in samples), default=1)) + 1
    per_second: dict[str, list[int]] = defaultdict(lambda: [0] * end)
    latency: list[list[float]] = [[] for _ in range(end)]
    for sample in samples:
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
    rates.set_title(f"Sale: {users} buyers on the local server (DynamoDB Local)")
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


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Sample]]:
    import boto3
    import requests

    from devserver.dynamodb_local import use_local_credentials
    from devserver.testing import running_server
    from tests.support.audit import audit
    from tests.support.streams import settle_hint

    use_local_credentials()  # dummy keys and region: nothing here may reach AWS

    seats = args.seats or min(args.users, 5000)
    overrides = {"ActiveTokenTtlSeconds": "300", "SeatHoldTtlSeconds": "300", "QueueStateCacheSeconds": "1"}
    with running_server(parameter_overrides=overrides, workers=args.workers, scheduler=False) as server:
        from requests.adapters import HTTPAdapter
        from urllib3.util import Retry

        setup = requests.Session()  # a loaded machine's DynamoDB Local may answer 503: retry as its Retry-After says
        setup.mount("http://", HTTPAdapter(max_retries=Retry(total=3, status_forcelist=[503], allowed_methods=None)))
        ops = setup.post(
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
        schedule_id = concert["schedules"][0]["scheduleId"]
        buyers = argparse.Namespace(
            concert_id=concert["concertId"],
            schedule_id=schedule_id,
            tokens_file="",
            price=PRICE,
            max_in_flight=args.clients,
        )
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
        began = time.monotonic()
        samples = run_buyers(server.url, buyers, args.users, args.join_seconds, args.deadline)
        seconds = time.monotonic() - began
        stop.set()
        admitter.join(timeout=60)
        client = boto3.client("dynamodb", endpoint_url=server.dynamodb_endpoint)
        table = server.table_name("TicketlineTable")
        settle_hint(client, table, schedule_id)  # the stream consumer is a second or two behind the last hold
        audit_started = time.monotonic()
        findings = audit(client, table, max_holds=int(server.parameters["MaxHoldsPerSchedule"]))
        audit_seconds = time.monotonic() - audit_started
    result = summarize(samples, seconds)
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
    return result, samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--seats", type=int, default=0, help="default: one per user (at most 5,000)")
    parser.add_argument("--capacity", type=int, default=200, help="the concert's queueCapacity (ACTIVE at once)")
    parser.add_argument("--shards", type=int, default=1, help="the concert's queueShards")
    parser.add_argument("--workers", type=int, default=4, help="local server worker processes")
    parser.add_argument("--clients", type=int, default=16, help="requests in flight at most (as many connections)")
    parser.add_argument("--join-seconds", type=float, default=5.0, help="buyers join evenly within this time")
    parser.add_argument("--admit-every", type=float, default=1.0, help="seconds between scheduler Admit runs")
    parser.add_argument("--deadline", type=float, default=270.0, help="stop the buyers after this many seconds")
    args = parser.parse_args(argv)
    result, samples = run(args)
    plot(samples, args.users, report.RESULTS_DIR / "sale.png")
    print(
        report.save(
            "sale", f"make bench-sale  (python -m benchmarks.sale {' '.join(sys.argv[1:]) or '--users 2000'})", result
        )
    )
    for violation in result["audit"]["violations"]:
        print("  ", violation)
    return 0 if result["audit"]["ok"] and result["server_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
