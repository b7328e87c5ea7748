"""What operators get from every API call: correlation ids in the logs and a per-route latency metric (EMF)."""

from __future__ import annotations

import json

from tests.conftest import load_event
from ticketline.observability import logger


def emf_blobs(output: str) -> list[dict]:
    blobs = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def test_an_api_call_emits_its_latency_per_route_and_status_class(invoke, capsys, monkeypatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    response = invoke("health", load_event("health.json"))
    assert response["statusCode"] == 200
    latency = [blob for blob in emf_blobs(capsys.readouterr().out) if "Latency" in blob]
    assert len(latency) == 1
    blob = latency[0]
    assert blob["route"] == "GET /health" and blob["status"] == "2xx" and blob["service"] == "ticketline"
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Ticketline"
    assert directive["Metrics"] == [{"Name": "Latency", "Unit": "Milliseconds"}]
    assert blob["Latency"][0] >= 0 if isinstance(blob["Latency"], list) else blob["Latency"] >= 0


def test_no_latency_blob_when_metrics_are_disabled(invoke, capsys, monkeypatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    invoke("health", load_event("health.json"))
    assert not [blob for blob in emf_blobs(capsys.readouterr().out) if "Latency" in blob]


def test_the_logs_carry_the_api_request_id_as_correlation_id(invoke) -> None:
    event = load_event("health.json")
    invoke("health", event)
    assert logger.get_correlation_id() == event["requestContext"]["requestId"]
