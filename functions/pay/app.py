"""POST /payments: pay a held seat from the wallet (user JWT, ACTIVE queue token, Idempotency-Key)."""

from aws_lambda_powertools.event_handler import Response, content_types

from ticketline.api import create_app, lambda_entry
from ticketline.auth import caller_from_event, queue_token_from_headers
from ticketline.idempotency import IdempotencyKey
from ticketline.models.wallet import PaymentIn, PaymentOut
from ticketline.services.payments import PaymentService

app = create_app()
payments = PaymentService()


@app.post(
    "/payments",
    summary="Pay a hold",
    description="One atomic step: balance debited by the price, reservation PAID, seat sold, ledger entry "
    "written, the caller's queue token EXPIRED. 402 when the balance is short, 410 when the hold lapsed, "
    "409 when already paid; a retry with the same Idempotency-Key returns the first 201.",
    responses={201: {"description": "Paid"}},
    tags=["Payments"],
)
def pay(request: PaymentIn, idempotency_key: IdempotencyKey) -> Response[PaymentOut]:
    caller = caller_from_event(app.current_event.raw_event)
    paid = payments.pay(
        caller.user_id,
        idempotency_key,
        request,
        queue_token_from_headers(app.current_event.headers),
        app.lambda_context,
    )
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=paid)


lambda_handler = lambda_entry(app)
