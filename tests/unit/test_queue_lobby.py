"""The lobby on moto: joins before salesOpenAt wait with no place, the line forms in a random order at the opening,
ahead of every later arrival (a bot at the exact opening second included), each join O(1)."""

from __future__ import annotations

from statistics import correlation

import pytest

from ticketline.db import put_new
from ticketline.errors import SaleNotOpen
from ticketline.models.queue import LOBBY_KEYS, TokenStatus
from ticketline.repositories.queue import QueueRepository
from ticketline.services.queue import JOIN_WINDOW_SECONDS, QueueService
from ticketline.services.queue_timing import first_run_from, line_view, opening_timing

pytestmark = pytest.mark.usefixtures("aws")


def lobby_queue(clock, opens_in: int, capacity: int = 2, shards: int = 2, concert_id: str = "c1") -> QueueService:
    repository = QueueRepository()
    now = int(clock())
    put_new(
        repository.table, repository.new_queue_items(concert_id, capacity, shards, now, sales_open_at=now + opens_in)
    )
    return QueueService()


def lobby_key(user: str) -> int:
    token = QueueRepository().get_token("c1", user)
    assert token is not None and token.lobby_key is not None
    return token.lobby_key


def rank(values: list[int]) -> list[int]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0] * len(values)
    for place, index in enumerate(order):
        ranks[index] = place
    return ranks


def test_a_join_before_the_lobby_opens_is_409_with_retry_after_and_writes_nothing(clock):
    queue = lobby_queue(clock, opens_in=QueueService().settings.pre_queue_minutes * 60 + 5)
    with pytest.raises(SaleNotOpen) as refused:
        queue.issue("c1", "early")
    assert refused.value.headers() == {"Retry-After": "5"}
    assert QueueRepository().get_token("c1", "early") is None
    clock.advance(5)
    token, created = queue.issue("c1", "early")
    assert created and token.status is TokenStatus.WAIT and token.position is None


def test_a_lobby_join_is_a_wait_token_with_no_place_that_comes_back_after_the_opening(clock):
    queue = lobby_queue(clock, opens_in=600)
    token, created = queue.issue("c1", "alice")
    assert created and (token.status, token.position, token.active_until) == (TokenStatus.WAIT, None, None)
    assert queue.issue("c1", "alice") == (token, False)  # asking again: the same token, no second count
    polled = queue.position("c1", "alice", token.token)
    assert (polled.status, polled.position, polled.estimated_wait_seconds) == (TokenStatus.WAIT, None, None)
    # Back just after the first run that can form the line (JOIN_WINDOW_SECONDS past the opening), not before.
    assert 600 + JOIN_WINDOW_SECONDS <= polled.retry_after_seconds <= 600 + JOIN_WINDOW_SECONDS + 60
    stored = QueueRepository().get_token("c1", "alice")
    assert stored is not None and stored.seq == 0 and stored.lobby_key is not None  # no number drawn
    assert QueueRepository().counter_counts("c1", 2) == ([0, 0], 1)


def test_the_lobby_enters_in_key_order_ahead_of_every_later_arrival_with_positions(clock):
    queue = lobby_queue(clock, opens_in=600, capacity=3)
    lobby = {}
    for i in range(12):
        lobby[f"u{i}"] = queue.issue("c1", f"u{i}")[0]
        clock.advance(20)  # arrivals spread over the lobby's window
    clock.advance(600 - 12 * 20)
    bot, _ = queue.issue("c1", "bot")  # the exact opening second
    assert (bot.status, bot.position) == (TokenStatus.WAIT, None)  # no walk-in past the lobby
    assert queue.admit().admitted == 0  # a lobby join may still be in flight: the line does not form yet
    clock.advance(JOIN_WINDOW_SECONDS)
    assert queue.admit().admitted == 3

    by_key = sorted(lobby, key=lobby_key)
    polls = {user: queue.position("c1", user, t.token) for user, t in lobby.items()}
    assert [u for u in by_key if polls[u].status is TokenStatus.ACTIVE] == by_key[:3]
    waiting = [polls[u].position for u in by_key[3:]]
    assert all(p is not None and 1 <= p <= 9 for p in waiting) and waiting == sorted(waiting)  # type: ignore[type-var]
    bot_seq = QueueRepository().get_token("c1", "bot").seq  # type: ignore[union-attr]
    assert queue.position("c1", "bot", bot.token).position == 9 + bot_seq  # behind the whole lobby

    admitted: list[str] = by_key[:3]
    while "bot" not in admitted:
        clock.advance(queue.settings.active_token_ttl_seconds)
        queue.expire_due()
        queue.admit()
        everyone = {**lobby, "bot": bot}
        batch = [
            u
            for u, t in everyone.items()
            if u not in admitted and queue.position("c1", u, t.token).status is TokenStatus.ACTIVE
        ]
        admitted += sorted(batch, key=lambda u: lobby_key(u) if u != "bot" else LOBBY_KEYS + 1)
    assert admitted == [*by_key, "bot"]  # the lobby in key order, then the first arrival after the opening


@pytest.mark.slow  # 200 lobby joins and their admission on moto
def test_the_lobby_order_owes_nothing_to_arrival_time(clock):
    queue = lobby_queue(clock, opens_in=1200, capacity=200, shards=4)
    arrivals = [f"u{i:03}" for i in range(200)]
    for user in arrivals:
        queue.issue("c1", user)
        clock.advance(5)
    clock.advance(200 + JOIN_WINDOW_SECONDS)
    assert queue.admit().admitted == 200
    keys = [lobby_key(user) for user in arrivals]
    # Spearman's rank correlation between arrival and place: about 1/sqrt(199) = 0.07 wide around 0.
    assert abs(correlation(list(range(200)), rank(keys))) < 0.3


def test_once_the_lobby_is_through_the_next_arrivals_walk_in_as_before(clock):
    queue = lobby_queue(clock, opens_in=60, capacity=4, shards=1)
    early = [queue.issue("c1", f"u{i}")[0] for i in range(2)]
    clock.advance(60)
    after = queue.issue("c1", "after-opening")[0]
    clock.advance(JOIN_WINDOW_SECONDS)
    assert queue.admit().admitted == 3  # the lobby (2), then the one number drawn after the opening
    assert all(queue.position("c1", f"u{i}", t.token).status is TokenStatus.ACTIVE for i, t in enumerate(early))
    assert queue.position("c1", "after-opening", after.token).status is TokenStatus.ACTIVE
    walk_in, _ = queue.issue("c1", "later")  # the fourth slot: kept for the next arrival, who walks in
    assert walk_in.status is TokenStatus.ACTIVE
    assert queue.issue("c1", "last")[0].position == 1


def test_a_lobby_token_the_bound_passed_walks_in_at_its_poll_if_the_run_died(clock, monkeypatch):
    queue = lobby_queue(clock, opens_in=60, capacity=1, shards=1)
    first, second = queue.issue("c1", "a")[0], queue.issue("c1", "b")[0]
    clock.advance(60 + JOIN_WINDOW_SECONDS)
    with monkeypatch.context() as crashed:
        crashed.setattr(QueueRepository, "activate", lambda *_: False)  # the run wrote its bound, then died
        queue.admit()
    front = min(("a", first), ("b", second), key=lambda pair: lobby_key(pair[0]))
    assert queue.position("c1", front[0], front[1].token).status is TokenStatus.ACTIVE
    back = "b" if front[0] == "a" else "a"
    assert queue.position("c1", back, (second if back == "b" else first).token).position == 1
    assert queue.admit().admitted == 0  # the walk-in occupies the one slot


def test_a_paused_queue_keeps_the_lobby_waiting(clock):
    queue = lobby_queue(clock, opens_in=60, capacity=2)
    token, _ = queue.issue("c1", "a")
    clock.advance(60 + JOIN_WINDOW_SECONDS)
    QueueRepository().change_queue("c1", _pause())
    assert queue.admit().admitted == 0
    assert queue.position("c1", "a", token.token).status is TokenStatus.WAIT


def _pause():  # type: ignore[no-untyped-def]
    from ticketline.models.queue import QueueChange

    return QueueChange(at=0, operator="ops", paused=True, capacity=None)


def test_lobby_returns_are_spread_by_place_the_front_first():
    line = line_view((), capacity=100, configured_interval=60, active_seconds=300)
    front = opening_timing(50, line, forms_at=1_000, now=0, jitter=0.0)
    third_run = opening_timing(250, line, forms_at=1_000, now=0, jitter=0.0)
    assert front.estimated_wait_seconds is None
    assert front.retry_after_seconds == 1_000 + 2  # the run that forms the line, plus its settling
    assert third_run.retry_after_seconds == 1_000 + 2 * 60 + 2
    spread = opening_timing(50, line, forms_at=1_000, now=0, jitter=0.99)
    assert spread.retry_after_seconds - front.retry_after_seconds == round(0.99 * line.spread)


def test_the_run_that_forms_the_line_is_the_first_on_schedule_after_the_window():
    assert first_run_from(1_030, last_run=900, interval=60, now=950) == 1_080
    assert first_run_from(1_030, last_run=None, interval=60, now=950) == 1_030
    assert first_run_from(1_030, last_run=1_020, interval=60, now=1_100) == 1_100  # due: expected at once
    assert LOBBY_KEYS == 2**53
