"""Creates a demo concert on a running local server and prints its id (`make seed`).

python -m devserver.seed [--url http://127.0.0.1:3000] [--dates 2] [--seats 30] [--capacity 100] [--json]
"""

import argparse
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from devserver.auth import mint_token


def demo_concert(*, title: str, dates: int, seats: int, capacity: int, price: int = 50_000) -> dict[str, Any]:
    """An admin body for POST /admin/concerts: `dates` evenings a month from now, `seats` seats each
    (the first row dearer)."""
    first = (datetime.now(UTC) + timedelta(days=30)).replace(hour=19, minute=0, second=0, microsecond=0)
    return {
        "title": title,
        "queueCapacity": capacity,
        "schedules": [
            {
                "startsAt": (first + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "seats": [{"number": n, "price": price + (30_000 if n <= 10 else 0)} for n in range(1, seats + 1)],
            }
            for day in range(dates)
        ],
    }


def create_concert(url: str, body: dict[str, Any], operator: str = "demo-operator") -> dict[str, Any]:
    response = requests.post(
        f"{url.rstrip('/')}/admin/concerts",
        json=body,
        headers={"Authorization": f"Bearer {mint_token(operator, admin=True)}", "Idempotency-Key": uuid.uuid4().hex},
        timeout=60,
    )
    if response.status_code != 201:
        raise SystemExit(f"POST /admin/concerts answered {response.status_code}: {response.text}")
    concert: dict[str, Any] = response.json()
    return concert


def main(argv: list[str] | None = None) -> None:
    default_url = f"http://127.0.0.1:{os.environ.get('TICKETLINE_PORT', '3000')}"
    parser = argparse.ArgumentParser(prog="python -m devserver.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=default_url, help=f"the local server (default {default_url})")
    parser.add_argument("--title", default="Winter night (demo)")
    parser.add_argument("--dates", type=int, default=2, help="schedules (1..50)")
    parser.add_argument("--seats", type=int, default=30, help="seats per schedule (1..5000)")
    parser.add_argument("--capacity", type=int, default=100, help="queueCapacity: most ACTIVE buyers at once")
    parser.add_argument("--json", action="store_true", help="print the whole concert, not only its id")
    arguments = parser.parse_args(argv)
    body = demo_concert(
        title=arguments.title, dates=arguments.dates, seats=arguments.seats, capacity=arguments.capacity
    )
    try:
        concert = create_concert(arguments.url, body)
    except requests.ConnectionError:
        raise SystemExit(f"no server at {arguments.url}: start it with `make run`") from None
    if arguments.json:
        print(json.dumps(concert, indent=2))
    else:
        print(concert["concertId"])
        print(f"open {arguments.url}/?concert={concert['concertId']}", file=sys.stderr)


if __name__ == "__main__":
    main()
