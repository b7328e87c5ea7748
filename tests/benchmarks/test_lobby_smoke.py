"""CI smoke version of the lobby part of `make bench-scale`: an opening of 3,000 buyers in simulated time, the real
QueueService and scheduler on the in-memory repository. Fails when the lobby's order follows arrival time, when
anyone who arrived after the opening (the bot at its first millisecond included) enters before a lobby member, or
when the lobby stops flattening the opening's joins (the full run: docs/BENCHMARKS.md)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import lobby


@pytest.fixture(scope="module")
def opening() -> dict[str, Any]:
    return lobby.run(lobby.LobbyModel(buyers=3_000, capacity=30))


def test_the_lobby_flattens_the_opening_burst_of_joins(opening: dict[str, Any]) -> None:
    without, joined = opening["joins_without_lobby"], opening["joins_with_lobby"]
    assert joined["peak_joins_per_second"] * 10 < without["peak_joins_per_second"]


def test_the_lobby_enters_in_an_order_that_owes_nothing_to_arrival_and_ahead_of_everyone_after(
    opening: dict[str, Any],
) -> None:
    sale = opening["with_lobby"]
    assert sale["lobby_size"] > 1_000
    # Spearman's correlation of ~2,000 random ranks: about ±0.022 by chance; arrival order would give 1.
    assert abs(sale["lobby_rank_correlation_arrival_vs_admission"]) < 0.1
    assert sale["after_opening_rank_correlation_arrival_vs_admission"] > 0.95  # first come, first served after
    assert sale["arrivals_after_opening_admitted_before_a_lobby_member"] == 0
    assert sale["bot_admission_rank"] == sale["lobby_size"]  # right behind the whole lobby
    assert 30 <= sale["line_formed_after_seconds"] <= 30 + opening["model"]["admission_seconds"] + 5
