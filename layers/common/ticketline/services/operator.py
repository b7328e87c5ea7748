"""An operator's view of a sale (its figures and the queue's audit trail) and controls of its queue: pause, resume,
capacity. The figures are the stream consumer's, healed by the recount task (services/catalog.py).

The change is one transaction on the queue state (conditional: the queue exists) with its audit item; the
scheduler's write is conditional on the capacity it counted with and on admission running, so a run that read the
state before the change admits nothing (docs/QUEUE.md, "Operator controls").
"""

from __future__ import annotations

from ticketline import clock
from ticketline.config import Settings, get_settings
from ticketline.errors import NotFound
from ticketline.models.catalog import (
    FiguresAsOfOut,
    SalesOut,
    SaleStatus,
    ScheduleSalesOut,
    is_sold_out,
)
from ticketline.models.queue import (
    ConcertSaleOut,
    QueueChange,
    QueueChangeOut,
    QueueControlIn,
    QueueFiguresOut,
    QueueState,
)
from ticketline.observability import logger
from ticketline.repositories.operator import OperatorRepository
from ticketline.repositories.queue import QueueRepository, optional_int
from ticketline.services.queue_timing import line_view, poll_timing


class OperatorService:
    def __init__(self, repository: QueueRepository | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.repository = repository or QueueRepository(self.settings.table_name)
        self.sales = OperatorRepository(self.settings.table_name)

    def change_queue(self, concert_id: str, request: QueueControlIn, operator: str) -> QueueFiguresOut:
        """Set paused and/or capacity; 404 when the concert has no queue. Two requests: the write, then the read."""
        change = QueueChange(at=int(clock.now()), operator=operator, paused=request.paused, capacity=request.capacity)
        if not self.repository.change_queue(concert_id, change):
            raise NotFound(f"Concert {concert_id} does not exist.")
        logger.info(
            "queue changed by an operator",
            extra={"concertId": concert_id, "operator": operator, "paused": change.paused, "capacity": change.capacity},
        )
        state = self.repository.get_state(concert_id, consistent=True)
        if state is None:  # written a moment ago; only a deleted table gets here
            raise NotFound(f"Concert {concert_id} does not exist.")
        return self.queue_figures(state)

    def concert_sale(self, concert_id: str) -> ConcertSaleOut:
        """The sale as it stands, from one Query of the concert's partition (no Scan, no count: the figures the
        stream consumer and the scheduler keep). 404 when the concert does not exist."""
        sale = self.sales.concert_sale(concert_id)
        # A concert still PUBLISHING has its META and dates but no queue until its last seat is written.
        publishing = sale is not None and sale.meta.get("status") == SaleStatus.PUBLISHING.value
        if sale is None or (sale.state is None and not publishing):
            raise NotFound(f"Concert {concert_id} does not exist.")
        meta, now = sale.meta, clock.now()
        dates = [
            ScheduleSalesOut(
                schedule_id=str(entry["scheduleId"]),
                starts_at=str(entry["startsAt"]),
                free=int(entry["availableSeats"]),
                held=int(entry["heldSeats"]),
                sold=int(entry["soldSeats"]),
            )
            for entry in sale.schedules
        ]
        counted = [int(entry["availableCountedAt"]) for entry in sale.schedules if "availableCountedAt" in entry]
        status = SaleStatus.ON_SALE
        if publishing:
            status = SaleStatus.PUBLISHING
        elif now >= clock.from_iso(str(meta["lastStartsAt"])):
            status = SaleStatus.ENDED
        elif is_sold_out(optional_int(meta.get("sellableUntil")), now):
            status = SaleStatus.SOLD_OUT
        return ConcertSaleOut(
            concert_id=concert_id,
            title=str(meta["title"]),
            status=status,
            sales_open_at=clock.to_iso(int(meta["salesOpenAt"])),
            queue=self.queue_figures(sale.state) if sale.state else _no_line_yet(int(meta["queueCapacity"])),
            sales=SalesOut(
                seats=sum(int(entry["seatCount"]) for entry in sale.schedules),
                free=sum(d.free for d in dates),
                held=sum(d.held for d in dates),
                sold=sum(d.sold for d in dates),
                cancelled=sum(int(entry.get("cancelledSeats", 0)) for entry in sale.schedules),
                revenue=sum(int(entry.get("revenue", 0)) for entry in sale.schedules),
            ),
            schedules=dates,
            figures_as_of=FiguresAsOfOut(
                seats=clock.to_iso(min(counted) / 1000) if counted else None,
                queue=clock.to_iso(sale.state.runs[-1].at) if sale.state and sale.state.runs else None,
            ),
            queue_changes=[
                QueueChangeOut(
                    at=clock.to_iso(change.at), operator=change.operator, paused=change.paused, capacity=change.capacity
                )
                for change in sale.changes
            ],
        )

    def queue_figures(self, state: QueueState) -> QueueFiguresOut:
        """What the queue state says, as of the last admission run (its `admissionRuns`)."""
        last = state.runs[-1] if state.runs else None
        waiting = max(0, last.drawn - last.bound) if last else 0
        estimate = None
        if waiting and not state.paused:
            line = line_view(
                state.runs,
                state.capacity,
                self.settings.admission_interval_seconds,
                self.settings.active_token_ttl_seconds,
            )
            estimate = poll_timing(waiting, line, clock.now(), jitter=0.0).estimated_wait_seconds
        return QueueFiguresOut(
            capacity=state.capacity,
            paused=state.paused,
            waiting=waiting,
            active=last.active if last else None,
            admitted=state.lobby_admitted + state.admit_bound,  # in places: the lobby first, then numbers
            estimated_wait_seconds=estimate,
        )


def _no_line_yet(capacity: int) -> QueueFiguresOut:
    """The queue of a concert still PUBLISHING: nobody can join before it opens."""
    return QueueFiguresOut(
        capacity=capacity, paused=False, waiting=0, active=0, admitted=0, estimated_wait_seconds=None
    )
