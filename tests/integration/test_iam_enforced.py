"""Handlers run under their template role (devserver/iam.py): a permission taken from one function is an
AccessDenied through HTTP, as on AWS, while the real template serves the same request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cfn_tools
import requests

from devserver import DEFAULT_TEMPLATE, PROJECT_ROOT
from devserver.testing import running_server
from tests.integration.api import TIMEOUT, bearer, create_concert, error_code, join, table
from tests.integration.conftest import BASE_OVERRIDES


def template_without(tmp_path: Path, function_id: str, action: str) -> Path:
    """template.yaml with one action taken from one function's policies (JSON is YAML: the loader reads it)."""
    document = cfn_tools.load_yaml(DEFAULT_TEMPLATE.read_text())
    removed = 0
    for policy in document["Resources"][function_id]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            removed += actions.count(action)
            statement["Action"] = [granted for granted in actions if granted != action]
    assert removed, f"{function_id} is not granted {action}"
    copy = tmp_path / "template.yaml"
    copy.write_text(json.dumps(document))
    for code in ("functions", "layers"):  # CodeUri / ContentUri are relative to the template
        (tmp_path / code).symlink_to(PROJECT_ROOT / code)
    return copy


def poll_after_the_bound_passed(server: Any) -> requests.Response:
    """A waiter polls after admission raised the bound past it and before it activated it: the poll activates
    the token itself (UpdateItem), the code path the read-only policy of QueuePositionFunction once missed."""
    concert = create_concert(server, queueCapacity=1)
    concert_id = concert["concertId"]
    join(server, concert_id, "first")
    waiter = join(server, concert_id, "second")
    assert waiter["status"] == "WAIT"
    table(server).update_item(
        Key={"PK": f"CONCERT#{concert_id}", "SK": "QUEUE"},
        UpdateExpression="SET admitBound = :bound",
        ExpressionAttributeValues={":bound": 2},
    )
    return requests.get(
        f"{server.url}/concerts/{concert_id}/queue/position",
        headers=bearer(server, "second") | {"X-Queue-Token": waiter["token"]},
        timeout=TIMEOUT,
    )


def test_the_real_template_lets_the_poll_activate_a_passed_waiter(server: Any) -> None:
    response = poll_after_the_bound_passed(server)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ACTIVE"


def test_a_permission_taken_from_a_function_is_access_denied_through_http(tmp_path: Path) -> None:
    template = template_without(tmp_path, "QueuePositionFunction", "dynamodb:UpdateItem")
    environment = {"TICKETLINE_TEMPLATE": str(template)}
    with running_server(BASE_OVERRIDES, workers=1, environment=environment, start_timeout_seconds=180) as server:
        response = poll_after_the_bound_passed(server)
        log = server.log()

    assert response.status_code == 500
    assert error_code(response) == "INTERNAL_ERROR"
    assert (
        "User: arn:aws:sts::123456789012:assumed-role/ticketline-local-QueuePositionFunctionRole/QueuePositionFunction"
        " is not authorized to perform: dynamodb:UpdateItem on resource: "
        "arn:aws:dynamodb:us-east-1:123456789012:table/TicketlineTable because no identity-based policy allows "
        "the dynamodb:UpdateItem action"
    ) in log
    assert '"level":"ERROR"' in log.replace(" ", "")
