"""A DynamoDB call's whole retry budget fits inside every function's Timeout (issue 11): otherwise Lambda
stops the function mid-retry and the client gets API Gateway's 502, not our 503 with Retry-After."""

from __future__ import annotations

from botocore.retries.standard import ExponentialBackoff

from devserver.template import load_template
from tests.conftest import ROOT
from ticketline import db


def test_the_backoff_model_is_botocores_longest() -> None:
    class Context:  # what botocore reads of a failed attempt: throttled (its longest backoff), no retry-after
        http_response = None

        def __init__(self, attempt_number: int) -> None:
            self.attempt_number = attempt_number

    class AlwaysThrottled:
        def is_throttling_error_from_context(self, _: Context) -> bool:
            return True

    longest = ExponentialBackoff(random=lambda: 1.0, service_name="dynamodb", throttling_detector=AlwaysThrottled())
    waits = [longest.delay_amount(Context(attempt)) for attempt in range(1, db.MAX_ATTEMPTS)]
    assert db.worst_case_call_seconds() == db.MAX_ATTEMPTS * (
        db.CONNECT_TIMEOUT_SECONDS + db.READ_TIMEOUT_SECONDS
    ) + sum(waits)


def test_every_function_outlasts_a_call_that_spends_all_its_retries() -> None:
    template = load_template(ROOT / "template.yaml")
    budget = db.worst_case_call_seconds()
    for function in template.functions:
        assert budget < function.timeout_seconds, (function.logical_id, budget, function.timeout_seconds)


def test_the_client_makes_exactly_the_modelled_attempts() -> None:
    db.dynamodb.cache_clear()
    try:
        config = db.dynamodb().meta.config
    finally:
        db.dynamodb.cache_clear()
    assert config.retries == {"mode": "standard", "total_max_attempts": db.MAX_ATTEMPTS}
    assert (config.connect_timeout, config.read_timeout) == (db.CONNECT_TIMEOUT_SECONDS, db.READ_TIMEOUT_SECONDS)
