"""Operators can get an ID token from a terminal (issue 11): the stack's OperatorClient allows USER_PASSWORD_AUTH,
and scripts/operator_token.py signs in with it. moto's Cognito does not enforce a client's allowed flows, so the
template is checked for them too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import cfn_tools
import jwt
import pytest
from moto import mock_aws

from devserver.lambda_host import load_module
from tests.conftest import ROOT

RESOURCES: dict[str, Any] = cfn_tools.load_yaml((ROOT / "template.yaml").read_text())["Resources"]
PASSWORD = "Correct-horse-9"


def load_script() -> Any:
    return load_module("operator_token", ROOT / "scripts" / "operator_token.py")


def test_operators_have_a_password_client_and_buyers_keep_srp_only() -> None:
    operators = RESOURCES["OperatorClient"]["Properties"]
    buyers = RESOURCES["UserPoolClient"]["Properties"]
    assert set(operators["ExplicitAuthFlows"]) == {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    assert operators["GenerateSecret"] is False  # the CLI flow sends no secret hash
    assert set(buyers["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}


@pytest.fixture
def pool() -> Iterator[tuple[Any, str, str]]:
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = cognito.create_user_pool(PoolName="ticketline-users", UsernameAttributes=["email"])["UserPool"]["Id"]
        flows = RESOURCES["OperatorClient"]["Properties"]["ExplicitAuthFlows"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName="operators", ExplicitAuthFlows=flows, GenerateSecret=False
        )["UserPoolClient"]["ClientId"]
        cognito.create_group(GroupName="admin", UserPoolId=pool_id)
        yield cognito, pool_id, client_id


@pytest.mark.component  # moto's Cognito
def test_the_readme_steps_give_an_admin_id_token(pool: tuple[Any, str, str]) -> None:
    cognito, pool_id, client_id = pool
    # The README's steps, as the AWS CLI runs them.
    cognito.admin_create_user(UserPoolId=pool_id, Username="ops@example.com")
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username="ops@example.com", GroupName="admin")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="ops@example.com", Password=PASSWORD, Permanent=True)

    token = load_script().id_token(cognito, client_id, "ops@example.com", PASSWORD)

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["token_use"] == "id" and "admin" in claims["cognito:groups"]


@pytest.mark.component  # moto's Cognito
def test_a_user_still_on_a_temporary_password_is_told_what_to_do(pool: tuple[Any, str, str]) -> None:
    cognito, pool_id, client_id = pool
    cognito.admin_create_user(UserPoolId=pool_id, Username="new@example.com", TemporaryPassword=PASSWORD)

    with pytest.raises(SystemExit, match="NEW_PASSWORD_REQUIRED"):
        load_script().id_token(cognito, client_id, "new@example.com", PASSWORD)
