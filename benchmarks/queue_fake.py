"""An in-memory QueueRepository: the same interface and the same conditions as the DynamoDB one, in dicts, so that
the real QueueService (joins, polls, the scheduler's Expire and Admit) can run a sale of 100,000 buyers on a
simulated clock in seconds (benchmarks/scale.py). Single-threaded: each method is one atomic step, as each
DynamoDB request is (a conditional write either applies or answers "condition failed").

What it keeps, per concert: the queue state, the sequence counters, every token by (concert, user), the token
holding each sequence number (GSI1 `WAIT#` at +seq or -seq), the WAIT numbers of each shard in order, the lobby's
tokens by place key (GSI1 `LOBBY#`) and the ACTIVE tokens (GSI2 `ACTIVE#`).

`SimulatedSale` is the event loop both simulations (benchmarks/scale.py, benchmarks/lobby.py) run the service in.
"""

from __future__ import annotations

import abc
import bisect
import contextlib
import heapq
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from benchmarks.hotkeys import SimulatedClock, simulated_queue
from benchmarks.inprocess import NullWriter
from ticketline.models.queue import AdmissionRun, CounterReading, QueueState, QueueToken, TokenStatus, sequence_number
from ticketline.repositories.queue import LobbyProgress, QueueRepository


@dataclass
class _Queue:
    state: QueueState
    counters: list[int]
    by_seq: dict[int, QueueToken] = field(default_factory=dict)  # GSI1: the token (or stand-in) at each number
    waiting: list[list[int]] = field(default_factory=list)  # per shard, WAIT numbers in order (some since moved on)
    waiting_from: list[int] = field(default_factory=list)  # per shard, index of the first number maybe still WAIT
    active: dict[str, QueueToken] = field(default_factory=dict)  # GSI2: ACTIVE tokens by user
    lobby_joins: int = 0  # the counters' `lobby` attribute, summed
    lobby: list[tuple[int, str]] = field(default_factory=list)  # GSI1 LOBBY#: (place key, user), sorted on read
    lobby_sorted: bool = True
    lobby_from: int = 0  # index of the first lobby entry maybe still WAIT


class InMemoryQueueRepository(QueueRepository):
    """QueueRepository over dicts (no DynamoDB); see the module's docstring."""

    def __init__(self) -> None:
        super().__init__(table_name="in-memory")
        self.queues: dict[str, _Queue] = {}
        self.tokens: dict[tuple[str, str], QueueToken] = {}

    # ---- state ----
    def create_queue(
        self, concert_id: str, capacity: int, shards: int, now: int, sales_open_at: int | None = None
    ) -> None:
        """As concert creation does: with a lobby when the sale opens later (PreQueueMinutes > 0 assumed)."""
        lobby = sales_open_at is not None and sales_open_at > now
        state = QueueState(
            concert_id=concert_id,
            capacity=capacity,
            shards=shards,
            admit_bound=0 if lobby else capacity,
            sales_open_at=sales_open_at,
            lobby_done=not lobby,
        )
        self.queues[concert_id] = _Queue(
            state=state, counters=[0] * shards, waiting=[[] for _ in range(shards)], waiting_from=[0] * shards
        )

    def get_state(self, concert_id: str, consistent: bool = False) -> QueueState | None:
        queue = self.queues.get(concert_id)
        return queue.state if queue else None

    def get_token_and_state(self, concert_id: str, user_id: str) -> tuple[QueueToken | None, QueueState | None]:
        return self.tokens.get((concert_id, user_id)), self.get_state(concert_id)

    def save_admission(
        self,
        read: QueueState,
        new_bound: int,
        readings: tuple[CounterReading, ...],
        runs: tuple[AdmissionRun, ...],
        lobby: LobbyProgress | None = None,
    ) -> bool:
        queue = self.queues[read.concert_id]
        seen = (queue.state.admit_bound, queue.state.capacity, queue.state.paused, queue.state.lobby_bound)
        if seen != (read.admit_bound, read.capacity, False, read.lobby_bound):
            return False
        progress = lobby or LobbyProgress.of(read)
        queue.state = replace(
            queue.state,
            admit_bound=new_bound,
            readings=readings,
            runs=runs,
            lobby_done=progress.done,
            lobby_size=progress.size,
            lobby_formed=progress.formed,
            lobby_bound=progress.bound,
            lobby_admitted=progress.admitted,
        )
        return True

    def scheduled_concert_ids(self, ending_after: int) -> Iterator[str]:
        yield from list(self.queues)  # the simulated sale's one concert is on sale throughout

    # ---- sequence ----
    def next_seq(self, concert_id: str, shard: int, shards: int) -> int:
        counters = self.queues[concert_id].counters
        counters[shard] += 1
        return sequence_number(counters[shard], shard, shards)

    def count_lobby_join(self, concert_id: str, shard: int) -> None:
        self.queues[concert_id].lobby_joins += 1

    def counter_counts(self, concert_id: str, shards: int) -> tuple[list[int], int]:
        queue = self.queues[concert_id]
        return list(queue.counters), queue.lobby_joins

    # ---- tokens ----
    def get_token(self, concert_id: str, user_id: str, consistent: bool = False) -> QueueToken | None:
        return self.tokens.get((concert_id, user_id))

    def put_token(self, token: QueueToken, replacing: str | None) -> QueueToken | None:
        held = self.tokens.get((token.concert_id, token.user_id))
        if held is not None and (replacing is None or held.token != replacing):
            return held
        self._store(token)
        return None

    def release_seq(self, lost: QueueToken) -> None:
        stand_in = replace(lost, token="", status=TokenStatus.EXPIRED, active_until=None)
        self.queues[lost.concert_id].by_seq[lost.seq] = stand_in

    def activate(self, token: QueueToken, active_until: int) -> bool:
        held = self._held(token, TokenStatus.WAIT)
        if held is None:
            return False
        self._store(replace(held, status=TokenStatus.ACTIVE, active_until=active_until))
        return True

    def expire(self, token: QueueToken, now: int) -> bool:
        held = self._held(token, TokenStatus.ACTIVE)
        if held is None or (held.active_until or 0) > now:
            return False
        self._store(replace(held, status=TokenStatus.EXPIRED))
        return True

    def _held(self, token: QueueToken, status: TokenStatus) -> QueueToken | None:
        """The stored token if it is still `token`, in `status` (the conditional write's condition)."""
        held = self.tokens.get((token.concert_id, token.user_id))
        return held if held is not None and held.status is status and held.token == token.token else None

    def expire_paid(self, concert_id: str, user_id: str) -> None:
        """What a payment's transaction does to the payer's token (`expire_update`): EXPIRED, slot free."""
        held = self.tokens[(concert_id, user_id)]
        self._store(replace(held, status=TokenStatus.EXPIRED))

    def waiting_up_to(self, concert_id: str, shard: int, bound: int) -> Iterator[QueueToken]:
        queue = self.queues[concert_id]
        numbers, start = queue.waiting[shard], queue.waiting_from[shard]
        while start < len(numbers) and queue.by_seq[numbers[start]].status is not TokenStatus.WAIT:
            start += 1  # moved on since: the index no longer holds them at +seq
        queue.waiting_from[shard] = start
        end = bisect.bisect_right(numbers, bound, lo=start)  # numbers are drawn in order within a shard
        yield from [token for seq in numbers[start:end] if (token := queue.by_seq[seq]).status is TokenStatus.WAIT]

    def lobby_waiting_up_to(self, concert_id: str, shard: int, bound: int) -> Iterator[QueueToken]:
        queue = self._sorted_lobby(concert_id)
        start = queue.lobby_from
        while start < len(queue.lobby) and self._lobby_waiting(queue, concert_id, start) is None:
            start += 1  # moved on since: the index no longer holds them at +lobbyKey
        queue.lobby_from = start
        end = bisect.bisect_right(queue.lobby, (bound, "\uffff"))
        found = [self._lobby_waiting(queue, concert_id, i) for i in range(start, end)]
        yield from (t for t in found if t is not None and t.shard == shard)

    def lobby_waiting_after(self, concert_id: str, shards: int, after: int, wanted: int) -> Iterator[QueueToken]:
        queue = self._sorted_lobby(concert_id)
        for index in range(bisect.bisect_right(queue.lobby, (after, "\uffff")), len(queue.lobby)):
            token = self._lobby_waiting(queue, concert_id, index)
            if token is not None:
                yield token

    def _sorted_lobby(self, concert_id: str) -> _Queue:
        queue = self.queues[concert_id]
        if not queue.lobby_sorted:
            queue.lobby.sort()
            queue.lobby_sorted, queue.lobby_from = True, 0
        return queue

    def _lobby_waiting(self, queue: _Queue, concert_id: str, index: int) -> QueueToken | None:
        """The lobby entry's token if it still waits at that key (not activated, not replaced)."""
        key, user = queue.lobby[index]
        token = self.tokens[(concert_id, user)]
        return token if token.lobby_key == key and token.status is TokenStatus.WAIT else None

    def arrived_between(self, concert_id: str, shard: int, low: int, high: int) -> Iterator[QueueToken]:
        queue = self.queues[concert_id]
        shards = queue.state.shards
        first = low + (shard + 1 - low) % shards  # the shard's numbers are shard+1 (mod shards)
        found = [queue.by_seq[seq] for seq in range(first, high + 1, shards) if seq in queue.by_seq]
        yield from (token for token in found if token.status is not TokenStatus.WAIT)

    def active_tokens(self, concert_id: str, due_by: int | None = None) -> list[QueueToken]:
        active = sorted(self.queues[concert_id].active.values(), key=lambda t: t.active_until or 0)
        return [t for t in active if due_by is None or (t.active_until or 0) <= due_by]

    def _store(self, token: QueueToken) -> None:
        queue = self.queues[token.concert_id]
        new = (token.concert_id, token.user_id) not in self.tokens
        self.tokens[(token.concert_id, token.user_id)] = token
        if token.lobby_key is not None:
            if new:
                queue.lobby.append((token.lobby_key, token.user_id))
                queue.lobby_sorted = False
        else:
            queue.by_seq[token.seq] = token
            if token.status is TokenStatus.WAIT:
                queue.waiting[token.shard].append(token.seq)  # numbers are drawn in order within a shard
        if token.status is TokenStatus.ACTIVE:
            queue.active[token.user_id] = token
        else:
            queue.active.pop(token.user_id, None)


@dataclass(frozen=True)
class QueueModel:
    """What both simulated sales' models (scale.SaleModel, lobby.LobbyModel) share: the queue as deployed, the
    buyers and their habits."""

    buyers: int = 100_000
    capacity: int = 1_000
    admission_seconds: int = 60
    expiry_seconds: int = 60
    active_seconds: int = 300
    cache_seconds: float = 1.0
    run_delay_seconds: float = 3.0  # EventBridge is not second-aligned; a run takes time
    opening_share: float = 0.7  # buyers who mean to be there at the opening ...
    late_mean_seconds: float = 900.0  # ... the others arrive after it, exponentially
    shopping_median_seconds: float = 150.0  # ACTIVE buyers shop for a lognormal time (median 2.5 min), then pay
    shopping_sigma: float = 0.4
    seed: int = 14


# Event kinds, in the order they run when simultaneous.
ADMIT, EXPIRE, PAY, JOIN, POLL = range(5)


class SimulatedSale[Model: QueueModel](abc.ABC):
    """The real QueueService on the in-memory repository and a simulated clock: the scheduler's Admit and Expire
    runs and the buyers' steps are events in a heap, run in time order (then kind, then as pushed). Subclasses
    handle JOIN, POLL and PAY; each handler answers how many buyers it finished with (0 or 1)."""

    def __init__(self, model: Model, clock: SimulatedClock, **settings: Any) -> None:
        """`settings`: any other Settings field (e.g. pre_queue_minutes)."""
        from ticketline.config import Settings
        from ticketline.services.queue import QueueService

        self.model, self.clock = model, clock
        minutes = model.admission_seconds // 60
        configured = Settings(
            table_name="in-memory",
            active_token_ttl_seconds=model.active_seconds,
            queue_state_cache_seconds=model.cache_seconds,
            admission_schedule_rate=f"rate({minutes} minute{'s' * (minutes > 1)})",
            **settings,
        )
        self.repository = InMemoryQueueRepository()
        self.service = QueueService(self.repository, configured)
        self.rng = random.Random(model.seed + 1)
        self.events: list[tuple[float, int, int, int]] = []
        self.order = 0
        self.next_admit_at = 0.0
        self.runs = {"admit": 0, "expire": 0, "admitted": 0, "expired": 0}

    def push(self, at: float, kind: int, buyer: int = -1) -> None:
        self.order += 1
        heapq.heappush(self.events, (at, kind, self.order, buyer))

    def schedule(self, start: float, join_at: Sequence[float]) -> None:
        """The first Admit and Expire runs at random moments of their periods from `start`, and every join."""
        self.next_admit_at = start + self.rng.uniform(0, self.model.admission_seconds)
        self.push(self.next_admit_at, ADMIT)
        self.push(start + self.rng.uniform(0, self.model.expiry_seconds), EXPIRE)
        for buyer, at in enumerate(join_at):
            self.push(at, JOIN, buyer)

    def play(self, buyers: int, until: float = math.inf) -> float:
        """Runs the events until every buyer is finished with; the CPU seconds it took."""
        from ticketline.observability import logger, metrics

        logger.setLevel("WARNING")  # the service's info lines, 100,000 times over
        metrics.provider.namespace = metrics.provider.namespace or "Ticketline"  # as the template sets it
        random.seed(self.model.seed)  # the service's jitter
        handlers: tuple[Callable[[int], int], ...] = (self.admit, self.expire, self.pay, self.join, self.poll)
        started = time.process_time()
        with simulated_queue(self.clock), contextlib.redirect_stdout(NullWriter()):
            while buyers:
                at, kind, _, buyer = heapq.heappop(self.events)
                if at >= until:
                    raise RuntimeError(f"the sale did not end by the simulated clock's {until}")
                self.clock.now = at
                buyers -= handlers[kind](buyer)
        return round(time.process_time() - started, 1)

    def admit(self, _: int) -> int:
        self.runs["admit"] += 1
        self.runs["admitted"] += self.service.admit().admitted
        scheduled = self.next_admit_at - self.next_admit_at % 1 + self.model.admission_seconds
        self.next_admit_at = scheduled + self.rng.uniform(0, self.model.run_delay_seconds)
        self.push(self.next_admit_at, ADMIT)
        return 0

    def expire(self, _: int) -> int:
        self.runs["expire"] += 1
        self.runs["expired"] += self.service.expire_due().expired
        self.push(self.clock.now + self.model.expiry_seconds, EXPIRE)
        return 0

    @abc.abstractmethod
    def join(self, buyer: int) -> int:
        """The buyer asks for a token."""

    @abc.abstractmethod
    def poll(self, buyer: int) -> int:
        """The buyer asks its position."""

    @abc.abstractmethod
    def pay(self, buyer: int) -> int:
        """The buyer pays: its token expires."""
