"""Concerts, schedules (dates) and seats as the API shows them, and as the repositories read them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints, field_validator

from ticketline import clock
from ticketline.models import ApiModel, with_examples

MAX_SCHEDULES = 50
MAX_SEATS_PER_SCHEDULE = 5_000
MAX_SEAT_NUMBER = 99_999  # keys pad seat numbers to five digits (SEAT#00042)
MAX_PRICE = 10_000_000
MAX_QUEUE_CAPACITY = 100_000
MAX_QUEUE_SHARDS = 64

# strict: a JSON string "5", a float 5.0 or true is not a seat number or a price.
SeatNumber = Annotated[int, Field(strict=True, ge=1, le=MAX_SEAT_NUMBER, examples=[42])]
Price = Annotated[int, Field(strict=True, gt=0, le=MAX_PRICE, description="Won (integer).", examples=[50_000])]


class SeatStatus(StrEnum):
    FREE = "FREE"
    HELD = "HELD"
    SOLD = "SOLD"


# ---- admin input ----
class SeatIn(ApiModel):
    number: SeatNumber
    price: Price


class ScheduleIn(ApiModel):
    model_config = with_examples(
        {"startsAt": "2030-12-24T19:00:00Z", "seats": [{"number": 1, "price": 80_000}, {"number": 2, "price": 50_000}]}
    )

    starts_at: AwareDatetime = Field(description="ISO-8601 with a zone, in the future.")
    seats: list[SeatIn] = Field(min_length=1, max_length=MAX_SEATS_PER_SCHEDULE)

    @field_validator("starts_at")
    @classmethod
    def _in_the_future(cls, value: AwareDatetime) -> AwareDatetime:
        if value.timestamp() <= clock.now():
            raise ValueError("must be in the future")
        return value

    @field_validator("seats")
    @classmethod
    def _unique_numbers(cls, seats: list[SeatIn]) -> list[SeatIn]:
        seen: set[int] = set()
        for seat in seats:
            if seat.number in seen:
                raise ValueError(f"seat numbers must be unique within a schedule ({seat.number} appears twice)")
            seen.add(seat.number)
        return seats


class ConcertIn(ApiModel):
    model_config = with_examples(
        {
            "title": "Winter night",
            "queueCapacity": 100,
            "schedules": [{"startsAt": "2030-12-24T19:00:00Z", "seats": [{"number": 1, "price": 50_000}]}],
        }
    )

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    queue_capacity: int | None = Field(
        default=None, strict=True, ge=1, le=MAX_QUEUE_CAPACITY, description="Most ACTIVE queue tokens at once."
    )
    queue_shards: int | None = Field(
        default=None, strict=True, ge=1, le=MAX_QUEUE_SHARDS, description="Sequence-counter shards (docs/QUEUE.md)."
    )
    schedules: list[ScheduleIn] = Field(min_length=1, max_length=MAX_SCHEDULES)


# ---- output ----
class ScheduleCreatedOut(ApiModel):
    model_config = with_examples(
        {"scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K", "startsAt": "2030-12-24T19:00:00Z", "seatCount": 2}
    )

    schedule_id: str
    starts_at: str
    seat_count: int


class ConcertOut(ApiModel):
    model_config = with_examples(
        {
            "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
            "title": "Winter night",
            "queueCapacity": 100,
            "queueShards": 1,
            "schedules": [
                {"scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K", "startsAt": "2030-12-24T19:00:00Z", "seatCount": 2}
            ],
        }
    )

    concert_id: str
    title: str
    queue_capacity: int
    queue_shards: int
    schedules: list[ScheduleCreatedOut]


class ScheduleOut(ApiModel):
    model_config = with_examples(
        {"scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K", "startsAt": "2030-12-24T19:00:00Z", "availableSeats": 118}
    )

    schedule_id: str
    starts_at: str
    available_seats: int = Field(ge=0, description="A hint, refreshed right after each hold and lapse.")


class SchedulesOut(ApiModel):
    model_config = with_examples(
        {
            "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
            "schedules": [
                {"scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K", "startsAt": "2030-12-24T19:00:00Z", "availableSeats": 118}
            ],
        }
    )

    concert_id: str
    schedules: list[ScheduleOut]


class SeatOut(ApiModel):
    model_config = with_examples({"number": 42, "price": 50_000})

    number: int
    price: int


class SeatsOut(ApiModel):
    model_config = with_examples(
        {
            "scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K",
            "seats": [{"number": 1, "price": 80_000}, {"number": 42, "price": 50_000}],
        }
    )

    schedule_id: str
    seats: list[SeatOut]


# ---- stored ----
@dataclass(frozen=True, slots=True)
class ScheduleRef:
    """A schedule's META item: enough to find its concert and its entry in the concert's partition."""

    schedule_id: str
    concert_id: str
    starts_at: str


@dataclass(frozen=True, slots=True)
class Seat:
    schedule_id: str
    number: int
    price: int
    status: SeatStatus
    reservation_id: str | None
    hold_expires_at: int | None

    def is_free(self, now: float) -> bool:
        """Never sold and not held, or held by a hold that has lapsed (lazy expiry)."""
        if self.status is SeatStatus.FREE:
            return True
        return self.status is SeatStatus.HELD and (self.hold_expires_at or 0) <= now
