"""An in-memory QueueRepository: the same interface and the same conditions as the DynamoDB one, in dicts, so that
the real QueueService (joins, polls, the scheduler's Expire and Admit) can run a sale of 100,000 buyers on a
simulated clock in seconds (benchmarks/scale.py). Single-threaded: each method is one atomic step, as each
DynamoDB request is (a conditional write either applies or answers "condition failed").

What it keeps, per concert: the queue state, the sequence counters, every token by (concert, user), the token
holding each sequence number (GSI1 `WAIT#` at +seq or -seq), the WAIT numbers of each shard in order, and the
ACTIVE tokens (GSI2 `ACTIVE#`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from ticketline.models.queue import AdmissionRun, CounterReading, QueueState, QueueToken, TokenStatus, sequence_number
from ticketline.repositories.queue import QueueRepository


@dataclass
class _Queue:
    state: QueueState
    counters: list[int]
    by_seq: dict[int, QueueToken] = field(default_factory=dict)  # GSI1: the token (or stand-in) at each number
    waiting: list[list[int]] = field(default_factory=list)  # per shard, WAIT numbers in order (some since moved on)
    waiting_from: list[int] = field(default_factory=list)  # per shard, index of the first number maybe still WAIT
    active: dict[int, QueueToken] = field(default_factory=dict)  # GSI2: ACTIVE tokens by number


class InMemoryQueueRepository(QueueRepository):
    """QueueRepository over dicts (no DynamoDB); see the module's docstring."""

    def __init__(self) -> None:
        super().__init__(table_name="in-memory")
        self.queues: dict[str, _Queue] = {}
        self.tokens: dict[tuple[str, str], QueueToken] = {}

    # ---- state ----
    def create_queue(self, concert_id: str, capacity: int, shards: int, now: int) -> None:
        state = QueueState(concert_id=concert_id, capacity=capacity, shards=shards, admit_bound=capacity)
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
    ) -> bool:
        queue = self.queues[read.concert_id]
        if (queue.state.admit_bound, queue.state.capacity, queue.state.paused) != (
            read.admit_bound,
            read.capacity,
            False,
        ):
            return False
        queue.state = replace(queue.state, admit_bound=new_bound, readings=readings, runs=runs)
        return True

    def scheduled_concert_ids(self, ending_after: int) -> Iterator[str]:
        yield from list(self.queues)  # the simulated sale's one concert is on sale throughout

    # ---- sequence ----
    def next_seq(self, concert_id: str, shard: int, shards: int) -> int:
        counters = self.queues[concert_id].counters
        counters[shard] += 1
        return sequence_number(counters[shard], shard, shards)

    def issued_counts(self, concert_id: str, shards: int) -> list[int]:
        return list(self.queues[concert_id].counters)

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
        held = self.tokens.get((token.concert_id, token.user_id))
        if held is None or held.status is not TokenStatus.WAIT or held.token != token.token:
            return False
        self._store(replace(held, status=TokenStatus.ACTIVE, active_until=active_until))
        return True

    def expire(self, token: QueueToken, now: int) -> bool:
        held = self.tokens.get((token.concert_id, token.user_id))
        if (
            held is None
            or held.status is not TokenStatus.ACTIVE
            or held.token != token.token
            or (held.active_until or 0) > now
        ):
            return False
        self._store(replace(held, status=TokenStatus.EXPIRED))
        return True

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
        found = []
        for seq in numbers[start:]:
            if seq > bound:
                break
            token = queue.by_seq[seq]
            if token.status is TokenStatus.WAIT:
                found.append(token)
        yield from found

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
        self.tokens[(token.concert_id, token.user_id)] = token
        queue.by_seq[token.seq] = token
        if token.status is TokenStatus.WAIT:
            queue.waiting[token.shard].append(token.seq)  # numbers are drawn in order within a shard
        if token.status is TokenStatus.ACTIVE:
            queue.active[token.seq] = token
        else:
            queue.active.pop(token.seq, None)
