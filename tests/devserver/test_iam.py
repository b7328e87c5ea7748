"""The local IAM check (devserver/iam.py): each function's role from the translated template, evaluated as IAM
evaluates it on every DynamoDB request its handler makes."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devserver import DEFAULT_TEMPLATE, iam
from devserver.iam import Permission, RolePolicy, Statement, required_permissions, unused_grants
from devserver.template import LOCAL_ACCOUNT_ID, LOCAL_REGION, load_template

TABLE = f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:table/Things"
OTHER = f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:table/Other"


def role(*statements: Statement) -> RolePolicy:
    return RolePolicy("ThingFunction", "ticketline-local-ThingFunctionRole", statements)


def allow(actions: tuple[str, ...], resources: tuple[str, ...]) -> Statement:
    return Statement("Allow", actions, resources)


def needs(operation: str, request: dict[str, Any]) -> list[Permission]:
    return required_permissions(operation, request, LOCAL_REGION, LOCAL_ACCOUNT_ID)


# ---- evaluation ----


@pytest.mark.parametrize(
    ("action", "resource", "decision"),
    [
        ("dynamodb:GetItem", TABLE, "allow"),
        ("DynamoDB:getitem", TABLE, "allow"),  # action names are case-insensitive, ARNs are not
        ("dynamodb:GetItem", TABLE.replace("Things", "things"), "no allow"),
        ("dynamodb:BatchGetItem", TABLE, "allow"),  # dynamodb:*Get*
        ("dynamodb:PutItem", TABLE, "no allow"),
        ("dynamodb:GetItem", OTHER, "no allow"),
        ("dynamodb:Query", f"{TABLE}/index/GSI1", "allow"),
        ("dynamodb:Query", f"{TABLE}/index/GSI2", "explicit deny"),  # a Deny wins over any Allow
        ("dynamodb:Query", TABLE, "no allow"),  # the index grant is not the table's
    ],
)
def test_wildcards_indexes_and_explicit_deny(action: str, resource: str, decision: str) -> None:
    policy = role(
        allow(("dynamodb:*Get*",), (TABLE,)),
        allow(("dynamodb:Query",), (f"{TABLE}/index/*",)),
        Statement("Deny", ("dynamodb:Query",), (f"{TABLE}/index/G?I2",)),
        allow(("dynamodb:Query",), (f"{TABLE}/index/GSI1",)),
    )

    assert policy.decide(Permission(action, resource)) == decision


def test_a_transaction_is_one_check_per_item_on_its_table() -> None:
    request = {
        "TransactItems": [
            {"Put": {"TableName": "Things", "Item": {}}},
            {"Update": {"TableName": "Things", "Key": {}}},
            {"Delete": {"TableName": "Other", "Key": {}}},
            {"ConditionCheck": {"TableName": "Things", "Key": {}, "ConditionExpression": "x"}},
        ]
    }

    assert needs("TransactWriteItems", request) == [
        Permission("dynamodb:PutItem", TABLE),
        Permission("dynamodb:UpdateItem", TABLE),
        Permission("dynamodb:DeleteItem", OTHER),
        Permission("dynamodb:ConditionCheckItem", TABLE),
    ]
    assert needs("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "Other", "Key": {}}}]}) == [
        Permission("dynamodb:GetItem", OTHER)
    ]


def test_batches_need_their_own_action_on_each_table_and_index_reads_the_index() -> None:
    assert needs("BatchGetItem", {"RequestItems": {"Things": {}, "Other": {}}}) == [
        Permission("dynamodb:BatchGetItem", TABLE),
        Permission("dynamodb:BatchGetItem", OTHER),
    ]
    assert needs("BatchWriteItem", {"RequestItems": {"Things": []}}) == [Permission("dynamodb:BatchWriteItem", TABLE)]
    assert needs("Query", {"TableName": "Things", "IndexName": "GSI1"}) == [
        Permission("dynamodb:Query", f"{TABLE}/index/GSI1")
    ]
    assert needs("Scan", {"TableName": "Things"}) == [Permission("dynamodb:Scan", TABLE)]


def test_the_denial_says_what_aws_says() -> None:
    policy = role(allow(("dynamodb:GetItem",), (TABLE,)), Statement("Deny", ("dynamodb:DeleteItem",), ("*",)))

    assert policy.denial_message(Permission("dynamodb:PutItem", TABLE), "no allow") == (
        f"User: arn:aws:sts::{LOCAL_ACCOUNT_ID}:assumed-role/ticketline-local-ThingFunctionRole/ThingFunction "
        f"is not authorized to perform: dynamodb:PutItem on resource: {TABLE} "
        "because no identity-based policy allows the dynamodb:PutItem action"
    )
    assert policy.denial_message(Permission("dynamodb:DeleteItem", TABLE), "explicit deny").endswith(
        f"on resource: {TABLE} with an explicit deny in an identity-based policy"
    )


# ---- the hook on a real botocore client ----


@pytest.fixture
def things() -> Iterator[Any]:
    with mock_aws():
        setup = boto3.client("dynamodb", region_name=LOCAL_REGION)
        for name in ("Things", "Other"):
            setup.create_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
        yield


def test_a_request_the_role_does_not_allow_fails_as_on_aws_and_is_never_sent(things: None, tmp_path: Path) -> None:
    usage = tmp_path / "usage.txt"
    enforcer = iam.Enforcer(usage)
    client = boto3.client("dynamodb", region_name=LOCAL_REGION)
    enforcer.install(client.meta.events)
    policy = role(allow(("dynamodb:PutItem", "dynamodb:GetItem"), (TABLE,)))
    item = {"PK": {"S": "a"}}

    with enforcer.acting_as(policy):
        client.put_item(TableName="Things", Item=item)
        with pytest.raises(ClientError) as denied:
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "Things", "Item": {"PK": {"S": "b"}}}},
                    {"Put": {"TableName": "Other", "Item": {"PK": {"S": "b"}}}},
                ]
            )
        client.get_item(TableName="Things", Key=item)

    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == policy.denial_message(Permission("dynamodb:PutItem", OTHER), "no allow")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Item" not in client.get_item(TableName="Things", Key={"PK": {"S": "b"}})  # nothing of it was written
    client.scan(TableName="Other")  # outside a function: the local server's own call, not checked
    assert iam.read_usage(usage) == {
        ("ThingFunction", Permission("dynamodb:PutItem", TABLE)),
        ("ThingFunction", Permission("dynamodb:GetItem", TABLE)),
    }


def test_an_sqs_request_is_checked_on_its_queue_and_a_batch_as_its_single_action(tmp_path: Path) -> None:
    template = load_template(DEFAULT_TEMPLATE)
    admin = template.function("AdminFunction").role
    publish, failed = template.queue("PublishSeatsQueue"), template.queue("FailedEventsQueue")
    enforcer = iam.Enforcer(tmp_path / "usage.txt")
    with mock_aws():
        client = boto3.client("sqs", region_name=LOCAL_REGION)
        for queue in (failed, publish):
            client.create_queue(QueueName=queue.name, Attributes={"FifoQueue": "true"} if queue.fifo else {})
        enforcer.install(client.meta.events)
        entry = {"Id": "1", "MessageBody": "{}", "MessageGroupId": "d", "MessageDeduplicationId": "r"}
        with enforcer.acting_as(admin):
            assert client.send_message_batch(QueueUrl=publish.url, Entries=[entry])["Successful"]
            with pytest.raises(ClientError) as denied:
                client.send_message(QueueUrl=failed.url, MessageBody="{}")
        assert "Messages" not in client.receive_message(QueueUrl=failed.url)  # never sent

    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["Error"]["Message"] == admin.denial_message(
        Permission("sqs:SendMessage", failed.arn), "no allow"
    )
    assert iam.read_usage(tmp_path / "usage.txt") == {("AdminFunction", Permission("sqs:SendMessage", publish.arn))}


# ---- the template's roles ----


def test_the_translator_expands_policy_templates_to_local_arns(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """
            Transform: AWS::Serverless-2016-10-31
            Globals:
              Function:
                Runtime: python3.13
                Handler: app.lambda_handler
            Resources:
              Things:
                Type: AWS::DynamoDB::Table
                Properties:
                  TableName: local-things
                  BillingMode: PAY_PER_REQUEST
                  AttributeDefinitions: [{AttributeName: PK, AttributeType: S}]
                  KeySchema: [{AttributeName: PK, KeyType: HASH}]
              Queue:
                Type: AWS::SQS::Queue
              ReaderFunction:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: reader/
                  Policies:
                    - DynamoDBReadPolicy: {TableName: !Ref Things}
                    - SQSSendMessagePolicy: {QueueName: !GetAtt Queue.QueueName}
              WriterFunction:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: writer/
                  Policies:
                    - Statement:
                        - Effect: Allow
                          Action: dynamodb:PutItem
                          Resource: !GetAtt Things.Arn
                        - Effect: Allow
                          Action: dynamodb:Query
                          Resource: !Sub "${Things.Arn}/index/ByOwner"
            """
        )
    )
    template = load_template(tmp_path / "template.yaml")
    things = f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:table/local-things"
    reader, writer = template.function("ReaderFunction").role, template.function("WriterFunction").role

    assert reader.decide(Permission("dynamodb:Scan", things)) == "allow"  # DynamoDBReadPolicy has Scan
    assert reader.decide(Permission("dynamodb:Query", f"{things}/index/any")) == "allow"
    assert reader.decide(Permission("dynamodb:PutItem", things)) == "no allow"
    assert writer.decide(Permission("dynamodb:PutItem", things)) == "allow"
    assert writer.decide(Permission("dynamodb:Query", f"{things}/index/ByOwner")) == "allow"
    assert writer.decide(Permission("dynamodb:Query", things)) == "no allow"
    assert writer.role_name == "ticketline-local-WriterFunctionRole"


def test_conditions_are_refused_rather_than_guessed() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "dynamodb:GetItem",
        "Resource": TABLE,
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["QTOKEN#*"]}},
    }

    with pytest.raises(iam.PolicyError, match="Condition"):
        iam.statement(statement)


def test_unused_grants_are_each_action_and_resource_no_request_used() -> None:
    policy = role(
        allow(("dynamodb:GetItem", "dynamodb:Scan"), (TABLE,)),
        allow(("dynamodb:Query",), (f"{TABLE}/index/*",)),
        Statement("Allow", ("dynamodb:GetRecords",), ("*",), managed=True),  # SAM's, not ours to trim
    )
    used = {
        ("ThingFunction", Permission("dynamodb:GetItem", TABLE)),
        ("ThingFunction", Permission("dynamodb:Query", f"{TABLE}/index/GSI1")),
        ("OtherFunction", Permission("dynamodb:Scan", TABLE)),  # another function's use is not this one's
    }

    assert unused_grants([policy], used) == {"ThingFunction": [Permission("dynamodb:Scan", TABLE)]}
    assert "UNUSED  dynamodb:Scan on" in iam.report([policy], used)


# ---- template.yaml's least privilege ----


def test_the_template_grants_explicit_actions_on_explicit_tables_and_indexes() -> None:
    template = load_template(DEFAULT_TEMPLATE)
    granted = {
        function.logical_id: [
            grant for statement in function.role.statements if not statement.managed for grant in statement.grants()
        ]
        for function in template.functions
    }

    for function_id, grants in granted.items():
        for grant in grants:
            # SAM's SQSSendMessagePolicy grants sqs:SendMessage* (SendMessage, and the batch authorized as it).
            assert grant.action == "sqs:SendMessage*" or "*" not in grant.action, (function_id, grant)
            assert "?" not in grant.action, (function_id, grant)
            assert "*" not in grant.resource and "?" not in grant.resource, (function_id, grant)
            assert grant.action != "dynamodb:Scan", (function_id, grant)  # a Scan is the audit's, never a function's
            assert grant.action != "dynamodb:DeleteItem", (function_id, grant)  # nothing deletes: TTL tidies
    batch_writers = {function_id for function_id, grants in granted.items() for g in grants if "BatchWrite" in g.action}
    assert batch_writers == {"AdminFunction", "PublishSeatsFunction"}  # a concert's seats (a stadium's in background)
    assert granted["HealthFunction"] == []
