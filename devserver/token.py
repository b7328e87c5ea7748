"""Prints a local user JWT: `python -m devserver.token --user alice [--admin] [--ttl SECONDS]`.

By default the token lives as long as a deployed buyer's ID token: template.yaml's IdTokenValidityMinutes."""

import argparse

from devserver import DEFAULT_TEMPLATE
from devserver.auth import DEV_SECRET_ENV, mint_token
from devserver.template import load_template


def deployed_id_token_seconds() -> int:
    return int(load_template(DEFAULT_TEMPLATE).parameters["IdTokenValidityMinutes"]) * 60


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devserver.token",
        description=f"Mint a user token for the local API (HS256, signed with ${DEV_SECRET_ENV}).",
    )
    parser.add_argument("--user", required=True, help="the user id (the token's sub)")
    parser.add_argument("--admin", action="store_true", help="put the user in the admin group")
    parser.add_argument(
        "--ttl", type=int, help="seconds until the token expires (default: the template's IdTokenValidityMinutes)"
    )
    parser.add_argument("--email", help="the email claim (default <user>@example.com)")
    arguments = parser.parse_args(argv)
    ttl = arguments.ttl if arguments.ttl is not None else deployed_id_token_seconds()
    print(mint_token(arguments.user, admin=arguments.admin, ttl_seconds=ttl, email=arguments.email))


if __name__ == "__main__":
    main()
