"""Concerts, schedules (dates) and seats as the API shows them, and as the repositories read them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from ticketline import clock
from ticketline.models import ApiModel, with_examples

MAX_SCHEDULES = 50
MAX_SEATS_PER_SCHEDULE = 100_000  # a stadium
MAX_SEAT_BLOCKS = 1_000  # ranges per schedule: a stadium's sections and price bands, in a small body
MAX_SEAT_NUMBER = 999_999  # keys sort by number (repositories.catalog.seat_key)
MAX_SEAT_PAGE = 5_000  # GET .../seats ?limit=: ~40 bytes a seat, a page well within Lambda's 6 MB response
MAX_PRICE = 10_000_000
MAX_QUEUE_CAPACITY = 100_000
MAX_QUEUE_SHARDS = 64
MAX_PAGE = 100  # GET /concerts ?limit=
DEFAULT_PAGE = 20

# strict: a JSON string "5", a float 5.0 or true is not a seat number or a price.
SeatNumber = Annotated[int, Field(strict=True, ge=1, le=MAX_SEAT_NUMBER, examples=[42])]
Price = Annotated[int, Field(strict=True, gt=0, le=MAX_PRICE, description="Won (integer).", examples=[50_000])]
SECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _-]*$"
MAX_SECTION_LENGTH = 32
Section = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_SECTION_LENGTH, pattern=SECTION_PATTERN),
    Field(description="The seat's section (letters, digits, space, _ or -; up to 32).", examples=["A"]),
]


class SeatStatus(StrEnum):
    FREE = "FREE"
    HELD = "HELD"
    SOLD = "SOLD"


class SaleStatus(StrEnum):
    """A concert's sale: PUBLISHING until every seat is written, then ON_SALE, SOLD_OUT or ENDED."""

    PUBLISHING = "PUBLISHING"
    ON_SALE = "ON_SALE"
    SOLD_OUT = "SOLD_OUT"
    ENDED = "ENDED"


@dataclass(frozen=True, slots=True)
class SeatRun:
    """Seats `first`..`last` (both included) of one price and section: what is written together."""

    first: int
    last: int
    price: int
    section: str | None = None

    @property
    def size(self) -> int:
        return self.last - self.first + 1


class SeatRangeMessage(ApiModel):
    """One message of a concert's publication: a run of seats of one date to write. Seat numbers, never a seat list,
    so a message stays a few hundred bytes (SQS allows 256 KB)."""

    concert_id: str
    schedule_id: str
    starts_at: str
    first: int = Field(ge=1, le=MAX_SEAT_NUMBER)
    last: int = Field(ge=1, le=MAX_SEAT_NUMBER)
    price: int = Field(gt=0, le=MAX_PRICE)
    section: str | None = None

    @property
    def range_id(self) -> str:
        """Names the range among its concert's: its date and its first seat."""
        return f"{self.schedule_id}#{self.first:06d}"


# ---- admin input ----
class SeatIn(ApiModel):
    number: SeatNumber
    price: Price
    section: Section | None = None


class SeatBlockIn(ApiModel):
    """Seats `from`..`to` (both included), one price, one optional section."""

    model_config = with_examples({"section": "A", "from": 1, "to": 20_000, "price": 80_000})

    section: Section | None = None
    first: SeatNumber = Field(alias="from")
    last: SeatNumber = Field(alias="to")
    price: Price

    @field_validator("last")
    @classmethod
    def _not_before_first(cls, value: int, info: ValidationInfo) -> int:
        first = info.data.get("first")
        if first is not None and value < first:
            raise ValueError(f"must be at least `from` ({first})")
        return value

    @property
    def size(self) -> int:
        return self.last - self.first + 1


class ScheduleIn(ApiModel):
    model_config = with_examples(
        {"startsAt": "2030-12-24T19:00:00Z", "seats": [{"number": 1, "price": 80_000}, {"number": 2, "price": 50_000}]},
        {
            "startsAt": "2030-12-25T19:00:00Z",
            "seatBlocks": [
                {"section": "A", "from": 1, "to": 20_000, "price": 80_000},
                {"section": "B", "from": 20_001, "to": 100_000, "price": 50_000},
            ],
        },
    )

    starts_at: AwareDatetime = Field(description="ISO-8601 with a zone, in the future.")
    seats: list[SeatIn] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SEATS_PER_SCHEDULE,
        description="The seats one by one; or seatBlocks.",
    )
    seat_blocks: list[SeatBlockIn] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SEAT_BLOCKS,
        description=f"Ranges of seat numbers instead of seats: not overlapping, at most {MAX_SEATS_PER_SCHEDULE:,} "
        "seats in all.",
    )

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

    @field_validator("seat_blocks")
    @classmethod
    def _disjoint_and_bounded(cls, blocks: list[SeatBlockIn] | None, info: ValidationInfo) -> list[SeatBlockIn] | None:
        if blocks is None:
            return None
        if info.data.get("seats") is not None:
            raise ValueError("give either seats or seatBlocks, not both")
        ordered = sorted(blocks, key=lambda b: b.first)
        for before, after in pairwise(ordered):
            if after.first <= before.last:
                raise ValueError(f"ranges overlap ({before.first}-{before.last} and {after.first}-{after.last})")
        total = sum(block.size for block in blocks)
        if total > MAX_SEATS_PER_SCHEDULE:
            raise ValueError(f"at most {MAX_SEATS_PER_SCHEDULE:,} seats per schedule ({total:,} given)")
        return blocks

    @model_validator(mode="after")
    def _seats_or_blocks(self) -> ScheduleIn:
        if self.seats is None and self.seat_blocks is None:
            raise ValueError("give seats or seatBlocks")
        return self

    def runs(self) -> list[SeatRun]:
        """The date's seats as runs of numbers, by number: seatBlocks as given, or each listed seat a run of one."""
        if self.seat_blocks is not None:
            return [
                SeatRun(b.first, b.last, b.price, b.section) for b in sorted(self.seat_blocks, key=lambda b: b.first)
            ]
        return [
            SeatRun(s.number, s.number, s.price, s.section) for s in sorted(self.seats or [], key=lambda s: s.number)
        ]

    @property
    def seat_count(self) -> int:
        return len(self.seats) if self.seats is not None else sum(b.size for b in self.seat_blocks or [])


class ConcertIn(ApiModel):
    model_config = with_examples(
        {
            "title": "Winter night",
            "queueCapacity": 100,
            "salesOpenAt": "2030-12-01T10:00:00Z",
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
    # After `schedules`, so that its validator sees them.
    sales_open_at: AwareDatetime | None = Field(
        default=None,
        description="When joining the queue opens (ISO-8601 with a zone), before the last date starts; before it a "
        "join is 409 SALE_NOT_OPEN. Defaults to now.",
    )

    @field_validator("sales_open_at")
    @classmethod
    def _before_the_last_date(cls, value: AwareDatetime | None, info: ValidationInfo) -> AwareDatetime | None:
        schedules: list[ScheduleIn] = info.data.get("schedules") or []
        if value is not None and schedules and value >= max(s.starts_at for s in schedules):
            raise ValueError("must be before the last date starts")
        return value


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
            "status": "ON_SALE",
            "queueCapacity": 100,
            "queueShards": 1,
            "salesOpenAt": "2030-12-01T10:00:00Z",
            "schedules": [
                {"scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K", "startsAt": "2030-12-24T19:00:00Z", "seatCount": 2}
            ],
        }
    )

    concert_id: str
    title: str
    status: SaleStatus = Field(
        description="ON_SALE: every seat is written and the queue is open (201); PUBLISHING: the seats are being "
        "written in the background and the queue opens once they all are (202)."
    )
    queue_capacity: int
    queue_shards: int
    sales_open_at: str
    schedules: list[ScheduleCreatedOut]


# ---- discovery (public) ----
class ConcertSummaryOut(ApiModel):
    model_config = with_examples(
        {
            "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
            "title": "Winter night",
            "salesOpenAt": "2030-12-01T10:00:00Z",
            "firstStartsAt": "2030-12-24T19:00:00Z",
            "lastStartsAt": "2030-12-25T19:00:00Z",
            "soldOut": False,
        }
    )

    concert_id: str
    title: str
    sales_open_at: str
    first_starts_at: str = Field(description="The concert's first date (it may have started already).")
    last_starts_at: str = Field(description="Its last date: the concert leaves the list when that date starts.")
    sold_out: bool = Field(description="Every seat of every date still on sale is sold (held seats may come back).")


class ConcertsOut(ApiModel):
    model_config = with_examples(
        {
            "items": [
                {
                    "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
                    "title": "Winter night",
                    "salesOpenAt": "2030-12-01T10:00:00Z",
                    "firstStartsAt": "2030-12-24T19:00:00Z",
                    "lastStartsAt": "2030-12-25T19:00:00Z",
                    "soldOut": False,
                }
            ],
            "nextCursor": None,
        }
    )

    items: list[ConcertSummaryOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class ConcertScheduleOut(ApiModel):
    model_config = with_examples({"scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K", "startsAt": "2030-12-24T19:00:00Z"})

    schedule_id: str
    starts_at: str


class ConcertDetailOut(ApiModel):
    model_config = with_examples(
        {
            "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
            "title": "Winter night",
            "salesOpenAt": "2030-12-01T10:00:00Z",
            "soldOut": False,
            "schedules": [{"scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K", "startsAt": "2030-12-24T19:00:00Z"}],
        }
    )

    concert_id: str
    title: str
    sales_open_at: str
    sold_out: bool = Field(description="Every seat of every date still on sale is sold (held seats may come back).")
    schedules: list[ConcertScheduleOut] = Field(description="The dates that have not started, soonest first.")


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
    model_config = with_examples({"number": 42, "price": 50_000, "section": "A"})

    number: int
    price: int
    section: str | None = Field(description="The seat's section; null when the concert gave none.")


class SeatsOut(ApiModel):
    model_config = with_examples(
        {
            "scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K",
            "seats": [{"number": 1, "price": 80_000, "section": "A"}, {"number": 42, "price": 50_000, "section": "A"}],
            "nextCursor": None,
        }
    )

    schedule_id: str
    seats: list[SeatOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


# ---- stored ----
def is_sold_out(sellable_until: int | None, now: float) -> bool:
    """Nothing left to sell: no date that has not started has a seat that is not SOLD.

    `sellable_until` is the latest start among the dates with a seat not sold (the stream-fed figures keep it),
    so a date that starts leaves the sale at that second without anything being written. None (a concert whose
    figures were never counted, created before they existed) is never sold out: unknown must not stop a sale.
    """
    return sellable_until is not None and sellable_until <= now


# A DynamoDB stream sequence number has up to 40 digits: zero-padded to that width, they compare as strings (the
# figures' condition compares them so).
SEQUENCE_DIGITS = 40


def padded_sequence(sequence_number: str) -> str:
    return sequence_number.zfill(SEQUENCE_DIGITS)


@dataclass(frozen=True, slots=True)
class DateFigures:
    """A date's stream-fed figures: its seats by status, the money taken (the prices of the seats SOLD, a refund
    taking its seat's back) and the tickets cancelled. As a change, each may be negative."""

    free: int = 0
    held: int = 0
    sold: int = 0
    revenue: int = 0
    cancelled: int = 0

    def __add__(self, other: DateFigures) -> DateFigures:
        return DateFigures(
            self.free + other.free,
            self.held + other.held,
            self.sold + other.sold,
            self.revenue + other.revenue,
            self.cancelled + other.cancelled,
        )


def _one_seat(status: str) -> DateFigures:
    return DateFigures(
        free=int(status == SeatStatus.FREE.value),
        held=int(status == SeatStatus.HELD.value),
        sold=int(status == SeatStatus.SOLD.value),
    )


@dataclass(frozen=True, slots=True)
class SeatChange:
    """One stream record of a seat changing status: its sequence number (padded) and what it changes in its date's
    figures."""

    sequence: str
    figures: DateFigures

    @classmethod
    def of(cls, sequence_number: str, old_status: str, new_status: str, price: int) -> SeatChange:
        """One seat leaves the old status for the new. Sold: its price is taken; leaving SOLD: refunded, and back to
        FREE that is a cancelled ticket."""
        old, new = _one_seat(old_status), _one_seat(new_status)
        sold_change = new.sold - old.sold
        cancelled = int(old.sold == 1 and new.free == 1)
        figures = DateFigures(new.free - old.free, new.held - old.held, sold_change, sold_change * price, cancelled)
        return cls(padded_sequence(sequence_number), figures)


@dataclass(frozen=True, slots=True)
class FiguresChange:
    """What a stream batch changes in a date's figures, and the padded sequence numbers of its first and last
    records."""

    figures: DateFigures
    first: str
    last: str


@dataclass(frozen=True, slots=True)
class SeatPage:
    """Which free seats a listing page asks for: after seat number `after` (None: from the first), `limit` of them,
    of one `section` or all."""

    limit: int
    after: int | None = None
    section: str | None = None


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
    section: str | None = None

    def is_free(self, now: float) -> bool:
        """Never sold and not held, or held by a hold that has lapsed (lazy expiry)."""
        if self.status is SeatStatus.FREE:
            return True
        return self.status is SeatStatus.HELD and (self.hold_expires_at or 0) <= now


# ---- operators ----
class SalesOut(ApiModel):
    model_config = with_examples(
        {"seats": 10000, "free": 6200, "held": 300, "sold": 3500, "cancelled": 12, "revenue": 350000000}
    )

    seats: int = Field(ge=0, description="Seats of every date.")
    free: int = Field(ge=0, description="FREE seats of every date (the stream-fed figures).")
    held: int = Field(ge=0, description="HELD seats of every date.")
    sold: int = Field(ge=0, description="SOLD seats of every date.")
    cancelled: int = Field(ge=0, description="Tickets cancelled (refunded, their seats on sale again).")
    revenue: int = Field(
        description="Money taken (minor units): the prices of the seats sold, less those refunded (the stream-fed "
        "figures, healed by the recount task)."
    )


class ScheduleSalesOut(ApiModel):
    model_config = with_examples(
        {
            "scheduleId": "01JD4Y9A2B4C6D8E0F1G3H5J7K",
            "startsAt": "2030-12-24T19:00:00Z",
            "free": 3100,
            "held": 150,
            "sold": 1750,
        }
    )

    schedule_id: str
    starts_at: str
    free: int = Field(ge=0)
    held: int = Field(ge=0)
    sold: int = Field(ge=0)


class FiguresAsOfOut(ApiModel):
    model_config = with_examples({"seats": "2030-12-01T10:05:02Z", "queue": "2030-12-01T10:05:00Z"})

    seats: str | None = Field(
        description="ISO-8601 UTC start of the oldest seat recount the sales figures come from; null: none yet (the "
        "figures are the creation's)."
    )
    queue: str | None = Field(
        description="ISO-8601 UTC time of the admission run the waiting figure comes from; null: no run yet."
    )
