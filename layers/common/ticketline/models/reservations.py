"""Seat holds (reservations) as the API shows them, and as the repository stores them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from ticketline import clock
from ticketline.models import ApiModel, with_examples
from ticketline.models.catalog import Price, SeatNumber
from ticketline.models.queue import EntityId


class ReservationStatus(StrEnum):
    HELD = "HELD"
    PAID = "PAID"
    EXPIRED = "EXPIRED"
    RELEASED = "RELEASED"  # given back by its owner while HELD: the seat went FREE at once
    CANCELLED = "CANCELLED"  # a PAID ticket cancelled and refunded: the seat went FREE at once


LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100


class HoldIn(ApiModel):
    schedule_id: EntityId
    seat_number: SeatNumber


class ReservationOut(ApiModel):
    model_config = with_examples(
        {
            "reservationId": "01JD4YB3C5D7E9F1G3H5J7K9M1",
            "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
            "scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K",
            "seatNumber": 42,
            "price": 50_000,
            "status": "HELD",
            "holdExpiresAt": "2030-12-01T10:05:00Z",
        }
    )

    reservation_id: str
    concert_id: str
    schedule_id: str
    seat_number: int
    price: Price
    status: ReservationStatus
    hold_expires_at: str = Field(description="ISO-8601 UTC end of the hold; pay before it.")


class ReservationsOut(ApiModel):
    model_config = with_examples(
        {
            "items": [
                {
                    "reservationId": "01JD4YB3C5D7E9F1G3H5J7K9M1",
                    "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
                    "scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K",
                    "seatNumber": 42,
                    "price": 50_000,
                    "status": "PAID",
                    "holdExpiresAt": "2030-12-01T10:05:00Z",
                }
            ],
            "nextCursor": None,
        }
    )

    items: list[ReservationOut] = Field(description="The caller's reservations, newest first.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end.")


class CancellationOut(ApiModel):
    model_config = with_examples(
        {"reservationId": "01JD4YB3C5D7E9F1G3H5J7K9M1", "status": "CANCELLED", "refund": 50_000, "balance": 100_000}
    )

    reservation_id: str
    status: Annotated[ReservationStatus, Field(description="Always CANCELLED.")]
    refund: int = Field(gt=0, description="Won paid back to the wallet: the ticket's price.")
    balance: int = Field(ge=0, description="The balance right after the refund.")


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    user_id: str
    concert_id: str
    schedule_id: str
    starts_at: str
    seat_number: int
    price: int
    status: ReservationStatus
    hold_expires_at: int
    created_at: int

    def effective_status(self, now: float) -> ReservationStatus:
        """A HELD reservation past holdExpiresAt is EXPIRED even before the scheduler writes so."""
        if self.status is ReservationStatus.HELD and self.hold_expires_at <= now:
            return ReservationStatus.EXPIRED
        return self.status

    def view(self, now: float) -> ReservationOut:
        return ReservationOut(
            reservation_id=self.reservation_id,
            concert_id=self.concert_id,
            schedule_id=self.schedule_id,
            seat_number=self.seat_number,
            price=self.price,
            status=self.effective_status(now),
            hold_expires_at=clock.to_iso(self.hold_expires_at),
        )


@dataclass(frozen=True, slots=True)
class UserHolds:
    """One user's holds on one schedule ({reservationId: holdExpiresAt}), with an optimistic-lock version."""

    holds: dict[str, int]
    version: int | None  # None: the item does not exist yet

    def live(self, now: float) -> dict[str, int]:
        return {rid: until for rid, until in self.holds.items() if until > now}
