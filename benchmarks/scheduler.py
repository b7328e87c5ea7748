"""The scheduler's runs follow the live sale, not the history (issue 14, item 7): each task's DynamoDB requests
and read units with 50 concerts on sale, then again after 10,000 concerts that have ended are added.

    python -m benchmarks.scheduler [--live 50] [--past 10000]
    make bench-scheduler

The real scheduler function (its template IAM role enforced) runs in-process on DynamoDB Local, every request
recorded (benchmarks/recorder.py). The live concerts are created through POST /admin/concerts, each with
waiters in its line; the past ones are written directly (the items concert creation writes, in batches of 25,
to save time), their last dates a day to a year ago. Target: no task's requests or read units grow with them.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from benchmarks import report
from benchmarks.capacity import total_units
from benchmarks.inprocess import Answer, InProcessApi, dynamodb_local

DAY = 86_400
TASKS = ("Expire", "Admit", "Recount")
WAITERS_PER_LIVE_CONCERT = 3  # capacity 1: one ACTIVE, two WAIT, so Admit and Expire have tokens to read


def create_live(api: InProcessApi, concerts: int) -> None:
    for n in range(concerts):
        concert = api.call(
            "POST",
            "/admin/concerts",
            label="create",
            user="ops",
            admin=True,
            headers={"Idempotency-Key": f"live-{n}"},
            body={
                "title": f"Live {n}",
                "queueCapacity": 1,
                "schedules": [{"startsAt": "2031-12-24T19:00:00Z", "seats": [{"number": 1, "price": 5_000}]}],
            },
        )
        if concert.status != 201:
            raise RuntimeError(f"create: {concert.status} {concert.body}")
        for waiter in range(WAITERS_PER_LIVE_CONCERT):
            joined = api.call(
                "POST", f"/concerts/{concert.body['concertId']}/queue/tokens", label="join", user=f"fan-{n}-{waiter}"
            )
            if joined.status not in (200, 201):
                raise RuntimeError(f"join: {joined.status} {joined.body}")


def past_concert_items(count: int, now: int) -> Iterator[dict[str, Any]]:
    """What concert creation writes for a one-date concert (its seat items aside: no scheduler task reads seats),
    its date `DAY` to a year before `now`, created 30 days before that."""
    from ticketline import clock
    from ticketline.repositories.catalog import CatalogRepository
    from ticketline.repositories.queue import QueueRepository

    for n in range(count):
        concert_id, schedule_id = uuid.uuid4().hex, uuid.uuid4().hex
        starts_at = clock.to_iso(now - DAY - (n * 365 * DAY) // max(count, 1))
        created = int(clock.from_iso(starts_at)) - 30 * DAY
        schedule_meta, entry = CatalogRepository.schedule_items(concert_id, schedule_id, starts_at, 100)
        concert = CatalogRepository.concert_item(
            concert_id,
            title=f"Past {n}",
            capacity=100,
            shards=1,
            sales_open_at=created,
            starts=[starts_at],
            now=created,
            owner="ops",
            fingerprint=f"past-{n}",
        )
        queue_items = QueueRepository("unused").new_queue_items(
            concert_id, 100, 1, created, sales_open_at=created, sellable_until=concert["sellableUntil"]
        )
        yield from (schedule_meta, entry, concert, *queue_items)


def run_tasks(api: InProcessApi, scenario: str) -> list[dict[str, Any]]:
    rows = []
    for task in TASKS:
        run = api.run_schedule(task, label=f"{scenario}: {task}")
        rows.append(task_row(scenario, task, run))
    return rows


def task_row(scenario: str, task: str, run: Answer) -> dict[str, Any]:
    units = total_units(run.requests)
    return {
        "scenario": scenario,
        "task": task,
        "summary": {key: value for key, value in run.body.items() if key != "task"},
        "requests": len(run.requests),
        "read_requests": sum(r.is_read for r in run.requests),
        "rru": round(units.rru, 2),
        "wru": round(units.wru, 2),
    }


def check_targets(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]], past: int) -> list[dict[str, Any]]:
    """Each task reads the same with `past` ended concerts as without: requests equal, read units within 1 RRU (a
    Query's units follow the bytes read, and the listing's pages hold the same live concerts)."""
    targets = []
    for without, with_past in zip(before, after, strict=True):
        met = with_past["requests"] == without["requests"] and with_past["rru"] <= without["rru"] + 1
        targets.append(
            {
                "target": f"{without['task']}: requests and RRU the same with {past:,} past concerts",
                "value": f"{without['requests']} -> {with_past['requests']} requests, "
                f"{without['rru']} -> {with_past['rru']} RRU",
                "met": met,
            }
        )
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live", type=int, default=50, help="concerts on sale")
    parser.add_argument("--past", type=int, default=10_000, help="concerts whose last date has passed")
    args = parser.parse_args(argv)
    with dynamodb_local() as endpoint:
        api = InProcessApi(endpoint)
        from ticketline import clock
        from ticketline.repositories.catalog import CatalogRepository
        from ticketline.repositories.queue import QueueRepository
        from ticketline.services.queue import JOIN_WINDOW_SECONDS

        create_live(api, args.live)
        # A concert's first Admit runs have no counter reading older than JOIN_WINDOW_SECONDS, so they read the
        # numbers drawn so far again (joins in flight): one run and the window past that, both scenarios find the
        # lines as they will stay, and differ only by the past concerts.
        api.run_schedule("Admit", label="first Admit")
        time.sleep(JOIN_WINDOW_SECONDS + 1)
        first_recount = api.run_schedule("Recount", label="first Recount")  # the one pass over the registry
        once = task_row("first run after deploy", "Recount (backfill check)", first_recount)
        before = run_tasks(api, f"{args.live} live")
        written = CatalogRepository(api.table_name()).batch_put(past_concert_items(args.past, int(clock.now())))
        after = run_tasks(api, f"{args.live} live + {args.past:,} past")
        with api.log.labelled("registry") as made:  # what every run of the former loop read before its concerts
            registered = sum(1 for _ in QueueRepository(api.table_name()).unlisted_concert_ids())
        former = {
            "requests": len(made),
            "rru": round(total_units(made).rru, 2),
            "unlisted": registered,
        }
    targets = check_targets(before, after, args.past)
    section = report.save(
        "scheduler",
        f"make bench-scheduler  (python -m benchmarks.scheduler --live {args.live} --past {args.past})",
        {
            "engine": "DynamoDB Local (the scheduler function in-process, its IAM role enforced)",
            "live": args.live,
            "past": args.past,
            "past_write_requests": written,
            "first_recount": once,
            "runs": [*before, *after],
            "former_registry_read": former,
            "targets": targets,
        },
    )
    print(section)
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
