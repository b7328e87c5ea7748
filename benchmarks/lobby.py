"""The opening with and without the lobby, in simulated time (issue 14 item 5; part of `make bench-scale`).

    python -m benchmarks.lobby [--buyers 100000]

The real `QueueService` (joins, polls following `retryAfterSeconds`, the scheduler's Expire and Admit runs) on the
in-memory repository (benchmarks/queue_fake.py) and a simulated clock, as benchmarks/scale.py runs it.

Arrivals. The buyers who mean to be there at the opening (`opening_share`) arrive, with a first-come line, in its
first seconds (exponential, mean `rush_mean_seconds`: being first is what pays); with a lobby they arrive during
its `PreQueueMinutes` window, more of them towards the opening (exponential back from it, mean
`lobby_mean_seconds`), since being early no longer pays. The others arrive after the opening (exponential, mean
`late_mean_seconds`), the same in both. A bot joins at the opening's first millisecond.

What it shows: joins per second (the peak, and the opening second) with and without the lobby; that the lobby's
admission order owes nothing to arrival time (Spearman's rank correlation between arrival and admission within the
lobby, about 0), that every lobby member enters before anyone who arrived after the opening (the bot included) and
that those enter in arrival order (correlation about 1); how long after the opening the line formed; and the polls:
per lobby waiter, and the peak per second when the lobby comes back.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import report
from benchmarks.hotkeys import SimulatedClock
from benchmarks.queue_fake import PAY, POLL, QueueModel, SimulatedSale
from ticketline.models.queue import TokenStatus

CONCERT = "lobby-concert"
BOT = "bot"


@dataclass(frozen=True)
class LobbyModel(QueueModel):
    lobby_minutes: int = 30  # PreQueueMinutes
    rush_mean_seconds: float = 3.0  # opening goers without a lobby: how soon after the opening they arrive
    lobby_mean_seconds: float = 300.0  # with one: how long before the opening


def arrivals(model: LobbyModel, opening: float, lobby: bool) -> list[float]:
    """Join times (seconds), the same buyers with and without the lobby (one seed)."""
    rng = random.Random(model.seed)
    window = model.lobby_minutes * 60
    times = []
    for _ in range(model.buyers):
        opening_goer, before, rush, late = (
            rng.random() < model.opening_share,
            rng.expovariate(1 / model.lobby_mean_seconds),
            rng.expovariate(1 / model.rush_mean_seconds),
            rng.expovariate(1 / model.late_mean_seconds),
        )
        if not opening_goer:
            times.append(opening + late)
        elif lobby:
            times.append(opening - min(window - 1, before))
        else:
            times.append(opening + rush)
    return times


def join_rate(times: Sequence[float], opening: float) -> dict[str, int]:
    seconds = np.floor(np.asarray(times) - opening).astype(np.int64)
    counts = np.bincount(seconds - seconds.min())
    return {"peak_joins_per_second": int(counts.max()), "joins_in_the_opening_second": int(np.sum(seconds == 0))}


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 3:
        return None
    ranks_a, ranks_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return round(float(np.corrcoef(ranks_a, ranks_b)[0, 1]), 4)


class LobbyOpening(SimulatedSale[LobbyModel]):
    """One sale with a lobby; records who entered when, and every poll."""

    def __init__(self, model: LobbyModel, join_at: list[float], opening: float, clock: SimulatedClock) -> None:
        super().__init__(model, clock, pre_queue_minutes=model.lobby_minutes)
        self.join_at, self.opening = join_at, opening
        self.tokens: dict[int, str] = {}
        self.polls: dict[int, int] = {}
        self.poll_times: list[float] = []
        self.admitted: dict[int, tuple[float, int]] = {}  # buyer -> (admitted at, place key)

    def run(self) -> float:
        start = min(self.join_at)
        self.repository.create_queue(CONCERT, self.model.capacity, 1, int(start) - 1, sales_open_at=int(self.opening))
        self.schedule(start, self.join_at)
        return self.play(len(self.join_at))

    def join(self, buyer: int) -> int:
        answer, _ = self.service.issue(CONCERT, self._user(buyer))
        self.tokens[buyer] = answer.token
        return self.poll(buyer)  # the client asks its position at once

    def poll(self, buyer: int) -> int:
        self.polls[buyer] = self.polls.get(buyer, 0) + 1
        self.poll_times.append(self.clock.now)
        answer = self.service.position(CONCERT, self._user(buyer), self.tokens[buyer])
        if answer.status is not TokenStatus.ACTIVE:
            self.push(self.clock.now + answer.retry_after_seconds, POLL, buyer)
            return 0
        token = self.repository.tokens[(CONCERT, self._user(buyer))]
        admitted_at = float(token.active_until or 0) - self.model.active_seconds
        self.admitted[buyer] = (admitted_at, token.lobby_key if token.lobby_key is not None else 2**60 + token.seq)
        shopping = self.rng.lognormvariate(math.log(self.model.shopping_median_seconds), self.model.shopping_sigma)
        self.push(min(float(token.active_until or 0) - 1, self.clock.now + shopping), PAY, buyer)
        return 0

    def pay(self, buyer: int) -> int:
        self.repository.expire_paid(CONCERT, self._user(buyer))  # the payment expires the token
        return 1

    def _user(self, buyer: int) -> str:
        return BOT if buyer == len(self.join_at) - 1 else f"buyer-{buyer}"

    def figures(self) -> dict[str, Any]:
        """Admission order is by admission time, then place (a run lets its batch in by key, then by number)."""
        order = sorted(self.admitted, key=self.admitted.__getitem__)
        rank = {buyer: place for place, buyer in enumerate(order)}
        lobby = [b for b in order if self.join_at[b] < self.opening]
        after = [b for b in order if self.join_at[b] >= self.opening]
        bot = len(self.join_at) - 1
        last_of_lobby = max((rank[m] for m in lobby), default=-1)
        lobby_polls = sorted(self.polls[b] for b in lobby)
        seconds = np.floor(np.asarray(self.poll_times) - self.opening).astype(np.int64)
        formed = [s for s in seconds if s >= 0]
        first_admission_at = min((at for at, _ in self.admitted.values()), default=None)
        return {
            "lobby_size": len(lobby),
            "arrived_after_opening": len(after),
            "line_formed_after_seconds": None
            if first_admission_at is None
            else round(first_admission_at - self.opening, 1),
            "lobby_rank_correlation_arrival_vs_admission": _spearman(
                [self.join_at[b] for b in lobby], [rank[b] for b in lobby]
            ),
            "after_opening_rank_correlation_arrival_vs_admission": _spearman(
                [self.join_at[b] for b in after], [rank[b] for b in after]
            ),
            "arrivals_after_opening_admitted_before_a_lobby_member": sum(rank[b] < last_of_lobby for b in after),
            "bot_admission_rank": rank.get(bot),
            "polls_per_lobby_waiter": {
                "median": lobby_polls[len(lobby_polls) // 2] if lobby_polls else None,
                "p99": lobby_polls[min(len(lobby_polls) - 1, int(0.99 * len(lobby_polls)))] if lobby_polls else None,
            },
            "peak_polls_per_second_before_opening": int(np.bincount(-seconds[seconds < 0]).max())
            if (seconds < 0).any()
            else 0,
            "peak_polls_per_second_from_opening": int(np.bincount(np.asarray(formed)).max()) if formed else 0,
        }


def run(model: LobbyModel) -> dict[str, Any]:
    clock = SimulatedClock()
    opening = clock.now + model.lobby_minutes * 60 + 60.0
    without = arrivals(model, opening, lobby=False)
    with_lobby = arrivals(model, opening, lobby=True)
    sale = LobbyOpening(model, [*with_lobby, opening + 0.001], opening, clock)  # the bot is the last buyer
    cpu_seconds = sale.run()
    return {
        "model": model.__dict__,
        "joins_without_lobby": join_rate(without, opening),
        "joins_with_lobby": join_rate(with_lobby, opening),
        "with_lobby": sale.figures() | {"cpu_seconds": cpu_seconds},
    }


def summary(figures: dict[str, Any]) -> str:
    lobby, without, joined = figures["with_lobby"], figures["joins_without_lobby"], figures["joins_with_lobby"]
    return (
        f"lobby: peak joins/s {without['peak_joins_per_second']:,} without it, {joined['peak_joins_per_second']:,} "
        f"with it; {lobby['lobby_size']:,} in the lobby, line formed {lobby['line_formed_after_seconds']} s after "
        f"the opening; rank correlation arrival/admission {lobby['lobby_rank_correlation_arrival_vs_admission']} "
        f"in the lobby, {lobby['after_opening_rank_correlation_arrival_vs_admission']} after; bot entered "
        f"#{lobby['bot_admission_rank']}; overtakers {lobby['arrivals_after_opening_admitted_before_a_lobby_member']}; "
        f"polls per lobby waiter median {lobby['polls_per_lobby_waiter']['median']}, p99 "
        f"{lobby['polls_per_lobby_waiter']['p99']}; peak polls/s from the opening "
        f"{lobby['peak_polls_per_second_from_opening']:,}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=100_000)
    parser.add_argument("--no-save", action="store_true", help="print only (a trial run)")
    args = parser.parse_args(argv)
    base = LobbyModel()
    model = LobbyModel(buyers=args.buyers, capacity=max(1, round(base.capacity * args.buyers / base.buyers)))
    figures = run(model)
    print(summary(figures))
    if not args.no_save:
        report.save("lobby", f"make bench-scale  (python -m benchmarks.lobby --buyers {args.buyers})", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
