"""The fair waiting room: issue tokens, report positions, admit in arrival order, expire.

Admission is a moving bound: every token whose sequence number is <= `admitBound` is entitled to be ACTIVE.
Opening a queue sets the bound to its capacity (the first arrivals walk in); the scheduler raises it by the
number of free slots. Nobody but the scheduler writes the queue's state, so issuing and polling never write
a shared item (see docs/QUEUE.md).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, replace
from hmac import compare_digest

from ticketline import clock
from ticketline.config import Settings, get_settings
from ticketline.errors import NotFound, QueueTokenExpired, QueueTokenInvalid, QueueTokenNotActive
from ticketline.models.queue import QueuePositionOut, QueueState, QueueToken, QueueTokenOut, TokenStatus
from ticketline.observability import logger, metrics
from ticketline.repositories.queue import QueueRepository

MIN_POLL_SECONDS = 2
MAX_POLL_SECONDS = 30
# One more second of poll interval per this many people ahead: far-back users poll less (read load).
POSITIONS_PER_POLL_SECOND = 50


@dataclass
class _StateCache:
    """Per-container cache of queue states; a stale bound can only delay entry, never over-admit."""

    ttl_seconds: float
    entries: dict[str, tuple[float, QueueState]] = field(default_factory=dict)

    def get(self, concert_id: str) -> QueueState | None:
        hit = self.entries.get(concert_id)
        if hit is None or time.monotonic() - hit[0] >= self.ttl_seconds:
            return None
        return hit[1]

    def put(self, state: QueueState) -> None:
        self.entries[state.concert_id] = (time.monotonic(), state)


@dataclass(frozen=True, slots=True)
class RunSummary:
    concerts: int = 0
    expired: int = 0
    admitted: int = 0

    def __add__(self, other: RunSummary) -> RunSummary:
        return RunSummary(self.concerts + other.concerts, self.expired + other.expired, self.admitted + other.admitted)


class QueueService:
    def __init__(self, repository: QueueRepository | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.repository = repository or QueueRepository(self.settings.table_name)
        self._cache = _StateCache(self.settings.queue_state_cache_seconds)

    # ---- request path ----
    def issue(self, concert_id: str, user_id: str) -> tuple[QueueTokenOut, bool]:
        """The caller's live token (created=False) or a new one at the back of the line (created=True)."""
        state = self._state(concert_id)
        now = int(clock.now())
        existing = self.repository.get_token(concert_id, user_id, consistent=True)
        if existing is not None and existing.effective_status(now) is not TokenStatus.EXPIRED:
            return self._token_view(self._settle(existing, state, now), state), False
        shard = secrets.randbelow(state.shards)
        seq = self.repository.next_seq(concert_id, shard, state.shards)
        entitled = seq <= state.admit_bound
        token = QueueToken(
            concert_id=concert_id,
            user_id=user_id,
            token=secrets.token_urlsafe(32),
            seq=seq,
            shard=shard,
            status=TokenStatus.ACTIVE if entitled else TokenStatus.WAIT,
            issued_at=now,
            active_until=now + self.settings.active_token_ttl_seconds if entitled else None,
        )
        winner = self.repository.put_token(token, replacing=existing.token if existing else None)
        if winner is not None:  # a concurrent request of the same user won; its token is the caller's
            return self._token_view(winner, state), False
        metrics.add_metric(name="TokensIssued", unit="Count", value=1)
        logger.info("queue token issued", extra={"concertId": concert_id, "seq": seq, "status": token.status})
        return self._token_view(token, state), True

    def position(self, concert_id: str, user_id: str, presented: str | None) -> QueuePositionOut:
        """One read request per poll: the token, plus the queue state when the cache has gone stale."""
        state = self._cache.get(concert_id)
        if state is None:
            token, state = self.repository.get_token_and_state(concert_id, user_id)
            if state is not None:
                self._cache.put(state)
        else:
            token = self.repository.get_token(concert_id, user_id)
        token = self._check_presented(token, presented)
        now = int(clock.now())
        if state is not None:
            token = self._settle(token, state, now)
        status = token.effective_status(now)
        if status is TokenStatus.EXPIRED:
            raise QueueTokenExpired()
        position = self._place(token, state)
        if status is TokenStatus.ACTIVE:
            retry_after = max(1, min(MAX_POLL_SECONDS, (token.active_until or now) - now))
        else:
            retry_after = min(MAX_POLL_SECONDS, MIN_POLL_SECONDS + position // POSITIONS_PER_POLL_SECOND)
        return QueuePositionOut(
            status=status,
            position=position,
            active_until=clock.to_iso(token.active_until)
            if status is TokenStatus.ACTIVE and token.active_until
            else None,
            retry_after_seconds=retry_after,
        )

    def require_active(self, concert_id: str, user_id: str, presented: str | None) -> QueueToken:
        """Guard of every "ACTIVE token" endpoint: 401 unknown/foreign, 403 waiting, 410 expired."""
        token = self._check_presented(self.repository.get_token(concert_id, user_id), presented)
        status = token.effective_status(clock.now())
        if status is TokenStatus.EXPIRED:
            raise QueueTokenExpired()
        if status is TokenStatus.WAIT:
            raise QueueTokenNotActive()
        return token

    # ---- scheduler ----
    def expire_due(self) -> RunSummary:
        summary = RunSummary()
        now = int(clock.now())
        for concert_id in self.repository.concert_ids():
            due = self.repository.active_tokens(concert_id, due_by=now)
            expired = sum(self.repository.expire(token, now) for token in due)
            summary += RunSummary(concerts=1, expired=expired)
        if summary.expired:
            metrics.add_metric(name="TokensExpired", unit="Count", value=summary.expired)
        return summary

    def admit(self) -> RunSummary:
        summary = RunSummary()
        for concert_id in self.repository.concert_ids():
            summary += self._admit_concert(concert_id)
        if summary.admitted:
            metrics.add_metric(name="TokensAdmitted", unit="Count", value=summary.admitted)
        return summary

    def _admit_concert(self, concert_id: str) -> RunSummary:
        """Cost O(admitted + capacity + shards), never O(waiting)."""
        state = self.repository.get_state(concert_id, consistent=True)
        if state is None:
            return RunSummary()
        now = int(clock.now())
        # Repair first: waiters already entitled (a crashed run, or nobody polled) are ACTIVE from now on.
        entitled = self._activate_up_to(state, state.admit_bound, now)
        live = {t.user_id for t in self.repository.active_tokens(concert_id) if (t.active_until or 0) > now}
        kept_for_newcomers = _unissued_up_to(state, self.repository.issued_counts(concert_id, state.shards))
        occupied = len(live | entitled) + kept_for_newcomers
        free = state.capacity - occupied
        if free <= 0:
            return RunSummary(concerts=1, admitted=len(entitled))
        new_bound = state.admit_bound + free
        if not self.repository.raise_admit_bound(concert_id, state.admit_bound, new_bound):
            logger.info("another scheduler run moved the bound first", extra={"concertId": concert_id})
            return RunSummary(concerts=1, admitted=len(entitled))
        admitted = self._activate_up_to(replace(state, admit_bound=new_bound), new_bound, now)
        logger.info("admitted", extra={"concertId": concert_id, "bound": new_bound, "admitted": len(admitted)})
        return RunSummary(concerts=1, admitted=len(entitled) + len(admitted))

    # ---- helpers ----
    def _state(self, concert_id: str) -> QueueState:
        state = self._cache.get(concert_id)
        if state is None:
            state = self.repository.get_state(concert_id)
            if state is None:
                raise NotFound(f"Concert {concert_id} does not exist.")
            self._cache.put(state)
        return state

    def _activate_up_to(self, state: QueueState, bound: int, now: int) -> set[str]:
        """Activate every WAIT token with seq <= bound; returns the users now ACTIVE (whoever activated them)."""
        active_until = now + self.settings.active_token_ttl_seconds
        users: set[str] = set()
        for shard in range(state.shards):
            for token in self.repository.waiting_up_to(state.concert_id, shard, bound):
                self.repository.activate(token, active_until)
                users.add(token.user_id)
        return users

    def _settle(self, token: QueueToken, state: QueueState, now: int) -> QueueToken:
        """A waiter the bound has passed walks in at its next request, without waiting for the scheduler."""
        if token.status is not TokenStatus.WAIT or token.seq > state.admit_bound:
            return token
        active_until = now + self.settings.active_token_ttl_seconds
        if self.repository.activate(token, active_until):
            return replace(token, status=TokenStatus.ACTIVE, active_until=active_until)
        return self.repository.get_token(token.concert_id, token.user_id, consistent=True) or token

    @staticmethod
    def _check_presented(token: QueueToken | None, presented: str | None) -> QueueToken:
        # Keyed by (concert, user): another user's or another concert's token simply never matches.
        if token is None or not presented or not compare_digest(token.token.encode(), presented.encode()):
            raise QueueTokenInvalid()
        return token

    @staticmethod
    def _place(token: QueueToken, state: QueueState | None) -> int:
        if token.status is not TokenStatus.WAIT or state is None:
            return 0
        return max(1, token.seq - state.admit_bound)

    def _token_view(self, token: QueueToken, state: QueueState) -> QueueTokenOut:
        active = token.status is TokenStatus.ACTIVE
        return QueueTokenOut(
            token=token.token,
            concert_id=token.concert_id,
            status=token.status,
            position=self._place(token, state),
            active_until=clock.to_iso(token.active_until) if active and token.active_until else None,
        )


def _unissued_up_to(state: QueueState, issued: list[int]) -> int:
    """Sequence numbers <= the bound that no one holds yet: slots kept for the next arrivals."""
    unissued = 0
    for shard, count in enumerate(issued):
        if state.admit_bound >= shard + 1:
            unissued += max(0, (state.admit_bound - shard - 1) // state.shards + 1 - count)
    return unissued
