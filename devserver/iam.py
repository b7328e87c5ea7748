"""Each function's IAM role, enforced on the DynamoDB and SQS requests its handler makes, as AWS enforces it.

The template is translated by the SAM translator (policy templates such as DynamoDBCrudPolicy become the
actions and resources AWS will see) and the role's statements resolved to local ARNs in devserver/template.py;
a botocore `before-call.dynamodb` / `before-call.sqs` hook checks every request made while a function runs:

- one check per item of a transaction: IAM has no TransactWriteItems action for items, each needs its
  Put/Update/Delete/ConditionCheckItem on the item's table (TransactGetItems: GetItem);
- BatchGetItem / BatchWriteItem: their own action on each table of the request;
- Query / Scan of an index: the `table/<name>/index/<index>` resource;
- SQS: the action on the queue's ARN, a batch (SendMessageBatch...) authorized as its single action (sqs:SendMessage).

A request the role does not allow fails as AWS fails it: a botocore ClientError `AccessDeniedException` with
AWS's message, never sent. The local server's own calls (table and queue creation, stream and queue reading, as
Lambda's event source mappings do) run under no function and are not checked.

With TICKETLINE_IAM_USAGE=<file>, every (function, action, resource) allowed is appended to the file (one line
each, first time per process), so a test session can compare the template's grants with what the code used
(tests/conftest.py, `python -m devserver.iam report FILE`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

USAGE_ENV = "TICKETLINE_IAM_USAGE"
_HOOK_ID = "ticketline-iam"

# What the AWS-managed policies SAM attaches allow on DynamoDB and SQS, on every resource ("*"). The stream and queue
# actions are Lambda's event source mapping's, never the function code's; an unknown managed policy is refused (its
# grants cannot be known here).
MANAGED_POLICY_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "AWSLambdaBasicExecutionRole": (),
    "AWSXrayWriteOnlyAccess": (),
    "AWSLambdaSQSQueueExecutionRole": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
    "AWSLambdaDynamoDBExecutionRole": (
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    ),
}


class PolicyError(ValueError):
    """A policy the local server cannot evaluate faithfully (it would rather refuse than guess)."""


# ---------------------------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Permission:
    """One authorization IAM makes for a request: an action on a resource."""

    action: str  # e.g. dynamodb:UpdateItem
    resource: str  # an ARN

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}"


# Grants kept though no test can reach them: Lambda itself sends a failed stream batch to an OnFailure destination
# with the function's role; the local server has no destinations, so no request of it uses the grant.
UNREACHABLE_GRANTS = (Permission("sqs:SendMessage*", "arn:aws:sqs:*:*:*-FailedEventsQueue"),)


@dataclass(frozen=True)
class Statement:
    effect: str  # Allow | Deny
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    managed: bool = False  # from an AWS-managed policy, not the template's Policies block

    def matches(self, permission: Permission) -> bool:
        # IAM's wildcards are fnmatch's: `*` any run of characters (across `:` and `/`), `?` one character (fnmatch's
        # `[...]` cannot occur: DynamoDB and SQS names have no brackets). Actions ignore case, resources do not.
        return any(fnmatchcase(permission.action.lower(), pattern.lower()) for pattern in self.actions) and any(
            fnmatchcase(permission.resource, pattern) for pattern in self.resources
        )

    def grants(self) -> Iterator[Permission]:
        """Each (action, resource) pattern pair the statement allows: what a test must have used."""
        for action in self.actions:
            for resource in self.resources:
                yield Permission(action, resource)


@dataclass(frozen=True)
class RolePolicy:
    """A function's execution role: its name on AWS's terms and every statement of its policies."""

    function_id: str
    role_name: str
    statements: tuple[Statement, ...]

    def decide(self, permission: Permission) -> str:
        """ "allow", or why not: "explicit deny" / "no allow" (IAM: an explicit deny wins over any allow)."""
        matching = [statement for statement in self.statements if statement.matches(permission)]
        if any(statement.effect == "Deny" for statement in matching):
            return "explicit deny"
        return "allow" if matching else "no allow"

    @property
    def principal_arn(self) -> str:
        from devserver.template import LOCAL_ACCOUNT_ID

        # Lambda assumes the role with the function's name as the session name.
        return f"arn:aws:sts::{LOCAL_ACCOUNT_ID}:assumed-role/{self.role_name}/{self.function_id}"

    def denial_message(self, permission: Permission, reason: str) -> str:
        """AWS's wording of an AccessDeniedException for this role."""
        because = (
            "with an explicit deny in an identity-based policy"
            if reason == "explicit deny"
            else f"because no identity-based policy allows the {permission.action} action"
        )
        return (
            f"User: {self.principal_arn} is not authorized to perform: {permission.action} "
            f"on resource: {permission.resource} {because}"
        )


def statement(raw: Mapping[str, Any]) -> Statement:
    """A policy statement (resolved: no intrinsics left), refused if it holds what is not evaluated here."""
    unsupported = sorted(set(raw) - {"Sid", "Effect", "Action", "Resource"})
    if unsupported:
        raise PolicyError(
            f"policy statement with {', '.join(unsupported)}: the local server does not evaluate it "
            "(devserver/iam.py); grant with Effect, Action and Resource only"
        )
    return Statement(
        effect=str(raw["Effect"]),
        actions=tuple(_strings(raw.get("Action"))),
        resources=tuple(_strings(raw.get("Resource"))),
    )


def _strings(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(item) for item in value or []]


CHECKED_SERVICES = ("dynamodb", "sqs")


def may_grant_checked_action(raw_statement: Mapping[str, Any]) -> bool:
    """Whether a statement's actions can match a DynamoDB or SQS action (others need not be resolved locally)."""
    return any(
        fnmatchcase(service, pattern.split(":", 1)[0].lower())
        for pattern in _strings(raw_statement.get("Action"))
        for service in CHECKED_SERVICES
    )


def managed_statements(arn: str) -> list[Statement]:
    name = arn.rsplit("/", 1)[-1]
    if name not in MANAGED_POLICY_ACTIONS:
        raise PolicyError(f"managed policy {arn}: its DynamoDB and SQS grants are unknown here (devserver/iam.py)")
    actions = MANAGED_POLICY_ACTIONS[name]
    return [Statement("Allow", actions, ("*",), managed=True)] if actions else []


# ------------------------------------------------------------------------------ what a request needs of IAM


def table_arn(region: str, account: str, table: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


_TRANSACT_WRITE_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def required_permissions(operation: str, request: Mapping[str, Any], region: str, account: str) -> list[Permission]:
    """The authorizations IAM makes for one DynamoDB request (its API parameters, as sent on the wire)."""

    def arn(table: str, index: str | None = None) -> str:
        return table_arn(region, account, table, index)

    if operation == "TransactWriteItems":
        return [
            Permission(_TRANSACT_WRITE_ACTIONS[kind], arn(body["TableName"]))
            for item in request.get("TransactItems", [])
            for kind, body in item.items()
        ]
    if operation == "TransactGetItems":
        return [
            Permission("dynamodb:GetItem", arn(item["Get"]["TableName"])) for item in request.get("TransactItems", [])
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Permission(f"dynamodb:{operation}", arn(table)) for table in request.get("RequestItems", {})]
    if "TableName" in request:
        return [Permission(f"dynamodb:{operation}", arn(request["TableName"], request.get("IndexName")))]
    return [Permission(f"dynamodb:{operation}", "*")]  # e.g. ListTables


def queue_arn_of(queue_url_or_name: str, region: str, account: str) -> str:
    """The ARN IAM checks for a queue named by its URL (https://sqs.<region>.amazonaws.com/<account>/<name>)."""
    parts = queue_url_or_name.rstrip("/").split("/")
    name, owner = parts[-1], parts[-2] if len(parts) > 1 else account
    return f"arn:aws:sqs:{region}:{owner}:{name}"


# A batch request is authorized as the action of one message.
_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


def required_sqs_permissions(operation: str, request: Mapping[str, Any], region: str, account: str) -> list[Permission]:
    """The authorization IAM makes for one SQS request (its API parameters, as sent on the wire)."""
    action = _SQS_BATCH_ACTIONS.get(operation, f"sqs:{operation}")
    queue = request.get("QueueUrl") or request.get("QueueName")
    return [Permission(action, queue_arn_of(str(queue), region, account) if queue else "*")]


# ------------------------------------------------------------------------------------------------ the hook


class Enforcer:
    """The `before-call.dynamodb` and `before-call.sqs` hook: checks each request against the role of the function
    running now.

    One function at a time per process (devserver/lambda_host.py holds a lock; os.environ is process-wide
    too), so "the function running" is process state, seen by the handler's own threads as well.
    """

    def __init__(self, usage_path: str | Path | None = None) -> None:
        from devserver.template import LOCAL_ACCOUNT_ID, LOCAL_REGION

        self._region = LOCAL_REGION
        self._account = LOCAL_ACCOUNT_ID
        self._role: RolePolicy | None = None
        self._usage_path = Path(usage_path) if usage_path else None
        self._recorded: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def install(self, events: Any = None) -> Enforcer:
        """Register on an event emitter (default: boto3's default session; clients made later carry it)."""
        if events is None:
            import boto3

            if boto3.DEFAULT_SESSION is None:
                boto3.setup_default_session()
            assert boto3.DEFAULT_SESSION is not None
            events = boto3.DEFAULT_SESSION.events
        for service in CHECKED_SERVICES:
            events.register_first(f"before-call.{service}", self, unique_id=f"{_HOOK_ID}-{service}")
        return self

    @contextmanager
    def acting_as(self, role: RolePolicy) -> Iterator[None]:
        """Requests made inside the block are the function's, checked against its role."""
        previous, self._role = self._role, role
        try:
            yield
        finally:
            self._role = previous

    def __call__(self, params: Mapping[str, Any], model: Any, **_: Any) -> Any:
        role = self._role
        if role is None:
            return None  # the local server's own call: no function, no role
        request = json.loads(params.get("body") or b"{}")  # both services speak AWS's JSON protocol
        service = model.service_model.service_name
        permissions = (required_sqs_permissions if service == "sqs" else required_permissions)(
            model.name, request, self._region, self._account
        )
        for permission in permissions:
            decision = role.decide(permission)
            if decision != "allow":
                # SQS keeps its query-protocol error code.
                code = "AccessDenied" if service == "sqs" else "AccessDeniedException"
                return _access_denied(code, role.denial_message(permission, decision))
            self._record(role.function_id, permission)
        return None

    def _record(self, function_id: str, permission: Permission) -> None:
        if self._usage_path is None:
            return
        entry = (function_id, permission.action, permission.resource)
        with self._lock:
            if entry in self._recorded:
                return
            self._recorded.add(entry)
            with self._usage_path.open("a", encoding="utf-8") as usage:  # one short line: appends do not interleave
                usage.write(" ".join(entry) + "\n")


@cache
def _process_enforcer() -> Enforcer:
    return Enforcer(os.environ.get(USAGE_ENV) or None)


def enforcer() -> Enforcer:
    """This process's enforcer, registered on boto3's current default session (idempotent)."""
    return _process_enforcer().install()


def _access_denied(code: str, message: str) -> tuple[Any, dict[str, Any]]:
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    status = 400
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "local-iam-denied", "HTTPHeaders": {}},
    }
    return AWSResponse("", status, HTTPHeaders(), None), parsed


# -------------------------------------------------------------------------------------- usage vs template


def read_usage(path: str | Path) -> set[tuple[str, Permission]]:
    """What the recording holds: (function id, permission) pairs."""
    usage = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        function_id, action, resource = line.split(" ")
        usage.add((function_id, Permission(action, resource)))
    return usage


def unused_grants(
    roles: Iterable[RolePolicy],
    usage: set[tuple[str, Permission]],
    unreachable: Iterable[Permission] = UNREACHABLE_GRANTS,
) -> dict[str, list[Permission]]:
    """Per function, each (action, resource) its Policies block allows that no recorded request used, except the
    grants matching an `unreachable` pattern."""
    exempt = [Statement("Allow", (grant.action,), (grant.resource,)) for grant in unreachable]
    unused: dict[str, list[Permission]] = {}
    for role in roles:
        used = [permission for function_id, permission in usage if function_id == role.function_id]
        for statement in role.statements:
            if statement.effect != "Allow" or statement.managed:
                continue
            for grant in statement.grants():
                single = Statement("Allow", (grant.action,), (grant.resource,))
                if any(single.matches(permission) for permission in used) or any(e.matches(grant) for e in exempt):
                    continue
                unused.setdefault(role.function_id, []).append(grant)
    return unused


def report(roles: Iterable[RolePolicy], usage: set[tuple[str, Permission]]) -> str:
    """Per function: what it used (the grant its template needs), and what it is granted but never used."""
    unused = unused_grants(roles, usage)
    lines = []
    for role in sorted(roles, key=lambda role: role.function_id):
        used = sorted(str(permission) for function_id, permission in usage if function_id == role.function_id)
        lines.append(f"{role.function_id} (role {role.role_name})")
        lines.extend(f"  used    {entry}" for entry in used)
        lines.extend(f"  UNUSED  {grant}" for grant in unused.get(role.function_id, []))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devserver.iam",
        description="Compare template.yaml's function policies with a recording of what the handlers used.",
    )
    parser.add_argument("usage", type=Path, help=f"the file {USAGE_ENV} pointed at during a test run")
    parser.add_argument("--template", type=Path, default=None)
    arguments = parser.parse_args(argv)
    from devserver import DEFAULT_TEMPLATE
    from devserver.template import load_template

    template = load_template(arguments.template or DEFAULT_TEMPLATE)
    roles = [function.role for function in template.functions]
    usage = read_usage(arguments.usage)
    print(report(roles, usage))
    sys.exit(1 if unused_grants(roles, usage) else 0)


if __name__ == "__main__":
    main()
