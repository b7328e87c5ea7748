"""Holds in the single table (see docs/DATA_MODEL.md, docs/CATALOG.md).

- reservation   PK=RESERVATION#<rid>        SK=RESERVATION  reservationId, userId, concertId, scheduleId, startsAt,
                                                            seatNumber, price, status HELD|PAID|EXPIRED,
                                                            holdExpiresAt, createdAt
    HELD:  GSI2PK=HELD#<bucket>, GSI2SK=holdExpiresAt   (the scheduler reads the lapsed ones; a few buckets
                                                         so that no GSI partition takes every hold)
- user holds    PK=HOLDS#<sid>#<uid>        SK=HOLDS        holds {reservationId: holdExpiresAt}, version
    (the per-user limit: written in the same transaction as the seat and the reservation)
- seat          see repositories/catalog.py: status FREE -> HELD(reservationId, holdExpiresAt) -> SOLD

A hold is one TransactWriteItems of three items private to this seat and this user: no per-schedule or
per-concert item is in it, so holds of different seats never conflict.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ticketline import clock
from ticketline.config import get_settings
from ticketline.db import Cancelled, Item, conditional_write, dynamodb, from_raw, get_many, to_raw, transact, values
from ticketline.models.catalog import ScheduleRef, Seat, SeatStatus
from ticketline.models.reservations import Reservation, ReservationStatus, UserHolds
from ticketline.repositories.catalog import (
    schedule_key,
    schedule_ref,
    seat_from_item,
    seat_key,
)

__all__ = [
    "HOLD_BUCKETS",
    "HoldContext",
    "HoldOutcome",
    "LapseOutcome",
    "ReservationRepository",
    "holds_key",
    "reservation_key",
    "schedule_key",
    "seat_key",
]

DAY = 86_400
USER_INDEX = "UserReservations"  # GSI: userId, createdAt (every reservation carries both)
LIST_MAX_QUERIES = 5  # per page of a filtered listing: then the page ends early, with a cursor
HOLD_BUCKETS = 4  # GSI2 partitions HELD#0..3: spreads the index's write load, read by the scheduler one by one
_SEAT, _RESERVATION, _HOLDS, _TICKETS = range(4)  # the hold's items


def reservation_key(reservation_id: str) -> Item:
    return {"PK": f"RESERVATION#{reservation_id}", "SK": "RESERVATION"}


def holds_key(schedule_id: str, user_id: str) -> Item:
    return {"PK": f"HOLDS#{schedule_id}#{user_id}", "SK": "HOLDS"}


def tickets_key(concert_id: str, user_id: str) -> Item:
    """The user's PAID tickets of one concert (`tickets`, a string set of reservation ids): the ticket limit."""
    return {"PK": f"TICKETS#{concert_id}#{user_id}", "SK": "TICKETS"}


def held_partition(reservation_id: str) -> str:
    return f"HELD#{zlib.crc32(reservation_id.encode()) % HOLD_BUCKETS}"


class HoldOutcome(Enum):
    HELD = "held"
    SEAT_CHANGED = "seat-changed"  # the seat is not in the state we read: see HoldResult.seat
    HOLDS_CHANGED = "holds-changed"  # the user's holds item moved since we read it (a concurrent hold)
    TICKET_LIMIT = "ticket-limit"  # the user owns the most PAID tickets of the concert
    CONFLICT = "conflict"  # TransactionConflict: another transaction had one of the items; retry later


@dataclass(frozen=True, slots=True)
class HoldResult:
    outcome: HoldOutcome
    seat: Seat | None = None  # with SEAT_CHANGED: the seat as it is now (None: it does not exist)


class ReleaseOutcome(Enum):
    RELEASED = "released"  # reservation RELEASED, its seat FREE, its place in the per-date limit given back
    CHANGED = "changed"  # the reservation is not a live HELD one of the caller: see ReleaseResult.reservation
    NO_HOLDS_ITEM = "no-holds-item"  # the user's per-date holds item is gone: release without it
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    outcome: ReleaseOutcome
    reservation: Reservation | None = None  # CHANGED: the reservation as it is now (None: it does not exist)


class LapseOutcome(Enum):
    RELEASED = "released"  # reservation EXPIRED and its seat FREE again
    EXPIRED_ONLY = "expired-only"  # reservation EXPIRED; its seat had been taken over by another hold
    SKIPPED = "skipped"  # paid, or already lapsed by another run
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class HoldContext:
    schedule: ScheduleRef | None
    seat: Seat | None
    holds: UserHolds


class ReservationRepository:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name

    # ---- reads ----
    def get(self, reservation_id: str, consistent: bool = False) -> Reservation | None:
        raw = dynamodb().get_item(
            TableName=self.table, Key=to_raw(reservation_key(reservation_id)), ConsistentRead=consistent
        )
        return reservation_from_item(from_raw(raw["Item"])) if "Item" in raw else None

    def hold_context(self, schedule_id: str, seat_number: int, user_id: str) -> HoldContext:
        """Schedule META, seat and the user's holds in one strongly consistent BatchGetItem."""
        keys = [schedule_key(schedule_id), seat_key(schedule_id, seat_number), holds_key(schedule_id, user_id)]
        found = {str(item["SK"]): item for item in get_many(self.table, keys, consistent=True)}
        schedule = found.get("META")
        seat = found.get(str(keys[1]["SK"]))
        return HoldContext(
            schedule=schedule_ref(schedule) if schedule else None,
            seat=seat_from_item(seat) if seat else None,
            holds=_user_holds(found.get("HOLDS")),
        )

    def user_holds(self, schedule_id: str, user_id: str) -> UserHolds:
        raw = dynamodb().get_item(
            TableName=self.table, Key=to_raw(holds_key(schedule_id, user_id)), ConsistentRead=True
        )
        return _user_holds(from_raw(raw["Item"]) if "Item" in raw else None)

    def due(self, bucket: int, now: int, limit: int, page_size: int) -> list[Reservation]:
        """HELD reservations of one GSI2 bucket whose hold ended by `now`, oldest first, at most `limit`."""
        found: list[Reservation] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI2",
            "KeyConditionExpression": "GSI2PK = :partition AND GSI2SK <= :now",
            "ExpressionAttributeValues": values(partition=f"HELD#{bucket}", now=now),
            "Limit": min(page_size, limit),
        }
        while len(found) < limit:
            response = dynamodb().query(**request)
            found.extend(reservation_from_item(from_raw(raw)) for raw in response["Items"])
            if "LastEvaluatedKey" not in response:
                break
            request |= {"ExclusiveStartKey": response["LastEvaluatedKey"], "Limit": min(page_size, limit - len(found))}
        return found[:limit]

    # ---- the hold ----
    def try_hold(
        self, reservation: Reservation, seen: Seat, holds: dict[str, int], version: int | None, max_tickets: int
    ) -> HoldResult:
        """Seat -> HELD, reservation put and the user's holds replaced, all or nothing.

        The seat's condition pins the state we read (FREE, or HELD by the lapsed reservation we saw): every
        writer of a seat is conditional, so of any number of concurrent holds exactly one succeeds.
        """
        now = reservation.created_at
        if seen.status is SeatStatus.FREE:
            seat_condition, seat_values = "#status = :free", values(free=SeatStatus.FREE.value)
        else:
            seat_condition = "#status = :held AND reservationId = :seen AND holdExpiresAt <= :now"
            seat_values = values(seen=seen.reservation_id, now=now)
        # The date has not started: seats carry its start (written at creation; seats written before that field
        # get it from their first hold, and until then the service's check with the same `now` is the rule).
        seat_condition = f"({seat_condition}) AND (attribute_not_exists(startsAt) OR startsAt > :today)"
        seat_values |= values(today=clock.to_iso(now))
        holds_item = {
            **holds_key(reservation.schedule_id, reservation.user_id),
            "scheduleId": reservation.schedule_id,
            "userId": reservation.user_id,
            "holds": holds,
            "version": (version or 0) + 1,
            "ttl": max(holds.values()) + DAY,
        }
        holds_condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(PK)"}
        if version is not None:
            holds_condition = {
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": values(version=version),
            }
        refused = transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": to_raw(seat_key(reservation.schedule_id, reservation.seat_number)),
                        "UpdateExpression": "SET #status = :held, reservationId = :rid, holdExpiresAt = :until, "
                        "startsAt = :starts",
                        "ConditionExpression": seat_condition,
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": seat_values
                        | values(
                            held=SeatStatus.HELD.value,
                            rid=reservation.reservation_id,
                            until=reservation.hold_expires_at,
                            starts=reservation.starts_at,
                        ),
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_raw(reservation_item(reservation)),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {"Put": {"TableName": self.table, "Item": to_raw(holds_item), **holds_condition}},
                {
                    # The ticket limit: a buyer who owns the most PAID tickets of the concert holds no more.
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": to_raw(tickets_key(reservation.concert_id, reservation.user_id)),
                        "ConditionExpression": "attribute_not_exists(tickets) OR size(tickets) < :most",
                        "ExpressionAttributeValues": values(most=max_tickets),
                    }
                },
            ]
        )
        if refused is None:
            return HoldResult(HoldOutcome.HELD)
        result = hold_outcome(refused)
        if result is None:
            raise refused.error
        return result

    def of_user(
        self, user_id: str, limit: int, after: tuple[int, str] | None, status: ReservationStatus | None, now: int
    ) -> tuple[list[Reservation], tuple[int, str] | None]:
        """The user's reservations newest first (the UserReservations index), at most `limit`, from after the
        (createdAt, reservationId) position `after`; and the position to go on from (None: no more).

        `status` is the status the API shows (a HELD past holdExpiresAt is EXPIRED), filtered server-side; a
        filtered page may need more than one Query, bounded so that one call stays short."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": USER_INDEX,
            "KeyConditionExpression": "userId = :uid",
            "ExpressionAttributeValues": values(uid=user_id),
            "ScanIndexForward": False,
        }
        if after is not None:
            created_at, reservation_id = after
            request["ExclusiveStartKey"] = to_raw(
                {**reservation_key(reservation_id), "userId": user_id, "createdAt": created_at}
            )
        if status is not None:
            request |= _status_filter(status, now)
            request["ExpressionAttributeValues"] |= values(uid=user_id)
        found: list[Reservation] = []
        resume: tuple[int, str] | None = None
        for _ in range(LIST_MAX_QUERIES):
            response = dynamodb().query(**request, Limit=limit - len(found))
            found.extend(reservation_from_item(from_raw(raw)) for raw in response["Items"])
            last = response.get("LastEvaluatedKey")
            if last is None:
                return found, None
            position = from_raw(last)
            resume = (int(position["createdAt"]), str(position["PK"]).removeprefix("RESERVATION#"))
            if len(found) >= limit:
                return found, resume
            request["ExclusiveStartKey"] = last
        return found, resume

    # ---- release (the owner gives a hold back) ----
    def release(self, reservation: Reservation, now: int, *, with_holds_item: bool = True) -> ReleaseResult:
        """Reservation HELD -> RELEASED, its seat FREE and its place in the user's per-date limit given back:
        one transaction, only while the hold is live and the caller's (a payment racing it: one of them wins)."""
        items: list[Any] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_raw(reservation_key(reservation.reservation_id)),
                    "UpdateExpression": "SET #status = :released, releasedAt = :now REMOVE GSI2PK, GSI2SK",
                    "ConditionExpression": "userId = :uid AND #status = :held AND holdExpiresAt > :now",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values(
                        released=ReservationStatus.RELEASED.value,
                        held=ReservationStatus.HELD.value,
                        uid=reservation.user_id,
                        now=now,
                    ),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {"Update": self.held_seat_update(reservation, SeatStatus.FREE, also="REMOVE reservationId, holdExpiresAt")},
        ]
        if with_holds_item:
            items.append(
                {
                    "Update": self.release_hold_update(
                        reservation.schedule_id, reservation.user_id, [reservation.reservation_id]
                    )
                }
            )
        refused = transact(items)
        if refused is None:
            return ReleaseResult(ReleaseOutcome.RELEASED)
        if refused[0].condition_failed:
            old = refused[0].item
            return ReleaseResult(ReleaseOutcome.CHANGED, reservation_from_item(old) if old else None)
        if refused.conflict:
            return ReleaseResult(ReleaseOutcome.CONFLICT)
        if with_holds_item and refused[2].condition_failed:
            return ReleaseResult(ReleaseOutcome.NO_HOLDS_ITEM)
        raise refused.error

    # ---- lapse (scheduler) ----
    def lapse(self, reservation: Reservation, now: int) -> LapseOutcome:
        """Reservation HELD -> EXPIRED and its seat FREE again, both or neither.

        When another buyer has since taken the seat over (it no longer carries this reservation id), only the
        reservation moves: the seat is theirs.
        """
        refused = transact(
            [
                {"Update": self._expire_update(reservation, now)},
                {
                    "Update": self.held_seat_update(
                        reservation, SeatStatus.FREE, also="REMOVE reservationId, holdExpiresAt"
                    )
                },
            ]
        )
        if refused is None:
            return LapseOutcome.RELEASED
        if refused[0].condition_failed:
            self._leave_index(reservation)
            return LapseOutcome.SKIPPED
        if refused.conflict:
            return LapseOutcome.CONFLICT
        if refused[1].condition_failed:
            return self._expire_only(reservation, now)
        raise refused.error

    def _expire_only(self, reservation: Reservation, now: int) -> LapseOutcome:
        if conditional_write(lambda: dynamodb().update_item(**self._expire_update(reservation, now))):
            return LapseOutcome.EXPIRED_ONLY
        return LapseOutcome.SKIPPED

    def held_seat_update(self, reservation: Reservation, to: SeatStatus, also: str = "") -> dict[str, Any]:
        """The reservation's seat out of HELD (to FREE on a lapse, SOLD on a payment), as a transaction's Update:
        only while this reservation still holds it. `also`: more of the update expression (a REMOVE clause)."""
        return {
            "TableName": self.table,
            "Key": to_raw(seat_key(reservation.schedule_id, reservation.seat_number)),
            "UpdateExpression": f"SET #status = :to {also}".rstrip(),
            "ConditionExpression": "#status = :held AND reservationId = :rid",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values(
                to=to.value, held=SeatStatus.HELD.value, rid=reservation.reservation_id
            ),
        }

    def _expire_update(self, reservation: Reservation, now: int) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Key": to_raw(reservation_key(reservation.reservation_id)),
            "UpdateExpression": "SET #status = :expired REMOVE GSI2PK, GSI2SK",
            "ConditionExpression": "#status = :held AND holdExpiresAt <= :now",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values(
                expired=ReservationStatus.EXPIRED.value, held=ReservationStatus.HELD.value, now=now
            ),
        }

    def _leave_index(self, reservation: Reservation) -> None:
        """A reservation no longer HELD (say PAID) that still carries GSI2 keys leaves the index for good (a
        refused condition: it left already, or it is HELD again, which cannot be: nothing to do either way)."""
        conditional_write(
            lambda: dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(reservation_key(reservation.reservation_id)),
                UpdateExpression="REMOVE GSI2PK, GSI2SK",
                ConditionExpression="attribute_exists(GSI2PK) AND #status <> :held",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values(held=ReservationStatus.HELD.value),
            )
        )

    # ---- for payments and releases ----
    def release_hold_update(self, schedule_id: str, user_id: str, reservation_ids: Sequence[str]) -> dict[str, Any]:
        """An Update that removes holds (paid or released) from the user's per-date limit: `version` moves, so a
        concurrent hold of theirs re-reads the item. The item of a live hold exists (the hold wrote it)."""
        names = {f"#r{i}": rid for i, rid in enumerate(reservation_ids)}
        return {
            "TableName": self.table,
            "Key": to_raw(holds_key(schedule_id, user_id)),
            "UpdateExpression": f"REMOVE {', '.join(f'holds.{name}' for name in names)} ADD version :one",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values(one=1),
        }


def _status_filter(status: ReservationStatus, now: int) -> dict[str, Any]:
    """A FilterExpression for the status the API shows: a HELD reservation past its hold shows EXPIRED."""
    if status is ReservationStatus.HELD:
        expression = "#status = :held AND holdExpiresAt > :now"
    elif status is ReservationStatus.EXPIRED:
        expression = "#status = :expired OR (#status = :held AND holdExpiresAt <= :now)"
    else:
        expression = "#status = :wanted"
    named = {
        "held": ReservationStatus.HELD.value,
        "expired": ReservationStatus.EXPIRED.value,
        "wanted": status.value,
        "now": now,
    }
    return {
        "FilterExpression": expression,
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": values(**{name: v for name, v in named.items() if f":{name}" in expression}),
    }


def hold_outcome(refused: Cancelled) -> HoldResult | None:
    """What a cancelled hold transaction means, from its per-item reasons (seat, reservation, holds, tickets).

    None: a reason no retry or client error explains (throttling, a validation error): the caller re-raises.
    """
    if refused[_SEAT].condition_failed:
        seat = refused[_SEAT].item
        return HoldResult(HoldOutcome.SEAT_CHANGED, seat_from_item(seat) if seat else None)
    if refused.conflict:
        return HoldResult(HoldOutcome.CONFLICT)
    if refused[_HOLDS].condition_failed:
        return HoldResult(HoldOutcome.HOLDS_CHANGED)
    if refused[_TICKETS].condition_failed:
        return HoldResult(HoldOutcome.TICKET_LIMIT)
    return None


def reservation_item(reservation: Reservation) -> Item:
    item: Item = {
        **reservation_key(reservation.reservation_id),
        "reservationId": reservation.reservation_id,
        "userId": reservation.user_id,
        "concertId": reservation.concert_id,
        "scheduleId": reservation.schedule_id,
        "startsAt": reservation.starts_at,
        "seatNumber": reservation.seat_number,
        "price": reservation.price,
        "status": reservation.status.value,
        "holdExpiresAt": reservation.hold_expires_at,
        "createdAt": reservation.created_at,
    }
    if reservation.status is ReservationStatus.HELD:
        item |= {"GSI2PK": held_partition(reservation.reservation_id), "GSI2SK": reservation.hold_expires_at}
    return item


def reservation_from_item(item: Item) -> Reservation:
    return Reservation(
        reservation_id=str(item["reservationId"]),
        user_id=str(item["userId"]),
        concert_id=str(item["concertId"]),
        schedule_id=str(item["scheduleId"]),
        starts_at=str(item.get("startsAt", "")),
        seat_number=int(item["seatNumber"]),
        price=int(item["price"]),
        status=ReservationStatus(item["status"]),
        hold_expires_at=int(item["holdExpiresAt"]),
        created_at=int(item["createdAt"]),
    )


def _user_holds(item: Item | None) -> UserHolds:
    if item is None:
        return UserHolds(holds={}, version=None)
    return UserHolds(
        holds={str(rid): int(until) for rid, until in (item.get("holds") or {}).items()},
        version=int(item["version"]),
    )
