"""`Idempotency-Key` on POSTs that move money: the Powertools Idempotency utility on IdempotencyTable.

A record is keyed by (user id, key), so two users' keys never meet, and remembers a hash of the part of the
body that must match (`validate`): the same key with another body is 409 IDEMPOTENCY_KEY_REUSED, a request
still in flight with the key is 409 IDEMPOTENCY_IN_PROGRESS, a repeat after success returns the first answer
for RECORD_TTL_SECONDS. A failed call (4xx, 5xx) leaves no record: the client may retry with the same key.

The record is a convenience, not the guarantee: a Lambda that dies between committing and saving the
answer leaves an INPROGRESS record that lapses with the invocation's time, and then the retry runs again.
The services' own transactions make that second run harmless (see services/wallet.py and payments.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Header
from pydantic import BeforeValidator

from ticketline.config import Settings, get_settings
from ticketline.db import dynamodb
from ticketline.errors import IdempotencyInProgress, IdempotencyKeyReused, ServiceUnavailable
from ticketline.observability import logger

# The Powertools utility (and the boto3 it imports) loads with the first idempotent call, not with the handler:
# the wallet's GET routes and every refusal before the operation never need it (docs/BENCHMARKS.md, cold start).
if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
    from aws_lambda_powertools.utilities.typing import LambdaContext

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 64
RECORD_TTL_SECONDS = 24 * 3600


def _without_surrounding_whitespace(value: Any) -> Any:
    # RFC 9110 5.5: spaces and tabs around a field value are not part of it, so "abc" and "abc " are one key.
    return value.strip(" \t") if isinstance(value, str) else value


# What a route that takes the header declares (`idempotency_key: IdempotencyKey`): 1..64 printable ASCII
# characters once trimmed, anything else (or none) a 400 naming the header; documented in the OpenAPI document.
IdempotencyKey = Annotated[
    str,
    BeforeValidator(_without_surrounding_whitespace),
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        pattern=r"^[\x20-\x7e]+$",
        examples=["8d0c7a52-4a8e-4f43-9d1e"],
        description="1..64 printable ASCII characters of the client's choosing (a UUID), one per intended "
        "operation; surrounding whitespace is not part of it. A retry with the same key and body acts once.",
    ),
]

Request = dict[str, Any]
Answer = dict[str, Any]


class IdempotentOperation:
    """One operation (say "wallet.charge") whose calls run once per (userId, key)."""

    def __init__(self, name: str, validate: str, settings: Settings | None = None) -> None:
        self.name = name
        self.settings = settings or get_settings()
        self.validate = validate
        self._config: IdempotencyConfig | None = None
        self._store: DynamoDBPersistenceLayer | None = None

    @property
    def config(self) -> IdempotencyConfig:
        if self._config is None:
            from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

            self._config = IdempotencyConfig(
                event_key_jmespath="[userId, key]",
                payload_validation_jmespath=self.validate,
                raise_on_no_idempotency_key=True,
                expires_after_seconds=RECORD_TTL_SECONDS,
            )
        return self._config

    @property
    def store(self) -> DynamoDBPersistenceLayer:
        # Made on first use: our client (retries, the local endpoint), created inside the caller's environment.
        if self._store is None:
            from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

            self._store = DynamoDBPersistenceLayer(
                table_name=self.settings.required_idempotency_table(), boto3_client=dynamodb()
            )
        return self._store

    def run(self, operation: Callable[[Request], Answer], request: Request, context: LambdaContext | None) -> Answer:
        """operation(request) once per (request["userId"], request["key"]); its answer is JSON (a dict)."""
        from aws_lambda_powertools.utilities.idempotency import idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        if context is not None:
            # An INPROGRESS record then lapses with this invocation, so a crash never locks the key for a day.
            self.config.register_lambda_context(context)

        def once(request: Request) -> Answer:
            return operation(request)

        guarded = idempotent_function(
            once,
            data_keyword_argument="request",
            persistence_store=self.store,
            config=self.config,
            key_prefix=self.name,
        )
        try:
            answer: Answer = guarded(request=request)
        except IdempotencyValidationError as error:
            raise IdempotencyKeyReused() from error
        except IdempotencyAlreadyInProgressError as error:
            raise IdempotencyInProgress() from error
        except IdempotencyPersistenceLayerError as error:
            logger.warning("idempotency store unavailable", extra={"operation": self.name, "error": str(error)})
            raise ServiceUnavailable() from error
        return answer
