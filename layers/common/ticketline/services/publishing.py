"""The background publisher of a stadium-size concert: writes one range of seats per queue message, and opens the
sale once every range is written (repositories/publishing.py has the items and why a retry is safe)."""

from __future__ import annotations

from ticketline import clock
from ticketline.config import Settings, get_settings
from ticketline.models.catalog import SeatRangeMessage
from ticketline.observability import logger, metrics
from ticketline.repositories.catalog import CatalogRepository
from ticketline.repositories.publishing import PublishingRepository
from ticketline.repositories.queue import QueueRepository, optional_int


class SeatPublisher:
    def __init__(
        self,
        catalog: CatalogRepository | None = None,
        publishing: PublishingRepository | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.catalog = catalog or CatalogRepository(self.settings.table_name)
        self.publishing = publishing or PublishingRepository(self.settings.table_name)

    def publish_range(self, seat_range: SeatRangeMessage) -> bool:
        """Write the range's seats unless they are (a redelivery), count it written, and open the sale if it was
        the last one. True when this call wrote the seats. Any failure leaves the message to SQS, which delivers it
        again: every step resumes from what the table says."""
        wrote = False
        if not self.publishing.range_written(seat_range):
            # Identical FREE items: a rewrite after a half-way failure changes nothing (the range is still pending,
            # so the concert is not on sale and none of its seats can be HELD or SOLD).
            self.catalog.batch_put(self.catalog.range_items(seat_range))
            wrote = self.publishing.mark_written(seat_range)
        if wrote:
            metrics.add_metric(name="SeatsPublished", unit="Count", value=seat_range.last - seat_range.first + 1)
        self.open_if_complete(seat_range.concert_id)
        return wrote

    def open_if_complete(self, concert_id: str) -> bool:
        """ON_SALE (listed, queue created) once no range is pending; True when this call opened it."""
        if self.publishing.ranges_pending(concert_id) != 0:
            return False
        meta = self.catalog.concert_meta(concert_id)
        if meta is None or meta.get("status") != "PUBLISHING":
            return False
        queue_items = QueueRepository(self.settings.table_name).new_queue_items(
            concert_id,
            int(meta["queueCapacity"]),
            int(meta["queueShards"]),
            int(clock.now()),
            sales_open_at=optional_int(meta.get("salesOpenAt")),
            sellable_until=optional_int(meta.get("sellableUntil")),
        )
        opened = self.publishing.open_sale(meta, [str(meta["firstStartsAt"]), str(meta["lastStartsAt"])], queue_items)
        if opened:
            logger.info("concert published: on sale", extra={"concertId": concert_id})
        return opened
