"""Cost per call: every DynamoDB request each endpoint makes, and the capacity units AWS would bill.

    python -m benchmarks.cost            # on DynamoDB Local (the real engine), ~20 s
    make bench-cost

Drives the real handlers in this process (the local server's gateway builds the API Gateway events) through
one buyer journey after another, records each request with a botocore hook (recorder.py) and prices it
(capacity.py). Fails (exit 1) when a target is broken: a position poll is 1 read request; a hold is 1 write
request; a charge, a payment (of one or several holds) and a cancellation are 2 requests, one read and one
transaction (the idempotency record inside it), and their replays 1 read; a release is 1 write request; no Scan
and no Select=COUNT on a request path.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks import report
from benchmarks.capacity import Units, billed_units
from benchmarks.inprocess import Answer, InProcessApi, dynamodb_local
from benchmarks.recorder import DynamoRequest

PRICE = 50_000
# The journey's labels; targets and the dollar model refer to them.
CREATE_CONCERT = "POST /admin/concerts (1 date, 200 seats)"
JOIN_NEW_UNCACHED = "POST queue/tokens: new token, queue state not cached"
JOIN_NEW = "POST queue/tokens: new token"
JOIN_AGAIN = "POST queue/tokens: the token held"
POSITION_WAIT = "GET queue/position: WAIT"
POSITION_WAIT_UNCACHED = "GET queue/position: WAIT, queue state not cached"
POSITION_ACTIVE = "GET queue/position: ACTIVE"
SCHEDULES = "GET schedules"
SEATS = "GET seats (200 seats)"
HOLD = "POST /reservations: hold a free seat"
HOLD_TAKEN = "POST /reservations: seat taken (409)"
RESERVATION = "GET /reservations/{id}"
BALANCE = "GET /wallet"
CHARGE = "POST /wallet/charges"
CHARGE_REPLAY = "POST /wallet/charges: same Idempotency-Key again"
HISTORY = "GET /wallet/history"
PAY = "POST /payments"
PAY_REPLAY = "POST /payments: same Idempotency-Key again"
CONCERTS = "GET /concerts (public)"
CONCERT = "GET /concerts/{id} (public)"
PAY_SEVERAL = "POST /payments: two holds at once"
RELEASE = "DELETE /reservations/{id}: give a hold back"
RELEASE_AGAIN = "DELETE /reservations/{id}: released already"
MY_TICKETS = "GET /reservations"
CANCEL = "POST /reservations/{id}/cancellation"
CANCEL_REPLAY = "POST /reservations/{id}/cancellation: same Idempotency-Key again"
OPERATOR_SALE = "GET /admin/concerts/{id}: the operator's view of the sale"
QUEUE_CHANGE = "PATCH /admin/concerts/{id}/queue: pause, resume"
ADMIT_RUN = "scheduler Admit"
EXPIRE_RUN = "scheduler Expire"
RECOUNT_RUN = "scheduler Recount"
STREAM_BATCH = "stream SeatChanges: one batch, the journey's holds and sales"
# Not request paths: run by EventBridge or by the table stream, never while a client waits.
BACKGROUND_PREFIXES = (ADMIT_RUN, EXPIRE_RUN, RECOUNT_RUN, STREAM_BATCH)
DISCOVERY_LABELS = (CONCERTS, CONCERT)

POSITION_LABELS = (POSITION_WAIT, POSITION_WAIT_UNCACHED, POSITION_ACTIVE)


@dataclass(frozen=True)
class Target:
    name: str
    labels: tuple[str, ...]  # empty: every request path (no background work)
    check: Callable[[Answer], str | None]  # None: met; else what is wrong with this call

    def applies_to(self, label: str) -> bool:
        return label in self.labels if self.labels else on_request_path(label)


def on_request_path(label: str) -> bool:
    """A client waits for this call (not the scheduler's runs, not the stream batch)."""
    return not label.startswith(BACKGROUND_PREFIXES)


def _one_read_request(answer: Answer) -> str | None:
    ops = [r.operation for r in answer.requests]
    return None if len(ops) == 1 and answer.requests[0].is_read else f"{len(ops)} requests: {', '.join(ops)}"


def _one_write_request(answer: Answer) -> str | None:
    writes = [r.operation for r in answer.requests if r.is_write]
    return None if len(writes) == 1 else f"{len(writes)} write requests: {', '.join(writes)}"


def _one_read_then_one_transaction(answer: Answer) -> str | None:
    ops = [r.operation for r in answer.requests]
    return None if ops == ["BatchGetItem", "TransactWriteItems"] else f"{len(ops)} requests: {', '.join(ops)}"


def _no_scan_or_count(answer: Answer) -> str | None:
    bad = [r for r in answer.requests if r.operation == "Scan" or r.is_count]
    return ", ".join(r.operation + (" Select=COUNT" if r.is_count else "") for r in bad) or None


TARGETS = (
    Target("position poll = 1 read request", POSITION_LABELS, _one_read_request),
    Target("discovery = 1 read request", DISCOVERY_LABELS, _one_read_request),
    Target("hold = 1 write request", (HOLD,), _one_write_request),
    Target("charge = 1 read + 1 transaction", (CHARGE,), _one_read_then_one_transaction),
    Target("payment = 1 read + 1 transaction", (PAY, PAY_SEVERAL), _one_read_then_one_transaction),
    Target("replay = 1 read request", (CHARGE_REPLAY, PAY_REPLAY, CANCEL_REPLAY), _one_read_request),
    Target("release = 1 write request", (RELEASE,), _one_write_request),
    Target("cancellation = 1 read + 1 transaction", (CANCEL,), _one_read_then_one_transaction),
    Target("operator's sale = 1 read request", (OPERATOR_SALE,), _one_read_request),
    Target("queue change = 1 write request", (QUEUE_CHANGE,), _one_write_request),
    Target("no Scan, no Select=COUNT on a request path", (), _no_scan_or_count),
)


def run_journeys(api: InProcessApi, buyers: int, seats: int = 200) -> list[Answer]:
    """Buyers through every endpoint, each call labelled; capacity is half the buyers, so the rest WAIT."""
    answers: list[Answer] = []

    def call(method: str, path: str, label: str, **kw: Any) -> Answer:
        answer = api.call(method, path, label=label, **kw)
        answers.append(answer)
        if answer.status >= 500:
            raise RuntimeError(f"{label}: {answer.status} {answer.body}")
        return answer

    capacity = max(1, buyers // 2)
    concert = call(
        "POST",
        "/admin/concerts",
        CREATE_CONCERT,
        user="ops",
        admin=True,
        headers={"Idempotency-Key": uuid.uuid4().hex},
        body={
            "title": "Benchmark night",
            "queueCapacity": capacity,
            "schedules": [
                {
                    "startsAt": "2031-12-24T19:00:00Z",
                    "seats": [{"number": n, "price": PRICE} for n in range(1, seats + 1)],
                }
            ],
        },
    ).body
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    users = [f"bench-{uuid.uuid4().hex[:8]}-{n}" for n in range(buyers)]
    tokens: dict[str, str] = {}
    joins = f"/concerts/{concert_id}/queue/tokens"
    position = f"/concerts/{concert_id}/queue/position"

    def queue_headers(user: str) -> dict[str, str]:
        return {"X-Queue-Token": tokens[user]}

    def hold(user: str, seat: int, label: str = HOLD) -> Any:
        body = {"scheduleId": schedule_id, "seatNumber": seat}
        answer = call("POST", "/reservations", label, user=user, headers=queue_headers(user), body=body)
        return answer.body.get("reservationId")

    call("GET", "/concerts", CONCERTS, query="limit=20")  # what a client app shows before the buyer joins
    call("GET", f"/concerts/{concert_id}", CONCERT)
    cache_seconds = float(api.template.parameters.get("QueueStateCacheSeconds", "1"))
    time.sleep(cache_seconds + 0.05)  # the first join finds no cached queue state
    for n, user in enumerate(users):
        tokens[user] = call("POST", joins, JOIN_NEW_UNCACHED if n == 0 else JOIN_NEW, user=user).body["token"]
    call("POST", joins, JOIN_AGAIN, user=users[0])
    active, waiting = users[:capacity], users[capacity:]
    for user in waiting:
        call("GET", position, POSITION_WAIT, user=user, headers=queue_headers(user))
    time.sleep(cache_seconds + 0.05)
    if waiting:
        call("GET", position, POSITION_WAIT_UNCACHED, user=waiting[0], headers=queue_headers(waiting[0]))
    for user in active:
        call("GET", position, POSITION_ACTIVE, user=user, headers=queue_headers(user))

    for n, user in enumerate(active):
        headers = queue_headers(user)
        call("GET", f"/concerts/{concert_id}/schedules", SCHEDULES, user=user, headers=headers)
        call("GET", f"/concerts/{concert_id}/schedules/{schedule_id}/seats", SEATS, user=user, headers=headers)
        reservation_id = hold(user, n + 1)
        if n > 0:  # a seat the previous buyer holds or bought (not the one they cancel)
            hold(user, seats // 2 + n - 1, HOLD_TAKEN)
        call("GET", f"/reservations/{reservation_id}", RESERVATION, user=user)
        extra_seats = (seats // 2 + n, seats // 2 + capacity + n)
        _purchase(call, hold, user, headers=headers, reservation_id=reservation_id, seats=extra_seats)
    call("GET", f"/admin/concerts/{concert_id}", OPERATOR_SALE, user="ops", admin=True)  # the operator watches,
    for paused in (True, False):  # pauses and resumes
        body = {"paused": paused}
        call("PATCH", f"/admin/concerts/{concert_id}/queue", QUEUE_CHANGE, user="ops", admin=True, body=body)
    answers += background_runs(api)
    return answers


def background_runs(api: InProcessApi) -> list[Answer]:
    """What follows the journey off the request path: the stream batch, then each scheduler task once."""
    answers = [api.deliver_streams(label=STREAM_BATCH)]
    for name, label in (("Expire", EXPIRE_RUN), ("Admit", ADMIT_RUN), ("Recount", RECOUNT_RUN)):
        run = api.run_schedule(name, label=label)
        summary = ", ".join(f"{key} {value}" for key, value in run.body.items() if key != "task")
        run.label = f"{label} ({summary})"
        for request in run.requests:
            request.label = run.label
        answers.append(run)
    return answers


def _purchase(
    call: Callable[..., Answer],
    hold: Callable[[str, int], str],
    user: str,
    *,
    headers: dict[str, str],
    reservation_id: str,
    seats: tuple[int, int],
) -> None:
    """One more hold paid with the first (every other buyer: the first alone), one given back, the tickets
    listed, one cancelled; each money call once more with the same Idempotency-Key."""
    extra, given_back = hold(user, seats[0]), hold(user, seats[1])
    call("DELETE", f"/reservations/{given_back}", RELEASE, user=user)
    call("DELETE", f"/reservations/{given_back}", RELEASE_AGAIN, user=user)
    call("GET", "/wallet", BALANCE, user=user)
    charge_key = {"Idempotency-Key": f"charge-{user}"}
    call("POST", "/wallet/charges", CHARGE, user=user, headers=charge_key, body={"amount": 2 * PRICE})
    call("POST", "/wallet/charges", CHARGE_REPLAY, user=user, headers=charge_key, body={"amount": 2 * PRICE})
    call("GET", "/wallet/history", HISTORY, user=user, query="limit=20")
    several = int(user.rsplit("-", 1)[1]) % 2 == 1
    body = {"reservationIds": [reservation_id, extra]} if several else {"reservationId": reservation_id}
    pay_headers = headers | {"Idempotency-Key": f"pay-{user}"}
    call("POST", "/payments", PAY_SEVERAL if several else PAY, user=user, headers=pay_headers, body=body)
    call("POST", "/payments", PAY_REPLAY, user=user, headers=pay_headers, body=body)
    call("GET", "/reservations", MY_TICKETS, user=user, query="limit=20")
    cancel = f"/reservations/{reservation_id}/cancellation"
    cancel_headers = {"Idempotency-Key": f"cancel-{user}"}
    call("POST", cancel, CANCEL, user=user, headers=cancel_headers)
    call("POST", cancel, CANCEL_REPLAY, user=user, headers=cancel_headers)


def by_label(answers: Iterable[Answer]) -> dict[str, list[Answer]]:
    groups: dict[str, list[Answer]] = {}
    for answer in answers:
        groups.setdefault(answer.label, []).append(answer)
    return groups


def summarize(answers: Iterable[Answer]) -> list[dict[str, Any]]:
    """A row per label: its calls' requests, the most common sequence of operations, capacity units, times."""
    rows = []
    for label, group in by_label(answers).items():
        counts = [len(a.requests) for a in group]
        sequences = Counter(_sequence(a.requests) for a in group)
        units = [sum((billed_units(r) for r in a.requests), start=Units(reported=True)) for a in group]
        rows.append(
            {
                "label": label,
                "calls": len(group),
                "statuses": ", ".join(f"{s}x{n}" for s, n in sorted(Counter(a.status for a in group).items())),
                "requests_min": min(counts),
                "requests_max": max(counts),
                "requests_mean": round(statistics.fmean(counts), 2),
                "write_requests_mean": round(statistics.fmean(sum(r.is_write for r in a.requests) for a in group), 2),
                "operations": sequences.most_common(1)[0][0] or "(none)",
                "wru_mean": round(statistics.fmean(u.wru for u in units), 2),
                "rru_mean": round(statistics.fmean(u.rru for u in units), 2),
                # all from the engine's ConsumedCapacity (else partly estimated: failed writes)
                "units_reported": all(r.consumed and not r.failed for a in group for r in a.requests),
                "handler_ms_median": round(statistics.median(a.handler_seconds for a in group) * 1000, 1),
                "dynamodb_ms_median": round(statistics.median(a.dynamodb_seconds for a in group) * 1000, 1),
            }
        )
    return rows


def _sequence(requests: Sequence[DynamoRequest]) -> str:
    """Operation names in order, repeats folded: "BatchWriteItem x9 -> TransactWriteItems"."""
    folded = [(name, len(list(run))) for name, run in itertools.groupby(map(_operation_name, requests))]
    return " -> ".join(name if n == 1 else f"{name} x{n}" for name, n in folded)


def _operation_name(request: DynamoRequest) -> str:
    name = request.operation
    if request.index:
        name += f"({request.index})"
    if request.is_count:
        name += "[COUNT]"
    if request.error_code is not None:
        name += f" FAILED:{request.error_code.removesuffix('Exception')}"
    return name


def check_targets(answers: Sequence[Answer]) -> list[dict[str, Any]]:
    results = []
    for target in TARGETS:
        relevant = [a for a in answers if target.applies_to(a.label)]
        problems = Counter(f"{a.label}: {p}" for a in relevant if (p := target.check(a)) is not None)
        results.append(
            {
                "target": target.name,
                "calls_checked": len(relevant),
                "met": not problems and bool(relevant),
                "problems": [f"{p} (x{n})" for p, n in problems.items()] or ([] if relevant else ["no call checked"]),
            }
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=10, help="buyers through the journey (half ACTIVE, half WAIT)")
    args = parser.parse_args(argv)
    with dynamodb_local() as endpoint:
        api = InProcessApi(endpoint)
        run_journeys(api, 2)  # warm-up: every handler imported, every client connected
        api.log.clear()
        answers = run_journeys(api, args.buyers)
    rows = summarize(answers)
    targets = check_targets(answers)
    report.save(
        "cost",
        f"make bench-cost  (python -m benchmarks.cost --buyers {args.buyers})",
        {
            "engine": "DynamoDB Local 10.3.0 (in-process handlers, warm)",
            "buyers": args.buyers,
            "endpoints": rows,
            "targets": targets,
            "handler_overhead": handler_overhead(answers),
        },
    )
    _print(rows, targets)
    return 0 if all(t["met"] for t in targets) else 1


def handler_overhead(answers: Sequence[Answer]) -> dict[str, Any]:
    """Time in our code (handler minus DynamoDB calls) against time inside the DynamoDB calls, per label."""
    per_label: dict[str, Any] = {}
    for label, calls in by_label(answers).items():
        group = [a for a in calls if a.requests]
        if not group:
            continue
        handler = sum(a.handler_seconds for a in group)
        dynamodb = sum(a.dynamodb_seconds for a in group)
        per_label[label] = {
            "handler_ms_mean": round(handler / len(group) * 1000, 2),
            "dynamodb_ms_mean": round(dynamodb / len(group) * 1000, 2),
            "our_code_ms_mean": round((handler - dynamodb) / len(group) * 1000, 2),
            "our_code_over_dynamodb": round((handler - dynamodb) / dynamodb, 3) if dynamodb else None,
        }
    return per_label


def _print(rows: Sequence[dict[str, Any]], targets: Sequence[dict[str, Any]]) -> None:
    columns = ("label", "calls", "requests_min", "write_requests_mean", "wru_mean", "rru_mean", "operations")
    print(
        report.table(
            ["call", "n", "requests", "writes", "WRU", "RRU", "operations"],
            [[_range(r) if column == "requests_min" else r[column] for column in columns] for r in rows],
        )
    )
    for target in targets:
        print(f"{'PASS' if target['met'] else 'FAIL'}  {target['target']}  {'; '.join(target['problems'])}")
    print(f"written: {report.RESULTS_DIR / 'cost.json'} and {report.DOC_PATH}")


def _range(row: dict[str, Any]) -> str:
    low, high = row["requests_min"], row["requests_max"]
    return str(low) if low == high else f"{low}-{high}"


if __name__ == "__main__":
    sys.exit(main())
