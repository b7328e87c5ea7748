"""A stadium-size concert: one POST of a 100,000-seat date, its background publication, and its seat list paged.

    python -m benchmarks.stadium [--seats 100000]
    make bench-stadium

On DynamoDB Local, in-process: the admin and publisher functions run through the local API Gateway and Lambda host
under their IAM roles, with the local server's SQS between them: the creation sends its ranges to PublishSeatsQueue
on moto's SQS server and devserver/queues.py (Lambda's SQS event source) hands them to the publisher in batches of
10 (the template's BatchSize), one date's FIFO group at a time. Every DynamoDB request is recorded and billed by
AWS's rules (benchmarks/capacity.py); the SQS requests are not DynamoDB's and are not billed here.

AWS's own limit decides the publication's time there: one date's seats share a partition key, and a partition takes
about 1,000 write units a second, so a date's seats take seats/1,000 seconds whatever the Lambda does; dates are
separate partitions and separate FIFO groups, published in parallel.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import boto3

from benchmarks import report
from benchmarks.capacity import total_units
from benchmarks.inprocess import InProcessApi, dynamodb_local
from devserver import DEFAULT_TEMPLATE
from devserver.lambda_host import LambdaHost
from devserver.queues import QueuePoller, running_queues
from devserver.template import FunctionSpec, load_template
from ticketline.models.catalog import MAX_SEATS_PER_SCHEDULE
from ticketline.services.catalog import SYNC_SEAT_LIMIT

PARTITION_WRITE_UNITS_PER_SECOND = 1_000  # DynamoDB's per-partition write throughput
LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
API_GATEWAY_SECONDS = 29
MAX_PAGE_RETRIES = 5  # a 503 (DynamoDB Local past the client's read timeout on a loaded machine) is retried
STARTS_AT = "2031-06-01T19:00:00Z"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--seats",
        type=int,
        default=MAX_SEATS_PER_SCHEDULE,
        help=f"seats of the one date: above {SYNC_SEAT_LIMIT:,} (at or below it the creation publishes at once, "
        f"with no queue to measure), at most {MAX_SEATS_PER_SCHEDULE:,}",
    )
    args = parser.parse_args(argv)
    if not SYNC_SEAT_LIMIT < args.seats <= MAX_SEATS_PER_SCHEDULE:
        parser.error(f"--seats must be above {SYNC_SEAT_LIMIT:,} and at most {MAX_SEATS_PER_SCHEDULE:,}")
    with dynamodb_local() as endpoint, running_queues(load_template(DEFAULT_TEMPLATE)) as sqs_endpoint:
        os.environ["SQS_ENDPOINT_URL"] = sqs_endpoint  # before the functions' settings are read
        api = InProcessApi(endpoint)
        result = run(api, args.seats, sqs_endpoint)
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
    print(
        report.save(
            "stadium",
            f"make bench-stadium  (python -m benchmarks.stadium --seats {args.seats})",
            {**result, "targets": targets},
        )
    )
    return 0 if all(t["met"] for t in targets) else 1


def run(api: InProcessApi, seats: int, sqs_endpoint: str) -> dict[str, Any]:
    sqs = boto3.client("sqs", endpoint_url=sqs_endpoint)
    created = create(api, seats, sqs)
    publish = publish_all(api, sqs_endpoint, sqs, seats)
    concert_id, schedule_id = created["concertId"], created["schedules"][0]["scheduleId"]
    publish["status"] = api.call("GET", f"/admin/concerts/{concert_id}", label="sale", user="ops", admin=True).body[
        "status"
    ]
    return {
        "engine": "DynamoDB Local and moto's SQS server (admin and publisher functions in-process, IAM roles enforced)",
        "seats": seats,
        "create": created["figures"],
        "publish": publish,
        "pages": list_pages(api, concert_id, schedule_id),
    }


def create(api: InProcessApi, seats: int, sqs: Any) -> dict[str, Any]:
    """One POST; its answer, with the ranges it sent to the queue."""
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
    figures = {
        "seconds": round(seconds, 2),
        "status": answer.status,
        "requests": len(answer.requests),
        "ranges": _messages_left(sqs, api.template.queue("PublishSeatsQueue").url),
        "wru": round(total_units(answer.requests).wru, 1),
    }
    return {**answer.body, "figures": figures}


def _messages_left(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


class _WatchedHost:
    """The Lambda host, noting what the queue hands the publisher: the largest message, and the redeliveries."""

    def __init__(self, host: LambdaHost) -> None:
        self._host = host
        self.largest_message_bytes = 0
        self.redelivered = 0

    def invoke(self, function: FunctionSpec, event: Any) -> Any:
        for record in event["Records"]:
            self.largest_message_bytes = max(self.largest_message_bytes, len(record["body"].encode()))
            self.redelivered += record["attributes"]["ApproximateReceiveCount"] != "1"
        return self._host.invoke(function, event)


def publish_all(api: InProcessApi, sqs_endpoint: str, sqs: Any, seats: int) -> dict[str, Any]:
    """Lambda's SQS event source on the local queue until it is empty (a failed message comes back after the
    queue's visibility timeout, as on AWS)."""
    host = _WatchedHost(api._host)
    poller = QueuePoller(api.template, host, sqs_endpoint)
    url = api.template.queue("PublishSeatsQueue").url
    started = time.perf_counter()
    with api.log.labelled("publish") as made:
        while _messages_left(sqs, url):
            poller.poll_once(wait_seconds=1)
    seconds = time.perf_counter() - started
    cost = total_units(made)
    return {
        "seconds": round(seconds, 1),
        "seats_per_second": round(seats / seconds),
        "requests": len(made),
        "redelivered": host.redelivered,
        "largest_message_bytes": host.largest_message_bytes,
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
        "rru": round(total_units(made).rru, 1),
    }


if __name__ == "__main__":
    raise SystemExit(main())
