"""The wallet: balance, charges (idempotent per user + Idempotency-Key) and the history, newest first.

A charge is 2 DynamoDB requests: one BatchGetItem of the wallet (balance, version) and of the call's
idempotency record, then one TransactWriteItems: the balance conditioned on that version, the ledger entry of
the next version (so it carries the exact `balanceAfter`) and the idempotency record, whose id (the charge
id) is derived from (user, key) and which never expires: a second run of the same charge finds it (1 request)
or is cancelled on it, and answers as the first did; another amount with the key is 409.
A version that moved under us (another charge or payment of the same user) is retried at once from the
wallet the failure returned; `TransactionConflict` with jittered backoff; both bounded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from ticketline import clock, cursors
from ticketline.config import Settings, get_settings
from ticketline.db import backoff
from ticketline.errors import BalanceLimitExceeded, IdempotencyKeyReused, Throttled
from ticketline.idempotency import IdempotentOperation
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
from ticketline.observability import logger, metrics, tracer
from ticketline.repositories.wallet import ChargeOutcome, WalletRepository

MAX_ATTEMPTS = 10
# The most a wallet may hold through charges (API.md); a refund is always paid back in full, even past it.
MAX_BALANCE = 100_000_000
_CURSOR_PREFIX = "L"
_CURSOR_BODY = re.compile(r"^L([1-9][0-9]{0,11})$")
# Nothing but its record remembers that a charge id committed: it never expires.
CHARGE = IdempotentOperation("wallet.charge", "ch", ChargeOut, expires_after_seconds=None)


def encode_cursor(seq: int) -> str:
    return cursors.encode(f"{_CURSOR_PREFIX}{seq}")


def decode_cursor(cursor: str) -> int:
    """The sequence number a cursor points below."""
    return int(cursors.decode(cursor, _CURSOR_BODY).group(1))


class WalletService:
    def __init__(
        self,
        repository: WalletRepository | None = None,
        settings: Settings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or get_settings()
        self.repository = repository or WalletRepository(self.settings.table_name)
        self._sleep = sleep

    # ---- reads ----
    @tracer.capture_method
    def balance(self, user_id: str) -> BalanceOut:
        """One GetItem (strongly consistent)."""
        return BalanceOut(balance=self.repository.get(user_id).balance)

    @tracer.capture_method
    def history(self, user_id: str, limit: int, cursor: str | None) -> HistoryOut:
        """One Query of the caller's own partition: a cursor carries a sequence number only, never a user."""
        before = decode_cursor(cursor) if cursor is not None else None
        entries, more = self.repository.history(user_id, limit, before)
        return HistoryOut(
            items=[entry_view(entry) for entry in entries],
            next_cursor=encode_cursor(entries[-1].seq) if more else None,
        )

    # ---- charge ----
    @tracer.capture_method
    def charge(self, user_id: str, key: str, request: ChargeIn) -> ChargeOut:
        record = CHARGE.record(user_id, key, {"amount": request.amount})
        read = self.repository.with_record(user_id, record.record_id)
        if read.record is not None:
            return CHARGE.replay(record, read.record)
        if read.legacy_guard is not None:  # charged before the records existed: its guard is the first answer
            if int(read.legacy_guard["amount"]) != request.amount:
                raise IdempotencyKeyReused()
            return ChargeOut(balance=int(read.legacy_guard["balanceAfter"]), charge_id=record.record_id)
        wallet: Wallet | None = read.wallet
        for attempt in range(MAX_ATTEMPTS):
            wallet = wallet or self.repository.get(user_id)
            if wallet.balance + request.amount > MAX_BALANCE:  # the fast answer; the write's condition is the truth
                raise BalanceLimitExceeded(
                    f"A balance holds at most {MAX_BALANCE}: this wallet holds {wallet.balance}.",
                    [{"field": "amount", "message": f"must be at most {max(MAX_BALANCE - wallet.balance, 0)}"}],
                )
            entry = LedgerEntry(
                user_id=user_id,
                seq=wallet.version + 1,
                entry_id=record.record_id,
                type=EntryType.CHARGE,
                amount=request.amount,
                balance_after=wallet.balance + request.amount,
                at=int(clock.now()),
            )
            answer = ChargeOut(balance=entry.balance_after, charge_id=entry.entry_id)
            put = CHARGE.put(self.repository.table, record, answer, entry.at)
            result = self.repository.charge(wallet, entry, put, most_after=MAX_BALANCE)
            if result.outcome is ChargeOutcome.CHARGED:
                metrics.add_metric(name="Charges", unit="Count", value=1)
                metrics.add_metric(name="ChargedAmount", unit="None", value=request.amount)
                logger.info(
                    "wallet charged", extra={"chargeId": answer.charge_id, "amount": entry.amount, "seq": entry.seq}
                )
                return answer
            if result.outcome is ChargeOutcome.DUPLICATE:
                logger.info("charge replayed from its record", extra={"chargeId": entry.entry_id})
                return CHARGE.replay_refused(self.repository.table, record, result.record)
            if result.outcome is ChargeOutcome.STALE:
                wallet = result.wallet  # None: re-read at the top
                backoff(0, self._sleep)  # a short jitter keeps racing charges of one user from lock-stepping
            else:  # CONFLICT
                metrics.add_metric(name="WalletConflicts", unit="Count", value=1)
                wallet = None
                backoff(attempt, self._sleep)
        logger.warning("charge gave up after retries", extra={"chargeId": record.record_id})
        raise Throttled(retry_after_seconds=1, message="Your wallet is busy; retry with the same Idempotency-Key.")


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
