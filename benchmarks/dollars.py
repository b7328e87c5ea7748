"""Dollars per million tickets sold (and per million queue polls) on AWS on-demand prices, from the measured
request units per call (docs/benchmarks/cost.json) and the calls a buyer makes (docs/benchmarks/sale.json
when present: polls, hold attempts per ticket).

    python -m benchmarks.dollars
    make bench-dollars            # after bench-cost (and bench-sale for the measured journey)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from benchmarks import cost, render, report

PRICES = {
    "as_of": "2025-06 (AWS list prices, us-east-1)",
    "lambda_arm64_per_gb_second": 0.0000133334,
    "lambda_per_million_requests": 0.20,
    "api_gateway_rest_per_million": 3.50,
    "dynamodb_per_million_wru": 0.625,
    "dynamodb_per_million_rru": 0.125,
}

# The function serving each measured call (MemorySize comes from template.yaml).
FUNCTIONS = {
    cost.JOIN_NEW: "IssueTokenFunction",
    cost.POSITION_WAIT: "QueuePositionFunction",
    cost.POSITION_ACTIVE: "QueuePositionFunction",
    cost.SCHEDULES: "SeatsFunction",
    cost.SEATS: "SeatsFunction",
    cost.HOLD: "ReserveFunction",
    cost.HOLD_TAKEN: "ReserveFunction",
    cost.CHARGE: "WalletFunction",
    cost.PAY: "PayFunction",
}
DEFAULT_POLLS_PER_TICKET = 10.0  # when no sale has been run
DEFAULT_HOLD_ATTEMPTS_PER_TICKET = 1.1


def journey(sale: dict[str, Any] | None) -> tuple[dict[str, float], str]:
    """Calls per ticket sold, by cost label; measured in the last sale when there is one."""
    polls, failed_holds = DEFAULT_POLLS_PER_TICKET, DEFAULT_HOLD_ATTEMPTS_PER_TICKET - 1
    source = "assumed (no sale run yet)"
    if sale and sale.get("outcomes", {}).get("bought"):
        tickets = sale["outcomes"]["bought"]
        counts = {e["endpoint"]: e["requests"] for e in sale["endpoints"]}
        polls = counts.get("GET queue/position", 0) / tickets
        holds = counts.get("POST /reservations", tickets)
        failed_holds = max(0.0, holds / tickets - 1)
        source = f"measured in the last sale ({sale['users']} buyers, {tickets} tickets)"
    return (
        {
            cost.JOIN_NEW: 1.0,
            cost.POSITION_WAIT: polls,
            cost.SCHEDULES: 1.0,
            cost.SEATS: 1.0 + failed_holds,
            cost.HOLD: 1.0,
            cost.HOLD_TAKEN: failed_holds,
            cost.CHARGE: 1.0,
            cost.PAY: 1.0,
        },
        source,
    )


def call_price(row: dict[str, Any], memory_mb: int) -> dict[str, float]:
    """Dollars per call: Lambda (duration rounded up to 1 ms, plus the request), API Gateway, DynamoDB."""
    billed_ms = math.ceil(row["handler_ms_median"])
    lambda_duration = billed_ms / 1000 * memory_mb / 1024 * PRICES["lambda_arm64_per_gb_second"]
    return {
        "lambda": lambda_duration + PRICES["lambda_per_million_requests"] / 1e6,
        "api_gateway": PRICES["api_gateway_rest_per_million"] / 1e6,
        "dynamodb": (
            row["wru_mean"] * PRICES["dynamodb_per_million_wru"] + row["rru_mean"] * PRICES["dynamodb_per_million_rru"]
        )
        / 1e6,
    }


def compute() -> dict[str, Any]:
    from devserver import DEFAULT_TEMPLATE
    from devserver.template import load_template

    measured = report.load("cost")
    if measured is None:
        raise SystemExit("run `make bench-cost` first: the prices apply to its measured units")
    rows = {row["label"]: row for row in measured["endpoints"]}
    memory = {function.logical_id: function.memory_mb for function in load_template(DEFAULT_TEMPLATE).functions}
    calls, source = journey(report.load("sale"))
    lines = []
    totals = {"lambda": 0.0, "api_gateway": 0.0, "dynamodb": 0.0}
    wru = rru = 0.0
    for label, per_ticket in calls.items():
        row = rows.get(label)
        if row is None or per_ticket == 0:
            continue
        price = call_price(row, memory[FUNCTIONS[label]])
        for part, dollars in price.items():
            totals[part] += dollars * per_ticket
        wru += row["wru_mean"] * per_ticket
        rru += row["rru_mean"] * per_ticket
        lines.append(
            {
                "call": label,
                "per_ticket": round(per_ticket, 2),
                "wru": row["wru_mean"],
                "rru": row["rru_mean"],
                "handler_ms": row["handler_ms_median"],
                "memory_mb": memory[FUNCTIONS[label]],
                "dollars_per_million_tickets": round(sum(price.values()) * per_ticket * 1e6, 2),
            }
        )
    poll = rows[cost.POSITION_WAIT]
    poll_price = call_price(poll, memory[FUNCTIONS[cost.POSITION_WAIT]])
    return {
        "prices": PRICES,
        "journey_source": source,
        "calls": lines,
        "per_million_tickets": {part: round(dollars * 1e6, 2) for part, dollars in totals.items()}
        | {"total": round(sum(totals.values()) * 1e6, 2), "wru": round(wru * 1e6), "rru": round(rru * 1e6)},
        "per_million_polls": {part: round(dollars * 1e6, 2) for part, dollars in poll_price.items()}
        | {"total": round(sum(poll_price.values()) * 1e6, 2)},
        "cost_measured_at": measured["taken_at"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    result = compute()
    report.save("dollars", "make bench-dollars  (python -m benchmarks.dollars)", result)
    print(report.table(render.DOLLAR_COLUMNS, render.dollar_rows(result)))
    print(f"per million tickets: {result['per_million_tickets']}")
    print(f"per million polls:   {result['per_million_polls']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
