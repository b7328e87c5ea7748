"""The wallet: balance, charges (idempotent per user + Idempotency-Key) and the history, newest first.

A charge reads the wallet (balance, version) and commits one TransactWriteItems: the balance conditioned on
that version, the ledger entry of the next version (so it carries the exact `balanceAfter`) and a guard item
whose id is derived from (user, key). The guard makes a second run of the same charge a no-op that returns
the first one's answer, even when the Powertools record is gone (a crash after commit, a record expired).
A version that moved under us (another charge or payment of the same user) is retried at once from the
wallet the failure returned; `TransactionConflict` with jittered backoff; both bounded.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable

from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketline import clock, cursors
from ticketline.config import Settings, get_settings
from ticketline.errors import BalanceLimitExceeded, IdempotencyKeyReused, Throttled
from ticketline.idempotency import Answer, IdempotentOperation, Request
from ticketline.models.wallet import (
    BalanceOut,
    ChargeIn,
    ChargeOut,
    EntryType,
    HistoryOut,
    LedgerEntry,
    LedgerEntryOut,
    Wallet,
)
from ticketline.observability import logger, metrics
from ticketline.repositories.wallet import ChargeOutcome, WalletRepository

MAX_ATTEMPTS = 10
# The most a wallet may hold through charges (API.md); a refund is always paid back in full, even past it.
MAX_BALANCE = 100_000_000
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CAP_SECONDS = 0.25
_CURSOR_PREFIX = "L"
_CURSOR_BODY = re.compile(r"^L([1-9][0-9]{0,11})$")


def derived_id(prefix: str, user_id: str, key: str) -> str:
    """A stable id for (user, Idempotency-Key): the same request always names the same charge or payment."""
    digest = hashlib.sha256(f"{user_id}\x00{key}".encode()).hexdigest()
    return f"{prefix}_{digest[:32]}"


def encode_cursor(seq: int) -> str:
    return cursors.encode(f"{_CURSOR_PREFIX}{seq}")


def decode_cursor(cursor: str) -> int:
    """The sequence number a cursor points below."""
    return int(cursors.decode(cursor, _CURSOR_BODY).group(1))


def backoff(attempt: int, sleep: Callable[[float], None]) -> None:
    sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))


class WalletService:
    def __init__(
        self,
        repository: WalletRepository | None = None,
        settings: Settings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or get_settings()
        self.repository = repository or WalletRepository(self.settings.table_name)
        self.idempotency = IdempotentOperation("wallet.charge", validate="amount", settings=self.settings)
        self._sleep = sleep

    # ---- reads ----
    def balance(self, user_id: str) -> BalanceOut:
        """One GetItem (strongly consistent)."""
        return BalanceOut(balance=self.repository.get(user_id).balance)

    def history(self, user_id: str, limit: int, cursor: str | None) -> HistoryOut:
        """One Query of the caller's own partition: a cursor carries a sequence number only, never a user."""
        before = decode_cursor(cursor) if cursor is not None else None
        entries, more = self.repository.history(user_id, limit, before)
        return HistoryOut(
            items=[entry_view(entry) for entry in entries],
            next_cursor=encode_cursor(entries[-1].seq) if more else None,
        )

    # ---- charge ----
    def charge(self, user_id: str, key: str, request: ChargeIn, context: LambdaContext | None = None) -> ChargeOut:
        data: Request = {"userId": user_id, "key": key, "amount": request.amount}
        return ChargeOut.model_validate(self.idempotency.run(self._charge, data, context))

    def _charge(self, request: Request) -> Answer:
        user_id, amount = str(request["userId"]), int(request["amount"])
        charge_id = derived_id("ch", user_id, str(request["key"]))
        wallet: Wallet | None = None
        for attempt in range(MAX_ATTEMPTS):
            wallet = wallet or self.repository.get(user_id)
            if wallet.balance + amount > MAX_BALANCE:  # the fast answer; the charge's write condition is the truth
                raise BalanceLimitExceeded(
                    f"A balance holds at most {MAX_BALANCE}: this wallet holds {wallet.balance}.",
                    [{"field": "amount", "message": f"must be at most {max(MAX_BALANCE - wallet.balance, 0)}"}],
                )
            entry = LedgerEntry(
                user_id=user_id,
                seq=wallet.version + 1,
                entry_id=charge_id,
                type=EntryType.CHARGE,
                amount=amount,
                balance_after=wallet.balance + amount,
                at=int(clock.now()),
            )
            result = self.repository.charge(wallet, entry, most_after=MAX_BALANCE)
            if result.outcome is ChargeOutcome.CHARGED:
                metrics.add_metric(name="Charges", unit="Count", value=1)
                metrics.add_metric(name="ChargedAmount", unit="None", value=amount)
                logger.info("wallet charged", extra={"chargeId": charge_id, "amount": amount, "seq": entry.seq})
                return _charge_answer(entry)
            if result.outcome is ChargeOutcome.DUPLICATE:
                return self._replayed(result.entry, charge_id, amount)
            if result.outcome is ChargeOutcome.STALE:
                wallet = result.wallet  # None: re-read at the top
                backoff(0, self._sleep)  # a short jitter keeps racing charges of one user from lock-stepping
            else:  # CONFLICT
                metrics.add_metric(name="WalletConflicts", unit="Count", value=1)
                wallet = None
                backoff(attempt, self._sleep)
        logger.warning("charge gave up after retries", extra={"chargeId": charge_id})
        raise Throttled(retry_after_seconds=1, message="Your wallet is busy; retry with the same Idempotency-Key.")

    def _replayed(self, first: LedgerEntry | None, charge_id: str, amount: int) -> Answer:
        """This charge id committed before (its answer was lost, or the Powertools record is gone)."""
        if first is None:
            raise Throttled(retry_after_seconds=1)  # the failure did not say: retrying is safe
        if first.amount != amount:
            raise IdempotencyKeyReused()
        logger.info("charge replayed from its guard", extra={"chargeId": charge_id})
        return _charge_answer(first)


def _charge_answer(entry: LedgerEntry) -> Answer:
    return ChargeOut(balance=entry.balance_after, charge_id=entry.entry_id).model_dump(mode="json", by_alias=True)


def entry_view(entry: LedgerEntry) -> LedgerEntryOut:
    return LedgerEntryOut(
        id=entry.entry_id,
        type=entry.type,
        amount=entry.amount,
        balance_after=entry.balance_after,
        at=clock.to_iso(entry.at),
        reservation_id=entry.reservation_ids[0] if len(entry.reservation_ids) == 1 else None,
        reservation_ids=list(entry.reservation_ids) or None,
    )
