"""GET /health: liveness, no auth, no DynamoDB."""

from ticketline.api import create_app, error_responses, lambda_entry

app = create_app()


@app.get("/health", summary="Liveness probe", responses=error_responses(), tags=["Operations"])
def health() -> dict[str, str]:
    return {"status": "ok"}


lambda_handler = lambda_entry(app)
