"""GET /health: liveness, no auth, no DynamoDB."""

from ticketline.api import create_app, lambda_entry

app = create_app()


@app.get("/health", summary="Liveness probe", tags=["Operations"])
def health() -> dict[str, str]:
    return {"status": "ok"}


lambda_handler = lambda_entry(app)
