"""Queue items in the single table (see docs/DATA_MODEL.md).

- QUEUE state   PK=CONCERT#<cid>          SK=QUEUE   capacity, shards, admitBound, counterReadings, paused
- queue change  PK=CONCERT#<cid>          SK=QCHANGE#<at>#<id>  an operator's change (audit trail): sub, paused?,
                                                                capacity?
- registry      PK=QUEUES                 SK=<cid>   every queue; `listed` once its concert is in the discovery
                                                      listing (GSI2PK=CONCERTS, GSI2SK=its last date's start),
                                                      which is what the scheduler walks (docs/QUEUE.md)
- backfill mark PK=QUEUES#BACKFILL         SK=DONE    every registry entry is listed: nobody reads the registry
- seq counter   PK=QSEQ#<cid>#<shard>     SK=QSEQ    n (sharded so issuing is not one hot item), lobby (lobby joins)
- token         PK=QTOKEN#<cid>#<uid>     SK=QTOKEN  token, seq, status, activeUntil, lobbyKey (lobby tokens)
    all:    GSI1PK=WAIT#<cid>#<shard>; WAIT: GSI1SK=seq (admission reads waiters in seq order),
            ACTIVE/EXPIRED: GSI1SK=-seq (admission sees which drawn numbers have arrived)
    lobby:  GSI1PK=LOBBY#<cid>#<shard>; WAIT: GSI1SK=lobbyKey (the line-up reads the lobby in key order),
            once ACTIVE: GSI1SK=0 (seq 0: out of every key range)
    ACTIVE: GSI2PK=ACTIVE#<cid>,       GSI2SK=activeUntil (expiry reads the due ones)
- released seq  PK=QRELEASED#<cid>#<seq>  SK=RELEASED  an EXPIRED stand-in at GSI1SK=-seq for a number whose join
                                                      lost its user's token to a concurrent join (rare)
"""

from __future__ import annotations

import heapq
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Self

from ticketline import clock
from ticketline.config import get_settings
from ticketline.db import (
    Item,
    conditional_write,
    dynamodb,
    from_raw,
    get_many,
    new_items,
    put_new,
    refusal,
    to_raw,
    transact,
    values,
)
from ticketline.errors import ServiceUnavailable
from ticketline.models.queue import (
    LOBBY_KEYS,
    AdmissionRun,
    CounterReading,
    QueueChange,
    QueueState,
    QueueToken,
    TokenStatus,
    sequence_number,
)

DAY = 86_400
# The GSI2 partition of the concerts a client may discover, by the start of their last date ("by deadline").
LISTING_PARTITION = "CONCERTS"
_BACKFILL_MARK = {"PK": "QUEUES#BACKFILL", "SK": "DONE"}
TOKEN_RETENTION_SECONDS = 2 * DAY  # TTL tidies dead tokens; logic never relies on it
CHANGE_PREFIX = "QCHANGE#"


@dataclass(frozen=True, slots=True)
class LobbyProgress:
    """The lobby's part of the queue state, as an admission run saves it."""

    done: bool
    size: int
    formed: bool
    bound: int
    admitted: int

    @classmethod
    def of(cls, state: QueueState) -> Self:
        return cls(state.lobby_done, state.lobby_size, state.lobby_formed, state.lobby_bound, state.lobby_admitted)


def state_key(concert_id: str) -> Item:
    return {"PK": f"CONCERT#{concert_id}", "SK": "QUEUE"}


def token_key(concert_id: str, user_id: str) -> Item:
    return {"PK": f"QTOKEN#{concert_id}#{user_id}", "SK": "QTOKEN"}


def _counter_key(concert_id: str, shard: int) -> Item:
    return {"PK": f"QSEQ#{concert_id}#{shard}", "SK": "QSEQ"}


def _wait_partition(concert_id: str, shard: int) -> str:
    return f"WAIT#{concert_id}#{shard}"


def _lobby_partition(concert_id: str, shard: int) -> str:
    return f"LOBBY#{concert_id}#{shard}"


def _active_partition(concert_id: str) -> str:
    return f"ACTIVE#{concert_id}"


class QueueRepository:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name

    # ---- state ----
    def new_queue_items(
        self,
        concert_id: str,
        capacity: int,
        shards: int,
        now: int,
        *,
        sales_open_at: int | None = None,
        sellable_until: int | None = None,
    ) -> list[Item]:
        """Items that open a concert's queue: the first `capacity` arrivals enter at once (from `sales_open_at`), or,
        when the sale opens later and PreQueueMinutes allows a lobby, nobody until the lobby has been let in.

        The state also carries the concert's sold-out figure (`sellableUntil`, kept by the stream consumer) so
        that a join, a poll and an admission run learn it from the read they already make."""
        lobby = sales_open_at is not None and sales_open_at > now and get_settings().pre_queue_minutes > 0
        return [
            {
                **state_key(concert_id),
                "concertId": concert_id,
                "capacity": capacity,
                "shards": shards,
                "admitBound": 0 if lobby else capacity,
                "lobbyDone": not lobby,
                "createdAt": now,
                "salesOpenAt": sales_open_at,
                "sellableUntil": sellable_until,
            },
            # `listed`: the concert is in the discovery listing (its META carries the keys); see unlisted_concert_ids
            {"PK": "QUEUES", "SK": concert_id, "createdAt": now, "listed": sellable_until is not None},
        ]

    def create_queue(self, concert_id: str, capacity: int, shards: int, now: int) -> None:
        """Open a queue on its own (tests, tools); concert creation publishes these items with the concert."""
        put_new(self.table, self.new_queue_items(concert_id, capacity, shards, now))

    def unlisted_concert_ids(self) -> Iterator[str]:
        """Concerts created before discovery existed, not yet backfilled into its listing (registry items without
        `listed`). The filter reads the whole registry: callers stop asking once the backfill is marked done."""
        paginator = dynamodb().get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            FilterExpression="attribute_not_exists(listed) OR listed = :no",
            ExpressionAttributeValues=values(pk="QUEUES", no=False),
            ProjectionExpression="SK",
        ):
            for raw in page["Items"]:
                yield str(from_raw(raw)["SK"])

    def backfill_done(self) -> bool:
        return "Item" in dynamodb().get_item(TableName=self.table, Key=to_raw(_BACKFILL_MARK))

    def mark_backfill_done(self, now: int) -> None:
        """Set once a pass over the registry found nothing left to list; from then on no run reads the registry."""
        dynamodb().update_item(
            TableName=self.table,
            Key=to_raw(_BACKFILL_MARK),
            UpdateExpression="SET doneAt = if_not_exists(doneAt, :now)",
            ExpressionAttributeValues=values(now=now),
        )

    def concerts_ending_after(self, moment: int) -> Iterator[str]:
        """Listed concerts whose last date starts after `moment`, by that start: one paginated Query of the listing
        (GSI2), whose key condition leaves out every concert that ended before, however many there are."""
        paginator = dynamodb().get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            IndexName="GSI2",
            KeyConditionExpression="GSI2PK = :partition AND GSI2SK > :moment",
            ExpressionAttributeValues=values(partition=LISTING_PARTITION, moment=moment),
            ProjectionExpression="concertId",
        ):
            for raw in page["Items"]:
                yield str(from_raw(raw)["concertId"])

    def scheduled_concert_ids(self, ending_after: int) -> Iterator[str]:
        """A scheduler run's work list, O(concerts on sale): the listed concerts whose last date starts after
        `ending_after`, plus, until the backfill is done, the registry's concerts created before the listing."""
        seen: set[str] = set()
        for concert_id in self.concerts_ending_after(ending_after):
            seen.add(concert_id)
            yield concert_id
        if not self.backfill_done():
            yield from (concert_id for concert_id in self.unlisted_concert_ids() if concert_id not in seen)

    def mark_listed(self, concert_id: str) -> None:
        dynamodb().update_item(
            TableName=self.table,
            Key=to_raw({"PK": "QUEUES", "SK": concert_id}),
            UpdateExpression="SET listed = :yes",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues=values(yes=True),
        )

    def get_state(self, concert_id: str, consistent: bool = False) -> QueueState | None:
        raw = dynamodb().get_item(TableName=self.table, Key=to_raw(state_key(concert_id)), ConsistentRead=consistent)
        return state_from_item(from_raw(raw["Item"])) if "Item" in raw else None

    def get_token_and_state(self, concert_id: str, user_id: str) -> tuple[QueueToken | None, QueueState | None]:
        """Both items in one BatchGetItem request: the whole cost of a position poll."""
        found = get_many(self.table, [token_key(concert_id, user_id), state_key(concert_id)], consistent=False)
        token = next((_token(item) for item in found if item["SK"] == "QTOKEN"), None)
        state = next((state_from_item(item) for item in found if item["SK"] == "QUEUE"), None)
        return token, state

    def save_admission(
        self,
        read: QueueState,
        new_bound: int,
        readings: tuple[CounterReading, ...],
        runs: tuple[AdmissionRun, ...],
        lobby: LobbyProgress | None = None,
    ) -> bool:
        """Set the bound (raised, or kept), the counter readings, the run history and the lobby's progress, if the
        bounds and the capacity are still those of the state the run `read` and admission is not paused.

        Optimistic: of two overlapping scheduler runs only one moves the bound. A run that loses only loses its
        reading and its place in the history, which makes later runs more cautious, never less. A run that an
        operator's change overtook loses the same way: it never admits past a capacity lowered or a pause set
        since its read.
        """
        progress = lobby or LobbyProgress.of(read)
        return conditional_write(
            lambda: dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(state_key(read.concert_id)),
                UpdateExpression="SET admitBound = :new, counterReadings = :readings, admissionRuns = :runs, "
                "lobbyDone = :done, lobbySize = :size, lobbyFormed = :formed, lobbyBound = :lobbyBound, "
                "lobbyAdmitted = :admitted",
                ConditionExpression="admitBound = :expected AND #capacity = :capacity AND "
                "(attribute_not_exists(#paused) OR #paused = :running) AND "
                "(attribute_not_exists(lobbyBound) OR lobbyBound = :expectedLobbyBound)",
                ExpressionAttributeNames={"#capacity": "capacity", "#paused": "paused"},
                ExpressionAttributeValues=values(
                    new=new_bound,
                    expected=read.admit_bound,
                    capacity=read.capacity,
                    running=False,
                    readings=[[r.at, *r.issued] for r in readings],
                    runs=_runs_attribute(runs),
                    done=progress.done,
                    size=progress.size,
                    formed=progress.formed,
                    lobbyBound=progress.bound,
                    admitted=progress.admitted,
                    expectedLobbyBound=read.lobby_bound,
                ),
            )
        )

    def save_paused_run(self, read: QueueState, runs: tuple[AdmissionRun, ...]) -> bool:
        """Record a run made while paused (the line's figures for the operator), if the queue is still paused at the
        bound the run read: it moves nothing, so it never races an admission. False: resumed or moved meanwhile."""
        return conditional_write(
            lambda: dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(state_key(read.concert_id)),
                UpdateExpression="SET admissionRuns = :runs",
                ConditionExpression="admitBound = :expected AND #paused = :paused",
                ExpressionAttributeNames={"#paused": "paused"},
                ExpressionAttributeValues=values(expected=read.admit_bound, paused=True, runs=_runs_attribute(runs)),
            )
        )

    def change_queue(self, concert_id: str, change: QueueChange) -> bool:
        """Set paused and/or capacity on an existing queue and record the change in its audit trail, all or nothing
        (one transaction). False: the concert has no queue."""
        assignments = {"paused": change.paused, "capacity": change.capacity}
        given = {name: value for name, value in assignments.items() if value is not None}
        refused = transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": to_raw(state_key(concert_id)),
                        "UpdateExpression": "SET " + ", ".join(f"#{name} = :{name}" for name in given),
                        "ConditionExpression": "attribute_exists(PK)",
                        "ExpressionAttributeNames": {f"#{name}": name for name in given},
                        "ExpressionAttributeValues": values(**given),
                    }
                },
                *new_items(self.table, [_change_item(concert_id, change)]),
            ]
        )
        if refused is None:
            return True
        if refused[0].condition_failed:  # the queue state: no such queue
            return False
        raise refused.error

    # ---- sequence ----
    def next_seq(self, concert_id: str, shard: int, shards: int) -> int:
        """Draw the shard's next number (see `sequence_number`)."""
        response = dynamodb().update_item(
            TableName=self.table,
            Key=to_raw(_counter_key(concert_id, shard)),
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues=values(one=1),
            ReturnValues="UPDATED_NEW",
        )
        return sequence_number(int(from_raw(response["Attributes"])["n"]), shard, shards)

    def count_lobby_join(self, concert_id: str, shard: int) -> None:
        """Count a lobby join on the shard's counter item (the lobby's size; a lobby token draws no number)."""
        dynamodb().update_item(
            TableName=self.table,
            Key=to_raw(_counter_key(concert_id, shard)),
            UpdateExpression="ADD lobby :one",
            ExpressionAttributeValues=values(one=1),
        )

    def counter_counts(self, concert_id: str, shards: int) -> tuple[list[int], int]:
        """Numbers each shard has handed out, and the lobby joins counted over all shards (one strongly consistent
        BatchGetItem)."""
        keys = [_counter_key(concert_id, shard) for shard in range(shards)]
        counts, lobby = [0] * shards, 0
        for item in get_many(self.table, keys, consistent=True):
            counts[int(str(item["PK"]).rsplit("#", 1)[1])] = int(item.get("n", 0))
            lobby += int(item.get("lobby", 0))
        return counts, lobby

    # ---- tokens ----
    def get_token(self, concert_id: str, user_id: str, consistent: bool = False) -> QueueToken | None:
        raw = dynamodb().get_item(
            TableName=self.table, Key=to_raw(token_key(concert_id, user_id)), ConsistentRead=consistent
        )
        return _token(from_raw(raw["Item"])) if "Item" in raw else None

    def put_token(self, token: QueueToken, replacing: str | None) -> QueueToken | None:
        """Write a new token unless another request got there first; then return that one."""
        conditional: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(PK)"}
        if replacing is not None:
            conditional = {
                "ConditionExpression": "#token = :replacing",
                "ExpressionAttributeNames": {"#token": "token"},
                "ExpressionAttributeValues": values(replacing=replacing),
            }
        refused = refusal(
            lambda: dynamodb().put_item(
                TableName=self.table,
                Item=to_raw(_token_item(token)),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **conditional,
            )
        )
        if refused is None:
            return None
        if refused.item is None:  # the token it was to replace expired away meanwhile: a retry issues a new one
            raise ServiceUnavailable(retry_after_seconds=1, message="The queue token changed meanwhile; retry.")
        return _token(refused.item)

    def release_seq(self, lost: QueueToken) -> None:
        """A number drawn by a join that lost the race for its user's token item: put where the scheduler looks for
        numbers (GSI1 at -seq) as an EXPIRED stand-in, so it is free at once instead of held as a join in flight.
        A separate item, never read as anyone's token (its key is not a token key); TTL removes it."""
        dynamodb().put_item(
            TableName=self.table,
            Item=to_raw(
                _token_item(replace(lost, token="", status=TokenStatus.EXPIRED, active_until=None))
                | {
                    "PK": f"QRELEASED#{lost.concert_id}#{lost.seq}",
                    "SK": "RELEASED",
                    "ttl": lost.issued_at + TOKEN_RETENTION_SECONDS,
                }
            ),
        )

    def activate(self, token: QueueToken, active_until: int) -> bool:
        """WAIT -> ACTIVE; False when it is no longer WAIT (another run or poll did it)."""
        return conditional_write(
            lambda: dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(token_key(token.concert_id, token.user_id)),
                UpdateExpression=(
                    "SET #status = :active, activeUntil = :until, GSI2PK = :partition, GSI2SK = :until, #ttl = :ttl, "
                    "GSI1SK = :arrived"
                ),
                ConditionExpression="#status = :wait AND #token = :token",
                ExpressionAttributeNames={"#status": "status", "#token": "token", "#ttl": "ttl"},
                ExpressionAttributeValues=values(
                    active=TokenStatus.ACTIVE.value,
                    wait=TokenStatus.WAIT.value,
                    token=token.token,
                    until=active_until,
                    partition=_active_partition(token.concert_id),
                    ttl=active_until + TOKEN_RETENTION_SECONDS,
                    arrived=-token.seq,
                ),
            )
        )

    def expire(self, token: QueueToken, now: int) -> bool:
        """ACTIVE past its time -> EXPIRED; False when someone else already moved it."""
        return conditional_write(
            lambda: dynamodb().update_item(
                **self.expire_update(token.concert_id, token.user_id, token.token, now, used=False)
            )
        )

    def expire_update(self, concert_id: str, user_id: str, token: str, now: int, *, used: bool) -> dict[str, Any]:
        """The token ACTIVE -> EXPIRED, with its condition: past its time (the scheduler), or `used` by a payment
        while its time runs (the payment puts it inside its transaction; ALL_OLD tells it why a refusal was).

        It keeps GSI1 (`-seq`): admission must still see that this number arrived and is gone.
        """
        time_condition = "activeUntil > :now" if used else "activeUntil <= :now"
        return {
            "TableName": self.table,
            "Key": to_raw(token_key(concert_id, user_id)),
            "UpdateExpression": "SET #status = :expired REMOVE GSI2PK, GSI2SK",
            "ConditionExpression": f"#status = :active AND #token = :token AND {time_condition}",
            "ExpressionAttributeNames": {"#status": "status", "#token": "token"},
            "ExpressionAttributeValues": values(
                active=TokenStatus.ACTIVE.value, expired=TokenStatus.EXPIRED.value, token=token, now=now
            ),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def waiting_up_to(self, concert_id: str, shard: int, bound: int) -> Iterator[QueueToken]:
        """WAIT tokens of one shard with seq <= bound, lowest first."""
        yield from self._gsi1_range(concert_id, shard, 1, bound)

    def lobby_waiting_up_to(self, concert_id: str, shard: int, bound: int) -> Iterator[QueueToken]:
        """WAIT lobby tokens of one shard with a place key <= bound (entitled, not activated yet)."""
        yield from self._gsi1_range(concert_id, shard, 1, bound, partition=_lobby_partition(concert_id, shard))

    def lobby_waiting_after(self, concert_id: str, shards: int, after: int, wanted: int) -> Iterator[QueueToken]:
        """WAIT lobby tokens with a place key > after, in key order over every shard: the next in the lobby's line.

        Each shard's partition is read in pages of about its share of `wanted`, lazily: reading the next `wanted`
        costs about `wanted` items plus a page per shard, whatever the lobby's size."""
        page = max(10, math.ceil(wanted * 1.2 / shards))
        per_shard = [
            self._gsi1_range(
                concert_id, shard, after + 1, LOBBY_KEYS, partition=_lobby_partition(concert_id, shard), page_size=page
            )
            for shard in range(shards)
        ]
        yield from heapq.merge(*per_shard, key=lambda token: token.lobby_key or 0)

    def arrived_between(self, concert_id: str, shard: int, low: int, high: int) -> Iterator[QueueToken]:
        """Tokens of one shard past WAIT (ACTIVE or EXPIRED) with low <= seq <= high."""
        yield from self._gsi1_range(concert_id, shard, -high, -low)

    def released_between(self, concert_id: str, shard: int, low: int, high: int) -> int:
        """How many of the shard's numbers in [low, high] were released (release_seq: their stand-ins carry no
        token value)."""
        return sum(1 for token in self.arrived_between(concert_id, shard, low, high) if not token.token)

    def _gsi1_range(
        self,
        concert_id: str,
        shard: int,
        low: int,
        high: int,
        *,
        partition: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[QueueToken]:
        paginator = dynamodb().get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :partition AND GSI1SK BETWEEN :low AND :high",
            ExpressionAttributeValues=values(
                partition=partition or _wait_partition(concert_id, shard), low=low, high=high
            ),
            PaginationConfig={"PageSize": page_size} if page_size else {},
        ):
            for raw in page["Items"]:
                yield _token(from_raw(raw))

    def active_tokens(self, concert_id: str, due_by: int | None = None) -> list[QueueToken]:
        """ACTIVE tokens of a concert (at most its capacity), soonest expiry first; only those due by `due_by`."""
        condition, bounds = "GSI2PK = :partition", values(partition=_active_partition(concert_id))
        if due_by is not None:
            condition, bounds = condition + " AND GSI2SK <= :due", bounds | values(due=due_by)
        paginator = dynamodb().get_paginator("query")
        return [
            _token(from_raw(raw))
            for page in paginator.paginate(
                TableName=self.table,
                IndexName="GSI2",
                KeyConditionExpression=condition,
                ExpressionAttributeValues=bounds,
            )
            for raw in page["Items"]
        ]


def _runs_attribute(runs: tuple[AdmissionRun, ...]) -> list[list[int]]:
    return [[r.at, r.bound, r.drawn] + ([] if r.active is None else [r.active]) for r in runs]


def state_from_item(item: Item) -> QueueState:
    return QueueState(
        concert_id=str(item["concertId"]),
        capacity=int(item["capacity"]),
        shards=int(item["shards"]),
        admit_bound=int(item["admitBound"]),
        readings=tuple(
            CounterReading(at=int(at), issued=tuple(int(n) for n in issued))
            for at, *issued in item.get("counterReadings", [])
        ),
        sales_open_at=optional_int(item.get("salesOpenAt")),
        sellable_until=optional_int(item.get("sellableUntil")),
        runs=tuple(
            AdmissionRun(at=int(at), bound=int(bound), drawn=int(drawn), active=optional_int(next(iter(active), None)))
            for at, bound, drawn, *active in item.get("admissionRuns", [])
        ),
        paused=bool(item.get("paused", False)),
        # A state written before the lobby existed had none: its concert opened first come, first served.
        lobby_done=bool(item.get("lobbyDone", True)),
        lobby_size=int(item.get("lobbySize", 0)),
        lobby_formed=bool(item.get("lobbyFormed", False)),
        lobby_bound=int(item.get("lobbyBound", 0)),
        lobby_admitted=int(item.get("lobbyAdmitted", 0)),
    )


def change_from_item(item: Item) -> QueueChange:
    return QueueChange(
        at=int(item["at"]),
        operator=str(item["operator"]),
        paused=item.get("paused"),
        capacity=optional_int(item.get("capacity")),
    )


def _change_item(concert_id: str, change: QueueChange) -> Item:
    # Sorted by the time written, in ms (two clicks in one second keep their order; an older item's 10-digit
    # seconds still sorts before every later one); the random tail keeps two changes in the same ms apart.
    item: Item = {
        "PK": state_key(concert_id)["PK"],
        "SK": f"{CHANGE_PREFIX}{int(clock.now() * 1000):013d}#{secrets.token_hex(4)}",
        "at": change.at,
        "operator": change.operator,
    }
    return item | {
        name: value for name, value in (("paused", change.paused), ("capacity", change.capacity)) if value is not None
    }


def optional_int(value: object) -> int | None:
    """A number attribute that items written before it existed lack."""
    return int(str(value)) if value is not None else None


def _token(item: Item) -> QueueToken:
    active_until = item.get("activeUntil")
    return QueueToken(
        concert_id=str(item["concertId"]),
        user_id=str(item["userId"]),
        token=str(item["token"]),
        seq=int(item["seq"]),
        shard=int(item["shard"]),
        status=TokenStatus(item["status"]),
        issued_at=int(item["issuedAt"]),
        active_until=int(active_until) if active_until is not None else None,
        lobby_key=optional_int(item.get("lobbyKey")),
    )


def _token_item(token: QueueToken) -> Item:
    item: Item = {
        **token_key(token.concert_id, token.user_id),
        "concertId": token.concert_id,
        "userId": token.user_id,
        "token": token.token,
        "seq": token.seq,
        "shard": token.shard,
        "status": token.status.value,
        "issuedAt": token.issued_at,
        "activeUntil": token.active_until,
        # Every token stays in its shard's GSI1 partition: WAIT at +seq, once past WAIT at -seq; a lobby token in
        # its shard's lobby partition at +lobbyKey while it waits.
        "GSI1PK": _wait_partition(token.concert_id, token.shard),
        "GSI1SK": token.seq if token.status is TokenStatus.WAIT else -token.seq,
    }
    if token.lobby_key is not None:
        item["lobbyKey"] = token.lobby_key
        item["GSI1PK"] = _lobby_partition(token.concert_id, token.shard)
        if token.status is TokenStatus.WAIT:
            item["GSI1SK"] = token.lobby_key
    if token.status is TokenStatus.WAIT:
        item["ttl"] = token.issued_at + TOKEN_RETENTION_SECONDS
    elif token.status is TokenStatus.ACTIVE and token.active_until is not None:
        item |= {
            "GSI2PK": _active_partition(token.concert_id),
            "GSI2SK": token.active_until,
            "ttl": token.active_until + TOKEN_RETENTION_SECONDS,
        }
    return item
