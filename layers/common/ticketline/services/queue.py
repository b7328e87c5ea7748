"""The fair waiting room: issue tokens, report positions, admit in arrival order, expire.

Admission is a moving bound: every token whose sequence number is <= `admitBound` is entitled to be ACTIVE.
Opening a queue sets the bound to its capacity (the first arrivals walk in); the scheduler raises it by the
number of free slots. Nobody but the scheduler (and an operator's pause or capacity change) writes the queue's
state, so issuing and polling never write a shared item; while paused nobody enters (see docs/QUEUE.md).

The lobby: a join before salesOpenAt draws no number but a random place key; the first admission run once no
lobby join can be in flight lets the lobby in by key order ahead of every number drawn after the opening.
"""

from __future__ import annotations

import math
import random
import secrets
from dataclasses import dataclass, field, replace
from hmac import compare_digest
from itertools import islice

from ticketline import clock
from ticketline.config import Settings, get_settings
from ticketline.errors import NotFound, QueueTokenExpired, QueueTokenInvalid, QueueTokenNotActive, SaleNotOpen, SoldOut
from ticketline.models.catalog import is_sold_out
from ticketline.models.queue import (
    LOBBY_KEYS,
    AdmissionRun,
    CounterReading,
    QueuePositionOut,
    QueueState,
    QueueToken,
    QueueTokenOut,
    TokenStatus,
    sequence_number,
)
from ticketline.observability import logger, metrics
from ticketline.repositories.queue import LobbyProgress, QueueRepository
from ticketline.services.queue_timing import (
    RUN_SETTLE_SECONDS,
    LineView,
    PollTiming,
    first_run_from,
    line_view,
    opening_timing,
    poll_timing,
    recorded_runs,
)

# An ACTIVE token's holder polls at most this far apart (its window's end, or this).
MAX_ACTIVE_POLL_SECONDS = 30
# No join lasts longer: the queue functions stop at 15 s (template Globals Timeout), plus time for a write
# already sent and for the index to show it. A drawn number whose token is not visible may be in flight that long.
JOIN_WINDOW_SECONDS = 30
# The queue state keeps a counter reading at most this often: about JOIN_WINDOW / this many, whatever the run rate.
READING_SPACING_SECONDS = 6
# Expiry keeps walking a concert this long past its token lifetime after its last date started, so that runs
# missed in that hour (a failed run, a paused schedule) still expire its last ACTIVE tokens.
EXPIRY_GRACE_MARGIN_SECONDS = 3600


@dataclass
class _StateCache:
    """Per-container cache of queue states; a stale bound can only delay entry, never over-admit. It ages on
    ticketline.clock, the time every other rule here reads, so a test that moves the clock ages it too; a clock
    stepped back counts as stale rather than stretching the cache's life."""

    ttl_seconds: float
    entries: dict[str, tuple[float, QueueState]] = field(default_factory=dict)

    def get(self, concert_id: str) -> QueueState | None:
        hit = self.entries.get(concert_id)
        if hit is None or not 0 <= clock.now() - hit[0] < self.ttl_seconds:
            return None
        return hit[1]

    def put(self, state: QueueState) -> None:
        self.entries[state.concert_id] = (clock.now(), state)


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
        self._admission_interval = self.settings.admission_interval_seconds
        self._line_views: dict[str, tuple[tuple[AdmissionRun, ...], LineView]] = {}

    # ---- request path ----
    def issue(self, concert_id: str, user_id: str) -> tuple[QueueTokenOut, bool]:
        """The caller's live token (created=False) or a new one at the back of the line (created=True); before
        salesOpenAt a lobby token (a random place key, no number).

        409 SALE_NOT_OPEN before the lobby opens, 410 SOLD_OUT while it is sold out (no token either way; both are
        learnt from the queue state the join reads anyway)."""
        state = self._state(concert_id)
        now = int(clock.now())
        self._require_open(state, now)
        if is_sold_out(state.sellable_until, now):
            metrics.add_metric(name="JoinsRefusedSoldOut", unit="Count", value=1)
            raise SoldOut()
        existing = self.repository.get_token(concert_id, user_id, consistent=True)
        if existing is not None and existing.effective_status(now) is not TokenStatus.EXPIRED:
            return self._token_view(self._settle(existing, state, now), state), False
        shard = secrets.randbelow(state.shards)
        in_lobby = state.sales_open_at is not None and now < state.sales_open_at
        if in_lobby:
            self.repository.count_lobby_join(concert_id, shard)
        token = QueueToken(
            concert_id=concert_id,
            user_id=user_id,
            token=secrets.token_urlsafe(32),
            seq=0 if in_lobby else self.repository.next_seq(concert_id, shard, state.shards),
            shard=shard,
            status=TokenStatus.WAIT,
            issued_at=now,
            active_until=None,
            # Uniform over the keys whatever the arrival time: the lobby's order owes nothing to being first.
            lobby_key=secrets.randbelow(LOBBY_KEYS) + 1 if in_lobby else None,
        )
        if self._entitled(token, state):  # paused, or a lobby not let in yet: the place is kept, entry waits
            token = replace(token, status=TokenStatus.ACTIVE, active_until=now + self.settings.active_token_ttl_seconds)
        winner = self.repository.put_token(token, replacing=existing.token if existing else None)
        if winner is not None:  # a concurrent request of the same user won; its token is the caller's
            if not in_lobby:  # else the scheduler holds our number's slot as a join in flight
                self.repository.release_seq(token)
            return self._token_view(winner, state), False
        metrics.add_metric(name="LobbyJoins" if in_lobby else "TokensIssued", unit="Count", value=1)
        logger.info("queue token issued", extra={"concertId": concert_id, "seq": token.seq, "status": token.status})
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
        if token.effective_status(now) is TokenStatus.EXPIRED:
            raise QueueTokenExpired()
        if state is not None and is_sold_out(state.sellable_until, now):
            raise SoldOut()  # the token keeps its place: when seats come back, the same poll answers again
        if state is not None:
            token = self._settle(token, state, now)
        status = token.effective_status(now)
        if status is TokenStatus.EXPIRED:
            raise QueueTokenExpired()
        position = self._place(token, state)
        if status is TokenStatus.ACTIVE:
            timing = PollTiming(0, max(1, min(MAX_ACTIVE_POLL_SECONDS, (token.active_until or now) - now)))
        elif position is None and state is not None:
            timing = self._forming_timing(token, state, clock.now())
        else:
            timing = self._waiting_timing(position or 1, state, clock.now())
        return QueuePositionOut(
            status=status,
            position=position,
            active_until=clock.to_iso(token.active_until)
            if status is TokenStatus.ACTIVE and token.active_until
            else None,
            retry_after_seconds=timing.retry_after_seconds,
            estimated_wait_seconds=timing.estimated_wait_seconds,
        )

    def _waiting_timing(self, position: int, state: QueueState | None, now: float) -> PollTiming:
        """Estimate and retry time from the recorded admission runs (queue_timing), returns spread at random."""
        return poll_timing(
            position,
            self._line_view(state),
            now,
            jitter=random.random(),  # spreads returns; not a secret
            settle_seconds=RUN_SETTLE_SECONDS + self.settings.queue_state_cache_seconds,
        )

    def _forming_timing(self, token: QueueToken, state: QueueState, now: float) -> PollTiming:
        """A waiter before the line forms (the lobby, or a join just after the opening): back after the run that forms
        it, or the run that could reach its place then. A lobby token's place is about its key's share of the lobby
        counted so far (which only grows: the guess errs early), so the lobby's returns are spread by their places,
        the front first, not all in the opening's second."""
        lobby = max(1, state.lobby_size)
        if token.lobby_key is not None:
            place = max(1, math.ceil(token.lobby_key / LOBBY_KEYS * lobby))
        else:
            place = lobby + token.seq
        view = self._line_view(state)
        forms_at = first_run_from((state.sales_open_at or 0) + JOIN_WINDOW_SECONDS, view.last_run, view.interval, now)
        return opening_timing(
            place,
            view,
            forms_at,
            now,
            jitter=random.random(),  # spreads returns; not a secret
            settle_seconds=RUN_SETTLE_SECONDS + self.settings.queue_state_cache_seconds,
        )

    def _line_view(self, state: QueueState | None) -> LineView:
        """The runs' reading, worked out again only when a new state was read (same runs: same view)."""
        if state is None:
            return line_view((), 1, self._admission_interval, self.settings.active_token_ttl_seconds)
        seen = self._line_views.get(state.concert_id)
        if seen is None or seen[0] is not state.runs:
            view = line_view(
                state.runs, state.capacity, self._admission_interval, self.settings.active_token_ttl_seconds
            )
            seen = self._line_views[state.concert_id] = (state.runs, view)
        return seen[1]

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
        # Concerts whose last date started within the grace still hold ACTIVE tokens (none starts after that
        # date: a poll answers SOLD_OUT rather than activate); holds lapse by their own index (lapse_due).
        grace = self.settings.active_token_ttl_seconds + EXPIRY_GRACE_MARGIN_SECONDS
        for concert_id in self.repository.scheduled_concert_ids(ending_after=now - grace):
            due = self.repository.active_tokens(concert_id, due_by=now)
            expired = sum(self.repository.expire(token, now) for token in due)
            summary += RunSummary(concerts=1, expired=expired)
        if summary.expired:
            metrics.add_metric(name="TokensExpired", unit="Count", value=summary.expired)
        return summary

    def admit(self) -> RunSummary:
        summary = RunSummary()
        # A concert whose last date has started is off sale (_admit_concert would only read it to learn that).
        for concert_id in self.repository.scheduled_concert_ids(ending_after=int(clock.now())):
            summary += self._admit_concert(concert_id)
        if summary.admitted:
            metrics.add_metric(name="TokensAdmitted", unit="Count", value=summary.admitted)
        return summary

    def _admit_concert(self, concert_id: str) -> RunSummary:
        """Cost O(admitted + capacity + shards + numbers drawn in the join window), never O(waiting); while the lobby
        is let in, `free` lobby keys read in order instead of raising the bound (_lobby_step).

        Every number <= the bound is counted as occupied unless it is known to be free: it is live ACTIVE or
        entitled WAIT (occupied), not drawn yet (kept for the next arrival), drawn in the join window with no
        token visible (a join in flight: occupied), or else free (its token expired or was paid, or its join
        died). The reads come before the counter reading, so a join is never missed between them.
        """
        state = self.repository.get_state(concert_id, consistent=True)
        if state is None:
            return RunSummary()
        now = int(clock.now())
        if is_sold_out(state.sellable_until, now):
            return RunSummary(concerts=1)  # nothing to sell: nobody enters; waiters keep their places
        if state.paused:  # an operator stopped admission: not even the repair lets anyone in
            self._record_paused_run(state, now)
            return RunSummary(concerts=1)
        # Repair first: waiters already entitled (a crashed run, or nobody polled) are ACTIVE from now on.
        entitled = [*self._activate_up_to(state, state.admit_bound, now), *self._activate_lobby_up_to(state, now)]
        seen = {_number(t): t for t in [*self.repository.active_tokens(concert_id), *entitled]}
        occupying = {_number(t) for t in entitled} | {n for n, t in seen.items() if _live(t, now)}
        issued, lobby_size = self.repository.counter_counts(concert_id, state.shards)
        reading = CounterReading(at=math.ceil(clock.now()), issued=tuple(issued))
        in_flight = 0
        for shard, (first, last) in enumerate(_drawn_lately(state, issued, now - JOIN_WINDOW_SECONDS)):
            if first > last:
                continue
            low, high = sequence_number(first, shard, state.shards), sequence_number(last, shard, state.shards)
            for token in self.repository.arrived_between(concert_id, shard, low, high):
                seen[token.seq] = token
                if _live(token, now):
                    occupying.add(token.seq)
            in_flight += sum(sequence_number(n, shard, state.shards) not in seen for n in range(first, last + 1))
        free = state.capacity - len(occupying) - in_flight - _unissued_up_to(state, issued)
        readings = _next_readings(state.readings, reading, now - JOIN_WINDOW_SECONDS)
        if in_flight:
            logger.info("slots held for joins in flight", extra={"concertId": concert_id, "inFlight": in_flight})
        lobby, let_in = self._lobby_step(state, lobby_size, free, now)
        if not state.lobby_done:  # numbers drawn after the opening wait behind the lobby: their bound stays 0 ...
            free = free - len(let_in) if lobby.done else 0  # ... until it is through; then the rest of the slots
        new_bound = self._past_released(state, state.admit_bound + free) if free > 0 else state.admit_bound
        # Every run is recorded, moved or not: the poll's estimate and retry time come from the line's pace, in
        # places (the lobby's, then the numbers drawn after the opening).
        drawn = _highest_drawn(issued, state.shards)
        # The live ACTIVE it leaves (the operator's figure): those counted occupying, plus the waiters it lets in.
        entering = len(let_in) + max(0, min(new_bound, drawn) - state.admit_bound)
        run = AdmissionRun(
            at=reading.at,
            bound=lobby.admitted + new_bound,
            drawn=lobby.size + drawn,
            active=len(occupying) + entering,
        )
        runs = recorded_runs(state.runs, run)
        if not self.repository.save_admission(state, new_bound, readings, runs, lobby):
            logger.info("another run or an operator changed the queue first", extra={"concertId": concert_id})
            return RunSummary(concerts=1, admitted=len(entitled))
        active_until = now + self.settings.active_token_ttl_seconds
        admitted = [token for token in let_in if self.repository.activate(token, active_until)]
        if new_bound > state.admit_bound:
            admitted += self._activate_up_to(replace(state, admit_bound=new_bound), new_bound, now)
        if admitted:
            logger.info("admitted", extra={"concertId": concert_id, "bound": new_bound, "admitted": len(admitted)})
        return RunSummary(concerts=1, admitted=len(entitled) + len(admitted))

    def _lobby_step(
        self, state: QueueState, counted: int, free: int, now: int
    ) -> tuple[LobbyProgress, list[QueueToken]]:
        """The lobby's progress after this run, and the lobby tokens it lets in (the next `free` by place key).

        Before the line can form the run only counts the lobby. It forms at the first run JOIN_WINDOW_SECONDS after
        salesOpenAt (no lobby join can still be in flight, so none lands behind a key already passed): from then
        on each run reads the next `free` keys in order, O(free + shards), never the whole lobby. The lobby is
        through when fewer than `free` are left."""
        progress = LobbyProgress.of(state)
        if state.lobby_done:
            return progress, []
        if state.sales_open_at is None or now < state.sales_open_at + JOIN_WINDOW_SECONDS:
            return replace(progress, size=counted), []
        progress = replace(progress, size=counted, formed=True)
        if free <= 0:
            return progress, []
        next_in_line = self.repository.lobby_waiting_after(state.concert_id, state.shards, state.lobby_bound, free)
        let_in = list(islice(next_in_line, free))
        if len(let_in) < free:
            admitted = max(counted, progress.admitted + len(let_in))
            return replace(progress, done=True, bound=LOBBY_KEYS, admitted=admitted), let_in
        return replace(progress, bound=let_in[-1].lobby_key or 0, admitted=progress.admitted + len(let_in)), let_in

    # ---- helpers ----
    def _record_paused_run(self, state: QueueState, now: int) -> None:
        """While paused the line still grows and tokens still run out: record both for the operator's figures
        (O(shards + capacity), the reads of a run without its writes)."""
        issued, lobby_size = self.repository.counter_counts(state.concert_id, state.shards)
        drawn = _highest_drawn(issued, state.shards)
        active = sum(_live(token, now) for token in self.repository.active_tokens(state.concert_id))
        run = AdmissionRun(
            at=math.ceil(clock.now()),
            bound=state.lobby_admitted + state.admit_bound,
            drawn=lobby_size + drawn,
            active=active,
        )
        self.repository.save_paused_run(state, recorded_runs(state.runs, run))

    def _state(self, concert_id: str) -> QueueState:
        state = self._cache.get(concert_id)
        if state is None:
            state = self.repository.get_state(concert_id)
            if state is None:
                raise NotFound(f"Concert {concert_id} does not exist.")
            self._cache.put(state)
        return state

    def _require_open(self, state: QueueState, now: int) -> None:
        """Joining opens PreQueueMinutes before salesOpenAt, into the lobby; at salesOpenAt for a queue created with
        no lobby (its sale was open at creation, or PreQueueMinutes was 0)."""
        if state.sales_open_at is None:
            return
        lobby_minutes = 0 if state.lobby_done else self.settings.pre_queue_minutes
        opens_at = state.sales_open_at - lobby_minutes * 60
        if now < opens_at:
            raise SaleNotOpen(
                retry_after_seconds=opens_at - now,
                message=f"The sale opens at {clock.to_iso(state.sales_open_at)}; join the queue then.",
            )

    def _past_released(self, state: QueueState, bound: int) -> int:
        """`bound`, moved one step further for each released number it passes (a join that lost its user's race:
        nobody holds it, so its step would admit nobody). One GSI1 query per shard, again only if it found some."""
        checked = state.admit_bound
        while bound > checked:
            released = sum(
                self.repository.released_between(state.concert_id, shard, checked + 1, bound)
                for shard in range(state.shards)
            )
            checked, bound = bound, bound + released
        return bound

    def _activate_up_to(self, state: QueueState, bound: int, now: int) -> list[QueueToken]:
        """Activate every WAIT token with seq <= bound; returns them, now ACTIVE (whoever activated them)."""
        if bound <= 0:
            return []
        active_until = now + self.settings.active_token_ttl_seconds
        activated: list[QueueToken] = []
        for shard in range(state.shards):
            for token in self.repository.waiting_up_to(state.concert_id, shard, bound):
                self.repository.activate(token, active_until)
                activated.append(token)
        return activated

    def _activate_lobby_up_to(self, state: QueueState, now: int) -> list[QueueToken]:
        """Activate every WAIT lobby token the lobby's bound has passed (a run that crashed after its write)."""
        if state.lobby_bound <= 0:
            return []
        active_until = now + self.settings.active_token_ttl_seconds
        activated: list[QueueToken] = []
        for shard in range(state.shards):
            for token in self.repository.lobby_waiting_up_to(state.concert_id, shard, state.lobby_bound):
                self.repository.activate(token, active_until)
                activated.append(token)
        return activated

    def _settle(self, token: QueueToken, state: QueueState, now: int) -> QueueToken:
        """A waiter the bound has passed walks in at its next request, without waiting for the scheduler."""
        if token.status is not TokenStatus.WAIT or not self._entitled(token, state):
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
    def _entitled(token: QueueToken, state: QueueState) -> bool:
        """Entitled to be ACTIVE: a lobby token the lobby's bound has passed, or, once the lobby is through, a number
        <= admitBound. Never while paused."""
        if state.paused:
            return False
        if token.lobby_key is not None:
            return token.lobby_key <= state.lobby_bound
        return state.lobby_done and token.seq <= state.admit_bound

    @staticmethod
    def _place(token: QueueToken, state: QueueState | None) -> int | None:
        """1 = next to enter; None while the line forms. In a formed lobby a token's place is estimated from its key:
        the keys are uniform, so about (key - bound) / (LOBBY_KEYS - bound) of those left are ahead of it (off by
        about the square root of that count, 0.1 % of a million)."""
        if token.status is not TokenStatus.WAIT or state is None:
            return 0
        if not state.lobby_done and not state.lobby_formed:
            return None
        left = max(0, state.lobby_size - state.lobby_admitted) if not state.lobby_done else 0
        if token.lobby_key is not None:
            share = (token.lobby_key - state.lobby_bound) / (LOBBY_KEYS - state.lobby_bound or 1)
            return max(1, min(left, math.ceil(share * left)))
        return max(1, left + token.seq - state.admit_bound)

    def _token_view(self, token: QueueToken, state: QueueState) -> QueueTokenOut:
        active = token.status is TokenStatus.ACTIVE
        return QueueTokenOut(
            token=token.token,
            concert_id=token.concert_id,
            status=token.status,
            position=self._place(token, state),
            active_until=clock.to_iso(token.active_until) if active and token.active_until else None,
        )


def _number(token: QueueToken) -> int | str:
    """What tells tokens apart in a run's count: the number, or a lobby token's user (lobby tokens have no number)."""
    return token.seq if token.lobby_key is None else token.user_id


def _highest_drawn(issued: list[int], shards: int) -> int:
    """The highest sequence number any shard has handed out (0: none)."""
    return max((sequence_number(n, shard, shards) for shard, n in enumerate(issued) if n), default=0)


def _live(token: QueueToken, now: int) -> bool:
    return token.status is TokenStatus.ACTIVE and (token.active_until or 0) > now


def _under_bound(state: QueueState, shard: int) -> int:
    """How many of the shard's numbers are <= the bound."""
    return (state.admit_bound - shard - 1) // state.shards + 1 if state.admit_bound > shard else 0


def _unissued_up_to(state: QueueState, issued: list[int]) -> int:
    """Sequence numbers <= the bound that no one holds yet: slots kept for the next arrivals."""
    return sum(max(0, _under_bound(state, shard) - count) for shard, count in enumerate(issued))


def _drawn_lately(state: QueueState, issued: list[int], cutoff: int) -> list[tuple[int, int]]:
    """Per shard, the (first, last) draw counts <= the bound drawn after the newest reading taken by `cutoff`.

    Numbers drawn before that reading belong to joins that started before it, so they are over by now. With no
    such reading (a new queue) every number drawn so far is recent: at most the first bound's worth.
    """
    baseline = max((r for r in state.readings if r.at <= cutoff), key=lambda r: r.at, default=None)
    floors = baseline.issued if baseline else (0,) * state.shards
    return [(floors[s] + 1, min(count, _under_bound(state, s))) for s, count in enumerate(issued)]


def _next_readings(
    readings: tuple[CounterReading, ...], new: CounterReading, cutoff: int
) -> tuple[CounterReading, ...]:
    """The readings later runs may still need: the newest taken by `cutoff` (their baseline) and all later ones,
    plus this run's unless nothing was drawn since the newest or it is younger than READING_SPACING_SECONDS."""
    ordered = sorted(readings, key=lambda r: r.at)
    kept = [r for r in ordered if r.at <= cutoff][-1:] + [r for r in ordered if r.at > cutoff]
    if not kept or (new.issued != kept[-1].issued and new.at - kept[-1].at >= READING_SPACING_SECONDS):
        kept.append(new)
    return tuple(kept)
