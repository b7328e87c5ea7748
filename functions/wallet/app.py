"""GET /wallet, POST /wallet/charges (Idempotency-Key) and GET /wallet/history: the caller's own wallet only."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ticketline.api import IDEMPOTENT, JSON_BODY, SIGNED_IN, create_app, error_responses, lambda_entry
from ticketline.auth import caller_from_event
from ticketline.errors import BalanceLimitExceeded, ValidationFailed
from ticketline.idempotency import IdempotencyKey
from ticketline.models.wallet import (
    HISTORY_DEFAULT_LIMIT,
    HISTORY_MAX_LIMIT,
    BalanceOut,
    ChargeIn,
    ChargeOut,
    HistoryOut,
)
from ticketline.services.wallet import WalletService

app = create_app()
wallet = WalletService()


@app.get(
    "/wallet",
    summary="Balance",
    description="The caller's balance (0 for a new user).",
    responses=error_responses(*SIGNED_IN),
    tags=["Wallet"],
)
def get_balance() -> BalanceOut:
    caller = caller_from_event(app.current_event.raw_event)
    return wallet.balance(caller.user_id)


@app.post(
    "/wallet/charges",
    summary="Charge the wallet",
    description="Adds `amount` (1..10,000,000 won) to the caller's balance, with a ledger entry, atomically. "
    "A retry with the same Idempotency-Key and body returns the first answer and charges once; the same key "
    "with another amount is 409 IDEMPOTENCY_KEY_REUSED.",
    responses=error_responses(*SIGNED_IN, *JSON_BODY, *IDEMPOTENT, BalanceLimitExceeded),
    tags=["Wallet"],
)
def charge(request: ChargeIn, idempotency_key: IdempotencyKey) -> ChargeOut:
    caller = caller_from_event(app.current_event.raw_event)
    return wallet.charge(caller.user_id, idempotency_key, request)


@app.get(
    "/wallet/history",
    summary="Ledger",
    description="The caller's charges and payments, newest first; pass `nextCursor` as `cursor` for older ones.",
    responses=error_responses(*SIGNED_IN, ValidationFailed),
    tags=["Wallet"],
)
def history(
    limit: Annotated[int, Query(ge=1, le=HISTORY_MAX_LIMIT)] = HISTORY_DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HistoryOut:
    caller = caller_from_event(app.current_event.raw_event)
    return wallet.history(caller.user_id, limit, cursor)


lambda_handler = lambda_entry(app)
