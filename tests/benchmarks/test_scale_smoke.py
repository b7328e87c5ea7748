"""CI smoke version of `make bench-scale`: a sale of 5,000 buyers in simulated time, the real QueueService on the
in-memory repository, under the server's `retryAfterSeconds`, the rule before it and the every-2-s reference.
Fails when the poll's timing regresses against issue 14's targets (the full run: docs/BENCHMARKS.md)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from benchmarks import scale

RULES = [rule for rule in scale.RULES if rule.name != "fixed 20 s"]


@pytest.fixture(scope="module", params=[60, 300], ids=["admission every 60 s", "admission every 300 s"])
def sale(request: pytest.FixtureRequest) -> dict[str, Any]:
    model = scale.SaleModel(buyers=5_000, capacity=50, seats=500, admission_seconds=request.param)
    return {rule["rule"]: rule for rule in scale.run_cadence(model, RULES)["rules"]}


def test_a_waiter_polls_a_handful_of_times_whatever_its_wait(sale: dict[str, Any]) -> None:
    new, before = sale[scale.NEW_RULE], sale["2 s + 1 s / 50 places"]
    for polls in (new["polls_per_waiter"], new["polls_per_admitted_waiter"]):
        assert polls["median"] <= 6 and polls["p99"] <= 15, polls
    assert new["polls_per_ticket"] * 10 < before["polls_per_ticket"]


def test_a_waiter_back_when_told_keeps_its_turn_and_no_slot_sits_idle(sale: dict[str, Any]) -> None:
    new, reference = sale[scale.NEW_RULE], sale[scale.REFERENCE_RULE]
    assert new["turn_time_lost"]["max"] <= 0.1 and new["outcomes"].get("turn lost", 0) == 0
    assert new["sold_out_after_seconds"] <= 1.1 * reference["sold_out_after_seconds"]


def test_the_estimate_is_close_to_the_wait(sale: dict[str, Any]) -> None:
    error = sale[scale.NEW_RULE]["estimate_error"]
    assert error["waiters"] > 0 and error["median"] <= 0.25, error


@pytest.mark.parametrize("admission_seconds", [60, 300])
def test_the_admit_runs_keep_the_schedule_from_the_first(admission_seconds: int) -> None:
    """Each Admit run comes one interval after the one before, late by at most the run delay: the second run once
    came from the sale's first event (an Expire run or a join), seconds after the first."""
    model = scale.SaleModel(buyers=2_000, capacity=50, seats=200, admission_seconds=admission_seconds)
    clock = scale.SimulatedClock()
    opening = clock.now + model.runs_before_opening * model.admission_seconds
    admitted_at: list[float] = []

    class RecordedSale(scale.Sale):
        def admit(self, buyer: int) -> int:
            admitted_at.append(self.clock.now)
            return super().admit(buyer)

    RecordedSale(model, RULES[0], scale.Buyers.draw(model, opening), clock, opening).run()
    gaps = [later - earlier for earlier, later in itertools.pairwise(admitted_at)]
    assert len(gaps) > 5
    assert all(
        admission_seconds - 1 - model.run_delay_seconds <= gap <= admission_seconds + 1 + model.run_delay_seconds
        for gap in gaps
    ), gaps[:5]
