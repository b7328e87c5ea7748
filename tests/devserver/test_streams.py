"""The local stream poller answers a partial batch response as Lambda's event source mapping does
(FunctionResponseTypes: ReportBatchItemFailures): the batch again from the first failed record, nothing before it."""

from __future__ import annotations

from typing import Any

import pytest

from devserver import DEFAULT_TEMPLATE, streams
from devserver.streams import StreamPoller
from devserver.template import load_template
from ticketline import clock
from ticketline.db import dynamodb, to_raw
from ticketline.models.catalog import ConcertIn
from ticketline.repositories.catalog import seat_key
from ticketline.services.catalog import CatalogService


class ScriptedHost:
    """Stands in for the function: answers each invocation with the next scripted answer (or raises it)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.batches: list[list[str]] = []

    def invoke(self, function: Any, event: dict[str, Any]) -> Any:
        sequence = [record["dynamodb"]["SequenceNumber"] for record in event["Records"]]
        self.batches.append(sequence)
        answer = self.answers.pop(0) if self.answers else {"batchItemFailures": []}
        if isinstance(answer, Exception):
            raise answer
        return answer(sequence) if callable(answer) else answer


@pytest.fixture
def three_holds(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "_RETRY_BACKOFF_SECONDS", (0.0,))
    body = {
        "title": "Stream",
        "schedules": [
            {
                "startsAt": clock.to_iso(clock.now() + 86_400),
                "seats": [{"number": n, "price": 1_000} for n in (1, 2, 3)],
            }
        ],
    }
    concert = CatalogService().create_concert(ConcertIn.model_validate(body))
    for number in (1, 2, 3):  # FREE -> HELD: each passes the template's filter
        dynamodb().update_item(
            TableName="TicketlineTable",
            Key=to_raw(seat_key(concert.schedules[0].schedule_id, number)),
            UpdateExpression="SET #s = :held",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_raw({":held": "HELD"}),
        )


def poller(host: ScriptedHost) -> StreamPoller:
    return StreamPoller(load_template(DEFAULT_TEMPLATE), host, "")  # type: ignore[arg-type]


def test_the_template_asks_for_partial_batch_responses() -> None:
    (stream,) = load_template(DEFAULT_TEMPLATE).streams
    assert stream.reports_item_failures


def test_the_batch_is_delivered_again_from_the_first_failed_record(three_holds: None) -> None:
    host = ScriptedHost(
        lambda sequence: {"batchItemFailures": [{"itemIdentifier": sequence[2]}, {"itemIdentifier": sequence[1]}]}
    )
    assert poller(host).drain() == 3
    first, again = host.batches
    assert len(first) == 3 and again == first[1:]


def test_an_answer_lambda_cannot_read_fails_the_whole_batch(three_holds: None) -> None:
    host = ScriptedHost({"batchItemFailures": [{"itemIdentifier": "no-such-record"}]})
    assert poller(host).drain() == 3
    first, again = host.batches
    assert again == first


def test_records_still_failing_after_the_retries_are_given_up(three_holds: None) -> None:
    retries = load_template(DEFAULT_TEMPLATE).streams[0].maximum_retry_attempts
    assert retries is not None
    host = ScriptedHost(*[RuntimeError("down")] * (retries + 1))
    assert poller(host).drain() == 0
    assert len(host.batches) == retries + 1
