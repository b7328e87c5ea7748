"""A whole sale at the deployed cadence, in simulated time: polls per waiter, requests/s per route against the
quotas, estimate error, turn time lost, time to sell out and dollars, under several polling rules side by side.

    python -m benchmarks.scale [--buyers 100000] [--cadences 60 300]
    make bench-scale

The real `QueueService` (joins, polls, the scheduler's Expire and Admit runs) on an in-memory repository
(benchmarks/queue_fake.py: the DynamoDB repository's interface and conditions, in dicts) and a simulated clock.
Buyers, scheduler runs and shopping are events in a heap; a buyer's poll is a call to `QueueService.position`.
Each sale is run once per polling rule with the same buyers (same arrivals, patience, shopping), so the ratios
between the rules come from one run:

- `fixed 20 s`: a refresh every 20 s, whatever the answer (a hosted waiting room's page);
- `2 s + 1 s / 50 places`: the rule before issue 14 (2 s + 1 s per 50 places ahead, at most 30 s);
- `retryAfterSeconds`: the server's answer (ticketline.services.queue_timing);
- `every 2 s`: the reference for the time to sell out (a waiter who never comes back late).

A fixed-interval client between two admission runs gets the same answer at every poll (only a run moves the
bound): those polls are counted at their times, and the service is called at the first poll after each run
(plus the queue state's cache time). The `retryAfterSeconds` client is called at every poll.

The 1,000,000-buyer sale is the same model scaled by 10 (buyers, capacity and seats, and so every position and
every run's advance): waits, polls per waiter and dollars per ticket are the 100,000 run's, requests/s ten times
theirs. For `2 s + 1 s / 50 places` that is an upper bound (positions ten times larger reach its 30 s cap sooner).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

import numpy as np

from benchmarks import cost, dollars, lobby, report
from benchmarks.hotkeys import SimulatedClock
from benchmarks.queue_fake import PAY, POLL, QueueModel, SimulatedSale
from ticketline.errors import QueueTokenExpired
from ticketline.models.queue import TokenStatus

CONCERT = "scale-concert"
HORIZON_SECONDS = 4 * 86_400  # per-second request bins
API_GATEWAY_RPS_QUOTA = 10_000  # account, per region (burst 5,000)
LAMBDA_CONCURRENCY_QUOTA = 1_000  # account default, per region
SCALE_UP = 10  # the 1,000,000-buyer sale: the 100,000 one times ten
SALE_DOLLARS_TARGET = 40.0  # issue 14: the whole 1,000,000-buyer sale's requests on AWS

# Extra AWS line items (us-east-1 list prices, 2025-06), beside dollars.PRICES.
PRICES = {
    "cloudwatch_logs_per_gb": 0.50,
    "log_bytes_per_invocation": 1_000,  # Lambda START/END/REPORT, our EMF latency line and a log line
    "xray_per_million_traces": 5.00,
    "xray_reservoir_per_second": 1,  # the default sampling rule: 1 request/s, then 5 % of the rest
    "xray_rate": 0.05,
}
SCHEDULER_MS = {"admit": 85.0, "expire": 48.0}  # the cost run's scheduler rows
SCHEDULER_WRU = {"admitted": 4.0, "expired": 3.0}  # activation: table + GSI1 move + GSI2; expiry: table + GSI2
HOLDS_PER_STREAM_BATCH = 10  # SeatAvailabilityFunction batches (assumed)

# Route -> the cost run's label its units and handler time come from (its function: dollars.FUNCTIONS).
ROUTES = {
    "POST queue/tokens": cost.JOIN_NEW,
    "GET queue/position": cost.POSITION_WAIT,
    "GET schedules": cost.SCHEDULES,
    "GET seats": cost.SEATS,
    "POST /reservations": cost.HOLD,
    "POST /wallet/charges": cost.CHARGE,
    "POST /payments": cost.PAY,
}
CALL_ITEMS = ("api_gateway", "lambda", "dynamodb", "cloudwatch_logs")  # the line items priced per call
# When in the shopping time each buying call is made (share of the shopping time); abandoners make the first two.
SHOPPING_CALLS = (
    ("GET schedules", 0.1),
    ("GET seats", 0.3),
    ("POST /reservations", 0.5),
    ("POST /wallet/charges", 0.8),
    ("POST /payments", 1.0),
)


@dataclass(frozen=True)
class SaleModel(QueueModel):
    seats: int = 10_000
    opening_seconds: float = 120.0  # the opening's share joins within this time of the opening
    patience_median_seconds: float = 5_400.0  # a waiter leaves after a lognormal time (median 90 min)
    patience_sigma: float = 1.0
    buying_share: float = 0.8  # the others abandon while shopping (their token lapses at its time)
    runs_before_opening: int = 3


@dataclass(frozen=True)
class Rule:
    name: str
    interval: Callable[[Any], float]  # the answer -> seconds to the next poll
    fixed: bool  # the same answer gives the same interval: polls between runs are counted, not called
    watch: bool = False  # the interval ignores the position: called again once a run has passed the waiter


RULES = (
    Rule("fixed 20 s", lambda _: 20.0, fixed=True, watch=True),
    Rule("2 s + 1 s / 50 places", lambda answer: float(min(30, 2 + answer.position // 50)), fixed=True),
    Rule("retryAfterSeconds", lambda answer: float(answer.retry_after_seconds), fixed=False),
    Rule("every 2 s", lambda _: 2.0, fixed=True, watch=True),
)
NEW_RULE, REFERENCE_RULE = "retryAfterSeconds", "every 2 s"


@dataclass
class Buyers:
    join_at: list[float]
    leaves_at: list[float]
    shopping: list[float]
    buys: list[bool]

    @classmethod
    def draw(cls, model: SaleModel, opening: float) -> Buyers:
        rng = random.Random(model.seed)
        join_at = [
            opening
            + (
                rng.uniform(0, model.opening_seconds)
                if rng.random() < model.opening_share
                else model.opening_seconds + rng.expovariate(1 / model.late_mean_seconds)
            )
            for _ in range(model.buyers)
        ]
        join_at.sort()
        return cls(
            join_at=join_at,
            leaves_at=[
                at + rng.lognormvariate(math.log(model.patience_median_seconds), model.patience_sigma) for at in join_at
            ],
            shopping=[
                rng.lognormvariate(math.log(model.shopping_median_seconds), model.shopping_sigma) for _ in join_at
            ],
            buys=[rng.random() < model.buying_share for _ in join_at],
        )


@dataclass
class Waiter:
    user: str
    token: str = ""
    polls: int = 0
    last_poll: float = 0.0
    interval: float = 0.0
    first_estimate: tuple[float, int] | None = None  # (asked at, estimatedWaitSeconds): the first one given
    estimated_at_join: bool = False  # the poll right after the join had an estimate
    admitted_at: float | None = None
    lost_seconds: float | None = None
    outcome: str = ""


class Sale(SimulatedSale[SaleModel]):
    """One sale under one polling rule."""

    def __init__(self, model: SaleModel, rule: Rule, buyers: Buyers, clock: SimulatedClock, opening: float) -> None:
        super().__init__(model, clock)
        self.rule, self.buyers, self.opening = rule, buyers, opening
        self.sold = 0
        self.sold_out_at: float | None = None
        self.watching: list[tuple[int, int]] = []  # (seq, buyer): WAIT, polling at a fixed rate
        self.waiters = [Waiter(user=f"buyer-{n}") for n in range(model.buyers)]
        self.bins = {route: np.zeros(HORIZON_SECONDS, dtype=np.int32) for route in ROUTES}

    def run(self) -> float:
        start = self.clock.now
        self.repository.create_queue(CONCERT, self.model.capacity, 1, int(start))
        self.schedule(start, self.buyers.join_at)
        return self.play(self.model.buyers, until=self.opening + HORIZON_SECONDS - 1)

    def count(self, route: str, at: float) -> None:
        self.bins[route][int(at - self.opening)] += 1

    def admit(self, buyer: int) -> int:
        super().admit(buyer)
        bound = self.service.repository.get_state(CONCERT)
        while self.watching and bound is not None and self.watching[0][0] <= bound.admit_bound:
            self.poll_after(heapq.heappop(self.watching)[1], self.clock.now + self.model.cache_seconds)
        return 0

    # ---- buyers ----
    def finish(self, waiter: Waiter, outcome: str) -> int:
        """The buyer is done, with `outcome`: one fewer to wait for."""
        waiter.outcome = outcome
        return 1

    def join(self, buyer: int) -> int:
        waiter, now = self.waiters[buyer], self.clock.now
        self.count("POST queue/tokens", now)
        if self.sold_out_at is not None:
            return self.finish(waiter, "sold out")  # 410 SOLD_OUT at the join
        answer, _ = self.service.issue(CONCERT, waiter.user)
        waiter.token = answer.token
        if answer.status is TokenStatus.ACTIVE:
            waiter.admitted_at, waiter.lost_seconds = now, 0.0
            return self.shop(buyer, float(self.repository.tokens[(CONCERT, waiter.user)].active_until or now))
        return self.ask(buyer)  # the join answers no retry time: the client asks its position at once

    def poll(self, buyer: int) -> int:
        """The next poll the service is asked, after the polls the same answer would have repeated."""
        waiter, due = self.waiters[buyer], self.clock.now
        end, why = self.buyers.leaves_at[buyer], "left"
        if self.sold_out_at is not None and self.sold_out_at < end:
            end, why = self.sold_out_at, "sold out"
        if end < due:  # polls up to the moment it leaves, or the first after the sale ended (410)
            self.count_polls(waiter, math.floor((end - waiter.last_poll) / waiter.interval) + (why == "sold out"))
            return self.finish(waiter, why)
        self.count_polls(waiter, round((due - waiter.last_poll) / waiter.interval) - 1)
        return self.ask(buyer)

    def count_polls(self, waiter: Waiter, repeats: int) -> None:
        if repeats <= 0:
            return
        first = int(waiter.last_poll + waiter.interval - self.opening)
        step = int(waiter.interval)
        self.bins["GET queue/position"][first : first + repeats * step : step] += 1
        waiter.polls += repeats
        waiter.last_poll += repeats * waiter.interval

    def ask(self, buyer: int) -> int:
        waiter, now = self.waiters[buyer], self.clock.now
        self.count("GET queue/position", now)
        waiter.polls += 1
        waiter.last_poll = now
        try:
            answer = self.service.position(CONCERT, waiter.user, waiter.token)
        except QueueTokenExpired:  # came back after its whole ACTIVE time
            waiter.lost_seconds = float(self.model.active_seconds)
            return self.finish(waiter, "turn lost")
        if waiter.first_estimate is None and answer.estimated_wait_seconds is not None:
            waiter.first_estimate = (now, answer.estimated_wait_seconds)
            waiter.estimated_at_join = waiter.polls == 1
        if answer.status is TokenStatus.ACTIVE:
            token = self.repository.tokens[(CONCERT, waiter.user)]
            active_until = float(token.active_until or now)
            waiter.admitted_at = active_until - self.model.active_seconds
            waiter.lost_seconds = now - waiter.admitted_at
            return self.shop(buyer, active_until)
        waiter.interval = self.rule.interval(answer)
        if self.rule.watch:  # its answer changes for it only once a run has passed it
            seq = self.repository.tokens[(CONCERT, waiter.user)].seq
            heapq.heappush(self.watching, (seq, buyer))
        elif self.rule.fixed:  # the first poll that can see the next run's bound (after the state's cache time)
            self.poll_after(buyer, self.next_admit_at + self.model.cache_seconds)
        else:
            self.push(now + waiter.interval, POLL, buyer)
        return 0

    def poll_after(self, buyer: int, fresh: float) -> None:
        """The buyer's first poll at or after `fresh`, on its fixed rhythm."""
        waiter = self.waiters[buyer]
        periods = max(1, math.ceil((fresh - waiter.last_poll) / waiter.interval))
        self.push(waiter.last_poll + waiter.interval * periods, POLL, buyer)

    def shop(self, buyer: int, active_until: float) -> int:
        waiter, now = self.waiters[buyer], self.clock.now
        if self.sold_out_at is not None:
            return self.finish(waiter, "sold out")
        takes = self.buyers.shopping[buyer]
        buys = self.buyers.buys[buyer]
        for route, share in SHOPPING_CALLS[: 5 if buys else 2]:
            if now + takes * share < active_until:
                self.count(route, now + takes * share)
        if not buys:
            return self.finish(waiter, "abandoned")
        if now + takes >= active_until:
            return self.finish(waiter, "out of time")  # shopping took longer than its ACTIVE time
        self.push(now + takes, PAY, buyer)
        return 0

    def pay(self, buyer: int) -> int:
        waiter = self.waiters[buyer]
        if self.sold_out_at is not None:
            return self.finish(waiter, "sold out")
        self.repository.expire_paid(CONCERT, waiter.user)  # the payment's transaction expires the token
        self.sold += 1
        waiter.outcome = "bought"
        if self.sold == self.model.seats:
            self.sold_out_at = self.clock.now
            for _, watched in self.watching:  # each learns it at its next poll (410 SOLD_OUT)
                self.poll_after(watched, self.sold_out_at)
            self.watching.clear()
        return 1

    # ---- figures ----
    def figures(self, prices: dict[str, dict[str, float]]) -> dict[str, Any]:
        waited = [w for w in self.waiters if w.polls > 0]
        polls = sorted(w.polls for w in waited)
        admitted = [w for w in waited if w.admitted_at is not None and w.lost_seconds is not None]
        admitted_polls = sorted(w.polls for w in admitted)
        lost = sorted(w.lost_seconds / self.model.active_seconds for w in admitted if w.lost_seconds is not None)
        errors: dict[bool, list[float]] = {True: [], False: []}  # by: given at the join's poll
        for w in admitted:
            if w.first_estimate is None or w.admitted_at is None or w.admitted_at <= w.first_estimate[0]:
                continue
            asked, estimate = w.first_estimate
            actual = w.admitted_at - asked
            errors[w.estimated_at_join].append(abs(estimate - actual) / actual)
        every_error = sorted(errors[True] + errors[False])
        outcomes = Counter(w.outcome for w in self.waiters)
        end = max(int(np.flatnonzero(b).max()) if b.any() else 0 for b in self.bins.values()) + 1
        routes = {}
        for route, counts in self.bins.items():
            total = int(counts.sum())
            routes[route] = {
                "requests": total,
                "peak_per_second": int(counts.max()),
                "mean_per_second": round(total / end, 1),
                "peak_concurrency": round(int(counts.max()) * prices[route]["handler_ms"] / 1000, 1),
            }
        all_requests: np.ndarray = np.sum(list(self.bins.values()), axis=0)
        return {
            "rule": self.rule.name,
            "waiters": len(waited),
            "polls_per_waiter": _spread(polls) | {"mean": round(sum(polls) / max(1, len(polls)), 1)},
            "polls_per_admitted_waiter": {"waiters": len(admitted_polls)} | _spread(admitted_polls),
            "polls_per_ticket": round(routes["GET queue/position"]["requests"] / max(1, self.sold), 1),
            "tickets": self.sold,
            "sold_out_after_seconds": None if self.sold_out_at is None else round(self.sold_out_at - self.opening),
            "sale_seconds": end,
            "outcomes": dict(sorted(outcomes.items())),
            "routes": routes,
            "all_routes_peak_per_second": int(all_requests.max()),
            # After the opening's burst of joins (and each joiner's first poll): what polling itself costs.
            "polls_peak_after_opening_per_second": int(
                self.bins["GET queue/position"][int(self.model.opening_seconds) + self.model.admission_seconds :].max()
            ),
            "estimate_error": {
                "waiters": len(every_error),
                "median": None if not every_error else round(median(every_error), 3),
                "p90": _quantile(every_error, 0.9, digits=3),
                "given_at_join": len(errors[True]),
                "median_given_at_join": None if not errors[True] else round(median(errors[True]), 3),
                "given_later": len(errors[False]),
                "median_given_later": None if not errors[False] else round(median(errors[False]), 3),
            },
            "turn_time_lost": {
                "waiters_admitted": len(lost),
                "median": _quantile(lost, 0.5, digits=3),
                "p99": _quantile(lost, 0.99, digits=3),
                "max": round(lost[-1], 3) if lost else None,
                "over_10_percent": sum(x > 0.1 for x in lost),
            },
            "scheduler_runs": dict(self.runs),
            "polls_per_second": _per_minute_peaks(self.bins["GET queue/position"], end),
            "dollars": _dollars(self, routes, prices),
        }


def _quantile(values: Sequence[float], q: float, digits: int = 1) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], digits)


def _spread(polls: Sequence[int]) -> dict[str, Any]:
    """Median, p99 and max of sorted poll counts."""
    return {"median": _quantile(polls, 0.5), "p99": _quantile(polls, 0.99), "max": polls[-1] if polls else 0}


def _per_minute_peaks(counts: np.ndarray, end: int) -> list[int]:
    """The busiest second of each minute of the sale (for the plot)."""
    minutes = math.ceil(end / 60)
    return [int(counts[m * 60 : (m + 1) * 60].max()) for m in range(minutes)]


def route_prices() -> dict[str, dict[str, float]]:
    """Per call, by route: each AWS line item's dollars, from the cost run's units (benchmarks/dollars.py rules)."""
    rows, _ = dollars.measured_calls()
    prices = {}
    for route, label in ROUTES.items():
        prices[route] = dollars.call_price(rows[label]) | {
            "handler_ms": rows[label]["handler_ms_median"],
            "memory_mb": rows[label]["memory_mb"],
            "cloudwatch_logs": PRICES["log_bytes_per_invocation"] / 1e9 * PRICES["cloudwatch_logs_per_gb"],
            "waf": dollars.PRICES["waf_per_million_requests"] / 1e6,
        }
    return prices


def _dollars(sale: Sale, routes: dict[str, dict[str, Any]], prices: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The sale's requests in dollars, per AWS line item, and per million tickets."""
    runs, tickets, bins = sale.runs, sale.sold, sale.bins
    items = {"api_gateway": 0.0, "lambda": 0.0, "dynamodb": 0.0, "cloudwatch_logs": 0.0, "xray": 0.0}
    for route, figures in routes.items():
        calls = figures["requests"]
        for item in CALL_ITEMS:
            items[item] += prices[route][item] * calls
    # Traces the default sampling rule keeps: the first request of each second (one reservoir for the account's
    # services), then 5 % of the rest.
    per_second: np.ndarray = np.sum(list(bins.values()), axis=0)
    reservoir = np.minimum(per_second, PRICES["xray_reservoir_per_second"])
    traced = float(reservoir.sum() + PRICES["xray_rate"] * (per_second - reservoir).sum())
    items["xray"] += traced * PRICES["xray_per_million_traces"] / 1e6
    # The scheduler: invocations, their time, the writes of admissions and expiries; stream batches of holds.
    price = dollars.PRICES
    invocations = runs["admit"] + runs["expire"]
    gb_seconds = (runs["admit"] * SCHEDULER_MS["admit"] + runs["expire"] * SCHEDULER_MS["expire"]) / 1000 * 0.5
    batches = routes["POST /reservations"]["requests"] / HOLDS_PER_STREAM_BATCH  # of holds
    items["lambda"] += (invocations + batches) * price["lambda_per_million_requests"] / 1e6
    items["lambda"] += (gb_seconds + batches * 0.048 * 0.5) * price["lambda_arm64_per_gb_second"]
    wru = runs["admitted"] * SCHEDULER_WRU["admitted"] + runs["expired"] * SCHEDULER_WRU["expired"] + batches * 2
    items["dynamodb"] += (
        wru * price["dynamodb_per_million_wru"] / 1e6 + batches * 10 * price["dynamodb_per_million_rru"] / 1e6
    )
    items["cloudwatch_logs"] += (invocations + batches) * prices["GET queue/position"]["cloudwatch_logs"]
    total = sum(items.values())
    waf = sum(prices[route]["waf"] * figures["requests"] for route, figures in routes.items())
    # The same requests behind an HTTP API, each function verifying the JWT itself (issue 14 item 4).
    verify_seconds = dollars.jwt_verify_milliseconds() / 1000
    jwt_gb_seconds = sum(
        figures["requests"] * verify_seconds * prices[route]["memory_mb"] / 1024 for route, figures in routes.items()
    )
    requests = sum(figures["requests"] for figures in routes.values())
    per_million = 1e6 / max(1, tickets)
    polls = routes["GET queue/position"]["requests"]
    poll_price = sum(prices["GET queue/position"][item] for item in CALL_ITEMS)
    return {
        "sale": round(total, 4),
        "sale_items": {item: round(dollars_, 4) for item, dollars_ in items.items()},
        "sale_with_waf": round(total + waf, 4),
        "per_million_tickets": round(total * per_million, 2),
        "per_million_tickets_items": {item: round(d * per_million, 2) for item, d in items.items()},
        "polls_per_million_tickets": round(polls * poll_price * per_million, 2),
        "per_ticket": round(total / max(1, tickets), 8),
        "api_types": dollars.api_types(items, requests, jwt_gb_seconds),
    }


def identity(sale: Sale) -> dict[str, Any]:
    """Cognito's calls in this sale (benchmarks/dollars.py cognito_plans): each buyer holds an ID token from its join
    to its last request."""
    joins = np.array(sale.buyers.join_at)
    admitted_at = np.array([np.nan if w.admitted_at is None else w.admitted_at for w in sale.waiters])
    shopped_until = np.nan_to_num(admitted_at + np.minimum(sale.buyers.shopping, sale.model.active_seconds))  # or 0
    last_polls = np.array([w.last_poll for w in sale.waiters])
    return dollars.cognito_plans(
        joins,
        np.maximum.reduce([last_polls, shopped_until, joins]),
        sale.opening,
        scale_up=SCALE_UP,
        opening_seconds=sale.model.opening_seconds,
        sold_out_at=sale.sold_out_at,
    )


def run_cadence(model: SaleModel, rules: Sequence[Rule]) -> dict[str, Any]:
    prices = route_prices()
    results = []
    for rule in rules:
        clock = SimulatedClock()
        opening = clock.now + model.runs_before_opening * model.admission_seconds
        sale = Sale(model, rule, Buyers.draw(model, opening), clock, opening)
        cpu_seconds = sale.run()
        figures = sale.figures(prices) | {"cpu_seconds": cpu_seconds}
        figures["dollars"]["per_buyer"] = round(figures["dollars"]["per_ticket"] * sale.sold / model.buyers, 9)
        figures["identity"] = identity(sale)
        results.append(figures)
        print(_summary_line(model, figures))
    return {"model": model.__dict__, "rules": results}


def _summary_line(model: SaleModel, f: dict[str, Any]) -> str:
    p, a = f["polls_per_waiter"], f["polls_per_admitted_waiter"]
    return (
        f"every {model.admission_seconds:>3} s | {f['rule']:<22} polls/waiter median {p['median']} p99 {p['p99']}"
        f" (admitted: {a['median']}, {a['p99']}) | peak polls/s {f['routes']['GET queue/position']['peak_per_second']}"
        f" | sold out after {f['sold_out_after_seconds']} s | turn lost p99 {f['turn_time_lost']['p99']} max "
        f"{f['turn_time_lost']['max']} | estimate error median {f['estimate_error']['median']} | "
        f"${f['dollars']['per_million_tickets']}/1M tickets | {f['cpu_seconds']} s CPU"
    )


def targets(cadences: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 14's targets for the new rule, per cadence."""
    checks = []
    for cadence in cadences:
        by_rule = {r["rule"]: r for r in cadence["rules"]}
        new, reference = by_rule[NEW_RULE], by_rule.get(REFERENCE_RULE)
        every = cadence["model"]["admission_seconds"]
        lost = new["turn_time_lost"]
        sold_new, sold_ref = new["sold_out_after_seconds"], (reference or {}).get("sold_out_after_seconds")
        buyers = cadence["model"]["buyers"] * SCALE_UP  # the 1,000,000-buyer sale
        peak_polls = new["polls_peak_after_opening_per_second"] * SCALE_UP
        sale_dollars = round(new["dollars"]["sale"] * SCALE_UP, 2)
        rows = [
            _at_most("median polls per waiter <= 6", new["polls_per_waiter"]["median"], 6),
            _at_most("p99 polls per waiter <= 15", new["polls_per_waiter"]["p99"], 15),
            _at_most("median polls per admitted waiter <= 6", new["polls_per_admitted_waiter"]["median"], 6),
            _at_most("p99 polls per admitted waiter <= 15", new["polls_per_admitted_waiter"]["p99"], 15),
            (
                "no waiter loses > 10 % of its ACTIVE time",
                f"{lost['over_10_percent']} over, max {lost['max']}",
                lost["over_10_percent"] == 0,
            ),
            (
                "time to sell out within 10 % of polling every 2 s",
                f"{sold_new} s vs {sold_ref} s",
                sold_new is not None and sold_ref is not None and sold_new <= 1.1 * sold_ref,
            ),
            _at_most("median estimate error <= 25 %", new["estimate_error"]["median"], 0.25),
            _at_most(f"peak polls/s after the opening at {buyers:,} buyers <= 3,000", peak_polls, 3_000),
            _at_most(f"the {buyers:,}-buyer sale's requests cost <= $40", sale_dollars, SALE_DOLLARS_TARGET),
        ]
        checks += [{"admission_seconds": every, "target": t, "value": v, "met": bool(m)} for t, v, m in rows]
    return checks


def plot(cadences: list[dict[str, Any]], path: Any) -> None:
    """Polls per second over each sale (the busiest second of each minute), 1,000,000 buyers (the run x 10)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(cadences), 1, figsize=(10, 3.6 * len(cadences)), squeeze=False)
    for axis, cadence in zip(axes[:, 0], cadences, strict=True):
        for rule in cadence["rules"]:
            peaks = [count * SCALE_UP for count in rule["polls_per_second"]]
            axis.plot(range(len(peaks)), peaks, label=rule["rule"], linewidth=1)
        axis.axhline(API_GATEWAY_RPS_QUOTA, color="red", linestyle="--", linewidth=1, label="API Gateway quota")
        axis.set_yscale("log")
        axis.set_ylabel("polls / s (busiest second)")
        model = cadence["model"]
        axis.set_title(f"{model['buyers'] * SCALE_UP:,} buyers, admission every {model['admission_seconds']} s")
        axis.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("minutes since the opening")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _at_most(target: str, value: float | None, most: float) -> tuple[str, Any, bool]:
    return target, value, value is not None and value <= most


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=100_000)
    parser.add_argument("--cadences", type=int, nargs="+", default=[60, 300])
    parser.add_argument("--rules", nargs="+", choices=[r.name for r in RULES], default=[r.name for r in RULES])
    parser.add_argument("--no-save", action="store_true", help="print only (a trial run)")
    args = parser.parse_args(argv)
    base = SaleModel()
    factor = args.buyers / base.buyers
    capacity, seats = max(1, round(base.capacity * factor)), max(1, round(base.seats * factor))
    rules = [r for r in RULES if r.name in args.rules]
    cadences = []
    for every in args.cadences:
        model = SaleModel(buyers=args.buyers, capacity=capacity, seats=seats, admission_seconds=every)
        cadences.append(run_cadence(model, rules))
    lobby.main([f"--buyers={args.buyers}", *(["--no-save"] if args.no_save else [])])  # docs/benchmarks/lobby.json
    checks = targets(cadences) if {NEW_RULE, REFERENCE_RULE} <= set(args.rules) else []
    for check in checks:
        print(
            f"every {check['admission_seconds']:>3} s: {check['target']:<52} {check['value']!s:<24} "
            f"{'PASS' if check['met'] else 'FAIL'}"
        )
    if args.no_save:
        return 0
    plot(cadences, report.RESULTS_DIR / "scale.png")
    report.save(
        "scale",
        f"make bench-scale  (python -m benchmarks.scale --buyers {args.buyers} --cadences "
        f"{' '.join(map(str, args.cadences))})",
        {
            "prices": dollars.PRICES | PRICES,
            "scale_up": SCALE_UP,
            "quotas": {"api_gateway_rps": API_GATEWAY_RPS_QUOTA, "lambda_concurrency": LAMBDA_CONCURRENCY_QUOTA},
            "cadences": cadences,
            "targets": checks,
            "plot": "benchmarks/scale.png",
        },
    )
    return 0 if all(check["met"] for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
