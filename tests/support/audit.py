"""The audit: reads the whole table directly (Scan: fine in an audit, never on a request path) and lists
every broken invariant of a sale. Used after the reliability runs, and shown to catch a broken store.

    report = audit(client, table_name)          # client: a boto3 DynamoDB client at the local engine
    assert report.ok, report.summary()

What it checks (docs/RELIABILITY.md lists the promises and the tests that use this):
- seats: no seat SOLD twice or held by two; a SOLD seat points at a PAID reservation of that seat; a
  PAID reservation's seat is SOLD to it; a live HELD reservation's seat is HELD by it;
- money: sold seats = PAID reservations; every PAID or CANCELLED reservation is in exactly one payment entry
  (an entry pays one or several, amount = their prices); every CANCELLED one has exactly one REFUND entry of
  its price and no other reservation has any; every balance = the sum of its ledger; no negative balance;
  all balances + all payments = all charges + all refunds;
- purchase: a CANCELLED reservation's seat is not SOLD to it, a RELEASED or CANCELLED one's is not HELD by it;
  no user owns more than `max_tickets` PAID tickets of a concert;
- queue: no token ACTIVE after its owner paid with it; live ACTIVE tokens never above the concert's
  capacity; tokens carry the index keys of their status (WAIT in GSI1 at +seq; ACTIVE in GSI2 and, past
  WAIT, in GSI1 at -seq; EXPIRED in GSI1 at -seq only); no two tokens of a concert share a sequence number.

And the operator's controls (`audit_operator_controls`: the table's audit trail of pauses and capacity changes,
against the admission runs a sale recorded): no run admits past the capacity in force at it (after a lowering,
nobody until the live ACTIVE tokens are under it), no run admits while paused, and no token enters later than
QueueStateCacheSeconds after a pause (its activeUntil dates its entry) until the resume.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

Item = dict[str, Any]
_deserializer = TypeDeserializer()


@dataclass
class AuditReport:
    violations: list[str] = field(default_factory=list)
    figures: Counter[str] = field(default_factory=Counter)
    hint_drifts: dict[str, int] = field(default_factory=dict)  # schedule -> availableSeats - FREE seats

    @property
    def ok(self) -> bool:
        return not self.violations

    def fail(self, message: str) -> None:
        self.violations.append(message)

    def summary(self, limit: int = 20) -> str:
        shown = "\n  ".join(self.violations[:limit])
        more = f"\n  ... and {len(self.violations) - limit} more" if len(self.violations) > limit else ""
        figures = ", ".join(f"{name}={value}" for name, value in sorted(self.figures.items()))
        return f"{len(self.violations)} violation(s)\n  {shown}{more}\nfigures: {figures}"


def scan_table(client: Any, table_name: str) -> list[Item]:
    """Every item, strongly consistent, as plain Python values (numbers as int)."""
    items: list[Item] = []
    request: dict[str, Any] = {"TableName": table_name, "ConsistentRead": True}
    while True:
        page = client.scan(**request)
        items.extend(
            {key: _plain(_deserializer.deserialize(value)) for key, value in raw.items()} for raw in page["Items"]
        )
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class _Tables:
    """The table's items sorted by kind (docs/DATA_MODEL.md)."""

    queues: dict[str, Item] = field(default_factory=dict)  # cid -> queue state
    tokens: list[Item] = field(default_factory=list)
    seats: dict[tuple[str, int], Item] = field(default_factory=dict)  # (sid, number) -> seat
    reservations: dict[str, Item] = field(default_factory=dict)  # rid -> reservation
    balances: dict[str, Item] = field(default_factory=dict)  # uid -> wallet balance item
    ledger: list[Item] = field(default_factory=list)  # charge and payment entries
    schedule_entries: dict[str, Item] = field(default_factory=dict)  # sid -> entry carrying availableSeats
    # cid -> every capacity the queue has had: its creation's (META) and each operator change's (QCHANGE#)
    capacities: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))


def sort_items(items: Iterable[Item]) -> _Tables:
    tables = _Tables()
    for item in items:
        pk, sk = str(item.get("PK", "")), str(item.get("SK", ""))
        if pk.startswith("CONCERT#") and sk == "QUEUE":
            tables.queues[str(item["concertId"])] = item
        elif pk.startswith("CONCERT#") and sk == "META" and "queueCapacity" in item:
            tables.capacities[pk.removeprefix("CONCERT#")].add(int(item["queueCapacity"]))
        elif pk.startswith("CONCERT#") and sk.startswith("QCHANGE#") and "capacity" in item:
            tables.capacities[pk.removeprefix("CONCERT#")].add(int(item["capacity"]))
        elif pk.startswith("CONCERT#") and sk.startswith("SCHEDULE#"):
            tables.schedule_entries[str(item["scheduleId"])] = item
        elif pk.startswith("QTOKEN#"):
            tables.tokens.append(item)
        elif pk.startswith("SCHEDULE#") and sk.startswith("SEAT#"):
            tables.seats[(pk.removeprefix("SCHEDULE#"), int(item["number"]))] = item
        elif pk.startswith("RESERVATION#"):
            tables.reservations[str(item["reservationId"])] = item
        elif is_balance(item):
            tables.balances[wallet_owner(item)] = item
        elif is_ledger_entry(item):
            tables.ledger.append(item)
    return tables


# ---- the wallet's keys (issue 4); one place to adapt if they change ----
def is_balance(item: Item) -> bool:
    return str(item.get("PK", "")).startswith("WALLET#") and item.get("SK") == "BALANCE"


def is_ledger_entry(item: Item) -> bool:
    return str(item.get("PK", "")).startswith("WALLET#") and str(item.get("SK", "")).startswith("LEDGER#")


def wallet_owner(item: Item) -> str:
    return str(item["PK"]).removeprefix("WALLET#")


def entry_type(item: Item) -> str:
    return str(item.get("type", "")).upper()


def entry_amount(item: Item) -> int:
    return int(item.get("amount", 0))


# ---- the audit ----
def audit(
    client: Any,
    table_name: str,
    *,
    now: float | None = None,
    max_holds: int | None = None,
    max_tickets: int | None = None,
) -> AuditReport:
    return audit_items(scan_table(client, table_name), now=now, max_holds=max_holds, max_tickets=max_tickets)


def audit_items(
    items: Iterable[Item], *, now: float | None = None, max_holds: int | None = None, max_tickets: int | None = None
) -> AuditReport:
    now = time.time() if now is None else now
    tables = sort_items(items)
    report = AuditReport()
    _audit_seats(tables, report, now, max_holds)
    _audit_purchases(tables, report, max_tickets)
    _audit_money(tables, report)
    _audit_queue(tables, report, now)
    _measure_hint(tables, report)
    return report


def _measure_hint(tables: _Tables, report: AuditReport) -> None:
    """availableSeats is a hint (docs/CATALOG.md), not an invariant: its drift from the FREE seats is a figure."""
    free: Counter[str] = Counter(sid for (sid, _), seat in tables.seats.items() if seat.get("status") == "FREE")
    drift = 0
    for sid, entry in tables.schedule_entries.items():
        off = int(entry.get("availableSeats", 0)) - free[sid]
        drift += abs(off)
        if off:
            report.hint_drifts[sid] = off
    report.figures["hint_drift"] = drift


def _audit_seats(tables: _Tables, report: AuditReport, now: float, max_holds: int | None) -> None:  # noqa: PLR0912 - one branch per rule
    paid_by_seat: dict[tuple[str, int], list[str]] = defaultdict(list)
    live_by_seat: dict[tuple[str, int], list[str]] = defaultdict(list)
    live_by_user_date: Counter[tuple[str, str]] = Counter()
    for rid, reservation in tables.reservations.items():
        seat_ref = (str(reservation["scheduleId"]), int(reservation["seatNumber"]))
        status = reservation.get("status")
        report.figures[f"reservations_{str(status).lower()}"] += 1
        if status == "PAID":
            paid_by_seat[seat_ref].append(rid)
        elif status == "HELD" and int(reservation["holdExpiresAt"]) > now:
            live_by_seat[seat_ref].append(rid)
            live_by_user_date[(str(reservation["userId"]), seat_ref[0])] += 1
        seat = tables.seats.get(seat_ref)
        if seat is None:
            report.fail(f"reservation {rid} is for seat {seat_ref} that does not exist")
        elif int(seat["price"]) != int(reservation["price"]):
            report.fail(f"reservation {rid} costs {reservation['price']} but seat {seat_ref} costs {seat['price']}")

    for seat_ref, rids in paid_by_seat.items():
        if len(rids) > 1:
            report.fail(f"seat {seat_ref} SOLD twice: PAID reservations {sorted(rids)}")
        seat = tables.seats.get(seat_ref)
        if seat is not None and (seat.get("status") != "SOLD" or seat.get("reservationId") not in rids):
            report.fail(f"seat {seat_ref} is {seat.get('status')}/{seat.get('reservationId')} but {rids[0]} is PAID")
    for seat_ref, rids in live_by_seat.items():
        if len(rids) > 1:
            report.fail(f"seat {seat_ref} held by two: live HELD reservations {sorted(rids)}")
        seat = tables.seats.get(seat_ref)
        if seat is not None and seat.get("reservationId") not in rids:
            report.fail(f"seat {seat_ref} is {seat.get('status')}/{seat.get('reservationId')}, not HELD by {rids}")
    if max_holds is not None:
        for (user, schedule), count in live_by_user_date.items():
            if count > max_holds:
                report.fail(f"user {user} holds {count} seats on {schedule}, more than {max_holds}")

    for seat_ref, seat in tables.seats.items():
        status = seat.get("status")
        report.figures[f"seats_{str(status).lower()}"] += 1
        if status not in ("FREE", "HELD", "SOLD"):
            report.fail(f"seat {seat_ref} has status {status!r}")
        if status == "SOLD":
            holder = tables.reservations.get(str(seat.get("reservationId")))
            if holder is None or holder.get("status") != "PAID":
                report.fail(f"seat {seat_ref} SOLD to {seat.get('reservationId')}, which is not a PAID reservation")
        elif status == "HELD":
            holder = tables.reservations.get(str(seat.get("reservationId")))
            if holder is None:
                report.fail(f"seat {seat_ref} HELD by {seat.get('reservationId')}, which does not exist")
            elif holder.get("status") == "PAID":
                report.fail(f"seat {seat_ref} still HELD although its reservation {holder['reservationId']} is PAID")


def _audit_purchases(tables: _Tables, report: AuditReport, max_tickets: int | None) -> None:
    tickets: Counter[tuple[str, str]] = Counter()
    for rid, reservation in tables.reservations.items():
        status = reservation.get("status")
        seat = tables.seats.get((str(reservation["scheduleId"]), int(reservation["seatNumber"])))
        if status == "PAID":
            tickets[(str(reservation["userId"]), str(reservation["concertId"]))] += 1
        if seat is None or seat.get("reservationId") != rid:
            continue
        if status == "CANCELLED" and seat.get("status") == "SOLD":
            report.fail(f"reservation {rid} is CANCELLED but its seat is still SOLD to it")
        if status in ("RELEASED", "CANCELLED") and seat.get("status") == "HELD":
            report.fail(f"reservation {rid} is {status} but its seat is still HELD by it")
    if max_tickets is not None:
        for (user, concert), count in tickets.items():
            if count > max_tickets:
                report.fail(f"user {user} owns {count} PAID tickets of concert {concert}, more than {max_tickets}")


def entry_reservations(entry: Item) -> list[str]:
    """The reservations a PAYMENT or REFUND entry is for (`reservationIds`; older entries: `reservationId`)."""
    if entry.get("reservationIds"):
        return [str(rid) for rid in entry["reservationIds"]]
    return [str(entry["reservationId"])] if entry.get("reservationId") is not None else []


def _audit_money(tables: _Tables, report: AuditReport) -> None:  # noqa: PLR0912, PLR0915 - one branch per rule
    charges = payments = refunds = 0
    per_user: Counter[str] = Counter()
    payments_by_reservation: dict[str, list[Item]] = defaultdict(list)
    refunds_by_reservation: dict[str, list[Item]] = defaultdict(list)
    for entry in tables.ledger:
        owner, kind, amount = wallet_owner(entry), entry_type(entry), entry_amount(entry)
        if amount <= 0:
            report.fail(f"ledger entry {entry['PK']}/{entry['SK']} has amount {amount}")
        if kind == "CHARGE":
            charges += amount
            per_user[owner] += amount
        elif kind == "PAYMENT":
            payments += amount
            per_user[owner] -= amount
            for rid in entry_reservations(entry):
                payments_by_reservation[rid].append(entry)
            prices = sum(int(tables.reservations.get(rid, {}).get("price", 0)) for rid in entry_reservations(entry))
            if prices != amount:
                report.fail(f"payment {entry['PK']}/{entry['SK']} of {amount} for reservations costing {prices}")
        elif kind == "REFUND":
            refunds += amount
            per_user[owner] += amount
            for rid in entry_reservations(entry):
                refunds_by_reservation[rid].append(entry)
        else:
            report.fail(f"ledger entry {entry['PK']}/{entry['SK']} has type {kind!r}")
    report.figures.update(
        ledger_charges=charges, ledger_payments=payments, ledger_refunds=refunds, ledger_entries=len(tables.ledger)
    )
    _audit_ledger_chains(tables, report)

    balances = 0
    for owner in set(per_user) | set(tables.balances):
        balance = int(tables.balances[owner].get("balance", 0)) if owner in tables.balances else 0
        balances += balance
        if balance < 0:
            report.fail(f"user {owner} has a negative balance {balance}")
        if balance != per_user[owner]:
            report.fail(f"user {owner}: balance {balance} but ledger sums to {per_user[owner]}")
    report.figures["balances"] = balances
    if balances + payments != charges + refunds:
        report.fail(
            f"money not conserved: balances {balances} + payments {payments} != charges {charges} + refunds {refunds}"
        )

    paid = {rid: r for rid, r in tables.reservations.items() if r.get("status") == "PAID"}
    cancelled = {rid: r for rid, r in tables.reservations.items() if r.get("status") == "CANCELLED"}
    sold = [seat for seat in tables.seats.values() if seat.get("status") == "SOLD"]
    report.figures.update(paid_reservations=len(paid), cancelled_reservations=len(cancelled), sold_seats=len(sold))
    if len(sold) != len(paid):
        report.fail(f"sold seats {len(sold)} and PAID reservations {len(paid)} differ")
    for rid, reservation in (paid | cancelled).items():
        entries = payments_by_reservation.get(rid, [])
        if len(entries) != 1:
            report.fail(f"{reservation['status']} reservation {rid} is in {len(entries)} payment entries")
        elif wallet_owner(entries[0]) != reservation["userId"]:
            report.fail(f"payment for {rid} from {wallet_owner(entries[0])}, not from {reservation['userId']}")
    for rid in payments_by_reservation:
        if rid not in paid and rid not in cancelled:
            report.fail(f"payment entry for reservation {rid}, which is neither PAID nor CANCELLED")
    for rid, reservation in cancelled.items():
        entries = refunds_by_reservation.get(rid, [])
        if len(entries) != 1 or entry_amount(entries[0]) != int(reservation["price"]):
            report.fail(
                f"CANCELLED reservation {rid} has refunds {[entry_amount(e) for e in entries]}, not one of its price"
            )
    for rid in refunds_by_reservation:
        if rid not in cancelled:
            report.fail(f"refund entry for reservation {rid}, which is not CANCELLED")


def _audit_ledger_chains(tables: _Tables, report: AuditReport) -> None:
    """Each wallet's entries, in ledger order, step balanceAfter by their amount; the last one is the balance."""
    by_owner: dict[str, list[Item]] = defaultdict(list)
    for entry in tables.ledger:
        by_owner[wallet_owner(entry)].append(entry)
    for owner, entries in by_owner.items():
        running = 0
        for entry in sorted(entries, key=lambda e: str(e["SK"])):
            running += -entry_amount(entry) if entry_type(entry) == "PAYMENT" else entry_amount(entry)
            if "balanceAfter" in entry and int(entry["balanceAfter"]) != running:
                report.fail(
                    f"user {owner}: ledger {entry['SK']} says balanceAfter {entry['balanceAfter']}, sum is {running}"
                )
                break


def _audit_queue(tables: _Tables, report: AuditReport, now: float) -> None:  # noqa: PLR0912 - one branch per rule
    paid_at: dict[tuple[str, str], int] = {}
    for reservation in tables.reservations.values():
        if reservation.get("status") == "PAID":
            key = (str(reservation["concertId"]), str(reservation["userId"]))
            paid_at[key] = max(paid_at.get(key, 0), _epoch(reservation.get("paidAt", reservation["createdAt"])))
    live: Counter[str] = Counter()
    seqs: dict[str, Counter[int]] = defaultdict(Counter)
    for token in tables.tokens:
        cid, uid, status = str(token["concertId"]), str(token["userId"]), token.get("status")
        report.figures[f"tokens_{str(status).lower()}"] += 1
        seqs[cid][int(token["seq"])] += 1
        past_wait = "GSI1SK" not in token or int(token["GSI1SK"]) == -int(token["seq"])
        if status == "ACTIVE":
            if "GSI2PK" not in token or not past_wait:
                report.fail(f"ACTIVE token {cid}/{uid} is not in the ACTIVE index, or is in the WAIT one")
            if int(token.get("activeUntil") or 0) > now:
                live[cid] += 1
            if (cid, uid) in paid_at and int(token["issuedAt"]) <= paid_at[(cid, uid)]:
                report.fail(f"token {cid}/{uid} still ACTIVE after its owner paid")
        elif status == "WAIT":
            if "GSI1PK" not in token or token.get("GSI1SK") != token["seq"] or "GSI2PK" in token:
                report.fail(f"WAIT token {cid}/{uid} is not (only) in the WAIT index")
        elif status == "EXPIRED":
            if "GSI2PK" in token or not past_wait:
                report.fail(f"EXPIRED token {cid}/{uid} is still in the ACTIVE or the WAIT index")
        else:
            report.fail(f"token {cid}/{uid} has status {status!r}")
    for cid, counts in seqs.items():
        for seq, count in counts.items():
            if count > 1:
                report.fail(f"concert {cid}: {count} tokens share sequence number {seq}")
    for cid, count in live.items():
        if cid not in tables.queues:
            continue
        # A lowered capacity cuts no one's turn short: tokens admitted under a larger one stay live until they end.
        capacity = max({int(tables.queues[cid]["capacity"]), *tables.capacities[cid]})
        if count > capacity:
            report.fail(f"concert {cid}: {count} live ACTIVE tokens, capacity {capacity}")
    report.figures["live_active_tokens"] = sum(live.values())


@dataclass(frozen=True)
class Admission:
    """One concert's admission as the table shows it: for checks right after a scheduler run."""

    concert_id: str
    capacity: int
    admit_bound: int
    live_active: int
    waiting: int
    entitled_waiting: int  # WAIT tokens at or under the bound: a run should have activated them
    tokens: int
    ever_admitted: int  # tokens that were ACTIVE at some time (they carry activeUntil)
    admitted_in_order: bool  # the admitted are exactly the lowest sequence numbers (one shard: arrival order)


def admissions(client: Any, table_name: str, now: float | None = None) -> dict[str, Admission]:
    now = time.time() if now is None else now
    tables = sort_items(scan_table(client, table_name))
    result = {}
    for cid, queue in tables.queues.items():
        tokens = [t for t in tables.tokens if t["concertId"] == cid]
        bound = int(queue["admitBound"])
        admitted = sorted(int(t["seq"]) for t in tokens if t.get("activeUntil") is not None)
        lowest = sorted(int(t["seq"]) for t in tokens)[: len(admitted)]
        result[cid] = Admission(
            concert_id=cid,
            capacity=int(queue["capacity"]),
            admit_bound=bound,
            live_active=sum(1 for t in tokens if t["status"] == "ACTIVE" and int(t.get("activeUntil") or 0) > now),
            waiting=sum(1 for t in tokens if t["status"] == "WAIT"),
            entitled_waiting=sum(1 for t in tokens if t["status"] == "WAIT" and int(t["seq"]) <= bound),
            tokens=len(tokens),
            ever_admitted=len(admitted),
            admitted_in_order=admitted == lowest,
        )
    return result


def _epoch(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


# ---- the operator's controls: pause and capacity, against the admission runs a sale recorded ----
# A request in flight at the pause read the state before it and writes its walk-in just after: its own latency
# on a loaded machine, on top of QueueStateCacheSeconds.
WALK_IN_MARGIN_SECONDS = 2.0


@dataclass(frozen=True)
class AdmissionRunRecord:
    """One scheduler run as a sale saw it in the table: when it started (epoch s), the admission bound before and
    after it, and the live ACTIVE tokens right after it."""

    concert_id: str
    started: float
    bound_before: int
    bound_after: int
    live_after: int


@dataclass(frozen=True)
class QueueControls:
    """A queue's capacity at creation and its operator changes, oldest first: (epoch s, paused, capacity)."""

    capacity: int
    changes: list[tuple[float, bool | None, int | None]] = field(default_factory=list)

    def in_force(self, at: float) -> tuple[bool, int]:
        """(paused, capacity) at `at`."""
        paused, capacity = False, self.capacity
        for changed_at, set_paused, set_capacity in self.changes:
            if changed_at > at:
                break
            paused = paused if set_paused is None else set_paused
            capacity = capacity if set_capacity is None else set_capacity
        return paused, capacity

    def pauses(self) -> list[tuple[float, float]]:
        """Each pause's (start, end): the resume's time, or never."""
        spans: list[tuple[float, float]] = []
        for changed_at, set_paused, _ in self.changes:
            if set_paused and (not spans or spans[-1][1] != float("inf")):
                spans.append((changed_at, float("inf")))
            elif set_paused is False and spans and spans[-1][1] == float("inf"):
                spans[-1] = (spans[-1][0], changed_at)
        return spans


def queue_controls(items: Iterable[Item]) -> dict[str, QueueControls]:
    """Every concert's controls, from its META and its audit trail (QCHANGE#<ms>#..., in sort key order)."""
    metas, trail = {}, defaultdict(list)
    for item in items:
        pk, sk = str(item.get("PK", "")), str(item.get("SK", ""))
        if pk.startswith("CONCERT#") and sk == "META" and "queueCapacity" in item:
            metas[pk.removeprefix("CONCERT#")] = int(item["queueCapacity"])
        elif pk.startswith("CONCERT#") and sk.startswith("QCHANGE#"):
            trail[pk.removeprefix("CONCERT#")].append(item)
    controls = {}
    for cid, capacity in metas.items():
        changes = sorted(trail[cid], key=lambda item: str(item["SK"]))
        controls[cid] = QueueControls(
            capacity, [(_change_time(c), c.get("paused"), _optional(c.get("capacity"))) for c in changes]
        )
    return controls


def audit_operator_controls(
    items: Iterable[Item],
    runs: Iterable[AdmissionRunRecord],
    *,
    ttl_seconds: int,
    cache_seconds: float,
    report: AuditReport | None = None,
) -> AuditReport:
    """The pause and capacity promises (docs/QUEUE.md, "Operator controls"), from the table and the runs."""
    report = report or AuditReport()
    items = list(items)
    controls = queue_controls(items)
    for run in runs:
        queue = controls[run.concert_id]
        paused, capacity = queue.in_force(run.started)
        moved = run.bound_after > run.bound_before
        report.figures["admission_runs_checked"] += 1
        if moved and paused:
            report.fail(f"concert {run.concert_id}: a run at {run.started:.1f} admitted while paused")
        if moved and run.live_after > capacity:
            report.fail(
                f"concert {run.concert_id}: a run at {run.started:.1f} admitted up to {run.live_after} live ACTIVE, "
                f"past the capacity {capacity} in force"
            )
        if capacity < queue.capacity:
            report.figures["runs_under_a_lowered_capacity"] += 1
        if not moved and not paused and run.live_after > capacity:
            report.figures["runs_held_by_a_lowered_capacity"] += 1
    for token in sort_items(items).tokens:
        concert_controls = controls.get(str(token["concertId"]))
        if concert_controls is None or token.get("activeUntil") is None:
            continue
        entered = int(token["activeUntil"]) - ttl_seconds  # the whole second it entered in (activeUntil's)
        for paused_at, resumed_at in concert_controls.pauses():
            # Certainly inside the pause, past the cache time: its whole second is after the limit, before the resume.
            if paused_at + cache_seconds + WALK_IN_MARGIN_SECONDS < entered and entered + 1 <= resumed_at:
                report.fail(
                    f"concert {token['concertId']}: token {token['seq']} entered {entered - paused_at:.1f} s after "
                    f"the pause at {paused_at:.1f} (QueueStateCacheSeconds {cache_seconds})"
                )
    return report


def _change_time(item: Item) -> float:
    """The change's time from its sort key (ms; an older item's whole seconds)."""
    stamp = str(item["SK"]).split("#")[1]
    return int(stamp) / 1000 if len(stamp) > 10 else float(stamp)


def _optional(value: Any) -> int | None:
    return None if value is None else int(value)
