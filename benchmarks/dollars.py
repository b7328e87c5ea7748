"""Dollars per million tickets sold (and per million queue polls) on AWS on-demand prices, from the measured
request units per call (docs/benchmarks/cost.json) and the calls a buyer makes (docs/benchmarks/sale.json
when present: polls, hold attempts per ticket).

    python -m benchmarks.dollars
    make bench-dollars            # after bench-cost (and bench-sale for the measured journey)
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np

from benchmarks import cost, render, report


class Prices(TypedDict):
    """AWS on-demand prices in dollars (as of `as_of`), written into the results as they are."""

    as_of: str
    lambda_arm64_per_gb_second: float
    lambda_per_million_requests: float
    api_gateway_rest_per_million: float
    api_gateway_http_per_million: float
    cloudfront_https_per_million: float
    waf_per_million_requests: float
    dynamodb_per_million_wru: float
    dynamodb_per_million_rru: float


PRICES: Prices = {
    "as_of": "2025-06 (AWS list prices, us-east-1)",
    "lambda_arm64_per_gb_second": 0.0000133334,
    "lambda_per_million_requests": 0.20,
    "api_gateway_rest_per_million": 3.50,
    "api_gateway_http_per_million": 1.00,  # first 300 million a month
    # An HTTP API takes WAF only through a CloudFront distribution in front of it: its HTTPS requests (US, Europe).
    "cloudfront_https_per_million": 1.00,
    "waf_per_million_requests": 0.60,  # only with a web ACL attached (EnableWaf), plus its monthly fees
    "dynamodb_per_million_wru": 0.625,
    "dynamodb_per_million_rru": 0.125,
}

# The function serving each measured call (MemorySize comes from template.yaml).
FUNCTIONS = {
    cost.JOIN_NEW: "IssueTokenFunction",
    cost.POSITION_WAIT: "QueuePositionFunction",
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
    calls = {
        cost.JOIN_NEW: 1.0,
        cost.POSITION_WAIT: polls,
        cost.SCHEDULES: 1.0,
        cost.SEATS: 1.0 + failed_holds,
        cost.HOLD: 1.0,
        cost.HOLD_TAKEN: failed_holds,
        cost.CHARGE: 1.0,
        cost.PAY: 1.0,
    }
    return calls, source


def measured_calls() -> tuple[dict[str, dict[str, Any]], str]:
    """The cost run's rows of the calls priced here by label, each with its function's MemorySize in template.yaml
    (`memory_mb`), and when the run was taken."""
    from devserver import DEFAULT_TEMPLATE
    from devserver.template import load_template

    measured = report.load("cost")
    if measured is None:
        raise SystemExit("run `make bench-cost` first: the prices apply to its measured units")
    memory = {function.logical_id: function.memory_mb for function in load_template(DEFAULT_TEMPLATE).functions}
    rows = {row["label"]: row for row in measured["endpoints"] if row["label"] in FUNCTIONS}
    return {label: row | {"memory_mb": memory[FUNCTIONS[label]]} for label, row in rows.items()}, measured["taken_at"]


def call_price(row: dict[str, Any]) -> dict[str, float]:
    """Dollars per call: Lambda (duration rounded up to 1 ms, plus the request), API Gateway, DynamoDB."""
    billed_ms = math.ceil(row["handler_ms_median"])
    lambda_duration = billed_ms / 1000 * row["memory_mb"] / 1024 * PRICES["lambda_arm64_per_gb_second"]
    return {
        "lambda": lambda_duration + PRICES["lambda_per_million_requests"] / 1e6,
        "api_gateway": PRICES["api_gateway_rest_per_million"] / 1e6,
        "dynamodb": (
            row["wru_mean"] * PRICES["dynamodb_per_million_wru"] + row["rru_mean"] * PRICES["dynamodb_per_million_rru"]
        )
        / 1e6,
    }


# Cognito (issue 14 item 6). Sign-in and token refresh share the user pools' UserAuthentication category: 120
# requests/s per account and region by default, adjustable (bought in Service Quotas). Quotas: https://docs.aws.amazon.com
# /cognito/latest/developerguide/quotas.html; the refresh grant's share of it: https://repost.aws/questions/
# QUFRuNyMQ_RVu3KimZTSc4Zw. Per monthly active user (any sign-in or refresh in the month), apart from the sale.
class CognitoFigures(TypedDict):
    as_of: str
    user_authentication_rps_quota: int
    cognito_default_id_token_minutes: int
    free_mau: int
    essentials_per_mau: float
    lite_per_mau: tuple[tuple[float, float], ...]  # (up to this many MAU, dollars per MAU in that band)


COGNITO: CognitoFigures = {
    "as_of": "2025-06 (AWS list prices, us-east-1)",
    "user_authentication_rps_quota": 120,
    "cognito_default_id_token_minutes": 60,
    "free_mau": 10_000,
    "essentials_per_mau": 0.015,  # the tier new user pools get
    "lite_per_mau": ((100_000, 0.0055), (1_000_000, 0.0046), (10_000_000, 0.00325), (math.inf, 0.0025)),
}
AHEAD_REFRESH_HOURS = 2.0  # the opening's joiners refresh their token at a random moment in these hours before it


def api_types(items: dict[str, float], requests: int, jwt_gb_seconds: float) -> dict[str, Any]:
    """The same requests behind the template's REST API and behind an HTTP API, in dollars.

    `items` are the sale's line items on REST (its `api_gateway` is `requests` at the REST price). On an HTTP API
    only these change: the gateway's price; the JWT verified in each function (so that a refusal keeps the API's
    error shape: the HTTP API's JWT authorizer answers a fixed body), `jwt_gb_seconds` of Lambda; and WAF,
    which an HTTP API takes only through CloudFront. X-Ray is the same: without API Gateway tracing, the functions'
    active tracing starts the traces, under the same sampling rule."""
    others = sum(items.values()) - items["api_gateway"]
    rest_gateway = requests * PRICES["api_gateway_rest_per_million"] / 1e6
    http_gateway = requests * PRICES["api_gateway_http_per_million"] / 1e6
    jwt_lambda = jwt_gb_seconds * PRICES["lambda_arm64_per_gb_second"]
    waf = requests * PRICES["waf_per_million_requests"] / 1e6
    cloudfront = requests * PRICES["cloudfront_https_per_million"] / 1e6
    rest = {"api_gateway": rest_gateway, "jwt_in_function": 0.0, "sale": others + rest_gateway}
    http = {"api_gateway": http_gateway, "jwt_in_function": jwt_lambda, "sale": others + http_gateway + jwt_lambda}
    rest["sale_with_waf"] = rest["sale"] + waf
    http["sale_with_waf"] = http["sale"] + waf + cloudfront
    return {
        "requests": requests,
        "REST API": {name: round(value, 8) for name, value in rest.items()},
        "HTTP API": {name: round(value, 8) for name, value in http.items()},
        "saving": round(rest["sale"] - http["sale"], 8),
        "saving_with_waf": round(rest["sale_with_waf"] - http["sale_with_waf"], 8),
    }


@functools.cache
def jwt_verify_milliseconds(rounds: int = 300) -> float:
    """CPU time to verify one Cognito-style RS256 ID token with PyJWT, the key already fetched (JWKS cached)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "buyer", "token_use": "id", "exp": int(time.time()) + 3600}, key, algorithm="RS256")
    public = key.public_key()
    started = time.process_time()
    for _ in range(rounds):
        jwt.decode(token, public, algorithms=["RS256"], options={"verify_aud": False})
    return (time.process_time() - started) * 1000 / rounds


def cognito_plans(
    joins: np.ndarray,
    last_requests: np.ndarray,
    opening: float,
    *,
    scale_up: int,
    opening_seconds: float,
    sold_out_at: float | None,
) -> dict[str, Any]:
    """UserAuthentication calls (a sign-in or a refresh each) of one sale's buyers under three plans.

    A buyer's app holds an ID token from its first call (its join) to its last request; a token expires
    `validity` after it was issued and the next request refreshes it (counted at the expiry: an upper bound on
    how close together refreshes fall, since the next poll comes later and at a spread time). Plans: Cognito's
    default hour with the token taken at the join; the template's IdTokenValidityMinutes, the same way; and that
    validity with the opening's joiners (the first `opening_seconds`) refreshing ahead, at a random moment in the
    AHEAD_REFRESH_HOURS before the lobby opens (the template's PreQueueMinutes before the opening: the earliest
    join, so the earliest token in use), which spreads their calls.
    Refreshes after `sold_out_at` are counted apart: a waiter far back whose next poll learns SOLD_OUT. The busiest
    second is the 100,000-buyer run's times `scale_up` (noisy where calls are sparse); the busiest minute's mean
    rate is the steadier figure to size a quota by."""
    from devserver import DEFAULT_TEMPLATE
    from devserver.template import load_template

    parameters = load_template(DEFAULT_TEMPLATE).parameters
    id_token_minutes, lobby_minutes = int(parameters["IdTokenValidityMinutes"]), int(parameters["PreQueueMinutes"])
    rng = np.random.default_rng(14)
    opening_cohort = joins < opening + opening_seconds
    lobby_opens = opening - lobby_minutes * 60
    ahead = np.where(opening_cohort, lobby_opens - rng.uniform(0, AHEAD_REFRESH_HOURS * 3600, len(joins)), joins)
    plans = [
        (
            f"ID token {COGNITO['cognito_default_id_token_minutes']} min (Cognito's default), issued at the join",
            COGNITO["cognito_default_id_token_minutes"],
            joins,
        ),
        (f"ID token {id_token_minutes} min (template default), issued at the join", id_token_minutes, joins),
        (
            f"ID token {id_token_minutes} min, the opening's joiners refresh ahead over {AHEAD_REFRESH_HOURS:g} h "
            "before the lobby",
            id_token_minutes,
            ahead,
        ),
    ]
    quota = COGNITO["user_authentication_rps_quota"]
    rows = []
    for name, minutes, issued in plans:
        validity = minutes * 60
        refreshes = np.maximum(0, np.floor((last_requests - issued) / validity)).astype(np.int64)
        refreshed = [issued[refreshes >= k] + k * validity for k in range(1, int(refreshes.max(initial=0)) + 1)]
        seconds = np.concatenate([issued, *refreshed])
        per_second = np.bincount((seconds - seconds.min()).astype(np.int64)) * scale_up
        minute = np.convolve(per_second, np.ones(60) / 60, mode="valid") if len(per_second) >= 60 else per_second
        late = sum(int((times >= sold_out_at).sum()) for times in refreshed) if sold_out_at is not None else 0
        rows.append(
            {
                "plan": name,
                "id_token_minutes": minutes,
                "calls_per_buyer": round(1 + float(refreshes.mean()), 3),
                "refreshes_in_line_per_buyer": round(float(refreshes.mean()), 3),
                "refreshes_after_sold_out_per_buyer": round(late / len(joins), 3),
                "buyers_refreshing_in_line": int((refreshes > 0).sum()) * scale_up,
                "peak_per_second": int(per_second.max()),
                "busiest_minute_per_second": round(float(minute.max())),
            }
        )
    buyers = len(joins) * scale_up
    return {"quota_per_second": quota, "buyers": buyers, "plans": rows, "mau_dollars": mau_dollars(buyers)}


def mau_dollars(users: int) -> dict[str, float]:
    """A month with `users` active users, per Cognito tier (the first COGNITO['free_mau'] free)."""
    billed = max(0, users - COGNITO["free_mau"])
    lite = 0.0
    below: float = COGNITO["free_mau"]  # then each band's upper bound (the last one infinite)
    for upto, price in COGNITO["lite_per_mau"]:
        lite += max(0, min(users, upto) - below) * price
        below = upto
        if users <= upto:
            break
    return {"essentials": round(billed * COGNITO["essentials_per_mau"], 2), "lite": round(lite, 2)}


def compute() -> dict[str, Any]:
    rows, taken_at = measured_calls()
    calls, source = journey(report.load("sale"))
    lines = []
    totals = {"lambda": 0.0, "api_gateway": 0.0, "dynamodb": 0.0}
    wru = rru = 0.0
    for label, per_ticket in calls.items():
        row = rows.get(label)
        if row is None or per_ticket == 0:
            continue
        price = call_price(row)
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
                "memory_mb": row["memory_mb"],
                "dollars_per_million_tickets": round(sum(price.values()) * per_ticket * 1e6, 2),
            }
        )
    poll_price = call_price(rows[cost.POSITION_WAIT])
    return {
        "prices": PRICES,
        "journey_source": source,
        "calls": lines,
        "per_million_tickets": {part: round(dollars * 1e6, 2) for part, dollars in totals.items()}
        | {"total": round(sum(totals.values()) * 1e6, 2), "wru": round(wru * 1e6), "rru": round(rru * 1e6)},
        "per_million_polls": {part: round(dollars * 1e6, 2) for part, dollars in poll_price.items()}
        | {"total": round(sum(poll_price.values()) * 1e6, 2)},
        "cost_measured_at": taken_at,
    }


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    result = compute()
    report.save("dollars", "make bench-dollars  (python -m benchmarks.dollars)", result)
    print(render.dollar_table(result))
    print(f"per million tickets: {result['per_million_tickets']}")
    print(f"per million polls:   {result['per_million_polls']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
