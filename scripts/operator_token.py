"""Print an operator's Cognito ID token for the deployed stack: `make operator-token ARGS="--stack ticketline
--user ops@example.com"` (the password is asked for, or read from OPERATOR_PASSWORD).

The buyers' app client allows SRP only (what the Amplify libraries do), which the AWS CLI cannot do; the stack's
OperatorClient allows USER_PASSWORD_AUTH and nothing else, for exactly this. The token is what `Authorization:
Bearer` wants on the admin routes (the user must be in the `admin` group)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

import boto3


def stack_outputs(stack: str, cloudformation: Any) -> dict[str, str]:
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def id_token(cognito: Any, client_id: str, user: str, password: str) -> str:
    answer = cognito.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": user, "PASSWORD": password}
    )
    if "AuthenticationResult" not in answer:  # e.g. NEW_PASSWORD_REQUIRED after admin-create-user
        raise SystemExit(f"Cognito asks for {answer.get('ChallengeName')}: set a permanent password first (README)")
    return str(answer["AuthenticationResult"]["IdToken"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", required=True, help="the operator's user name (email)")
    parser.add_argument("--stack", default="ticketline", help="the stack whose OperatorClientId output to use")
    parser.add_argument("--client-id", help="the operator app client id (default: the stack's OperatorClientId)")
    arguments = parser.parse_args(argv)
    client_id = (
        arguments.client_id or stack_outputs(arguments.stack, boto3.client("cloudformation"))["OperatorClientId"]
    )
    password = os.environ.get("OPERATOR_PASSWORD") or getpass.getpass(f"Password for {arguments.user}: ")
    print(id_token(boto3.client("cognito-idp"), client_id, arguments.user, password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
