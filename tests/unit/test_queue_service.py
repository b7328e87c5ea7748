"""The queue's rules on moto: admission order, positions, expiry, repeat requests, scheduler safety."""

from __future__ import annotations

import pytest

from ticketline import clock as ticketline_clock
from ticketline.config import get_settings
from ticketline.errors import NotFound, QueueTokenExpired, QueueTokenInvalid, QueueTokenNotActive
from ticketline.models.queue import TokenStatus
from ticketline.repositories.queue import QueueRepository
from ticketline.services.queue import QueueService

pytestmark = pytest.mark.usefixtures("aws")


def open_queue(concert_id: str = "c1", capacity: int = 3, shards: int = 1) -> QueueService:
    QueueRepository().create_queue(concert_id, capacity, shards, now=0)
    return QueueService()


def test_capacity_three_with_ten_users_gives_three_active_and_positions_one_to_seven(clock):
    queue = open_queue(capacity=3)
    tokens = [queue.issue("c1", f"user-{i}")[0] for i in range(10)]
    assert [t.status for t in tokens] == [TokenStatus.ACTIVE] * 3 + [TokenStatus.WAIT] * 7
    assert [t.position for t in tokens] == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert all(t.active_until is not None for t in tokens[:3])
    assert all(t.active_until is None for t in tokens[3:])
    positions = [queue.position("c1", f"user-{i}", t.token).position for i, t in enumerate(tokens)]
    assert positions == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]


def test_asking_again_returns_the_same_token(clock):
    queue = open_queue()
    first, created = queue.issue("c1", "alice")
    again, created_again = queue.issue("c1", "alice")
    assert (created, created_again) == (True, False)
    assert again == first
    assert len(first.token) >= 43  # 32 random bytes, base64url: 256 bits


def test_unknown_concert_is_404(clock):
    with pytest.raises(NotFound):
        open_queue().issue("nope", "alice")


def test_expiry_then_admission_admits_the_next_waiters_in_arrival_order(clock):
    queue = open_queue(capacity=2)
    tokens = {f"u{i}": queue.issue("c1", f"u{i}")[0] for i in range(6)}
    clock.advance(queue.settings.active_token_ttl_seconds)
    assert queue.expire_due().expired == 2
    with pytest.raises(QueueTokenExpired):
        queue.position("c1", "u0", tokens["u0"].token)
    assert queue.admit().admitted == 2
    statuses = {user: queue.position("c1", user, t.token) for user, t in tokens.items() if user not in ("u0", "u1")}
    assert [s.status for s in statuses.values()] == ["ACTIVE", "ACTIVE", "WAIT", "WAIT"]
    assert [s.position for s in statuses.values()] == [0, 0, 1, 2]


def test_admission_without_expiry_run_still_frees_lapsed_slots(clock):
    queue = open_queue(capacity=1)
    queue.issue("c1", "a")
    waiter, _ = queue.issue("c1", "b")
    clock.advance(queue.settings.active_token_ttl_seconds + 1)
    assert queue.admit().admitted == 1
    assert queue.position("c1", "b", waiter.token).status is TokenStatus.ACTIVE


def test_admission_never_exceeds_capacity_and_counts_each_run_once(clock):
    queue = open_queue(capacity=3)
    for i in range(10):
        queue.issue("c1", f"u{i}")
    assert queue.admit().admitted == 0  # all three slots are taken
    assert queue.admit().admitted == 0
    assert len(QueueRepository().active_tokens("c1")) == 3


def test_an_expired_token_is_replaced_by_a_new_one_at_the_back(clock):
    queue = open_queue(capacity=1)
    old, _ = queue.issue("c1", "a")
    queue.issue("c1", "b")
    clock.advance(queue.settings.active_token_ttl_seconds)
    new, created = queue.issue("c1", "a")
    assert created and new.token != old.token
    assert new.status is TokenStatus.WAIT and new.position == 2


def test_tokens_are_bound_to_user_and_concert(clock):
    queue = open_queue("c1")
    QueueRepository().create_queue("c2", 3, 1, now=0)
    mine, _ = queue.issue("c1", "alice")
    queue.issue("c2", "alice")
    queue.issue("c1", "bob")
    for concert, user, presented in [
        ("c1", "bob", mine.token),
        ("c2", "alice", mine.token),
        ("c1", "alice", None),
        ("c1", "alice", "forged"),
    ]:
        with pytest.raises(QueueTokenInvalid):
            queue.position(concert, user, presented)
    with pytest.raises(QueueTokenInvalid):
        queue.require_active("c1", "bob", mine.token)


def test_require_active_refuses_waiting_and_expired_tokens(clock):
    queue = open_queue(capacity=1)
    active, _ = queue.issue("c1", "a")
    waiting, _ = queue.issue("c1", "b")
    assert queue.require_active("c1", "a", active.token).user_id == "a"
    with pytest.raises(QueueTokenNotActive):
        queue.require_active("c1", "b", waiting.token)
    clock.advance(queue.settings.active_token_ttl_seconds)
    with pytest.raises(QueueTokenExpired):
        queue.require_active("c1", "a", active.token)


def test_overlapping_scheduler_runs_move_the_bound_once(clock):
    queue = open_queue(capacity=2)
    for i in range(6):
        queue.issue("c1", f"u{i}")
    clock.advance(queue.settings.active_token_ttl_seconds)
    repository = QueueRepository()
    stale = repository.get_state("c1", consistent=True)
    assert stale is not None
    queue.admit()
    # A second run that read the state before the first one wrote it must not admit on top.
    assert not repository.save_admission(stale, stale.admit_bound + 2, (), ())
    assert queue.admit().admitted == 0
    live = [t for t in repository.active_tokens("c1") if (t.active_until or 0) > clock()]
    assert len(live) == 2


def test_a_run_that_crashed_after_raising_the_bound_is_repaired_by_the_next(clock):
    queue = open_queue(capacity=1)
    queue.issue("c1", "a")
    waiter, _ = queue.issue("c1", "b")
    clock.advance(queue.settings.active_token_ttl_seconds)
    repository = QueueRepository()
    read = repository.get_state("c1", consistent=True)
    assert read is not None
    assert repository.save_admission(read, 2, (), ())  # the run died here, before activating anyone
    assert queue.admit().admitted == 1
    assert repository.get_token("c1", "b").status is TokenStatus.ACTIVE  # type: ignore[union-attr]
    assert queue.position("c1", "b", waiter.token).position == 0


def test_sharded_counters_hand_out_unique_interleaved_sequence_numbers(clock):
    queue = open_queue(capacity=5, shards=4)
    tokens = [queue.issue("c1", f"u{i}")[0] for i in range(40)]
    repository = QueueRepository()
    seqs = [repository.get_token("c1", f"u{i}").seq for i in range(40)]  # type: ignore[union-attr]
    assert len(set(seqs)) == 40
    assert sum(t.status is TokenStatus.ACTIVE for t in tokens) <= 5
    assert sum(repository.counter_counts("c1", 4)[0]) == 40


def test_sharded_admission_admits_lowest_sequence_numbers_first(clock):
    queue = open_queue(capacity=4, shards=4)
    for i in range(30):
        queue.issue("c1", f"u{i}")
    clock.advance(queue.settings.active_token_ttl_seconds)
    queue.admit()
    repository = QueueRepository()
    tokens = [repository.get_token("c1", f"u{i}") for i in range(30)]
    active = sorted(t.seq for t in tokens if t and t.effective_status(clock()) is TokenStatus.ACTIVE)
    waiting = sorted(t.seq for t in tokens if t and t.status is TokenStatus.WAIT)
    assert 0 < len(active) <= 4
    assert not active or not waiting or max(active) < min(waiting)


# ---- joins in flight while the scheduler counts (docs/QUEUE.md: "Joins in flight") ----
def _live_active(clock) -> list[str]:
    return sorted(t.user_id for t in QueueRepository().active_tokens("c1") if (t.active_until or 0) > clock())


def _in_order_shards(monkeypatch) -> None:
    """Joins take shards 0, 1, 2, ... in turn, so sequence numbers are 1, 2, 3, ... with any shard count."""
    picks = iter(range(1_000))
    monkeypatch.setattr("ticketline.services.queue.secrets.randbelow", lambda shards: next(picks) % shards)


@pytest.mark.parametrize("shards", [1, 4])
def test_a_run_during_a_join_that_drew_its_number_but_has_not_written_its_token_does_not_over_admit(
    clock, monkeypatch, shards
):
    _in_order_shards(monkeypatch)
    queue = open_queue(capacity=2, shards=shards)
    queue.issue("c1", "a")  # seq 1: ACTIVE
    real_put = QueueRepository.put_token
    runs = []

    def slow_put(self, token, replacing):
        if token.user_id == "c":  # c drew seq 2 (under the bound: ACTIVE) and its token is still on its way
            queue.issue("c1", "w")  # seq 3: WAIT
            runs.append(QueueService().admit())
        return real_put(self, token, replacing)

    monkeypatch.setattr(QueueRepository, "put_token", slow_put)
    joined, _ = queue.issue("c1", "c")
    assert joined.status is TokenStatus.ACTIVE
    assert _live_active(clock) == ["a", "c"]  # capacity 2, never 3
    assert runs[0].admitted == 0  # seq 2 counted as occupied although no token showed it yet
    assert QueueRepository().get_token("c1", "w").status is TokenStatus.WAIT  # type: ignore[union-attr]


def test_the_slot_held_for_a_join_that_never_wrote_its_token_is_released_by_a_later_run(clock):
    from ticketline.services.queue import JOIN_WINDOW_SECONDS

    queue = open_queue(capacity=2)
    queue.issue("c1", "a")  # seq 1
    repository = QueueRepository()
    assert repository.next_seq("c1", 0, 1) == 2  # a join drew seq 2, then its Lambda died
    waiter, _ = queue.issue("c1", "w")  # seq 3
    assert queue.admit().admitted == 0  # seq 2 may still be on its way
    clock.advance(JOIN_WINDOW_SECONDS + 1)
    assert queue.admit().admitted == 1  # no join lasts that long: seq 2 is gone, its slot is free
    assert _live_active(clock) == ["a", "w"]
    assert queue.position("c1", "w", waiter.token).status is TokenStatus.ACTIVE


def test_a_slot_freed_right_after_its_join_is_not_held_back(clock):
    from ticketline.db import dynamodb

    queue = open_queue(capacity=1)
    queue.issue("c1", "a")
    queue.issue("c1", "w")
    repository = QueueRepository()
    token = repository.get_token("c1", "a").token  # type: ignore[union-attr]
    # a pays at once: the payment's token update (docs/DATA_MODEL.md) leaves GSI2, the token stays in GSI1
    dynamodb().update_item(**repository.expire_update("c1", "a", token, int(ticketline_clock.now()), used=True))
    assert queue.admit().admitted == 1
    assert _live_active(clock) == ["w"]


def test_a_number_drawn_by_a_join_that_lost_its_users_race_is_free_at_once(clock, monkeypatch):
    """Two joins of one user at once (a double click, a retry) both draw a number; the one whose token put loses
    releases its number, so the scheduler does not hold a slot for it as a join in flight."""
    queue = open_queue(capacity=1)
    first, _ = queue.issue("c1", "a")  # seq 1: ACTIVE
    real_put = QueueRepository.put_token
    raced: list[object] = []

    def racing_put(self, token, replacing):
        if token.user_id == "w" and not raced:  # w's other request draws seq 3 and writes its token first
            raced.append(None)
            raced[0] = queue.issue("c1", "w")
        return real_put(self, token, replacing)

    monkeypatch.setattr(QueueRepository, "put_token", racing_put)
    waiter, created = queue.issue("c1", "w")  # drew seq 2, lost the put: w's token is the one with seq 3
    assert not created and waiter.token == raced[0][0].token  # type: ignore[index]
    assert QueueRepository().get_token("c1", "w").seq == 3  # type: ignore[union-attr]
    from ticketline.db import dynamodb

    now = int(ticketline_clock.now())
    dynamodb().update_item(**QueueRepository().expire_update("c1", "a", first.token, now, used=True))  # a pays at once
    # seq 2 is neither held as a join in flight (for JOIN_WINDOW_SECONDS) nor given the free slot: w gets it now
    assert queue.admit().admitted == 1
    assert _live_active(clock) == ["w"]
    assert QueueRepository().get_state("c1").admit_bound == 3  # type: ignore[union-attr]


@pytest.mark.slow  # 200 runs on moto; the bound itself: tests/unit/test_queue_readings.py, without moto
def test_the_queue_state_keeps_a_bounded_number_of_counter_readings(clock):
    from ticketline.services.queue import JOIN_WINDOW_SECONDS, READING_SPACING_SECONDS

    queue = open_queue(capacity=2)
    for n in range(200):
        queue.issue("c1", f"u{n}")
        queue.admit()
        clock.advance(0.5)
    state = QueueRepository().get_state("c1", consistent=True)
    assert state is not None
    assert 1 < len(state.readings) <= JOIN_WINDOW_SECONDS // READING_SPACING_SECONDS + 2


def test_the_state_cache_ages_on_the_domain_clock_not_on_how_fast_the_machine_runs(clock):
    """A poll within the cache time answers from the state read last; once the clock has moved past it, the next
    poll reads the run's new bound, however little real time went by (CI once ran a whole line in under the
    cache's second of wall time). A clock stepped back counts as stale."""
    QueueRepository().create_queue("c1", capacity=1, shards=1, now=int(clock()))
    queue = QueueService(settings=get_settings().model_copy(update={"queue_state_cache_seconds": 1.0}))
    queue.issue("c1", "first")
    queue.issue("c1", "second")
    waiter, _ = queue.issue("c1", "third")
    clock.advance(queue.settings.active_token_ttl_seconds + 1)  # "first" has left; no run yet
    assert queue.position("c1", "third", waiter.token).position == 2  # reads and caches bound 1
    assert QueueService().admit().admitted == 1  # another container's run raises the bound to 2
    clock.advance(0.5)
    assert queue.position("c1", "third", waiter.token).position == 2  # still the cached bound
    clock.advance(queue.settings.queue_state_cache_seconds)
    assert queue.position("c1", "third", waiter.token).position == 1
    assert queue._cache.get("c1") is not None
    clock.advance(-10)
    assert queue._cache.get("c1") is None
