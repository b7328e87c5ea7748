"""The wallet's rules as a hypothesis state machine on moto: random charges (valid and not), holds and payments
(affordable and not), replays and reused keys, and after every step: each balance equals the sum of its
ledger and the model's balance, is never negative, the ledger's sequence is dense, a replay changed nothing."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from pydantic import ValidationError

from tests.conftest import FakeClock, moto_tables
from ticketline import clock as ticketline_clock
from ticketline.config import get_settings
from ticketline.db import dynamodb, from_raw, to_raw
from ticketline.errors import BalanceLimitExceeded, IdempotencyKeyReused, InsufficientBalance, ReservationNotPayable
from ticketline.models.catalog import ConcertIn
from ticketline.models.reservations import HoldIn
from ticketline.models.wallet import ChargeIn, PaymentIn
from ticketline.repositories.wallet import WalletRepository
from ticketline.services.catalog import CatalogService
from ticketline.services.payments import PaymentService
from ticketline.services.queue import QueueService
from ticketline.services.reservations import ReservationService
from ticketline.services.wallet import MAX_BALANCE, WalletService

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time")

USERS = ("ann", "ben", "cat")
SEATS = 40


def no_sleep(_: float) -> None:
    return None


class WalletRules(RuleBasedStateMachine):
    charges = Bundle("charges")  # (user, key, amount, answer)
    payments = Bundle("payments")  # (user, key, reservationId, answer)
    holds = Bundle("holds")  # (user, reservationId, price)

    def __init__(self) -> None:
        super().__init__()
        moto_tables.start_clean()  # each example from empty tables (the test's `aws` fixture started moto)
        get_settings.cache_clear()
        dynamodb.cache_clear()
        ticketline_clock.set_clock(FakeClock())
        config = get_settings().model_copy(update={"max_holds_per_schedule": SEATS})
        self.wallet = WalletService(settings=config, sleep=no_sleep)
        self.payments_service = PaymentService(settings=config, sleep=no_sleep)
        self.queue = QueueService(settings=config)
        self.reservations = ReservationService(settings=config, queue=self.queue, sleep=no_sleep)
        now = ticketline_clock.now()
        concert = CatalogService().create_concert(
            ConcertIn.model_validate(
                {
                    "title": "Rules",
                    "queueCapacity": 1000,
                    "schedules": [
                        {
                            "startsAt": ticketline_clock.to_iso(now + 86_400),
                            "seats": [{"number": n, "price": 1000 * (1 + n % 7)} for n in range(1, SEATS + 1)],
                        }
                    ],
                }
            )
        )
        self.concert_id, self.schedule_id = concert.concert_id, concert.schedules[0].schedule_id
        self.next_seat = 1
        self.keys = 0
        self.balances = dict.fromkeys(USERS, 0)  # the model

    def teardown(self) -> None:
        ticketline_clock.set_clock(None)
        dynamodb.cache_clear()

    def key(self) -> str:
        self.keys += 1
        return f"key-{self.keys}"

    def token(self, user: str) -> str:
        issued, _ = self.queue.issue(self.concert_id, user)  # a new one after a payment expired the last
        assert issued.status == "ACTIVE"
        return issued.token

    # ---- charges ----
    @rule(target=charges, user=st.sampled_from(USERS), amount=st.integers(1, 10_000_000))
    def charge(self, user: str, amount: int) -> Any:
        key = self.key()
        if self.balances[user] + amount > MAX_BALANCE:
            with pytest.raises(BalanceLimitExceeded):
                self.wallet.charge(user, key, ChargeIn(amount=amount))
            assert self.wallet.balance(user).balance == self.balances[user]  # refused: nothing moved
            return multiple()
        answer = self.wallet.charge(user, key, ChargeIn(amount=amount))
        self.balances[user] += amount
        assert answer.balance == self.balances[user]
        return user, key, amount, answer

    @rule(
        amount=st.one_of(
            st.integers(max_value=0),
            st.integers(min_value=10_000_001),
            st.floats(allow_nan=True),
            st.booleans(),
            st.text(max_size=5),
            st.none(),
        )
    )
    def invalid_charge(self, amount: Any) -> None:
        try:
            ChargeIn.model_validate({"amount": amount})
        except ValidationError:
            return
        raise AssertionError(f"{amount!r} was accepted as an amount")

    @rule(charge=charges)
    def replay_charge(self, charge: tuple[str, str, int, Any]) -> None:
        user, key, amount, answer = charge
        assert self.wallet.charge(user, key, ChargeIn(amount=amount)) == answer

    @rule(charge=charges, other=st.integers(1, 10_000_000))
    def reuse_charge_key(self, charge: tuple[str, str, int, Any], other: int) -> None:
        user, key, amount, _ = charge
        if other == amount:
            return
        try:
            self.wallet.charge(user, key, ChargeIn(amount=other))
        except IdempotencyKeyReused:
            return
        raise AssertionError("a reused key with another amount was accepted")

    # ---- holds and payments ----
    @rule(target=holds, user=st.sampled_from(USERS))
    def hold(self, user: str) -> tuple[str, str, int]:
        if self.next_seat > SEATS:
            return user, "none-left", 0
        seat, self.next_seat = self.next_seat, self.next_seat + 1
        held = self.reservations.hold(HoldIn(schedule_id=self.schedule_id, seat_number=seat), user, self.token(user))
        return user, held.reservation_id, held.price

    @rule(target=payments, hold=consumes(holds))
    def pay(self, hold: tuple[str, str, int]) -> tuple[str, str, str, Any]:
        user, reservation_id, price = hold
        if not price:
            return user, "", reservation_id, None
        key = self.key()
        request = PaymentIn(reservation_id=reservation_id)
        if self.balances[user] < price:
            try:
                self.payments_service.pay(user, key, request, self.token(user))
            except InsufficientBalance:
                return user, "", reservation_id, None
            raise AssertionError("a payment above the balance went through")
        answer = self.payments_service.pay(user, key, request, self.token(user))
        self.balances[user] -= price
        assert (answer.amount, answer.balance) == (price, self.balances[user])
        return user, key, reservation_id, answer

    @rule(payment=payments)
    def replay_payment(self, payment: tuple[str, str, str, Any]) -> None:
        user, key, reservation_id, answer = payment
        if answer is None:
            return
        assert self.payments_service.pay(user, key, PaymentIn(reservation_id=reservation_id), None) == answer
        try:
            self.payments_service.pay(user, self.key(), PaymentIn(reservation_id=reservation_id), self.token(user))
        except ReservationNotPayable:
            return
        raise AssertionError("a paid reservation was paid again with another key")

    # ---- invariants ----
    @invariant()
    def balances_equal_their_ledgers(self) -> None:
        for user in USERS:
            raw = dynamodb().query(
                TableName=get_settings().table_name,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :ledger)",
                ExpressionAttributeValues=to_raw({":pk": f"WALLET#{user}", ":ledger": "LEDGER#"}),
                ConsistentRead=True,
            )
            entries = [from_raw(item) for item in raw["Items"]]
            total = sum(e["amount"] if e["type"] == "CHARGE" else -e["amount"] for e in entries)
            wallet = WalletRepository().get(user)
            assert wallet.balance == total == self.balances[user] >= 0
            assert [e["seq"] for e in entries] == list(range(1, wallet.version + 1))
            running = 0
            for entry in entries:
                running += entry["amount"] if entry["type"] == "CHARGE" else -entry["amount"]
                assert entry["balanceAfter"] == running >= 0


@pytest.mark.slow  # 15 random runs of 25 steps, each checked against the ledger on moto: ~20 s of CPU alone
def test_the_wallet_rules_hold_through_random_steps(aws: None) -> None:
    run_state_machine_as_test(
        WalletRules,
        settings=settings(
            max_examples=int(os.environ.get("WALLET_RULES_EXAMPLES", "15")),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
