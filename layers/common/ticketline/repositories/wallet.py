"""Wallet items in the single table (see docs/DATA_MODEL.md, Wallet).

- balance       PK=WALLET#<uid>   SK=BALANCE              userId, balance, version (= seq of the newest entry)
- ledger entry  PK=WALLET#<uid>   SK=LEDGER#000000000042  id, type CHARGE|PAYMENT|REFUND, amount (> 0),
                                                          balanceAfter, at, seq, reservationIds (PAYMENT,
                                                          REFUND) and reservationId when there is one
- a charge's idempotency record (ticketline/idempotency.py) is its guard: a charge id (derived from
  user + Idempotency-Key) commits once. Charges made before the records had a guard item of their own,
  PK=WALLET#<uid> SK=CHARGE#<chargeId> (amount, balanceAfter): still read, never written.

Every write of the balance conditions on the `version` it read, so the transaction that moves the balance
knows `balanceAfter` exactly and writes the ledger entry of the next sequence number with it: the ledger
never forks, and a Query of the partition backwards is the history, newest first. One user's wallet is
private to that user: no shared item is in any wallet transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ticketline.config import get_settings
from ticketline.db import Item, Reason, dynamodb, from_raw, get_many, to_raw, transact, values
from ticketline.idempotency import record_key
from ticketline.models.wallet import EntryType, LedgerEntry, Wallet

SEQ_DIGITS = 12
LEDGER_PREFIX = "LEDGER#"


def wallet_partition(user_id: str) -> str:
    return f"WALLET#{user_id}"


def wallet_key(user_id: str) -> Item:
    return {"PK": wallet_partition(user_id), "SK": "BALANCE"}


def ledger_key(user_id: str, seq: int) -> Item:
    return {"PK": wallet_partition(user_id), "SK": f"{LEDGER_PREFIX}{seq:0{SEQ_DIGITS}d}"}


class ChargeOutcome(Enum):
    CHARGED = "charged"
    DUPLICATE = "duplicate"  # the charge's idempotency record exists: see ChargeResult.record
    STALE = "stale"  # the wallet moved since we read it: see ChargeResult.wallet
    CONFLICT = "conflict"  # TransactionConflict: retry later


@dataclass(frozen=True, slots=True)
class ChargeResult:
    outcome: ChargeOutcome
    record: Item | None = None  # DUPLICATE: the first call's idempotency record, as the refusal returned it
    wallet: Wallet | None = None  # STALE: the wallet as it is now (None: re-read it)


@dataclass(frozen=True, slots=True)
class WalletContext:
    wallet: Wallet
    record: Item | None  # the idempotency record of this user + key, if a call committed with it
    legacy_guard: Item | None  # the guard of a charge made before the records, if this key made one


def legacy_guard_key(user_id: str, charge_id: str) -> Item:
    return {"PK": wallet_partition(user_id), "SK": f"CHARGE#{charge_id}"}


_BALANCE, _ENTRY, _RECORD = range(3)


class WalletRepository:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name

    # ---- reads ----
    def get(self, user_id: str) -> Wallet:
        """Strongly consistent: a balance read right after a charge shows it. A new user has 0."""
        raw = dynamodb().get_item(TableName=self.table, Key=to_raw(wallet_key(user_id)), ConsistentRead=True)
        return wallet_from_item(user_id, from_raw(raw["Item"]) if "Item" in raw else None)

    def history(self, user_id: str, limit: int, before_seq: int | None) -> tuple[list[LedgerEntry], bool]:
        """Up to `limit` entries, newest first, older than `before_seq`; and whether older ones exist.

        Sequence numbers are dense (1..version), so "older ones exist" is simply "the last one is not 1".
        """
        if before_seq is not None and before_seq <= 1:
            return [], False
        upper = ledger_key(user_id, before_seq - 1)["SK"] if before_seq is not None else f"{LEDGER_PREFIX}~"
        response = dynamodb().query(
            TableName=self.table,
            # BETWEEN, not "<": the partition's BALANCE and CHARGE# items sort before the ledger
            KeyConditionExpression="PK = :pk AND SK BETWEEN :low AND :high",
            ExpressionAttributeValues=values(pk=wallet_partition(user_id), low=LEDGER_PREFIX, high=upper),
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        entries = [ledger_entry_from_item(from_raw(raw)) for raw in response["Items"]]
        return entries, bool(entries) and entries[-1].seq > 1

    def with_record(self, user_id: str, record_id: str) -> WalletContext:
        """The wallet and the idempotency record of this call (or its charge's guard from before the records) in
        one strongly consistent BatchGetItem."""
        keys = [wallet_key(user_id), record_key(record_id), legacy_guard_key(user_id, record_id)]
        found = {str(item["SK"]).split("#")[0]: item for item in get_many(self.table, keys, consistent=True)}
        return WalletContext(
            wallet=wallet_from_item(user_id, found.get("BALANCE")),
            record=found.get("IDEMPOTENCY"),
            legacy_guard=found.get("CHARGE"),
        )

    def entry(self, user_id: str, seq: int) -> LedgerEntry | None:
        raw = dynamodb().get_item(TableName=self.table, Key=to_raw(ledger_key(user_id, seq)), ConsistentRead=True)
        return ledger_entry_from_item(from_raw(raw["Item"])) if "Item" in raw else None

    # ---- charge ----
    def charge(self, wallet: Wallet, entry: LedgerEntry, record: dict[str, Any], *, most_after: int) -> ChargeResult:
        """Balance + amount (never past `most_after`), the ledger entry and the idempotency record (a Put of
        ticketline/idempotency.py): one TransactWriteItems."""
        refused = transact(
            [self.balance_update(wallet, entry, at_most=most_after - entry.amount), self.entry_put(entry), record]
        )
        if refused is None:
            return ChargeResult(ChargeOutcome.CHARGED)
        if refused[_RECORD].condition_failed:
            return ChargeResult(ChargeOutcome.DUPLICATE, record=refused[_RECORD].item)
        if refused.conflict:
            return ChargeResult(ChargeOutcome.CONFLICT)
        if refused[_BALANCE].condition_failed:
            return ChargeResult(ChargeOutcome.STALE, wallet=old_wallet(entry.user_id, refused[_BALANCE]))
        raise refused.error  # no rule explains it: as DynamoDB said it

    # ---- transaction parts (charges and payments) ----
    def balance_update(
        self, wallet: Wallet, entry: LedgerEntry, *, at_least: int | None = None, at_most: int | None = None
    ) -> dict[str, Any]:
        """The wallet moves to the entry's version and balance, as a transaction's Update: only from the version we
        read (and from a balance >= at_least, <= at_most)."""
        delta = -entry.amount if entry.type is EntryType.PAYMENT else entry.amount
        condition = "attribute_not_exists(PK)" if wallet.version == 0 else "version = :seen"
        condition_values = values(seen=wallet.version) if wallet.version else {}
        if at_least is not None:
            condition = f"({condition}) AND balance >= :least"
            condition_values |= values(least=at_least)
        if at_most is not None:
            condition = f"({condition}) AND (attribute_not_exists(balance) OR balance <= :most)"
            condition_values |= values(most=at_most)
        return {
            "Update": {
                "TableName": self.table,
                "Key": to_raw(wallet_key(entry.user_id)),
                "UpdateExpression": "SET version = :next, userId = :uid, updatedAt = :at ADD balance :delta",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": condition_values
                | values(next=entry.seq, uid=entry.user_id, at=entry.at, delta=delta),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def entry_put(self, entry: LedgerEntry) -> dict[str, Any]:
        """The ledger entry of the next sequence number, as a transaction's Put: only if that number is new."""
        return {
            "Put": {
                "TableName": self.table,
                "Item": to_raw(ledger_item(entry)),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }


def old_wallet(user_id: str, reason: Reason) -> Wallet | None:
    """The wallet a failed condition saw (ALL_OLD); None when the reason does not carry it."""
    if not reason.condition_failed or reason.item is None:
        return None
    return wallet_from_item(user_id, reason.item)


# ---- items ----
def wallet_from_item(user_id: str, item: Item | None) -> Wallet:
    if item is None:
        return Wallet(user_id=user_id, balance=0, version=0)
    return Wallet(user_id=user_id, balance=int(item.get("balance", 0)), version=int(item.get("version", 0)))


def ledger_item(entry: LedgerEntry) -> Item:
    return {
        **ledger_key(entry.user_id, entry.seq),
        "id": entry.entry_id,
        "type": entry.type.value,
        "amount": entry.amount,
        "balanceAfter": entry.balance_after,
        "at": entry.at,
        "seq": entry.seq,
        # One reservation: `reservationId` as before this change (readers of older entries know only it).
        "reservationId": entry.reservation_ids[0] if len(entry.reservation_ids) == 1 else None,
        "reservationIds": list(entry.reservation_ids) or None,
    }


def ledger_entry_from_item(item: Item) -> LedgerEntry:
    reservation_id = item.get("reservationId")
    reservation_ids = item.get("reservationIds") or ([reservation_id] if reservation_id is not None else [])
    return LedgerEntry(
        user_id=str(item["PK"]).removeprefix("WALLET#"),
        seq=int(item["seq"]),
        entry_id=str(item["id"]),
        type=EntryType(item["type"]),
        amount=int(item["amount"]),
        balance_after=int(item["balanceAfter"]),
        at=int(item["at"]),
        reservation_ids=tuple(str(rid) for rid in reservation_ids),
    )
