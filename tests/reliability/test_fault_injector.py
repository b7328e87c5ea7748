"""The fault injector itself (devserver/faults.py), in-process on moto: each fault looks like DynamoDB's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devserver.faults import FaultInjector, FaultPlan, install_from_env, read_fault_log
from tests.conftest import load_event
from tests.support.streams import deliver_stream_records
from ticketline.db import MAX_ATTEMPTS

TABLE = "TicketlineTable"


def _moto_send(request: Any, event_name: str) -> None:
    from moto.core.models import botocore_stubber

    botocore_stubber(request=request, event_name=event_name)


@pytest.fixture
def faults(aws: None) -> Iterator[list[FaultInjector]]:
    """Install injectors on boto3's default session; removed (and clients dropped) afterwards."""
    from ticketline.db import dynamodb

    installed: list[FaultInjector] = []
    yield installed
    for injector in installed:
        injector.uninstall()
    dynamodb.cache_clear()


def _install(installed: list[FaultInjector], spec: str, **kwargs: Any) -> FaultInjector:
    from ticketline.db import dynamodb

    injector = FaultInjector(FaultPlan.parse(spec), send=_moto_send, **kwargs).install()
    installed.append(injector)
    dynamodb.cache_clear()  # clients copy the session's hooks when made: the next one sees the injector
    return injector


def test_plan_parses_and_refuses_nonsense() -> None:
    plan = FaultPlan.parse("throttle=0.03, conflict=0.03,internal=0.02,timeout_after_commit=0.02,seed=7")
    assert (plan.throttle, plan.conflict, plan.internal, plan.timeout_after_commit, plan.seed) == (
        0.03,
        0.03,
        0.02,
        0.02,
        7,
    )
    assert FaultPlan.parse(str(plan)) == plan
    for bad in ("explode=0.1", "throttle=2", "throttle"):
        with pytest.raises(ValueError):
            FaultPlan.parse(bad)
    assert install_from_env({}) is None


def test_throttle_is_retried_by_botocore_then_surfaces(faults: list[FaultInjector]) -> None:
    from ticketline.db import dynamodb

    injector = _install(faults, "throttle=1")
    with pytest.raises(ClientError) as raised:
        dynamodb().get_item(TableName=TABLE, Key={"PK": {"S": "x"}, "SK": {"S": "y"}})
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    # "standard" retry mode, total_max_attempts (ticketline/db.py): the first attempt and its retries.
    assert injector.counts["throttle"] == MAX_ATTEMPTS


def test_internal_error_is_retried_and_a_later_attempt_succeeds(faults: list[FaultInjector]) -> None:
    from ticketline.db import dynamodb

    injector = _install(faults, "internal=0.2,seed=3")  # the injector mixes its process id into the seed
    puts, failed = 50, 0
    for n in range(puts):
        try:
            dynamodb().put_item(TableName=TABLE, Item={"PK": {"S": f"k{n}"}, "SK": {"S": "s"}})
        except ClientError as error:  # every attempt drew the fault (0.2 ** MAX_ATTEMPTS each): it surfaces
            assert error.response["Error"]["Code"] == "InternalServerError"
            failed += 1
    # Faults beyond those of the failed puts' attempts each met a retry that then succeeded.
    assert injector.counts["internal"] > failed * MAX_ATTEMPTS
    assert dynamodb().scan(TableName=TABLE, Select="COUNT")["Count"] >= puts - failed


def test_conflict_cancels_transactions_with_a_reason_per_item(faults: list[FaultInjector]) -> None:
    from ticketline.db import dynamodb

    _install(faults, "conflict=1")
    dynamodb().put_item(TableName=TABLE, Item={"PK": {"S": "single"}, "SK": {"S": "s"}})  # not a transaction
    items = [{"Put": {"TableName": TABLE, "Item": {"PK": {"S": f"t{n}"}, "SK": {"S": "s"}}}} for n in range(3)]
    with pytest.raises(ClientError) as raised:
        dynamodb().transact_write_items(TransactItems=items)
    response = raised.value.response
    assert response["Error"]["Code"] == "TransactionCanceledException"
    codes = [reason["Code"] for reason in response["CancellationReasons"]]
    assert sorted(codes) == ["None", "None", "TransactionConflict"]


def test_timeout_after_commit_writes_then_resends(faults: list[FaultInjector], tmp_path: Path) -> None:
    """The write happens, the answer is lost, botocore resends: a conditional put then meets itself."""
    from ticketline.db import dynamodb

    log = tmp_path / "faults.log"
    injector = _install(faults, "timeout_after_commit=1", log_path=log)
    with pytest.raises(Exception) as raised:
        dynamodb().update_item(
            TableName=TABLE,
            Key={"PK": {"S": "counter"}, "SK": {"S": "c"}},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    assert "timeout" in str(raised.value).lower()
    injector.uninstall()
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"PK": {"S": "counter"}, "SK": {"S": "c"}})
    # Every attempt really wrote: a non-idempotent ADD counts once per attempt.
    assert item["Item"]["n"] == {"N": str(MAX_ATTEMPTS)}
    assert read_fault_log(log)["timeout_after_commit"] == MAX_ATTEMPTS


def test_a_handler_answers_429_with_retry_after_when_dynamodb_keeps_throttling(
    faults: list[FaultInjector], invoke: Any
) -> None:
    _install(faults, "throttle=1")
    response = invoke("issue_token", load_event("issue_token.json"))
    assert response["statusCode"] == 429
    assert response["multiValueHeaders"].get("Retry-After") == ["1"] or response["headers"].get("Retry-After") == "1"
    assert json.loads(response["body"])["error"]["code"] == "THROTTLED"


def test_a_handler_answers_503_with_retry_after_on_repeated_internal_errors(
    faults: list[FaultInjector], invoke: Any
) -> None:
    _install(faults, "internal=1")
    response = invoke("issue_token", load_event("issue_token.json"))
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "SERVICE_UNAVAILABLE"


def test_a_handler_answers_503_when_every_attempt_times_out(faults: list[FaultInjector], invoke: Any) -> None:
    """botocore's own errors (read timeouts, refused connections) are not ClientErrors: still no raw 500."""
    from ticketline.repositories.queue import QueueRepository

    QueueRepository().create_queue("demo-concert", capacity=10, shards=1, now=1_800_000_000)
    _install(faults, "timeout_after_commit=1")
    response = invoke("issue_token", load_event("issue_token.json"))
    assert response["statusCode"] == 503, response["body"]
    headers = response.get("multiValueHeaders") or {}
    assert headers.get("Retry-After") == ["1"] or (response.get("headers") or {}).get("Retry-After") == "1"
    assert json.loads(response["body"])["error"]["code"] == "SERVICE_UNAVAILABLE"


def test_a_lost_answer_to_the_hint_update_does_not_count_twice(faults: list[FaultInjector], clock: Any) -> None:
    """The stream consumer's write is a recount (SET), not an ADD: resent after a lost answer, or delivered
    twice by the event source mapping, it stores the same number."""
    from ticketline.db import dynamodb
    from ticketline.models.catalog import ConcertIn
    from ticketline.models.reservations import HoldIn
    from ticketline.services.catalog import CatalogService
    from ticketline.services.queue import QueueService
    from ticketline.services.reservations import ReservationService

    body = {
        "title": "Hint",
        "schedules": [
            {"startsAt": "2030-01-01T00:00:00Z", "seats": [{"number": n, "price": 100} for n in range(1, 4)]}
        ],
    }
    concert = CatalogService().create_concert(ConcertIn.model_validate(body))
    schedule_id = concert.schedules[0].schedule_id
    token, _ = QueueService().issue(concert.concert_id, "alice")
    ReservationService().hold(HoldIn.model_validate({"scheduleId": schedule_id, "seatNumber": 1}), "alice", token.token)

    injector = FaultInjector(FaultPlan.parse("timeout_after_commit=1"), send=_moto_send)
    fired: list[bool] = []

    def once(request: Any, event_name: str = "", **kwargs: Any) -> Any:  # the first attempt's answer is lost
        if fired:
            return None
        fired.append(True)
        return injector(request, event_name=event_name, **kwargs)

    dynamodb().meta.events.register_first("before-send.dynamodb.UpdateItem", once)
    try:
        deliver_stream_records()
    finally:
        dynamodb().meta.events.unregister("before-send.dynamodb.UpdateItem", once)
    assert fired
    deliver_stream_records()  # and the batch delivered again
    schedules = CatalogService().schedules(concert.concert_id, "alice", token.token).schedules
    assert schedules[0].available_seats == 2  # 3 seats, 1 held
