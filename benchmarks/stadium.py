"""A stadium-size concert: one POST of a 100,000-seat date, its background publication, and its seat list paged.

    python -m benchmarks.stadium [--seats 100000]
    make bench-stadium

On DynamoDB Local, in-process: the admin and publisher functions run through the local API Gateway and Lambda host
under their IAM roles. The SQS queue between them is not part of this measure: the ranges the creation sends are
kept and handed to the publisher in batches of 10 (the template's BatchSize), in order, one date's group at a time
as SQS FIFO delivers them. Every DynamoDB request is recorded and billed by AWS's rules (benchmarks/capacity.py).

AWS's own limit decides the publication's time there: one date's seats share a partition key, and a partition takes
about 1,000 write units a second, so a date's seats take seats/1,000 seconds whatever the Lambda does; dates are
separate partitions and separate FIFO groups, published in parallel.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from benchmarks import report
from benchmarks.capacity import Units, billed_units
from benchmarks.inprocess import InProcessApi, dynamodb_local

PARTITION_WRITE_UNITS_PER_SECOND = 1_000  # DynamoDB's per-partition write throughput
LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
API_GATEWAY_SECONDS = 29
SQS_BATCH = 10
MAX_PAGE_RETRIES = 5  # a 503 (DynamoDB Local past the client's read timeout on a loaded machine) is retried
STARTS_AT = "2031-06-01T19:00:00Z"


def units(requests: Sequence[Any]) -> Units:
    return sum((billed_units(r) for r in requests), start=Units(0.0, 0.0))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seats", type=int, default=100_000, help="seats of the one date (at most 100,000)")
    args = parser.parse_args(argv)
    with dynamodb_local() as endpoint:
        api = InProcessApi(endpoint)
        result = run(api, args.seats)
    targets = [
        {
            "target": f"the creation answers within API Gateway's {API_GATEWAY_SECONDS} s",
            "value": f"{result['create']['seconds']:.2f} s",
            "met": result["create"]["seconds"] < API_GATEWAY_SECONDS,
        },
        {
            "target": "every seat page within Lambda's 6 MB response",
            "value": f"largest {result['pages']['largest_bytes']:,} bytes",
            "met": result["pages"]["largest_bytes"] < LAMBDA_RESPONSE_LIMIT_BYTES,
        },
        {
            "target": "every seat written once, the sale open after the last range",
            "value": f"{result['pages']['seats']:,} seats listed, status {result['publish']['status']}",
            "met": result["pages"]["seats"] == args.seats and result["publish"]["status"] == "ON_SALE",
        },
    ]
    report.save(
        "stadium",
        f"make bench-stadium  (python -m benchmarks.stadium --seats {args.seats})",
        {**result, "targets": targets},
    )
    print(json.dumps({**result, "targets": targets}, indent=2))
    return 0 if all(t["met"] for t in targets) else 1


def run(api: InProcessApi, seats: int) -> dict[str, Any]:
    created, records = create(api, seats)
    publish = publish_all(api, records, seats)
    concert_id, schedule_id = created["concertId"], created["schedules"][0]["scheduleId"]
    publish["status"] = api.call("GET", f"/admin/concerts/{concert_id}", label="sale", user="ops", admin=True).body[
        "status"
    ]
    return {
        "engine": "DynamoDB Local (admin and publisher functions in-process, IAM roles enforced)",
        "seats": seats,
        "create": created["figures"],
        "publish": publish,
        "pages": list_pages(api, concert_id, schedule_id),
    }


def create(api: InProcessApi, seats: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One POST; returns its answer and the SQS records its ranges would be delivered as."""
    from ticketline.models.catalog import SeatRangeMessage
    from ticketline.repositories import publishing

    sent: list[SeatRangeMessage] = []

    def keep(self: publishing.SeatRangeQueue, messages: list[SeatRangeMessage]) -> int:
        sent.extend(messages)
        return 0

    publishing.SeatRangeQueue.send = keep  # type: ignore[method-assign]  # the harness stands in for SQS
    half = seats // 2
    blocks = [
        {"section": "FLOOR", "from": 1, "to": half, "price": 150_000},
        {"section": "STAND", "from": half + 1, "to": seats, "price": 80_000},
    ]
    body = {"title": "Stadium", "queueCapacity": 10, "schedules": [{"startsAt": STARTS_AT, "seatBlocks": blocks}]}
    started = time.perf_counter()
    answer = api.call(
        "POST", "/admin/concerts", label="create", user="ops", admin=True, body=body, headers={"Idempotency-Key": "s1"}
    )
    seconds = time.perf_counter() - started
    if answer.status != 202:
        raise RuntimeError(f"create: {answer.status} {answer.body}")
    records = [
        {"messageId": str(n), "body": m.model_dump_json(by_alias=True), "attributes": {"MessageGroupId": m.schedule_id}}
        for n, m in enumerate(sent)
    ]
    figures = {
        "seconds": round(seconds, 2),
        "status": answer.status,
        "requests": len(answer.requests),
        "ranges": len(sent),
        "largest_message_bytes": max(len(r["body"]) for r in records),
        "wru": round(units(answer.requests).wru, 1),
    }
    return {**answer.body, "figures": figures}, records


def publish_all(api: InProcessApi, records: list[dict[str, Any]], seats: int) -> dict[str, Any]:
    """Every record through the publisher, 10 a batch; failed ones come back first, in order, as from SQS FIFO."""
    publisher = next(f for f in api.template.functions if f.logical_id == "PublishSeatsFunction")
    started = time.perf_counter()
    redelivered = 0
    with api.log.labelled("publish") as made:
        waiting = list(records)
        while waiting:
            batch, waiting = waiting[:SQS_BATCH], waiting[SQS_BATCH:]
            try:
                answer = api._host.invoke(publisher, {"Records": batch})
                failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
            except Exception as error:  # every record failed: Lambda reports an error and SQS delivers them all again
                answer, failed = {"error": str(error)}, {r["messageId"] for r in batch}
            redelivered += len(failed)
            if redelivered > len(records):
                raise RuntimeError(f"publish keeps failing: {answer}")
            waiting = [r for r in batch if r["messageId"] in failed] + waiting
    seconds = time.perf_counter() - started
    cost = units(made)
    return {
        "seconds": round(seconds, 1),
        "seats_per_second": round(seats / seconds),
        "requests": len(made),
        "redelivered": redelivered,
        "wru": round(cost.wru, 1),
        "rru": round(cost.rru, 1),
        "wru_per_seat": round(cost.wru / seats, 3),
        "aws_seconds_one_partition": round(cost.wru / PARTITION_WRITE_UNITS_PER_SECOND, 1),
    }


def list_pages(api: InProcessApi, concert_id: str, schedule_id: str) -> dict[str, Any]:
    """The date's free seats, 5,000 a page, from the first page to the last."""
    join = api.call("POST", f"/concerts/{concert_id}/queue/tokens", label="join", user="fan")
    headers = {"X-Queue-Token": join.body["token"]}
    sizes: list[int] = []
    seconds: list[float] = []
    made: list[Any] = []
    listed = retries = 0
    cursor = ""
    while True:
        query = "limit=5000" + (f"&cursor={cursor}" if cursor else "")
        path = f"/concerts/{concert_id}/schedules/{schedule_id}/seats"
        started = time.perf_counter()
        page = api.call("GET", path, label="seats", user="fan", headers=headers, query=query)
        while page.status == 503 and retries < MAX_PAGE_RETRIES:  # a client follows Retry-After
            retries += 1
            made += page.requests
            page = api.call("GET", path, label="seats", user="fan", headers=headers, query=query)
        seconds.append(time.perf_counter() - started)
        if page.status != 200:
            raise RuntimeError(f"seats: {page.status} {page.body}")
        made += page.requests
        sizes.append(len(json.dumps(page.body).encode()))
        listed += len(page.body["seats"])
        cursor = page.body["nextCursor"] or ""
        if not cursor:
            break
    return {
        "count": len(sizes),
        "retried_503": retries,
        "seats": listed,
        "largest_bytes": max(sizes),
        "mean_seconds": round(sum(seconds) / len(seconds), 2),
        "requests": len(made),
        "rru": round(units(made).rru, 1),
    }


if __name__ == "__main__":
    raise SystemExit(main())
