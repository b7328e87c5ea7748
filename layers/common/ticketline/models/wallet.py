"""The wallet (balance and ledger) and payments, as the API shows them and as the repositories store them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from ticketline.models import ApiModel, with_examples
from ticketline.models.queue import EntityId

MAX_CHARGE = 10_000_000
HISTORY_DEFAULT_LIMIT = 20
HISTORY_MAX_LIMIT = 100
MAX_RESERVATIONS_PER_PAYMENT = 10

# strict: "1000", 1000.0 and true are not amounts.
ChargeAmount = Annotated[
    int, Field(strict=True, ge=1, le=MAX_CHARGE, description="Won (integer), 1..10,000,000.", examples=[50_000])
]


class EntryType(StrEnum):
    CHARGE = "CHARGE"
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"


@dataclass(frozen=True, slots=True)
class Wallet:
    """A user's balance; `version` is the sequence number of their newest ledger entry (0: none yet)."""

    user_id: str
    balance: int
    version: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    user_id: str
    seq: int  # 1, 2, 3 ...: the wallet's version right after this entry
    entry_id: str  # chargeId or paymentId
    type: EntryType
    amount: int  # always > 0; the type gives the sign
    balance_after: int
    at: int
    reservation_ids: tuple[str, ...] = ()  # PAYMENT: the seats paid; REFUND: the ticket cancelled


# ---- API ----
class BalanceOut(ApiModel):
    model_config = with_examples({"balance": 100_000})

    balance: int = Field(ge=0, description="Won.")


class ChargeIn(ApiModel):
    amount: ChargeAmount


class ChargeOut(ApiModel):
    model_config = with_examples({"balance": 100_000, "chargeId": "ch_4d8b1a07a1193052e5ff4ba84421037a"})

    balance: int = Field(ge=0, description="The balance right after this charge.")
    charge_id: str


_LEDGER_EXAMPLES = (
    {
        "id": "pay_9e2f6c1d0b8a7f3e5d4c2b1a09f8e7d6",
        "type": "PAYMENT",
        "amount": 50_000,
        "balanceAfter": 50_000,
        "at": "2030-12-01T10:03:00Z",
        "reservationId": "01JD4YB3C5D7E9F1G3H5J7K9M1",
        "reservationIds": ["01JD4YB3C5D7E9F1G3H5J7K9M1"],
    },
    {
        "id": "ch_4d8b1a07a1193052e5ff4ba84421037a",
        "type": "CHARGE",
        "amount": 100_000,
        "balanceAfter": 100_000,
        "at": "2030-12-01T10:00:00Z",
    },
)


class LedgerEntryOut(ApiModel):
    model_config = with_examples(*_LEDGER_EXAMPLES)

    id: str
    type: EntryType
    amount: int = Field(gt=0, description="Won; a PAYMENT takes it out, a CHARGE or a REFUND puts it in.")
    balance_after: int = Field(ge=0)
    at: str = Field(description="ISO-8601 UTC.")
    reservation_id: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="PAYMENT and REFUND entries of one reservation: that reservation.",
    )
    reservation_ids: list[str] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="PAYMENT and REFUND entries: every reservation paid (a payment of several seats is one entry).",
    )


class HistoryOut(ApiModel):
    model_config = with_examples({"items": list(_LEDGER_EXAMPLES), "nextCursor": None})

    items: list[LedgerEntryOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end.")


class PaymentIn(ApiModel):
    model_config = with_examples(
        {"reservationIds": ["01JD4YB3C5D7E9F1G3H5J7K9M1", "01JD4YB3C5D7E9F1G3H5J7K9M2"]},
        {"reservationId": "01JD4YB3C5D7E9F1G3H5J7K9M1"},
    )

    reservation_id: EntityId | None = Field(default=None, description="One hold to pay (or use reservationIds).")
    reservation_ids: list[EntityId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_RESERVATIONS_PER_PAYMENT,
        description="1..10 of the caller's HELD reservations of one concert (any of its dates), paid together.",
    )

    @model_validator(mode="after")
    def _one_way(self) -> PaymentIn:
        if (self.reservation_id is None) == (self.reservation_ids is None):
            raise ValueError("give either reservationId or reservationIds")
        if self.reservation_ids is not None and len(set(self.reservation_ids)) != len(self.reservation_ids):
            raise ValueError("reservationIds must not repeat a reservation")
        return self

    @property
    def paid(self) -> list[str]:
        """The reservations to pay, whichever way the body named them."""
        return self.reservation_ids if self.reservation_ids is not None else [str(self.reservation_id)]


class PaymentOut(ApiModel):
    model_config = with_examples(
        {
            "paymentId": "pay_9e2f6c1d0b8a7f3e5d4c2b1a09f8e7d6",
            "reservationIds": ["01JD4YB3C5D7E9F1G3H5J7K9M1", "01JD4YB3C5D7E9F1G3H5J7K9M2"],
            "amount": 100_000,
            "balance": 50_000,
        },
        {
            "paymentId": "pay_9e2f6c1d0b8a7f3e5d4c2b1a09f8e7d6",
            "reservationIds": ["01JD4YB3C5D7E9F1G3H5J7K9M1"],
            "reservationId": "01JD4YB3C5D7E9F1G3H5J7K9M1",
            "amount": 50_000,
            "balance": 50_000,
        },
    )

    payment_id: str
    reservation_ids: list[str]
    reservation_id: str | None = Field(
        default=None, exclude_if=lambda value: value is None, description="Present when one reservation was paid."
    )
    amount: int = Field(gt=0, description="Won: the sum of the reservations' prices.")
    balance: int = Field(ge=0, description="The balance right after this payment.")
